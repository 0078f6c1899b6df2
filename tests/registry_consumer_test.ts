/**
 * A consumer from outside the project reads a running pipeline's topics through the schema
 * registry: `tests/registry_consumer.py`, Python's confluent-kafka from PyPI with its schema
 * registry client and `AvroDeserializer` (pinned in `tests/requirements.txt`; `.ci/run` installs
 * it). It reads the raw, silver, dead-letter and candle topics of the whole pipeline
 * (simulator -> producer -> bronze, silver, gold, see `observed_pipeline.ts`) and must get the
 * trades the bronze and silver tables hold, the candles the gold tables hold, and the dead letters
 * as the project itself reads them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type cassandra from "cassandra-driver";
import { createKafka } from "../shared/kafka.ts";
import { consumerLag } from "../shared/lag.ts";
import { silentLogger } from "../shared/log.ts";
import { formatDecimal, parseDecimal } from "../shared/decimal.ts";
import {
  type CandleRow,
  candleRowOf,
  GOLD_TABLE,
  hasCandle,
  INTERVALS,
} from "../shared/gold_table.ts";
import { STAGES, stageSubscriptions } from "../shared/topology.ts";
import type { CandleUpdate } from "../shared/types.ts";
import type { Config } from "../shared/config.ts";
import { session, testWire, waitFor } from "./helpers.ts";
import {
  observedTestOptions,
  startObservedPipeline,
  troublesomeTrades,
} from "./observed_pipeline.ts";
import { readDeadLetters } from "./pipeline_assertions.ts";

const SCRIPT = new URL("./registry_consumer.py", import.meta.url).pathname;
const REQUIREMENTS = new URL("./requirements.txt", import.meta.url).pathname;

/** One record as the Python consumer prints it. */
interface PyRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly schema_id: number;
  readonly value: Record<string, unknown>;
}

/** Fails, saying how to install them, when the Python packages are missing. */
async function requirePythonPackages(): Promise<void> {
  const probe = await new Deno.Command("python3", {
    args: ["-c", "import confluent_kafka, fastavro"],
    stdout: "null",
    stderr: "piped",
  }).output().catch((error: Error) => ({ success: false, stderr: error.message }));
  if (!probe.success) {
    const detail = typeof probe.stderr === "string"
      ? probe.stderr
      : new TextDecoder().decode(probe.stderr).trim().split("\n").at(-1);
    throw new Error(
      `this test needs Python's confluent-kafka and fastavro: python3 -m pip install -r ${REQUIREMENTS} (${detail})`,
    );
  }
}

/** Runs the Python consumer over `topics`; its records. */
async function pythonRead(config: Config, topics: readonly string[]): Promise<PyRecord[]> {
  const env: Record<string, string> = {};
  if (config.registry.username !== "") {
    env["SCHEMA_REGISTRY_USERNAME"] = config.registry.username;
    env["SCHEMA_REGISTRY_PASSWORD"] = config.registry.password.reveal();
  }
  const output = await new Deno.Command("python3", {
    args: [
      SCRIPT,
      "--brokers",
      config.kafka.brokers.join(","),
      "--registry",
      config.registry.url,
      ...topics,
    ],
    env,
    stdin: "null",
    // Each topic has its own deadline in the script; this bounds a hang anywhere else.
    signal: AbortSignal.timeout(600_000),
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(output.success, `registry_consumer.py failed (${output.code}): ${stderr}`);
  return new TextDecoder().decode(output.stdout).split("\n").filter(Boolean).map((line) =>
    JSON.parse(line)
  );
}

/** Every row of a table (the test's keyspace is small). */
async function allRows(client: cassandra.Client, table: string): Promise<cassandra.types.Row[]> {
  const rows: cassandra.types.Row[] = [];
  let pageState: string | undefined;
  do {
    const result = await client.execute(`SELECT * FROM ${table}`, [], {
      fetchSize: 5000,
      ...(pageState === undefined ? {} : { pageState }),
    });
    rows.push(...result.rows);
    pageState = result.pageState ?? undefined;
  } while (pageState);
  return rows;
}

/** A gold row, or a candle update, as comparable text. */
function candleKey(interval: string, symbol: string, windowStart: number): string {
  return `${interval} ${symbol} ${windowStart}`;
}

/** What a gold row and the latest update of its window must agree on, decimals canonical. */
function comparable(c: CandleRow | CandleUpdate) {
  return {
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: formatDecimal(parseDecimal(c.volume)),
    vwap: c.vwap === null ? null : formatDecimal(parseDecimal(c.vwap)),
    tradeCount: Number(c.tradeCount),
    isFinal: c.isFinal,
  };
}

async function goldCandles(client: cassandra.Client): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const interval of INTERVALS) {
    for (const row of await allRows(client, GOLD_TABLE[interval])) {
      if (!hasCandle(row)) continue; // only a feed gap's columns: no candle, none published
      const candle = candleRowOf(row, interval);
      out.set(candleKey(interval, candle.symbol, candle.windowStart), comparable(candle));
    }
  }
  return out;
}

