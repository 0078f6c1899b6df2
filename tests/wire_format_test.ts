/**
 * The wire format through the real schema registry, Kafka and Cassandra, with the stages running
 * as `deno task processor` runs them (`runStageWorker`):
 * - records in the Confluent wire format and records written before the registry (single-object
 *   encoding) are both stored; an id the registry does not know and a record in neither format
 *   are dead-lettered with their reason codes, and the partition moves on;
 * - `Trade` evolves (an optional field with a default, written by our codec and by the npm
 *   client `@kafkajs/confluent-schema-registry`): the stages as they are (old readers) store the
 *   new records, new readers read the old ones, and an incompatible change is refused by the
 *   registry before a record is written.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import {
  confluentHeader,
  encodeBody,
  encodeSingleObject,
  frame,
  readSchemaFile,
} from "../shared/avro.ts";
import type { Config } from "../shared/config.ts";
import { createKafka } from "../shared/kafka.ts";
import { consumerLag } from "../shared/lag.ts";
import { createLogger, silentLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { SchemaRegistryError } from "../shared/schema_registry.ts";
import { groupIdOf, type StageName, STAGES, stageSubscriptions } from "../shared/topology.ts";
import type { DeadLetter, RawTrade } from "../shared/types.ts";
import { createWireCodec, openWire, subjectOf, type WireCodec } from "../shared/wire.ts";
import { runStageWorker } from "../processor/worker.ts";
import {
  cleanup,
  provision,
  session,
  testConfig,
  testRegistry,
  testWire,
  waitFor,
  withStages,
  writerWire,
} from "./helpers.ts";
import { readDeadLetters } from "./pipeline_assertions.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Waits until each stage's group has committed everything its topic holds. */
async function drained(config: Config, stages: readonly StageName[] = STAGES): Promise<void> {
  const admin = createKafka(config.kafka, silentLogger()).admin();
  await admin.connect();
  try {
    await waitFor("every stage to commit everything", async () => {
      const lag = await consumerLag(
        admin,
        stageSubscriptions(config).filter((_, i) => stages.includes(STAGES[i]!)),
      );
      return lag.every((l) => l.logEnd === 0 || (l.committed >= 0 && l.lag === 0));
    }, { timeoutMs: 120_000, intervalMs: 500 });
  } finally {
    await admin.disconnect();
  }
}

function trade(overrides: Partial<RawTrade> = {}): RawTrade {
  const now = Date.now();
  return {
    s: "AAPL",
    p: 190.25,
    t: now - 1000,
    v: 10,
    c: ["1"],
    ingestTime: now,
    connectionId: "wire-test-1",
    frameSeq: 1,
    tradeIndex: 0,
    ...overrides,
  };
}

async function send(config: Config, values: readonly Uint8Array[]): Promise<void> {
  const producer = createKafka(config.kafka, silentLogger()).producer();
  await producer.connect();
  try {
    await producer.send({
      topic: config.kafka.topics.raw,
      acks: -1,
      // One key: one partition, so the records after the bad ones show it moved on.
      messages: values.map((value) => ({ key: Buffer.from("AAPL"), value: Buffer.from(value) })),
    });
  } finally {
    await producer.disconnect();
  }
}

/** Every raw record as `wire` reads it, in offset order (one partition). */
async function readRaw(config: Config, wire: WireCodec, count: number): Promise<RawTrade[]> {
  const consumer = createKafka(config.kafka, silentLogger()).consumer({
    groupId: `${config.kafka.groupPrefix}.raw-reader-${crypto.randomUUID().slice(0, 8)}`,
  });
  const out: { offset: number; trade: RawTrade }[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topics.raw, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        out.push({
          offset: Number(message.offset),
          trade: await wire.decodeAsync("Trade", message.value!),
        });
      },
    });
    await waitFor(`${count} raw records`, () => out.length >= count);
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.offset - b.offset).map((r) => r.trade);
}

