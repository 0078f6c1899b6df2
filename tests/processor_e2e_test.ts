/**
 * Processor end to end, against real Kafka and Cassandra: a deterministic feed goes onto the raw
 * topic exactly as the producer writes it; the bronze, silver and gold stages run; then every
 * table and the dead-letter topic are compared with the independent reference
 * (`tests/reference.py`, Python's decimal module) computed from the same feed.
 */
import assert from "node:assert/strict";
import { hourBucket } from "../shared/buckets.ts";
import { createKafka } from "../shared/kafka.ts";
import { silentLogger } from "../shared/log.ts";
import { session, waitFor, withStages } from "./helpers.ts";
import {
  assertGoldMatches,
  countRows,
  eventHours,
  readDeadLetters,
} from "./pipeline_assertions.ts";
import { computeReference } from "./reference.ts";
import { generateFeed, groundTruthNdjson, produceFeed } from "./trade_feed.ts";
import { STAGES } from "../shared/topology.ts";
import type cassandra from "cassandra-driver";
import type { Config } from "../shared/config.ts";
import { ROLLUP_INTERVALS } from "../shared/gold_table.ts";
import { createMarketStore } from "../status/market/store.ts";
import type { CandleJson } from "../status/market/store.ts";
import { marketTestApp } from "../status/test_doubles.ts";
import type { Reference } from "./reference.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "bronze, silver, dead letters, 1m/5m/1h/1d gold and the API's 15m/4h roll-ups equal the independent reference",
  ...opts,
  fn: () =>
    withStages({ GOLD_ALLOWED_LATENESS_MS: "2000" }, STAGES, async (config) => {
      const ingestTime = Date.now();
      // Event times from 23:35 to about 00:25 UTC, so windows cross an hour and a day boundary.
      const start = Date.parse("2026-11-22T23:35:00Z");
      const feed = generateFeed({ seed: 7, count: 6000, start, stepMs: 500, ingestTime });
      const dir = await Deno.makeTempDir({ prefix: "pipeline-e2e-" });
      const truthPath = `${dir}/ground_truth.ndjson`;
      await Deno.writeTextFile(truthPath, groundTruthNdjson(feed));
      const reference = await computeReference(truthPath, config.silver);
      assert.ok(reference.invalid > 50 && reference.valid > 5000, "the feed exercises both paths");

      const kafka = createKafka(config.kafka, silentLogger());
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      const client = session(config);
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
        await assertRollupsServed(config, client, reference, start - 3_600_000, end + 3_600_000);
      } finally {
        await producer.disconnect();
        await client.shutdown();
        await Deno.remove(dir, { recursive: true });
      }
    }),
});

/**
 * Asserts `/api/candles` serves every roll-up interval (15m, 4h: added up from the 5m and 1h
 * rows gold wrote) equal to the reference folded directly from the trades at that interval.
 */
async function assertRollupsServed(
  config: Config,
  client: cassandra.Client,
  reference: Reference,
  from: number,
  to: number,
): Promise<void> {
  const store = createMarketStore(client, config.cassandra.keyspace, {
    allowedLatenessMs: config.gold.allowedLatenessMs,
  });
  const { app, hub } = marketTestApp(store, { token: "", symbols: [] });
  try {
    for (const interval of ROLLUP_INTERVALS) {
      const expected = reference.candles[interval];
      const actual: Record<string, Record<string, unknown>> = {};
      for (const symbol of Object.keys(expected)) {
        const response = await app.request(
          `/api/candles?symbol=${
            encodeURIComponent(symbol)
          }&interval=${interval}&from=${from}&to=${to}`,
        );
        assert.equal(
          response.status,
          200,
          `${interval} ${symbol}: ${await response.clone().text()}`,
        );
        const body = await response.json() as { interval: string; candles: CandleJson[] };
        assert.equal(body.interval, interval);
        for (const c of body.candles) {
          (actual[symbol] ??= {})[String(c.time)] = {
            open: c.open,
            close: c.close,
            high: c.high,
            low: c.low,
            volume: c.volume,
            vwap: c.vwap,
            count: c.trades,
          };
        }
      }
      assert.deepEqual(actual, expected, `${interval} candles served differ from the reference`);
    }
  } finally {
    hub.close();
  }
}