/** The newest state of each candle among updates given in topic order. */
function latestCandles(updates: readonly CandleUpdate[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const u of updates) out.set(candleKey(u.interval, u.symbol, u.windowStart), comparable(u));
  return out;
}

/** The candle topic as the project reads it, in partition then offset order. */
async function ourCandles(config: Config): Promise<CandleUpdate[]> {
  const kafka = createKafka(config.kafka, silentLogger());
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map(
    (await admin.fetchTopicOffsets(config.kafka.topics.candles)).map((
      p,
    ) => [p.partition, Number(p.high)]),
  );
  await admin.disconnect();
  const consumer = kafka.consumer({
    groupId: `${config.kafka.groupPrefix}.candle-reader-${crypto.randomUUID().slice(0, 8)}`,
  });
  const read: { partition: number; offset: number; update: CandleUpdate }[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topics.candles, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (Number(message.offset) >= (ends.get(partition) ?? 0)) return;
        read.push({
          partition,
          offset: Number(message.offset),
          update: await testWire().decodeAsync("CandleUpdate", message.value!),
        });
      },
    });
    const total = [...ends.values()].reduce((a, b) => a + b, 0);
    await waitFor(`${total} candle updates`, () => read.length >= total, { timeoutMs: 60_000 });
  } finally {
    await consumer.disconnect();
  }
  return read.sort((a, b) => a.partition - b.partition || a.offset - b.offset).map((r) => r.update);
}

