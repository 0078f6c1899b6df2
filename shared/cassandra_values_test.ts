import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import cassandra from "cassandra-driver";
import { decimalBytes, encodedValues } from "./cassandra_values.ts";
import { type Decimal, formatDecimal, parseDecimal } from "./decimal.ts";

const hex = (b: Buffer | null) => b === null ? null : Buffer.from(b).toString("hex");

Deno.test("encodedValues gives each type's CQL serialisation", () => {
  assert.equal(hex(encodedValues("text")("AAPL")), Buffer.from("AAPL").toString("hex"));
  assert.equal(hex(encodedValues("text")("€")), "e282ac");
  assert.equal(hex(encodedValues("int")(6)), "00000006");
  assert.equal(hex(encodedValues("int")(-2)), "fffffffe");
  assert.equal(hex(encodedValues("boolean")(true)), "01");
  assert.equal(hex(encodedValues("boolean")(false)), "00");
  // 1_700_000_000_123 ms = 0x18BCFE56A7B.
  assert.equal(hex(encodedValues("timestamp")(1_700_000_000_123)), "0000018bcfe5687b");
  assert.equal(
    hex(encodedValues("timestamp")(new Date(1_700_000_000_123))),
    "0000018bcfe5687b",
  );
  // As the driver sends it: Cassandra has no empty collection, an empty list is null.
  assert.equal(hex(encodedValues("list<text>")([])), null);
  assert.equal(
    hex(encodedValues("list<text>")(["1", "ab"])),
    "00000002" + "00000001" + "31" + "00000002" + "6162",
  );
  // Days since 1970-01-01 plus 2^31: 2026-12-07 is day 20,794 (0x513A).
  assert.equal(hex(encodedValues("date")("2026-12-07")), "8000513a");
  assert.equal(hex(encodedValues("date")("1969-12-31")), "7fffffff");
  for (const type of ["text", "int", "boolean", "timestamp", "date", "list<text>"] as const) {
    assert.equal(encodedValues(type)(null), null);
  }
});

Deno.test("encodedValues reuses the bytes of a repeated value and tells lists apart exactly", () => {
  const list = encodedValues("list<text>");
  assert.equal(list(["a", "b"]), list(["a", "b"]));
  assert.notEqual(hex(list(["a\u0000", "b"])), hex(list(["a", "\u0000b"])));
  assert.notEqual(hex(list(["a,b"])), hex(list(["a", "b"])));
  let resets = 0;
  const text = encodedValues("text", 2, { onReset: () => resets++ });
  const first = text("x");
  assert.equal(text("x"), first);
  text("y");
  assert.equal(resets, 0);
  text("z"); // full: the cache starts over
  assert.equal(resets, 1, "the reset is reported");
  assert.notEqual(text("x"), first);
  assert.equal(hex(text("x")), hex(first));
});

/** The driver's bytes for the `BigDecimal` of `d`, as gold sent its decimals before. */
function driverDecimal(d: Decimal): string {
  const big = cassandra.types.BigDecimal.fromString(formatDecimal(d));
  return Buffer.from(cassandra.types.BigDecimal.toBuffer(big)).toString("hex");
}

Deno.test("decimalBytes() is the driver's serialisation of the same decimal, byte for byte", () => {
  const texts = [
    "0",
    "1",
    "-1",
    "127",
    "128",
    "-128",
    "-129",
    "255",
    "256",
    "-256",
    "32767",
    "32768",
    "-32768",
    "-32769",
    "0.5",
    "-0.5",
    "7296.89",
    "0.011467",
    "-0.000001",
    "123456789.123456789",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "83678.112233445566778899",
    "1e-12",
    "1.5e+21",
    "340282366920938463463374607431768211456",
  ];
  for (const text of texts) {
    const d = parseDecimal(text);
    assert.equal(hex(decimalBytes(d)), driverDecimal(d), text);
  }
  // Volumes and price x volume sums of random trades, as gold folds them.
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 2_000; i++) {
    const d = parseDecimal(String((next() - 0.2) * 10 ** Math.floor(next() * 12)));
    assert.equal(hex(decimalBytes(d)), driverDecimal(d), formatDecimal(d));
  }
});

Deno.test("decimalBytes() reads back, through the driver, as the same decimal", () => {
  for (const text of ["0", "-12.345", "0.000000000001", "98765432109876543210.5"]) {
    const d = parseDecimal(text);
    const back = cassandra.types.BigDecimal.fromBuffer(decimalBytes(d));
    assert.equal(back.toString(), formatDecimal(d));
  }
});