/** The `(source) offset -> row` of every bronze or silver row (a test keyspace is small). */
async function rowsByOffset(
  config: Config,
  table: "trades_bronze" | "trades_silver",
): Promise<Map<number, Record<string, unknown>>> {
  const client = session(config);
  try {
    const result = await client.execute(`SELECT * FROM ${table}`);
    const column = table === "trades_bronze" ? "source_offset" : "raw_offset";
    return new Map(result.rows.map((row) => [Number(row.get(column)), { ...row }]));
  } finally {
    await client.shutdown();
  }
}

Deno.test({
  name:
    "wire format: records of either framing are stored; an unknown schema id or neither framing is dead-lettered and the partition moves on",
  ...opts,
  fn: () =>
    withStages({}, STAGES, async (config) => {
      const wire = await writerWire(config, ["raw", "deadLetter"]);
      const letter: DeadLetter = {
        payload: new Uint8Array([1]),
        reason: "r",
        reasonCode: "c",
        source: "producer",
        time: 0,
        sourceTopic: null,
        sourcePartition: null,
        sourceOffset: null,
      };
      const values = [
        wire.encode("Trade", trade({ tradeIndex: 0 })), // 0: the wire format
        encodeSingleObject("Trade", trade({ tradeIndex: 1 })), // 1: before the registry
        frame(confluentHeader(0x7fff_fff0), encodeBody("Trade", trade())), // 2: unknown id
        new TextEncoder().encode('{"s":"AAPL","p":1}'), // 3: neither framing
        wire.encode("DeadLetter", letter), // 4: a known id, but not a Trade
        wire.encode("Trade", trade({ tradeIndex: 5 })), // 5: after them all
      ];
      await send(config, values);
      const letters = await readDeadLetters(config, 6);
      await drained(config);

      const bronze = await rowsByOffset(config, "trades_bronze");
      const silver = await rowsByOffset(config, "trades_silver");
      assert.deepEqual([...bronze.keys()].sort(), [0, 1, 5]);
      assert.deepEqual([...silver.keys()].sort(), [0, 1, 5]);
      assert.deepEqual([0, 1, 5].map((o) => bronze.get(o)!["trade_index"]), [0, 1, 5]);

      const byStage = (stage: string) =>
        letters.filter((l) => l.source === stage).sort((a, b) => a.sourceOffset! - b.sourceOffset!);
      for (const stage of ["bronze", "silver"]) {
        const mine = byStage(stage);
        assert.deepEqual(
          mine.map((l) => [l.sourceOffset, l.reasonCode]),
          [[2, "unknown_schema_id"], [3, "undecodable"], [4, "undecodable"]],
          stage,
        );
        assert.match(
          mine[0]!.reason,
          /schema id 2147483632 is not in the schema registry at .* \(SCHEMA_REGISTRY_URL\)/,
        );
        assert.match(mine[1]!.reason, /neither the Confluent wire format/);
        assert.match(
          mine[2]!.reason,
          /is market\.pipeline\.DeadLetter, not market\.finnhub\.Trade/,
        );
        // The record whole, as it was in the topic.
        mine.forEach((l) =>
          assert.deepEqual(new Uint8Array(l.payload), new Uint8Array(values[l.sourceOffset!]!))
        );
        assert.equal(mine[0]!.sourceTopic, config.kafka.topics.raw);
      }
    }),
});

interface RecordSchema {
  readonly type: "record";
  readonly name: string;
  readonly fields: unknown[];
}

/** `Trade` with an optional `venue`: a BACKWARD-compatible change. */
function tradeV2(): RecordSchema {
  const v1 = readSchemaFile("Trade") as unknown as RecordSchema;
  return {
    ...v1,
    fields: [...v1.fields, {
      name: "venue",
      type: ["null", "string"],
      default: null,
      doc: "Where the trade was executed.",
    }],
  };
}

