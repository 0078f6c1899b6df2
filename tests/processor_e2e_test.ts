/**
 * Processor end to end, against real Kafka and Cassandra: a deterministic feed goes onto the raw
 * topic exactly as the producer writes it; the bronze, silver and gold stages run; then every
 * table and the dead-letter topic are compared with the independent reference
 * (`tests/reference.py`, Python's decimal module) computed from the same feed.
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import type { Config } from "../shared/config.ts";
import { decode } from "../shared/avro.ts";
import { hourBucket } from "../shared/buckets.ts";
import { createKafka } from "../shared/kafka.ts";
import { createLogger, type Logger, silentLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import type { DeadLetter } from "../shared/types.ts";
import { formatDecimal, parseDecimal } from "../processor/gold/decimal.ts";
import { GOLD_TABLE, goldBucketsBetween, type Interval } from "../processor/gold/window.ts";
import { runStageWorker, STAGES } from "../processor/worker.ts";
import { cleanup, provision, randomId, session, testConfig, waitFor } from "./helpers.ts";
import { computeReference, type Reference } from "./reference.ts";
import { generateFeed, groundTruthNdjson, produceFeed, type SentTrade } from "./trade_feed.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Stage logs: silent unless TEST_LOG_LEVEL is set (debug, info, warn, error). */
function testLogger(name: string): Logger {
  const level = Deno.env.get("TEST_LOG_LEVEL");
  return level ? createLogger(name, { level: level as "warn" }) : silentLogger();
}

/** Every gold row of the reference's symbols in [from, to), as comparable candles. */
export async function readGold(
  client: cassandra.Client,
  interval: Interval,
  symbols: readonly string[],
  from: number,
  to: number,
): Promise<Record<string, Record<string, Record<string, unknown>>>> {
  const out: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const symbol of symbols) {
    for (const bucket of goldBucketsBetween(from, to, interval)) {
      const result = await client.execute(
        `SELECT * FROM ${GOLD_TABLE[interval]} WHERE symbol = ? AND bucket = ?`,
        [symbol, cassandra.types.LocalDate.fromString(bucket)],
        { prepare: true, fetchSize: 10_000 },
      );
      for (const row of result.rows) {
        const vwap = row.get("vwap");
        (out[symbol] ??= {})[String((row.get("window_start") as Date).getTime())] = {
          open: row.get("open"),
          close: row.get("close"),
          high: row.get("high"),
          low: row.get("low"),
          volume: formatDecimal(parseDecimal(String(row.get("volume")))),
          vwap: vwap === null ? null : formatDecimal(parseDecimal(String(vwap))),
          count: Number(row.get("trade_count")),
        };
      }
    }
  }
  return out;
}

/** Counts rows of an hour-bucketed table per symbol over the given hours. */
export async function countRows(
  client: cassandra.Client,
  table: "trades_bronze" | "trades_silver",
  symbols: readonly string[],
  hours: readonly number[],
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const symbol of symbols) {
    for (const hour of hours) {
      const result = await client.execute(
        `SELECT COUNT(*) AS n FROM ${table} WHERE symbol = ? AND bucket = ?`,
        [symbol, new Date(hour)],
        { prepare: true },
      );
      const n = Number(result.first().get("n"));
      if (n > 0) counts.set(symbol, (counts.get(symbol) ?? 0) + n);
    }
  }
  return counts;
}

/** Reads every dead letter on the config's topic. */
export async function readDeadLetters(config: Config, expected: number): Promise<DeadLetter[]> {
  const kafka = createKafka(config.kafka, silentLogger());
  const consumer = kafka.consumer({
    groupId: `${config.kafka.groupPrefix}.dlq-reader-${randomId()}`,
  });
  const letters: DeadLetter[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topics.deadLetter, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        letters.push(decode("DeadLetter", message.value!));
        return Promise.resolve();
      },
    });
    await waitFor(`${expected} dead letters`, () => letters.length >= expected, {
      timeoutMs: 60_000,
    });
  } finally {
    await consumer.disconnect();
  }
  return letters;
}

/** Hours (bucket starts) spanned by the feed's event times. */
export function eventHours(feed: readonly SentTrade[]): number[] {
  const hours = new Set<number>();
  for (const { trade } of feed) {
    if (Number.isSafeInteger(trade.t)) hours.add(hourBucket(trade.t));
  }
  return [...hours];
}

