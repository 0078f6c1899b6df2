import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import avro from "avsc";
import {
  avroType,
  confluentHeader,
  crc64Avro,
  decodeSingleObject as decode,
  encodeBody,
  encodeFramed,
  encodeSingleObject as encode,
  fingerprintOf,
  formatFingerprint,
  framingOf,
  readSchemaHistory,
  schemaOf,
} from "./avro.ts";
import { SAMPLE_LETTER_V1, SAMPLE_TRADE } from "./test_records.ts";
import type { DeadLetter, RawTrade, SilverTrade } from "./types.ts";

Deno.test("crc64Avro() matches the Avro specification's test vectors", () => {
  // From the Avro specification's schema fingerprint examples (CRC-64-AVRO, as signed longs).
  assert.equal(BigInt.asIntN(64, crc64Avro('"null"')), 7195948357588979594n);
  assert.equal(BigInt.asIntN(64, crc64Avro('"int"')), 8247732601305521295n);
  assert.equal(BigInt.asIntN(64, crc64Avro('"string"')), -8142146995180207161n);
  assert.equal(BigInt.asIntN(64, crc64Avro('"boolean"')), -6970731678124411036n);
  assert.equal(
    BigInt.asIntN(
      64,
      crc64Avro(
        '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
      ),
    ),
    -1759257747318642341n,
  );
});

Deno.test("avsc's schema() is the Parsing Canonical Form the fingerprint is taken of", () => {
  const type = avro.Type.forSchema({
    type: "record",
    name: "foo",
    doc: "dropped",
    fields: [{ name: "f1", type: "boolean", default: true }],
  } as avro.Schema);
  const canonical = JSON.stringify(type.schema());
  assert.equal(
    canonical,
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
  );
  assert.equal(BigInt.asIntN(64, crc64Avro(canonical)), 7843277075252814651n);
});

Deno.test("encodeSingleObject() writes the single-object marker C3 01 and the schema fingerprint", () => {
  const message = encode("Trade", SAMPLE_TRADE);
  assert.equal(message[0], 0xc3);
  assert.equal(message[1], 0x01);
  assert.equal(message.readBigUInt64LE(2), fingerprintOf("Trade"));
  assert.equal(schemaOf(message), "Trade");
});

Deno.test("Trade round-trips every shape of 'c'", () => {
  for (const c of [["1", "8", "24", "12"], [], null, "ABSENT"] as const) {
    const value: RawTrade = { ...SAMPLE_TRADE, c };
    assert.deepEqual({ ...decode("Trade", encode("Trade", value)) }, value);
  }
});

Deno.test("Trade round-trips fractional, zero and odd numeric values exactly", () => {
  for (const [p, v] of [[7296.89, 0.011467], [1.1, 0], [1e-8, 123456.000001], [-1, -0.5]]) {
    const value: RawTrade = { ...SAMPLE_TRADE, s: "BINANCE:BTCUSDT", p: p!, v: v!, c: null };
    const back = decode("Trade", encode("Trade", value));
    assert.equal(back.p, p);
    assert.equal(back.v, v);
  }
  // The raw record is an audit trail: even a non-finite price survives for silver to reject.
  assert.ok(Number.isNaN(decode("Trade", encode("Trade", { ...SAMPLE_TRADE, p: NaN })).p));
});

