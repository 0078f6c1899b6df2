import assert from "node:assert/strict";
import {
  add,
  compare,
  decimalFromNumber,
  divide,
  equals,
  formatDecimal,
  multiply,
  parseDecimal,
} from "./decimal.ts";

const d = parseDecimal;

Deno.test("decimalFromNumber() reads the shortest round-trip decimal of a double", () => {
  assert.equal(formatDecimal(decimalFromNumber(0.1)), "0.1");
  assert.equal(formatDecimal(decimalFromNumber(0.011467)), "0.011467");
  assert.equal(formatDecimal(decimalFromNumber(1e-7)), "0.0000001");
  assert.equal(formatDecimal(decimalFromNumber(1.5e21)), "1500000000000000000000");
  assert.equal(formatDecimal(decimalFromNumber(-129.575)), "-129.575");
  assert.equal(formatDecimal(decimalFromNumber(0)), "0");
  assert.equal(formatDecimal(decimalFromNumber(-0)), "0");
  assert.throws(() => decimalFromNumber(NaN), RangeError);
  assert.throws(() => decimalFromNumber(Infinity), RangeError);
});

Deno.test("parseDecimal() refuses text that is not a decimal number", () => {
  for (const bad of ["", "1.", ".5", "1,5", "0x10", "NaN", "1e", "--1"]) {
    assert.throws(() => parseDecimal(bad), SyntaxError, bad);
  }
});

Deno.test("add() is exact where doubles are not: 0.1 + 0.2 = 0.3", () => {
  assert.notEqual(0.1 + 0.2, 0.3);
  assert.ok(equals(add(decimalFromNumber(0.1), decimalFromNumber(0.2)), d("0.3")));
});

Deno.test("sums do not depend on order (associativity that doubles lack)", () => {
  const values = [0.1, 1e16, -1e16, 0.011467, 7296.89, 3.3, 1e-8];
  let forward = d("0");
  let backward = d("0");
  for (const v of values) forward = add(forward, decimalFromNumber(v));
  for (const v of [...values].reverse()) backward = add(backward, decimalFromNumber(v));
  assert.equal(formatDecimal(forward), formatDecimal(backward));
  assert.equal(formatDecimal(forward), "7300.30146701");
});

Deno.test("multiply() is exact", () => {
  assert.equal(formatDecimal(multiply(d("7296.89"), d("0.011467"))), "83.67343763");
  assert.equal(formatDecimal(multiply(d("-1.5"), d("2"))), "-3");
  assert.equal(formatDecimal(multiply(d("123"), d("0"))), "0");
});

Deno.test("divide() rounds half to even at the requested scale", () => {
  assert.equal(formatDecimal(divide(d("1"), d("3"), 4)), "0.3333");
  assert.equal(formatDecimal(divide(d("2"), d("3"), 4)), "0.6667");
  assert.equal(formatDecimal(divide(d("0.125"), d("1"), 2)), "0.12");
  assert.equal(formatDecimal(divide(d("0.135"), d("1"), 2)), "0.14");
  assert.equal(formatDecimal(divide(d("-0.125"), d("1"), 2)), "-0.12");
  assert.equal(formatDecimal(divide(d("-2"), d("3"), 3)), "-0.667");
  assert.equal(formatDecimal(divide(d("10"), d("0.25"), 3)), "40");
  assert.equal(formatDecimal(divide(d("1"), d("-8"), 2)), "-0.12");
  assert.throws(() => divide(d("1"), d("0"), 2), RangeError);
});

Deno.test("compare() orders decimals of different scales", () => {
  assert.equal(compare(d("1.10"), d("1.1")), 0);
  assert.equal(compare(d("1.01"), d("1.1")), -1);
  assert.equal(compare(d("-1"), d("-1.5")), 1);
});

Deno.test("formatDecimal() never uses an exponent and pads small fractions", () => {
  assert.equal(formatDecimal({ units: 5n, scale: 3 }), "0.005");
  assert.equal(formatDecimal({ units: -5n, scale: 3 }), "-0.005");
  assert.equal(formatDecimal({ units: 12345n, scale: 2 }), "123.45");
});