/** Asserts gold equals the reference, candle by candle, for both intervals. */
export async function assertGoldMatches(
  client: cassandra.Client,
  reference: Reference,
  from: number,
  to: number,
): Promise<void> {
  for (const interval of ["5m", "1h"] as Interval[]) {
    const expected = reference.candles[interval];
    const actual = await readGold(client, interval, Object.keys(expected), from, to);
    assert.deepEqual(actual, expected, `${interval} candles differ from the reference`);
  }
}

Deno.test({
  name: "bronze, silver, dead letters and 5m/1h gold equal the independent reference",
  ...opts,
  async fn() {
    const config = testConfig({ GOLD_ALLOWED_LATENESS_MS: "2000" });
    await provision(config);
    const ingestTime = Date.now();
    // Event times from 23:35 to about 00:25 UTC, so windows cross an hour and a day boundary.
    const start = Date.parse("2026-11-22T23:35:00Z");
    const feed = generateFeed({ seed: 7, count: 6000, start, stepMs: 500, ingestTime });
    const dir = await Deno.makeTempDir({ prefix: "pipeline-e2e-" });
    const truthPath = `${dir}/ground_truth.ndjson`;
    await Deno.writeTextFile(truthPath, groundTruthNdjson(feed));
    const reference = await computeReference(truthPath, config.silver);
    assert.ok(reference.invalid > 50 && reference.valid > 5000, "the feed exercises both paths");

    const controller = new AbortController();
    const kafka = createKafka(config.kafka, silentLogger());
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const client = session(config);
    const workers = STAGES.map((stage) =>
      runStageWorker({
        config,
        stage,
        log: testLogger(stage),
        metrics: new MetricsRegistry(),
        signal: controller.signal,
      })
    );
    try {
      await producer.connect();
      await produceFeed(producer, config.kafka.topics.raw, feed);
      const symbols = [...new Set(feed.map((f) => f.trade.s))];
      const validSymbols = Object.keys(reference.candles["5m"]);
      const ingestHours = [hourBucket(ingestTime)];
      // An empty symbol cannot be a Cassandra partition key: bronze dead-letters it.
      const storable = feed.filter((f) => f.trade.s !== "");
      await waitFor("bronze to hold every trade", async () => {
        const counts = await countRows(client, "trades_bronze", symbols, ingestHours);
        return [...counts.values()].reduce((a, b) => a + b, 0) === storable.length;
      }, { timeoutMs: 120_000, intervalMs: 1000 });
      const bronze = await countRows(client, "trades_bronze", symbols, ingestHours);
      for (const symbol of symbols.filter((s) => s !== "")) {
        assert.equal(
          bronze.get(symbol) ?? 0,
          feed.filter((f) => f.trade.s === symbol).length,
          `bronze rows of ${JSON.stringify(symbol)}`,
        );
      }
      const end = Math.max(...feed.map((f) => f.trade.t)) + 1;
      const hours = eventHours(feed);
      await waitFor("silver to hold every valid trade", async () => {
        const counts = await countRows(client, "trades_silver", validSymbols, hours);
        return [...counts.values()].reduce((a, b) => a + b, 0) === reference.valid;
      }, { timeoutMs: 120_000, intervalMs: 1000 });
      const emptySymbols = feed.length - storable.length;
      const letters = await readDeadLetters(config, reference.invalid + emptySymbols);
      assert.equal(letters.filter((l) => l.source === "bronze").length, emptySymbols);
      const silverLetters = letters.filter((l) => l.source === "silver");
      assert.equal(silverLetters.length, reference.invalid, "one dead letter per invalid trade");
      assert.equal(
        new Set(silverLetters.map((l) => l.sourceOffset + "/" + l.sourcePartition)).size,
        reference.invalid,
      );
      for (const letter of silverLetters) assert.match(letter.reason, /^Rejected trade: /);
      await waitFor("gold to equal the reference", async () => {
        try {
          await assertGoldMatches(client, reference, start - 3_600_000, end + 3_600_000);
          return true;
        } catch {
          return false;
        }
      }, { timeoutMs: 60_000, intervalMs: 1000 });
      await assertGoldMatches(client, reference, start - 3_600_000, end + 3_600_000);
    } finally {
      controller.abort();
      await Promise.allSettled(workers);
      await producer.disconnect();
      await client.shutdown();
      await cleanup(config);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
