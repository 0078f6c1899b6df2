/**
 * Sustained load, on demand only (`FAULT_SUITE=full`, or `FAULT_LOAD=1`): the real pipeline fed
 * at `FAULT_LOAD_RATE` trades a second (default 5000) for `FAULT_LOAD_MINUTES` minutes (default
 * 10). Lag stays bounded, the memory of every worker stays flat (first minute against last
 * minute), nothing is lost. Needs a quiet machine: run it under the exclusive lock,
 * `flock -x /work/.svc.lock env FAULT_LOAD=1 deno test -A tests/faults/load_test.ts`.
 */
import assert from "node:assert/strict";
import { STAGES } from "../../processor/worker.ts";
import { waitFor } from "../helpers.ts";
import {
  account,
  assertLagZero,
  assertTables,
  drainFeed,
  expectedFrom,
  FEED_SYMBOLS,
  FULL,
  lagOf,
  progress,
  startPipeline,
  startWorkers,
  testOptions,
} from "./harness.ts";

const ENABLED = FULL || Deno.env.get("FAULT_LOAD") === "1";
const RATE = Number(Deno.env.get("FAULT_LOAD_RATE") ?? "5000");
const MINUTES = Number(Deno.env.get("FAULT_LOAD_MINUTES") ?? "10");

Deno.test({
  name:
    `sustained load: ${RATE} trades/s for ${MINUTES} min, lag bounded, memory flat, nothing lost`,
  ignore: !ENABLED,
  ...testOptions,
  async fn() {
    const log = progress("load");
    assert.ok(RATE > 0 && MINUTES > 0, "FAULT_LOAD_RATE and FAULT_LOAD_MINUTES must be positive");
    const p = await startPipeline({
      name: "load",
      log,
      env: { LOG_LEVEL: "warn", KAFKA_PARTITIONS: "6" },
      simulator: { rate: 0, seed: 5 },
    });
    let passed = false;
    try {
      await startWorkers(p);
      await p.guarded(
        waitFor(
          "the producer to subscribe",
          () => p.sim.stats().connections[0]?.subscriptions === FEED_SYMBOLS.length,
          {
            timeoutMs: 90_000,
          },
        ),
      );
      p.sim.setRate(RATE);
      const began = Date.now();
      const end = began + MINUTES * 60_000;
      const lagSamples: { at: number; lag: Record<string, number> }[] = [];
      let lastSent = 0;
      while (Date.now() < end) {
        await p.guarded(new Promise((resolve) => setTimeout(resolve, 10_000)));
        const lag = await lagOf(p);
        lagSamples.push({ at: Date.now() - began, lag });
        const sent = p.sim.stats().tradesSent;
        log(
          `+${Math.round((Date.now() - began) / 1000)} s: sent ${sent} (${
            Math.round((sent - lastSent) / 10)
          }/s), lag ${JSON.stringify(lag)}`,
        );
        lastSent = sent;
      }
      const sentDuringLoad = p.sim.stats().tradesSent;
      await drainFeed(p, 600_000);
      await assertLagZero(p, 600_000);
      const a = await account(p);
      const achieved = Math.round(sentDuringLoad / (MINUTES * 60));
      log(`sent ${a.sent} (${achieved}/s), in Kafka ${a.inKafka}, missing ${a.missing.length}`);
      assert.equal(a.missing.length, 0, "nothing lost");
      const figures = await assertTables(p, expectedFrom(a.raw, a.reference), 600_000);
      log(
        `tables equal the reference: bronze ${figures.bronze}, silver ${figures.silver}, gold ${figures.gold5m}`,
      );
      const maxLag = Object.fromEntries(
        STAGES.map((s) => [s, Math.max(...lagSamples.map((x) => x.lag[s] ?? 0))]),
      );
      log(`max lag over the run: ${JSON.stringify(maxLag)}`);
      const lastHalf = lagSamples.slice(Math.floor(lagSamples.length / 2));
      for (const stage of STAGES) {
        // Bounded: the lag of the second half never exceeds a minute of trades.
        const worst = Math.max(...lastHalf.map((x) => x.lag[stage] ?? 0));
        assert.ok(worst <= RATE * 60, `${stage} lag ${worst} in the second half`);
      }
      for (const series of p.rss.values()) {
        const first = series.samples.filter((s) => s.at - began < 60_000 && s.at >= began);
        const last = series.samples.filter((s) => s.at > end - 60_000 && s.at <= end);
        if (first.length === 0 || last.length === 0) continue;
        const mean = (xs: typeof first) => xs.reduce((n, x) => n + x.kib, 0) / xs.length / 1024;
        log(
          `RSS ${series.label}: first minute ${mean(first).toFixed(0)} MiB, last minute ${
            mean(last).toFixed(0)
          } MiB, peak ${(Math.max(...series.samples.map((x) => x.kib)) / 1024).toFixed(0)} MiB`,
        );
        assert.ok(
          mean(last) <= mean(first) * 1.5 + 64,
          `${series.label} memory grew from ${mean(first).toFixed(0)} to ${
            mean(last).toFixed(0)
          } MiB`,
        );
      }
      passed = true;
    } finally {
      await p.stop(passed);
    }
  },
});
