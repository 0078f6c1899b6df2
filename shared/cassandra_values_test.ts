import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { encodedValues } from "./cassandra_values.ts";

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
  for (const type of ["text", "int", "boolean", "timestamp", "list<text>"] as const) {
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
