/**
 * A hostile feed floods symbols: hundreds of thousands of distinct, well-formed symbols the
 * producer never subscribed to, in a few seconds, while the subscribed symbols keep trading.
 * Finnhub sends only what was subscribed, so each such trade is refused at the producer as
 * `unsubscribed_symbol` (dead-lettered or, past the dead-letter queue, counted), and nothing of
 * them reaches bronze, silver, gold or the status endpoint's per-symbol state. Every process stays
 * under its memory bound, event streams without a symbol get a bounded first event, and every
 * subscribed trade is in every table exactly.
 */
import assert from "node:assert/strict";
import { freePort } from "../helpers.ts";
import {
  account,
  assertOutcome,
  drainFeed,
  FEED_SYMBOLS,
  FULL,
  metric,
  producerReports,
  readLetters,
  SECRETS,
  seededScenario,
  startPipeline,
  startStatus,
  startWorkers,
  testOptions,
  waitForSubscribed,
} from "./harness.ts";

/**
 * Resident memory each process must stay under, MiB: the producer's is its documented flood peak
 * (README, Scaling: 470-499 MiB reading 190,000 trades/s), every other process's the 256 MiB a
 * stage or the status endpoint needs when no per-symbol state grows.
 */
const RSS_BOUND_MIB: Readonly<Record<string, number>> = { producer: 512, other: 256 };
/** Largest first event a stream client without `symbol` may get, bytes. */
const FIRST_EVENT_MAX_BYTES = 256 * 1024;
const TRADES_PER_FRAME = 500;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The first server-sent event of `/api/stream` without a symbol, and how long it took. */
async function firstStreamEvent(port: number): Promise<{ bytes: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}/api/stream`, {
    headers: { Authorization: `Bearer ${SECRETS.STATUS_TOKEN}` },
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(response.status, 200, "/api/stream answers");
  const reader = response.body!.getReader();
  let bytes = 0;
  let text = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      bytes += value.length;
      text += new TextDecoder().decode(value, { stream: true });
      // Comments (": keep-alive") are not events; an event ends with a blank line.
      const event = text.split("\n\n").find((block) => /^(event|data):/m.test(block));
      if (event !== undefined) break;
      if (bytes > 64 * FIRST_EVENT_MAX_BYTES) break;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return { bytes, ms: performance.now() - started };
}

Deno.test({
  name:
    "a flood of distinct unsubscribed symbols is refused at the producer, every process stays under its memory bound, and every subscribed trade is kept exactly",
  ...testOptions,
  async fn() {
    const { log, seed } = seededScenario("symbol flood", 4242);
    const distinct = FULL ? 200_000 : 50_000;
    const p = await startPipeline({
      name: "symbol_flood",
      log,
      simulator: { rate: 300, seed },
    });
    let passed = false;
    try {
      await startWorkers(p);
      const port = freePort();
      await startStatus(p, port);
      await waitForSubscribed(p);

      // The flood: `distinct` symbols, each traded once, in about five seconds.
      const frames = Math.ceil(distinct / TRADES_PER_FRAME);
      const sendStarted = Date.now();
      let symbol = 0;
      for (let f = 0; f < frames; f++) {
        const data = [];
        for (let i = 0; i < TRADES_PER_FRAME && symbol < distinct; i++, symbol++) {
          data.push({
            s: `FLD${symbol.toString(36).toUpperCase()}`,
            p: 10.25,
            t: Date.now(),
            v: 1,
          });
        }
        assert.equal(p.sim.sendFrame(JSON.stringify({ type: "trade", data })), 1);
        await p.guarded(delay(Math.max(0, sendStarted + ((f + 1) * 5_000) / frames - Date.now())));
      }
      log(
        `flooded ${distinct} distinct symbols in ${
          ((Date.now() - sendStarted) / 1000).toFixed(1)
        } s`,
      );

      // Clients without a symbol get a bounded summary, quickly, while the flood is fresh.
      const events = await Promise.all(Array.from({ length: 20 }, () => firstStreamEvent(port)));
      const largest = Math.max(...events.map((e) => e.bytes));
      const slowest = Math.max(...events.map((e) => e.ms));
      log(
        `20 stream clients without a symbol: first event at most ${largest} B, ${
          slowest.toFixed(0)
        } ms`,
      );
      assert.ok(largest <= FIRST_EVENT_MAX_BYTES, `a first event of ${largest} bytes`);

      await drainFeed(p);
      const producer = producerReports(p).at(-1)!.metrics;
      const refused = metric(producer, "pipeline_producer_trades_unsubscribed_total");
      assert.equal(refused, distinct, "every flooded trade refused as unsubscribed");
      const letters = (await readLetters(p.config)).filter((l) =>
        l.reasonCode === "unsubscribed_symbol"
      );
      const dropped = metric(producer, "pipeline_producer_dead_letters_dropped_total");
      log(
        `unsubscribed: ${refused} refused, ${letters.length} dead letters, ${dropped} counted only`,
      );
      assert.equal(
        letters.length + dropped,
        distinct,
        "each refused trade has a letter or a count",
      );
      assert.ok(letters.every((l) => l.source === "producer" && l.reason.length > 0));

      // Nothing of the flood went on: the tables hold exactly what the simulator sent.
      const accounting = await account(p);
      assert.equal(accounting.missing.length, 0, "no subscribed trade missing");
      assert.ok(
        accounting.raw.every((r) => FEED_SYMBOLS.includes(r.trade.s)),
        "only subscribed symbols on the raw topic",
      );
      await assertOutcome(p, accounting, log);

      for (const series of p.rss.values()) {
        const peak = Math.max(...series.samples.map((s) => s.kib)) / 1024;
        const bound = series.label.startsWith("producer")
          ? RSS_BOUND_MIB.producer!
          : RSS_BOUND_MIB.other!;
        assert.ok(
          peak < bound,
          `${series.label} peaked at ${peak.toFixed(0)} MiB (bound ${bound})`,
        );
      }
      passed = true;
    } finally {
      await p.stop(passed);
    }
  },
});
