import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  avroType,
  confluentHeader,
  encodeBody,
  encodeSingleObject,
  readSchemaFile,
  schemaText,
} from "./avro.ts";
import { FakeClock } from "./clock.ts";
import { isolatedNames, loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { createMemoryRegistry, MEMORY_TOPICS, memoryWire } from "./memory_registry.ts";
import { SchemaRegistryError } from "./schema_registry.ts";
import { writtenSchemas } from "./topology.ts";
import { SAMPLE_LETTER_V1, SAMPLE_TRADE } from "./test_records.ts";
import type { DeadLetter, RawTrade } from "./types.ts";
import { createWireCodec, openWire, subjectOf, WireDecodeError, wireErrorCode } from "./wire.ts";

const letter: DeadLetter = { ...SAMPLE_LETTER_V1, originalSize: null, originalSha256: null };

/** Trade with one more field, optional with a default: a BACKWARD-compatible evolution. */
function tradeV2(): Record<string, unknown> {
  const v1 = readSchemaFile("Trade") as { fields: unknown[] };
  return {
    ...v1,
    fields: [...v1.fields, { name: "venue", type: ["null", "string"], default: null }],
  };
}

/** Asserts `fn` throws a WireDecodeError with `code` and a message matching `message`. */
function assertRefused(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WireDecodeError, String(error));
    assert.equal(error.code, code);
    assert.equal(wireErrorCode(error), code);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("encode() writes byte 0, the id registered under <topic>-value, then the Avro body", async () => {
  const registry = createMemoryRegistry();
  const wire = createWireCodec(registry);
  await wire.register({ Trade: "market.trades.raw", DeadLetter: "market.trades.dead-letter" });
  assert.deepEqual(await registry.versions(subjectOf("market.trades.raw")), [1]);
  assert.equal(subjectOf("market.trades.raw"), "market.trades.raw-value");
  const id = wire.idOf("Trade");
  const message = wire.encode("Trade", SAMPLE_TRADE);
  assert.equal(message[0], 0);
  assert.equal(message.readInt32BE(1), id);
  assert.deepEqual(message.subarray(5), encodeBody("Trade", SAMPLE_TRADE));
  // What is registered is the .avsc file's schema, docs included, so registry users see them.
  assert.equal((await registry.schemaById(id)).schema, schemaText("Trade"));
  assert.match(schemaText("Trade"), /"doc":/);
  assert.deepEqual({ ...wire.decode("Trade", message) }, SAMPLE_TRADE);
  const back = wire.decode("DeadLetter", wire.encode("DeadLetter", letter));
  assert.deepEqual({ ...back, payload: Buffer.from(back.payload).toString() }, {
    ...letter,
    payload: "{not json",
  });
});

Deno.test("register() is idempotent and the registry is never asked per record", async () => {
  const registry = createMemoryRegistry();
  const wire = createWireCodec(registry);
  await wire.register({ Trade: "raw" });
  const id = wire.idOf("Trade");
  await wire.register({ Trade: "raw" });
  assert.equal(wire.idOf("Trade"), id);
  const asked = { ...registry.requests };
  registry.down = true;
  const messages = Array.from(
    { length: 100 },
    (_, i) => wire.encode("Trade", { ...SAMPLE_TRADE, p: i }),
  );
  await wire.resolve(messages);
  assert.deepEqual(messages.map((m) => wire.decode("Trade", m).p), messages.map((_, i) => i));
  assert.deepEqual(registry.requests, asked, "a writer reads its own ids without a request");
});

Deno.test("encode() of a type not registered at start throws naming it", async () => {
  const wire = createWireCodec(createMemoryRegistry());
  await wire.register({ Trade: "raw" });
  assert.throws(() => wire.encode("DeadLetter", letter), /Cannot encode DeadLetter: .*register/);
  assert.throws(
    () => wire.encode("Trade", { ...SAMPLE_TRADE, t: "now" } as unknown as RawTrade),
    /Cannot encode Trade: invalid field 't'/,
  );
});

Deno.test("resolve() fetches an unknown id once, however many records and callers carry it", async () => {
  const registry = createMemoryRegistry();
  const writer = await memoryWire(registry);
  const reader = createWireCodec(registry);
  const messages = Array.from({ length: 50 }, () => writer.encode("Trade", SAMPLE_TRADE));
  assert.throws(() => reader.decode("Trade", messages[0]!), /schema id \d+ is not in/);
  await Promise.all([reader.resolve(messages), reader.resolve(messages), reader.resolve([])]);
  assert.equal(registry.requests["schemaById"], 1);
  await reader.resolve(messages);
  assert.equal(registry.requests["schemaById"], 1);
  for (const message of messages) {
    assert.deepEqual({ ...reader.decode("Trade", message) }, SAMPLE_TRADE);
  }
  // Values that are not Confluent-framed are skipped, not fetched.
  await reader.resolve([null, undefined, new Uint8Array(), Buffer.from([0, 0x80, 0, 0, 0])]);
  assert.equal(registry.requests["schemaById"], 1);
});

Deno.test("an evolved Trade: an old reader reads new records and a new reader reads old ones", async () => {
  const registry = createMemoryRegistry();
  const oldWire = createWireCodec(registry);
  const newWire = createWireCodec(registry, { schemas: { Trade: tradeV2() } });
  await oldWire.register({ Trade: "raw" });
  await newWire.register({ Trade: "raw" });
  assert.notEqual(newWire.idOf("Trade"), oldWire.idOf("Trade"));
  const newRecord = newWire.encode("Trade", { ...SAMPLE_TRADE, venue: "XNAS" } as RawTrade);
  const oldRecord = oldWire.encode("Trade", SAMPLE_TRADE);
  await oldWire.resolve([newRecord]);
  await newWire.resolve([oldRecord]);
  // The old reader skips the field it does not know.
  assert.deepEqual({ ...oldWire.decode("Trade", newRecord) }, SAMPLE_TRADE);
  // The new reader gives the field its default.
  assert.deepEqual({ ...newWire.decode("Trade", oldRecord) }, { ...SAMPLE_TRADE, venue: null });
  assert.deepEqual({ ...newWire.decode("Trade", newRecord) }, { ...SAMPLE_TRADE, venue: "XNAS" });
});

Deno.test("an id the registry does not know is unknown_schema_id, asked again only after the TTL", async () => {
  const registry = createMemoryRegistry("http://registry.test/apis/ccompat/v7");
  const clock = new FakeClock();
  const wire = createWireCodec(registry, { clock, unknownIdTtlMs: 30_000 });
  const message = Buffer.concat([confluentHeader(4242), encodeBody("Trade", SAMPLE_TRADE)]);
  await wire.resolve([message, message]);
  assert.equal(registry.requests["schemaById"], 1);
  assertRefused(
    () => wire.decode("Trade", message),
    "unknown_schema_id",
    /^Cannot decode Trade: schema id 4242 is not in the schema registry at http:\/\/registry\.test\/apis\/ccompat\/v7 \(SCHEMA_REGISTRY_URL\)$/,
  );
  clock.tick(29_999);
  await wire.resolve([message]);
  assert.equal(registry.requests["schemaById"], 1, "not asked again within the TTL");
  // Registered since (a registry restored from a backup, say): found once the TTL passed.
  registry.put(4242, schemaText("Trade"));
  clock.tick(1);
  await wire.resolve([message]);
  assert.equal(registry.requests["schemaById"], 2);
  assert.deepEqual({ ...wire.decode("Trade", message) }, SAMPLE_TRADE);
});

Deno.test("a registry that does not answer makes resolve() throw a retriable error and caches nothing", async () => {
  const registry = createMemoryRegistry();
  const writer = await memoryWire(registry);
  const reader = createWireCodec(registry);
  const message = writer.encode("Trade", SAMPLE_TRADE);
  registry.down = true;
  const error = await reader.resolve([message]).catch((e: unknown) => e);
  assert.ok(error instanceof SchemaRegistryError, String(error));
  assert.equal(error.retriable, true);
  assert.match(error.message, /SCHEMA_REGISTRY_URL/);
  registry.down = false;
  await reader.resolve([message]);
  assert.deepEqual({ ...reader.decode("Trade", message) }, SAMPLE_TRADE);
});

Deno.test("records in single-object encoding (before the registry) still decode", async () => {
  const wire = createWireCodec(createMemoryRegistry());
  const old = encodeSingleObject("Trade", SAMPLE_TRADE);
  await wire.resolve([old]);
  assert.deepEqual({ ...wire.decode("Trade", old) }, SAMPLE_TRADE);
  assert.deepEqual({ ...await wire.decodeAsync("Trade", old) }, SAMPLE_TRADE);
  assertRefused(
    () => wire.decode("Trade", encodeSingleObject("DeadLetter", letter)),
    "undecodable",
    /written with schema DeadLetter/,
  );
});

Deno.test("decode() says undecodable for neither framing, a short header, a bad body or another record's id", async () => {
  const registry = createMemoryRegistry();
  const wire = await memoryWire(registry);
  assertRefused(
    () => wire.decode("Trade", new TextEncoder().encode('{"s":"AAPL"}')),
    "undecodable",
    /neither the Confluent wire format \(magic byte 00\) nor Avro single-object encoding \(C3 01\): it starts with 7B 22/,
  );
  assertRefused(() => wire.decode("Trade", Buffer.from([0, 0, 1])), "undecodable", /shorter than/);
  assertRefused(() => wire.decode("Trade", new Uint8Array()), "undecodable", /empty/);
  const message = wire.encode("Trade", SAMPLE_TRADE);
  assertRefused(
    () => wire.decode("Trade", message.subarray(0, message.length - 2)),
    "undecodable",
    /body is not valid Avro/,
  );
  assertRefused(
    () => wire.decode("Trade", Buffer.concat([message, Buffer.from([1])])),
    "undecodable",
    /body is not valid Avro/,
  );
  assertRefused(
    () => wire.decode("Trade", wire.encode("DeadLetter", letter)),
    "undecodable",
    /schema id \d+ is market\.pipeline\.DeadLetter, not market\.finnhub\.Trade/,
  );
});

Deno.test("decode() says undecodable for an id whose schema is not Avro, not valid, or not readable as ours", async () => {
  const registry = createMemoryRegistry();
  registry.put(10, '{"type":"object"}', "JSON");
  registry.put(11, "{not a schema");
  const v1 = readSchemaFile("Trade") as { fields: { name: string }[] };
  // `p` as a string: a Trade reader cannot read it.
  registry.put(
    12,
    JSON.stringify({
      ...v1,
      fields: v1.fields.map((f) => f.name === "p" ? { ...f, type: "string" } : f),
    }),
  );
  const wire = createWireCodec(registry);
  const framed = (id: number) => Buffer.concat([confluentHeader(id), Buffer.from([0])]);
  await wire.resolve([10, 11, 12].map(framed));
  assertRefused(() => wire.decode("Trade", framed(10)), "undecodable", /id 10 is a JSON schema/);
  assertRefused(
    () => wire.decode("Trade", framed(11)),
    "undecodable",
    /id 11 is not a valid Avro schema/,
  );
  assertRefused(
    () => wire.decode("Trade", framed(12)),
    "undecodable",
    /schema id 12 cannot be read as market\.finnhub\.Trade/,
  );
});

Deno.test("wireErrorCode() is undecodable for any other error", () => {
  assert.equal(wireErrorCode(new TypeError("x")), "undecodable");
  assert.equal(wireErrorCode(new WireDecodeError("x", "unknown_schema_id")), "unknown_schema_id");
});

Deno.test("openWire() waits for a registry that does not answer, warning with SCHEMA_REGISTRY_URL", async () => {
  const registry = createMemoryRegistry("http://registry.test/apis/ccompat/v7");
  registry.down = true;
  const clock = new FakeClock();
  const lines: string[] = [];
  const log = createLogger("test", { write: (line) => lines.push(line) });
  let settled = false;
  const opening = openWire(registry, { Trade: "raw" }, { log, clock, retryBaseMs: 1000 })
    .finally(() => settled = true);
  for (let i = 0; i < 50; i++) await Promise.resolve();
  assert.equal(settled, false);
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /schema registry at http:\/\/registry\.test\/apis\/ccompat\/v7 \(SCHEMA_REGISTRY_URL\) does not answer: waiting for it before starting/,
  );
  clock.tick(1000);
  for (let i = 0; i < 50; i++) await Promise.resolve();
  assert.equal(lines.length, 2, "a second attempt, still down");
  registry.down = false;
  clock.tick(60_000);
  const wire = await opening;
  assert.match(lines.at(-1)!, /schema registry answers: schemas registered/);
  assert.deepEqual({ ...wire.decode("Trade", wire.encode("Trade", SAMPLE_TRADE)) }, SAMPLE_TRADE);
});