Deno.test("SilverTrade and DeadLetter round-trip", () => {
  const silver: SilverTrade = {
    symbol: "AAPL",
    price: 129.575,
    eventTime: SAMPLE_TRADE.t,
    volume: 0,
    priceOnly: true,
    conditions: [],
    session: "AFTER_HOURS",
    ingestTime: SAMPLE_TRADE.ingestTime,
    rawTopic: "market.trades.raw",
    rawPartition: 2,
    rawOffset: 123456789012,
  };
  assert.deepEqual({ ...decode("SilverTrade", encode("SilverTrade", silver)) }, silver);
  const crypto: SilverTrade = { ...silver, symbol: "BINANCE:BTCUSDT", session: null };
  assert.deepEqual({ ...decode("SilverTrade", encode("SilverTrade", crypto)) }, crypto);
  const letter: DeadLetter = {
    payload: new TextEncoder().encode('{"type":"trade","data":[{"p":"x"}]}'),
    reason: "field 'p' must be a number",
    reasonCode: "bad_trade_shape",
    source: "producer",
    time: 1700000000000,
    sourceTopic: null,
    sourcePartition: null,
    sourceOffset: null,
  };
  const back = decode("DeadLetter", encode("DeadLetter", letter));
  assert.deepEqual(new Uint8Array(back.payload), letter.payload);
  assert.deepEqual({ ...back, payload: null }, {
    ...letter,
    payload: null,
    originalSize: null,
    originalSha256: null,
  });
  const excerpt: DeadLetter = {
    ...letter,
    originalSize: 5_000_000,
    originalSha256: "ab".repeat(32),
  };
  assert.deepEqual(
    { ...decode("DeadLetter", encode("DeadLetter", excerpt)), payload: null },
    { ...excerpt, payload: null },
  );
});

Deno.test("a DeadLetter written with the earlier schema (before originalSize) still decodes", () => {
  const [v1] = readSchemaHistory("DeadLetter");
  assert.ok(v1, "schemas/avro/history/dead_letter.v1.avsc");
  const oldType = avro.Type.forSchema(v1 as avro.Schema, { wrapUnions: false });
  const fields = (oldType.schema() as { fields: { name: string }[] }).fields.map((f) => f.name);
  assert.ok(!fields.includes("originalSize"));
  const old = { ...SAMPLE_LETTER_V1, payload: Buffer.from(SAMPLE_LETTER_V1.payload) };
  const header = Buffer.alloc(10);
  header.set([0xc3, 0x01]);
  header.writeBigUInt64LE(crc64Avro(JSON.stringify(oldType.schema())), 2);
  const message = Buffer.concat([header, oldType.toBuffer(old)]);
  assert.notEqual(header.readBigUInt64LE(2), fingerprintOf("DeadLetter"));
  assert.equal(schemaOf(message), "DeadLetter");
  const back = decode("DeadLetter", message);
  assert.deepEqual({ ...back, payload: Buffer.from(back.payload).toString() }, {
    ...old,
    payload: "{not json",
    originalSize: null,
    originalSha256: null,
  });
  assert.throws(() => decode("Trade", message), /written with schema DeadLetter/);
});

Deno.test("encodeFramed() is the header then the body avsc writes, byte for byte, in one buffer of that size", () => {
  const header = confluentHeader(70_000);
  for (const trade of [SAMPLE_TRADE, { ...SAMPLE_TRADE, c: ["1", "12", "37"] }]) {
    const body = avroType("Trade").toBuffer(trade);
    const framed = encodeFramed("Trade", trade, header);
    assert.deepEqual(framed, Buffer.concat([header, body]));
    assert.equal(framed.length, header.length + body.length);
    assert.deepEqual(encodeBody("Trade", trade), body);
  }
});

Deno.test("encodeFramed() writes a record larger than its scratch space, and the small ones after it", () => {
  const header = confluentHeader(7);
  const letter: DeadLetter = {
    payload: new Uint8Array(300_000).map((_, i) => i % 251),
    reason: "frame is 300000 bytes",
    reasonCode: "frame_too_large",
    source: "producer",
    time: 1700000000000,
    sourceTopic: null,
    sourcePartition: null,
    sourceOffset: null,
  };
  for (const record of [letter, { ...letter, payload: letter.payload.subarray(0, 10) }]) {
    const framed = encodeFramed("DeadLetter", record, header);
    assert.deepEqual(framed.subarray(0, 5), header);
    const back = avroType("DeadLetter").fromBuffer(framed.subarray(5)) as DeadLetter;
    assert.deepEqual(new Uint8Array(back.payload), record.payload);
  }
  assert.deepEqual(
    encodeFramed("Trade", SAMPLE_TRADE, header).subarray(5),
    avroType("Trade").toBuffer(SAMPLE_TRADE),
  );
});