Deno.test({
  name:
    "Python's confluent-kafka reads raw, silver, dead-letter and candle topics through the registry: the trades and candles the tables hold",
  ...observedTestOptions,
  async fn() {
    await requirePythonPackages();
    const p = await startObservedPipeline({ rate: 300 });
    const { config } = p;
    const { raw, silver, deadLetter, candles } = config.kafka.topics;
    try {
      await waitFor("1,000 trades sent", () => p.simulator.stats().tradesSent >= 1000, {
        timeoutMs: 60_000,
      });
      // Dead letters from the producer (malformed frames) and from silver (invalid trades).
      p.simulator.inject({ type: "malformed", count: 3 });
      await p.produceRaw(troublesomeTrades("AAPL", Date.now()));
      p.simulator.inject({ type: "pause" });

      // Everything sent is in the raw topic and every stage committed it.
      const kafka = createKafka(config.kafka, silentLogger());
      const admin = kafka.admin();
      await admin.connect();
      try {
        let last = -1;
        await waitFor("the raw topic to stop growing and every stage to commit it", async () => {
          const lag = await consumerLag(admin, stageSubscriptions(config));
          const rawEnd = (await admin.fetchTopicOffsets(raw)).reduce(
            (n, o) => n + Number(o.high),
            0,
          );
          const steady = rawEnd === last;
          last = rawEnd;
          return steady && lag.every((l) => l.logEnd === 0 || (l.committed >= 0 && l.lag === 0));
        }, { timeoutMs: 120_000, intervalMs: 1000 });
      } finally {
        await admin.disconnect();
      }
      const client = session(config);
      try {
        // Gold publishes each candle after writing it (best effort): wait until the topic's
        // newest state of every candle is the row, then stop the stages so nothing moves.
        await waitFor("the candle topic to agree with the gold tables", async () => {
          const [topic, table] = [
            latestCandles(await ourCandles(config)),
            await goldCandles(client),
          ];
          try {
            assert.deepEqual(topic, table);
            return true;
          } catch {
            return false;
          }
        }, { timeoutMs: 60_000, intervalMs: 1000 });
        for (const stage of STAGES) await p.stopStage(stage);
        const gold = await goldCandles(client);
        assert.deepEqual(latestCandles(await ourCandles(config)), gold);

        const records = await pythonRead(config, [raw, silver, deadLetter, candles]);
        const of = (topic: string) => records.filter((r) => r.topic === topic);
        // Every record carries the id of the schema registered under <topic>-value.
        for (const r of records) assert.ok(r.schema_id >= 0, JSON.stringify(r));

        // Raw = bronze, record for row, by source position.
        const bronze = new Map(
          (await allRows(client, "trades_bronze")).map((row) => [
            `${row.get("source_partition")}/${row.get("source_offset")}`,
            row,
          ]),
        );
        const rawRecords = of(raw);
        assert.ok(rawRecords.length >= 1000, `raw: ${rawRecords.length} records`);
        assert.equal(rawRecords.length, bronze.size, "raw records = bronze rows");
        for (const { partition, offset, key, value: t } of rawRecords) {
          const row = bronze.get(`${partition}/${offset}`);
          assert.ok(row, `raw ${partition}/${offset} has no bronze row`);
          const kind = row.get("conditions_kind");
          assert.deepEqual({
            s: t["s"],
            p: t["p"],
            t: t["t"],
            v: t["v"],
            c: t["c"],
            ingestTime: t["ingestTime"],
            connectionId: t["connectionId"],
            frameSeq: t["frameSeq"],
            tradeIndex: t["tradeIndex"],
          }, {
            s: row.get("symbol"),
            p: row.get("price"),
            t: Number(row.get("event_time")),
            v: row.get("volume"),
            c: kind === "absent" ? "ABSENT" : kind === "null" ? null : row.get("conditions") ?? [],
            ingestTime: (row.get("ingest_time") as Date).getTime(),
            connectionId: row.get("connection_id"),
            frameSeq: Number(row.get("frame_seq")),
            tradeIndex: row.get("trade_index"),
          }, `raw ${partition}/${offset}`);
          assert.equal(key, t["s"], "keyed by symbol");
        }

        // Silver = trades_silver, by raw position (a retried batch may publish a record twice).
        const silverRows = new Map(
          (await allRows(client, "trades_silver")).map((row) => [
            `${row.get("raw_partition")}/${row.get("raw_offset")}`,
            row,
          ]),
        );
        const silverRecords = new Map(
          of(silver).map((r) => [`${r.value["rawPartition"]}/${r.value["rawOffset"]}`, r.value]),
        );
        assert.deepEqual([...silverRecords.keys()].sort(), [...silverRows.keys()].sort());
        for (const [position, s] of silverRecords) {
          const row = silverRows.get(position)!;
          assert.deepEqual({
            symbol: s["symbol"],
            price: s["price"],
            eventTime: s["eventTime"],
            volume: s["volume"],
            priceOnly: s["priceOnly"],
            conditions: s["conditions"],
            session: s["session"],
            ingestTime: s["ingestTime"],
            rawTopic: s["rawTopic"],
          }, {
            symbol: row.get("symbol"),
            price: row.get("price"),
            eventTime: (row.get("event_time") as Date).getTime(),
            volume: row.get("volume"),
            priceOnly: row.get("price_only"),
            conditions: row.get("conditions") ?? [],
            session: row.get("session"),
            ingestTime: (row.get("ingest_time") as Date).getTime(),
            rawTopic: row.get("raw_topic"),
          }, `silver ${position}`);
        }
        assert.ok(silverRecords.size >= 1000, `silver: ${silverRecords.size}`);

        // Dead letters: as the project reads them, from the producer and from silver.
        const ours = await readDeadLetters(config, of(deadLetter).length);
        const theirs = of(deadLetter).map((r) => r.value);
        assert.equal(theirs.length, ours.length);
        const canonical = (letters: Record<string, unknown>[]) =>
          letters.map((l) => JSON.stringify(Object.entries(l).sort())).sort();
        assert.deepEqual(
          canonical(theirs.map((l) => ({
            ...l,
            payload: (l["payload"] as { base64: string }).base64,
          }))),
          canonical(ours.map((l) => ({
            ...l,
            payload: Buffer.from(l.payload).toString("base64"),
            originalSize: l.originalSize ?? null,
            originalSha256: l.originalSha256 ?? null,
          }))),
        );
        const sources = theirs.map((l) => l["source"]);
        assert.ok(sources.filter((s) => s === "producer").length >= 3, sources.join(","));
        assert.equal(sources.filter((s) => s === "silver").length, 5, sources.join(","));

        // Candles: the newest state of each, as Python reads them, is the gold row.
        const pyCandles = of(candles).map((r) => r.value as unknown as CandleUpdate);
        assert.ok(gold.size > 0);
        assert.deepEqual(latestCandles(pyCandles), gold);
      } finally {
        await client.shutdown();
      }
    } finally {
      await p.stop();
    }
  },
});