Deno.test("openWire() throws at once for a refusal waiting cannot mend, and when stopped while waiting", async () => {
  const refusing = createMemoryRegistry();
  refusing.register = () =>
    Promise.reject(
      new SchemaRegistryError("schema registry at x (SCHEMA_REGISTRY_URL): HTTP 409", {
        kind: "incompatible",
        status: 409,
      }),
    );
  const log = createLogger("test", { write: () => {} });
  await assert.rejects(openWire(refusing, { Trade: "raw" }, { log }), /HTTP 409/);

  const down = createMemoryRegistry();
  down.down = true;
  const controller = new AbortController();
  const clock = new FakeClock();
  const opening = openWire(down, { Trade: "raw" }, { log, clock, signal: controller.signal });
  for (let i = 0; i < 20; i++) await Promise.resolve();
  controller.abort();
  const error = await opening.catch((e: unknown) => e);
  assert.ok(error instanceof SchemaRegistryError);
  assert.equal(error.kind, "aborted");
  assert.match(error.message, /stopped while waiting/);
});

Deno.test("each schema of the pipeline is registered under its own subject with its own id", async () => {
  const registry = createMemoryRegistry();
  const wire = await memoryWire(registry);
  const names = Object.keys(MEMORY_TOPICS) as (keyof typeof MEMORY_TOPICS)[];
  assert.equal(new Set(names.map((name) => wire.idOf(name))).size, names.length);
  for (const name of names) {
    assert.deepEqual(await registry.versions(subjectOf(MEMORY_TOPICS[name])), [1], name);
    assert.equal(avroType(name).name?.split(".").at(-1), name);
  }
});

Deno.test("writtenSchemas() gives each worker the schemas of the topics it writes, on the config's topic names", () => {
  const config = loadConfig({ ...isolatedNames("t", "x1") });
  const { raw, silver, deadLetter, metrics, candles, gaps, coverage } = config.kafka.topics;
  // Each worker writes its own output, and every worker writes dead letters and reports.
  const outputs = [
    ["producer", { Trade: raw, FeedGap: gaps, FeedCoverage: coverage }],
    ["bronze", {}],
    ["silver", { SilverTrade: silver }],
    ["gold", { CandleUpdate: candles }],
  ] as const;
  for (const [worker, output] of outputs) {
    assert.deepEqual(
      writtenSchemas(config, worker),
      { ...output, DeadLetter: deadLetter, WorkerReport: metrics },
      worker,
    );
  }
});
