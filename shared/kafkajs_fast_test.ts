import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import Encoder from "kafkajs/src/protocol/encoder.js";
import Record from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import { ORIGINAL, speedUpKafkajs } from "./kafkajs_fast.ts";

// deno-lint-ignore no-explicit-any
type AnyEncoder = any;

const VALUES = [
  0,
  1,
  -1,
  2,
  -2,
  63,
  -64,
  64,
  -65,
  127,
  128,
  255,
  256,
  16_383,
  16_384,
  -16_384,
  2_097_151,
  2_097_152,
  268_435_455,
  268_435_456,
  2 ** 30 - 1,
  -(2 ** 30) + 1,
  2 ** 30,
  -(2 ** 30),
  2 ** 31,
  -(2 ** 31),
  2 ** 32 + 5,
  1_764_570_000_000,
  -1_764_570_000_000,
  Number.MAX_SAFE_INTEGER,
];

function bytes(write: (encoder: AnyEncoder) => void): string {
  const encoder: AnyEncoder = new Encoder();
  write(encoder);
  return Buffer.from(encoder.buffer).toString("hex");
}

const records = [
  { offsetDelta: 0, timestampDelta: 0, key: Buffer.from("AAPL"), value: Buffer.from("x") },
  {
    offsetDelta: 300,
    timestampDelta: -5_000,
    key: Buffer.from("BINANCE:BTCUSDT"),
    value: Buffer.alloc(200, 7),
  },
  { offsetDelta: 70_000, timestampDelta: 3_600_000, key: null, value: Buffer.alloc(20_000, 1) },
  { offsetDelta: 1, timestampDelta: 2 ** 40, key: Buffer.from("k"), value: null },
  {
    offsetDelta: 2,
    timestampDelta: 12,
    key: Buffer.from("k"),
    value: Buffer.from("v"),
    headers: { a: "b", c: ["d", "e"] },
  },
];

// Computed with kafkajs's own code, before the patch is installed.
const expected = {
  uvarint: VALUES.map((v) => bytes((e) => ORIGINAL.writeUVarInt.call(e, v))),
  varint: VALUES.filter((v) => Math.abs(v) < 2 ** 31).map((v) => bytes((e) => e.writeVarInt(v))),
  varlong: VALUES.map((v) => bytes((e) => ORIGINAL.writeVarLong.call(e, v))),
  size: VALUES.map((v) => ORIGINAL.sizeOfVarLong.call(Encoder, v)),
  records: records.map((r) => Buffer.from(Record(r).buffer).toString("hex")),
};

Deno.test("speedUpKafkajs writes the same varints, sizes and records as kafkajs", () => {
  speedUpKafkajs();
  speedUpKafkajs(); // a second call changes nothing
  assert.deepEqual(VALUES.map((v) => bytes((e) => e.writeUVarInt(v))), expected.uvarint);
  assert.deepEqual(
    VALUES.filter((v) => Math.abs(v) < 2 ** 31).map((v) => bytes((e) => e.writeVarInt(v))),
    expected.varint,
  );
  assert.deepEqual(VALUES.map((v) => bytes((e) => e.writeVarLong(v))), expected.varlong);
  assert.deepEqual(VALUES.map((v) => (Encoder as AnyEncoder).sizeOfVarLong(v)), expected.size);
  assert.deepEqual(
    records.map((r) => Buffer.from(Record(r).buffer).toString("hex")),
    expected.records,
  );
});

Deno.test("speedUpKafkajs's writers grow the buffer when it is full", () => {
  speedUpKafkajs();
  const encoder: AnyEncoder = new Encoder(1);
  for (let i = 0; i < 1000; i++) encoder.writeUVarInt(2 ** 31 + i);
  assert.equal(encoder.buffer.length, 5000);
});