Deno.test({
  name:
    "wire format: Trade evolves; old stages read new records, new readers read old ones, and an incompatible change is refused before a record is written",
  ...opts,
  fn: () =>
    withStages({}, ["bronze", "silver"], async (config) => {
      const subject = subjectOf(config.kafka.topics.raw);
      const registry = testRegistry();
      const confluent = new SchemaRegistry({ host: config.registry.url });
      // Written by today's producer codec (v1), by an evolved one of ours (v2), and by the npm
      // client registering v2 itself.
      const oldWriter = await writerWire(config, ["raw"]);
      const newWriter = createWireCodec(registry, { schemas: { Trade: tradeV2() } });
      await newWriter.register({ Trade: config.kafka.topics.raw });
      const { id: theirId } = await confluent.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(tradeV2()) },
        { subject },
      );
      assert.equal(theirId, newWriter.idOf("Trade"), "the same schema, the same id");
      assert.deepEqual(await registry.versions(subject), [1, 2]);
      const v1 = trade({ tradeIndex: 0 });
      const [base, baseTheirs] = [trade({ tradeIndex: 1 }), trade({ tradeIndex: 2 })];
      const v2 = { ...base, venue: "XNAS" } as RawTrade;
      const v2Theirs = { ...baseTheirs, venue: "XNYS" };
      await send(config, [
        oldWriter.encode("Trade", v1),
        newWriter.encode("Trade", v2),
        await confluent.encode(theirId, v2Theirs),
      ]);

      // The stages as they are read all three; the new field is skipped.
      await drained(config, ["bronze", "silver"]);
      const bronze = await rowsByOffset(config, "trades_bronze");
      const silver = await rowsByOffset(config, "trades_silver");
      assert.deepEqual([...bronze.keys()].sort(), [0, 1, 2]);
      assert.deepEqual([...silver.keys()].sort(), [0, 1, 2]);
      assert.deepEqual([...bronze.values()].map((r) => r["trade_index"]).sort(), [0, 1, 2]);
      const oldReader = await readRaw(config, testWire(), 3);
      assert.deepEqual(oldReader.map((t) => ({ ...t })), [v1, base, baseTheirs]);

      // New readers, ours and the npm client's, read the old record with the field's default.
      const newReader = createWireCodec(registry, { schemas: { Trade: tradeV2() } });
      const read = await readRaw(config, newReader, 3);
      assert.deepEqual(read.map((t) => (t as RawTrade & { venue: unknown }).venue), [
        null,
        "XNAS",
        "XNYS",
      ]);
      const decoded = await confluent.decode(oldWriter.encode("Trade", v1), {
        [SchemaType.AVRO]: { readerSchema: tradeV2() },
      });
      assert.equal(decoded.venue, null);
      assert.equal(decoded.s, "AAPL");

      // An incompatible change (the price as text): the registry refuses it, nothing is
      // registered, the writer does not start (no waiting: waiting cannot mend it), and the
      // topic holds what it held.
      const v1Fields = (readSchemaFile("Trade") as { fields: { name: string }[] }).fields;
      const incompatible = {
        ...readSchemaFile("Trade"),
        fields: v1Fields.map((f) => f.name === "p" ? { ...f, type: "string" } : f),
      };
      const started = Date.now();
      const error = await openWire(registry, { Trade: config.kafka.topics.raw }, {
        log: silentLogger(),
        schemas: { Trade: incompatible },
      }).then(() => assert.fail("an incompatible Trade was registered"), (e: unknown) => e);
      assert.ok(error instanceof SchemaRegistryError, String(error));
      assert.equal(error.kind, "incompatible");
      assert.equal(error.retriable, false);
      assert.ok(Date.now() - started < 10_000, "refused at once, not waited for");
      assert.deepEqual(await registry.versions(subject), [1, 2]);
      const admin = createKafka(config.kafka, silentLogger()).admin();
      await admin.connect();
      try {
        const offsets = await admin.fetchTopicOffsets(config.kafka.topics.raw);
        assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), 3);
      } finally {
        await admin.disconnect();
      }
    }),
});

/**
 * The real registry behind a switch: while `down`, every request gets 503 (what a registry that
 * is restarting or overloaded answers). The shared registry itself is never stopped.
 */