Deno.test("decodeSingleObject() refuses an unknown fingerprint and names it", () => {
  const message = encode("Trade", SAMPLE_TRADE);
  message.writeBigUInt64LE(0x0123456789abcdefn, 2);
  assert.throws(() => decode("Trade", message), (error: Error) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /unknown schema fingerprint 0x0123456789abcdef/);
    assert.match(error.message, new RegExp(`Trade ${formatFingerprint(fingerprintOf("Trade"))}`));
    return true;
  });
});

Deno.test("decodeSingleObject() refuses a message without the marker, a short one and another schema's", () => {
  const body = avroType("Trade").toBuffer(SAMPLE_TRADE);
  assert.throws(() => decode("Trade", body), /missing the Avro single-object marker C3 01/);
  assert.throws(() => decode("Trade", Buffer.from([0xc3, 0x01, 1])), /shorter than the 10-byte/);
  const letter = encode("DeadLetter", {
    payload: new Uint8Array(),
    reason: "r",
    reasonCode: "c",
    source: "silver",
    time: 0,
    sourceTopic: "t",
    sourcePartition: 0,
    sourceOffset: 0,
  });
  assert.throws(() => decode("Trade", letter), /written with schema DeadLetter/);
});

Deno.test("decodeSingleObject() refuses a truncated or padded body", () => {
  const message = encode("Trade", SAMPLE_TRADE);
  assert.throws(() => decode("Trade", message.subarray(0, message.length - 3)), /not valid Avro/);
  assert.throws(
    () => decode("Trade", Buffer.concat([message, Buffer.from([0])])),
    /not valid Avro/,
  );
});

Deno.test("encodeSingleObject() names the field that does not fit the schema", () => {
  const bad = { ...SAMPLE_TRADE, t: "yesterday" } as unknown as RawTrade;
  assert.throws(() => encode("Trade", bad), /Cannot encode Trade: invalid field 't'/);
});

Deno.test("confluentHeader() is byte 0 then the schema id as a 4-byte big-endian integer", () => {
  assert.deepEqual([...confluentHeader(0)], [0, 0, 0, 0, 0]);
  assert.deepEqual([...confluentHeader(1)], [0, 0, 0, 0, 1]);
  assert.deepEqual([...confluentHeader(0x01020304)], [0, 1, 2, 3, 4]);
  assert.deepEqual([...confluentHeader(0x7fffffff)], [0, 0x7f, 0xff, 0xff, 0xff]);
  for (const bad of [-1, 0x80000000, 1.5, NaN]) {
    assert.throws(() => confluentHeader(bad), RangeError, String(bad));
  }
});

Deno.test("framingOf() tells the Confluent wire format, single-object encoding and neither apart", () => {
  assert.deepEqual(framingOf(Buffer.from([0, 0, 0, 1, 0, 42])), { kind: "confluent", id: 256 });
  assert.deepEqual(framingOf(Buffer.from([0, 0x7f, 0xff, 0xff, 0xff])), {
    kind: "confluent",
    id: 0x7fffffff,
  });
  // A record with an empty body is legal Avro (a record of no fields): the header alone.
  assert.deepEqual(framingOf(confluentHeader(7)), { kind: "confluent", id: 7 });
  assert.deepEqual(framingOf(encode("Trade", SAMPLE_TRADE)), { kind: "single-object" });
  const unknown = (bytes: number[]) => {
    const framing = framingOf(Uint8Array.from(bytes));
    assert.equal(framing.kind, "unknown", JSON.stringify(bytes));
    return (framing as { reason: string }).reason;
  };
  assert.match(unknown([]), /empty/);
  assert.match(unknown([0, 0, 0, 1]), /4 bytes is shorter than the 5-byte Confluent header/);
  assert.match(unknown([0, 0x80, 0, 0, 1]), /schema id -2147483647 is negative/);
  assert.match(unknown([0xc3]), /neither .* it starts with C3$/);
  assert.match(
    unknown([0x7b, 0x22, 0x73]),
    /neither the Confluent wire format \(magic byte 00\) nor Avro single-object encoding \(C3 01\): it starts with 7B 22/,
  );
  // A view into a larger buffer reads from its own start.
  const big = Buffer.from([9, 9, 0, 0, 0, 0, 5, 1]);
  assert.deepEqual(framingOf(big.subarray(2)), { kind: "confluent", id: 5 });
});
