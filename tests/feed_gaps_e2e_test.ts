/**
 * Feed gaps end to end: the simulator drops the producer's connection at known times, the
 * producer publishes each gap, the gold worker's gap consumer stores it and amends the candles,
 * and every 5m and 1h candle of every symbol then says exactly the coverage the independent
 * reference (`gap_reference.ts`) computes from the gaps, which must sit at the drop times.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readFeedGaps } from "../shared/feed_gap_table.ts";
import { INTERVAL_MS, INTERVALS, readCandles } from "../shared/gold_table.ts";
import { createCassandraClient } from "../shared/cassandra.ts";
import { createKafka } from "../shared/kafka.ts";
import { consumerLag } from "../shared/lag.ts";
import { silentLogger } from "../shared/log.ts";
import { gapsGroupIdOf } from "../shared/topology.ts";
import type { FeedGap } from "../shared/types.ts";
import { expectedCoverage } from "./gap_reference.ts";
import { waitFor } from "./helpers.ts";
import { observedTestOptions, startObservedPipeline } from "./observed_pipeline.ts";

const SYMBOLS = ["AAPL", "BINANCE:BTCUSDT"];
const DROPS = 3;

Deno.test({
  name: "simulated drops give each candle exactly the coverage of the gaps at the drop times",
  ...observedTestOptions,
  async fn() {
    const started = Date.now();
    const pipeline = await startObservedPipeline({
      rate: 50,
      env: { FINNHUB_SYMBOLS: SYMBOLS.join(",") },
    });
    const { config, simulator } = pipeline;
    const client = createCassandraClient(config.cassandra);
    const admin = createKafka(config.kafka, silentLogger()).admin();
    try {
      await client.connect();
      await admin.connect();
      const keyspace = config.cassandra.keyspace;
      const range = () => ({ symbol: SYMBOLS[1]!, from: started, to: Date.now() + 1, limit: 1000 });

      // Drops at known times, each once the feed is back from the one before.
      const drops: { before: number; after: number }[] = [];
      for (let i = 0; i < DROPS; i++) {
        await waitFor(`the feed back before drop ${i + 1}`, async () => {
          const gaps = await readFeedGaps(client, keyspace, range());
          return gaps.length === i && simulator.stats().connectionsOpen === 1;
        }, { timeoutMs: 30_000, intervalMs: 100 });
        // A stretch of good feed between two gaps (not a wait for something to settle).
        await new Promise((resolve) => setTimeout(resolve, 300));
        const before = Date.now();
        simulator.inject({ type: "drop" });
        drops.push({ before, after: Date.now() });
      }
      const stored = await waitFor(`${DROPS} gaps stored`, async () => {
        const gaps = await readFeedGaps(client, keyspace, range());
        return gaps.length === DROPS ? gaps : false;
      }, { timeoutMs: 30_000 });

      // Each gap starts at its drop (as the producer's clock saw the close) and is short.
      for (const [i, gap] of stored.entries()) {
        const drop = drops[i]!;
        assert.equal(gap.cause, "reconnect");
        assert.deepEqual([...gap.symbols].sort(), [...SYMBOLS].sort());
        assert.ok(
          gap.from >= drop.before - 5 && gap.from <= drop.after + 1000,
          `gap ${i} from ${gap.from} vs drop ${JSON.stringify(drop)}`,
        );
        assert.ok(
          gap.to > gap.from && gap.to - gap.from < 5_000,
          `gap ${i} lasts ${gap.to - gap.from} ms`,
        );
      }

      // Every amendment committed, then every candle of the run checked against the reference.
      await waitFor("the gap consumer drained", async () => {
        const lag = await consumerLag(admin, [{
          group: gapsGroupIdOf(config),
          topic: config.kafka.topics.gaps,
        }]);
        return lag.every((p) => p.lag === 0);
      });
      const gaps: FeedGap[] = stored.map((g) => ({
        gapId: g.gapId,
        fromMs: g.from,
        toMs: g.to,
        symbols: g.symbols,
        cause: "reconnect",
        connectionId: "",
        detectedAtMs: g.to,
      }));
      let checked = 0;
      let short = 0;
      for (const interval of INTERVALS) {
        for (const symbol of SYMBOLS) {
          const candles = await readCandles(client, keyspace, {
            symbol,
            interval,
            from: started - INTERVAL_MS[interval],
            to: Date.now() + INTERVAL_MS[interval],
            limit: 1000,
          });
          assert.ok(candles.length > 0, `${interval} ${symbol} candles`);
          for (const candle of candles) {
            const expected = expectedCoverage(symbol, candle.windowStart, candle.windowEnd, gaps);
            const where = `${interval} ${symbol} ${new Date(candle.windowStart).toISOString()}`;
            assert.equal(candle.gapMs, expected.gapMs, where);
            assert.equal(candle.gapCount, expected.gapCount, where);
            assert.ok(Math.abs(candle.coverage - expected.coverage) < 1e-12, where);
            checked++;
            if (candle.coverage < 1) short++;
          }
        }
      }
      // The crypto symbol trades around the clock: its candles show the gaps, whatever the hour.
      assert.ok(short > 0, "some candle shows less than full coverage");
      assert.ok(checked >= 4);
    } finally {
      await admin.disconnect().catch(() => {});
      await client.shutdown().catch(() => {});
      await pipeline.stop();
    }
  },
});