function registrySwitch(target: string) {
  const state = { down: false, byIdRequests: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname.includes("/schemas/ids/")) state.byIdRequests++;
    if (state.down) return new Response("registry down (test)", { status: 503 });
    const upstream = await fetch(`${target}${url.pathname.replace(/^\/r/, "")}${url.search}`, {
      method: req.method,
      headers: req.headers,
      ...(req.body ? { body: await req.arrayBuffer() } : {}),
    });
    const headers = new Headers(upstream.headers);
    headers.delete("content-encoding");
    headers.delete("content-length");
    return new Response(await upstream.arrayBuffer(), { status: upstream.status, headers });
  });
  return {
    state,
    url: `http://127.0.0.1:${server.addr.port}/r`,
    close: () => server.shutdown(),
  };
}

Deno.test({
  name:
    "wire format: a stage starting without the registry waits naming SCHEMA_REGISTRY_URL; once running it goes on without it, and an unseen id waits for it instead of being dead-lettered",
  ...opts,
  async fn() {
    const real = testConfig().registry.url;
    const registry = registrySwitch(real);
    const config = testConfig({ SCHEMA_REGISTRY_URL: registry.url });
    await provision(config);
    const lines: string[] = [];
    const metrics = new MetricsRegistry();
    const controller = new AbortController();
    registry.state.down = true;
    const bronze = runStageWorker({
      config,
      stage: "bronze",
      log: createLogger("bronze", { level: "info", write: (line) => lines.push(line) }),
      metrics,
      signal: controller.signal,
    });
    try {
      await waitFor("bronze to say it waits for the registry", () =>
        lines.some((l) =>
          l.includes(
            `schema registry at ${registry.url} (SCHEMA_REGISTRY_URL) does not answer: waiting for it before starting`,
          )
        ));
      // Waiting: not in the consumer group, so consuming nothing.
      const wire = await writerWire(config, ["raw"]);
      await send(config, [wire.encode("Trade", trade({ tradeIndex: 0 }))]);
      const groupAdmin = createKafka(config.kafka, silentLogger()).admin();
      await groupAdmin.connect();
      try {
        const { groups } = await groupAdmin.describeGroups([groupIdOf(config, "bronze")]);
        assert.deepEqual(groups.map((g) => g.members.length), [0]);
      } finally {
        await groupAdmin.disconnect();
      }
      assert.equal((await rowsByOffset(config, "trades_bronze")).size, 0);
      registry.state.down = false;
      await waitFor(
        "the first trade stored",
        async () => (await rowsByOffset(config, "trades_bronze")).size === 1,
      );

      // Running, the registry down: ids it holds need nothing of it.
      registry.state.down = true;
      await send(config, [wire.encode("Trade", trade({ tradeIndex: 1 }))]);
      await waitFor(
        "the second trade stored",
        async () => (await rowsByOffset(config, "trades_bronze")).size === 2,
      );

      // An id it has not seen (an evolved Trade registered by another writer): the batch is
      // retried, nothing committed or dead-lettered, until the registry answers again.
      const newWriter = createWireCodec(testRegistry(), { schemas: { Trade: tradeV2() } });
      await newWriter.register({ Trade: config.kafka.topics.raw });
      const asked = registry.state.byIdRequests;
      await send(config, [newWriter.encode("Trade", trade({ tradeIndex: 2 }))]);
      const retries = metrics.counter("pipeline_stage_retries_total", "");
      await waitFor("bronze to retry the batch", () => retries.get({ stage: "bronze" }) >= 2);
      assert.ok(registry.state.byIdRequests >= asked + 2, "it asked again on each retry");
      assert.equal((await rowsByOffset(config, "trades_bronze")).size, 2);
      registry.state.down = false;
      await waitFor(
        "the third trade stored",
        async () => (await rowsByOffset(config, "trades_bronze")).size === 3,
      );
      await drained(config, ["bronze"]);
      const admin = createKafka(config.kafka, silentLogger()).admin();
      await admin.connect();
      try {
        const letters = await admin.fetchTopicOffsets(config.kafka.topics.deadLetter);
        assert.equal(letters.reduce((n, p) => n + Number(p.high), 0), 0, "no dead letter");
      } finally {
        await admin.disconnect();
      }
    } finally {
      registry.state.down = false;
      controller.abort();
      await bronze.catch(() => {});
      await registry.close();
      await cleanup(config);
    }
  },
});
