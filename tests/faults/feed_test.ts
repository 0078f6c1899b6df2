/**
 * The feed misbehaves: it drops the connection every 10 s, or goes silent. The producer must be
 * reconnected and resubscribed within 2 s of the drop, or of its watchdog firing, measured on the
 * simulator's side (when it closed a socket, when the next one had every symbol subscribed), and
 * nothing it received may be lost.
 */
import assert from "node:assert/strict";
import { delay } from "../../shared/delay.ts";
import { waitFor } from "../helpers.ts";
import { progress } from "../progress.ts";
import {
  account,
  assertOutcome,
  drainFeed,
  FEED_SYMBOLS,
  FULL,
  metric,
  type Pipeline,
  producerReports,
  startPipeline,
  startWorkers,
  testOptions,
  waitForSubscribed,
} from "./harness.ts";

/** Watches the simulator: when each connection closed and when its successor was subscribed. */
function watchConnections(p: Pipeline) {
  const closed = new Map<number, number>();
  const subscribed = new Map<number, number>();
  const timer = setInterval(() => {
    for (const [at, line] of p.simEvents.splice(0)) {
      const match = /connection closed.*connection=(\d+)/.exec(line) ??
        /fault: dropping the connection.*connection=(\d+)/.exec(line);
      if (match && !closed.has(Number(match[1]))) closed.set(Number(match[1]), at);
    }
    for (const c of p.sim.stats().connections) {
      if (c.subscriptions === FEED_SYMBOLS.length && !subscribed.has(c.id)) {
        subscribed.set(c.id, Date.now());
      }
    }
  }, 5);
  return {
    closed,
    subscribed,
    stop: () => clearInterval(timer),
    /** Close of connection n to every symbol subscribed on connection n + 1, ms. */
    gaps(): { connection: number; ms: number }[] {
      return [...closed].filter(([id]) => subscribed.has(id + 1)).map(([id, at]) => ({
        connection: id,
        ms: subscribed.get(id + 1)! - at,
      }));
    },
  };
}

Deno.test({
  name:
    "the feed drops the connection every 10 s: reconnected and resubscribed within 2 s each time, nothing lost",
  ...testOptions,
  async fn() {
    const log = progress("drop every 10 s");
    const drops = FULL ? 6 : 2;
    const p = await startPipeline({ name: "drops", log, simulator: { rate: 400, seed: 10 } });
    const watch = watchConnections(p);
    let passed = false;
    try {
      await startWorkers(p);
      await waitForSubscribed(p);
      p.sim.inject({ type: "drop-every", ms: 10_000 });
      // drop-every counts from each connection's open; the first one has been open a while.
      p.sim.inject({ type: "drop" });
      await p.guarded(
        waitFor(`${drops} drops and reconnects`, () => watch.gaps().length >= drops, {
          timeoutMs: (drops + 2) * 12_000,
          intervalMs: 100,
        }),
      );
      p.sim.inject({ type: "drop-every", ms: 0 });
      const gaps = watch.gaps();
      log(
        `reconnect + resubscribe after each drop: ${
          gaps.map((g) => `${g.ms} ms`).join(", ")
        } (max ${Math.max(...gaps.map((g) => g.ms))} ms)`,
      );
      for (const g of gaps) {
        assert.ok(g.ms <= 2_000, `connection ${g.connection + 1} took ${g.ms} ms after the drop`);
      }
      await drainFeed(p);
      const reconnects = metric(
        producerReports(p).at(-1)!.metrics,
        "pipeline_producer_reconnects_total",
      );
      const a = await account(p);
      log(
        `sent ${a.sent}, in Kafka ${a.inKafka}, missing ${a.missing.length}; producer reconnects ${reconnects}`,
      );
      assert.equal(a.missing.length, 0, "no trade lost across the drops");
      assert.ok(reconnects >= gaps.length, "the producer counted its reconnects");
      await assertOutcome(p, a, log);
      passed = true;
    } finally {
      watch.stop();
      await p.stop(passed);
    }
  },
});

Deno.test({
  name:
    "the feed goes silent: the watchdog replaces the socket and the producer is resubscribed within 2 s",
  ...testOptions,
  async fn() {
    const log = progress("silence");
    const watchdogMs = 3_000;
    const silences = FULL ? 3 : 1;
    const p = await startPipeline({
      name: "silence",
      log,
      env: { FINNHUB_WATCHDOG_MS: String(watchdogMs) },
      simulator: { rate: 400, seed: 11, pingIntervalMs: 1_000 },
    });
    const watch = watchConnections(p);
    let passed = false;
    try {
      await startWorkers(p);
      await waitForSubscribed(p);
      const silenceMs = watchdogMs + 2_500;
      let silentUntil = 0;
      for (let n = 1; n <= silences; n++) {
        await p.guarded(delay(3_000));
        const silentAt = Date.now();
        silentUntil = silentAt + silenceMs;
        p.sim.inject({ type: "silence", ms: silenceMs });
        await p.guarded(
          waitFor(`connection ${n + 1} subscribed`, () => watch.subscribed.has(n + 1), {
            timeoutMs: 20_000,
            intervalMs: 50,
          }),
        );
        const firedAfter = watch.closed.get(n)! - silentAt;
        const gap = watch.subscribed.get(n + 1)! - watch.closed.get(n)!;
        log(
          `silence ${n}: the watchdog closed the socket ${firedAfter} ms after the feed went silent (watchdog ${watchdogMs} ms), resubscribed ${gap} ms later`,
        );
        assert.ok(firedAfter >= watchdogMs - 1_100, "not before the watchdog period (less a ping)");
        assert.ok(firedAfter <= watchdogMs + 1_500, "the watchdog fired on time");
        assert.ok(gap <= 2_000, `resubscribed within 2 s, took ${gap} ms`);
      }
      // The new connection is silent too until the injected silence ends; pausing the trades
      // before a ping has come after it would leave it silent long enough for a watchdog
      // timeout the scenario did not cause (seen when the reconnect came under ~470 ms).
      await p.guarded(delay(Math.max(0, silentUntil + 1_500 - Date.now())));
      await drainFeed(p);
      const last = producerReports(p).at(-1)!.metrics;
      const timeouts = metric(last, "pipeline_producer_watchdog_timeouts_total");
      log(`producer watchdog timeouts ${timeouts}`);
      assert.equal(timeouts, silences);
      const a = await account(p);
      log(`sent ${a.sent}, in Kafka ${a.inKafka}, missing ${a.missing.length}`);
      assert.equal(a.missing.length, 0);
      await assertOutcome(p, a, log);
      passed = true;
    } finally {
      watch.stop();
      await p.stop(passed);
    }
  },
});
