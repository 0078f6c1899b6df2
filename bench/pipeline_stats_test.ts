import assert from "node:assert/strict";
import { MetricsRegistry } from "../shared/metrics.ts";
import {
  histogramDelta,
  histogramOf,
  histogramQuantile,
  judgeLag,
  type LagSample,
  sampleQuantile,
  seriesSum,
} from "./pipeline_stats.ts";

const BUCKETS = [0.01, 0.05, 0.1, 0.25];

Deno.test("histogramQuantile() interpolates linearly inside the bucket the rank falls in", () => {
  // 10 observations <= 0.01, 30 more <= 0.05, 60 more <= 0.1.
  const h = { buckets: BUCKETS, counts: [10, 40, 100, 100], count: 100, sum: 0 };
  assert.deepEqual(histogramQuantile(h, 0.05), { seconds: 0.005, above: false });
  // Rank 50 is 10 into the 60 of (0.05, 0.1].
  const p50 = histogramQuantile(h, 0.5)!;
  assert.ok(Math.abs(p50.seconds - (0.05 + 0.05 * 10 / 60)) < 1e-12);
  assert.deepEqual(histogramQuantile(h, 1), { seconds: 0.1, above: false });
});

Deno.test("histogramQuantile() says when the quantile is past the largest finite bucket", () => {
  const h = { buckets: BUCKETS, counts: [0, 0, 0, 98], count: 100, sum: 0 };
  assert.deepEqual(histogramQuantile(h, 0.99), { seconds: 0.25, above: true });
  assert.equal(histogramQuantile({ ...h, counts: [0, 0, 0, 0], count: 0 }, 0.5), null);
  assert.equal(histogramQuantile(undefined, 0.5), null);
  assert.throws(() => histogramQuantile(h, 1.5), RangeError);
});

Deno.test("histogramDelta() keeps only what was observed between two snapshots", () => {
  const registry = new MetricsRegistry();
  const latency = registry.histogram("x_seconds", "x", BUCKETS);
  for (let i = 0; i < 100; i++) latency.observe(0.2); // warm-up: all slow
  const before = histogramOf(registry.snapshot(), "x_seconds");
  for (let i = 0; i < 100; i++) latency.observe(0.02);
  const after = histogramOf(registry.snapshot(), "x_seconds");
  const delta = histogramDelta(before, after)!;
  assert.equal(delta.count, 100);
  assert.deepEqual(delta.counts, [0, 100, 100, 100]);
  assert.ok(histogramQuantile(delta, 0.99)!.seconds <= 0.05);
  assert.equal(histogramDelta(undefined, after), after);
  assert.equal(histogramDelta(before, undefined), undefined);
});

Deno.test("histogramOf() and seriesSum() add up the series whose labels match", () => {
  const registry = new MetricsRegistry();
  const h = registry.histogram("d_seconds", "d", BUCKETS);
  h.observe(0.03, { interval: "5m" });
  h.observe(0.3, { interval: "1h" });
  const c = registry.counter("n_total", "n");
  c.inc({ stage: "silver", table: "a" }, 2);
  c.inc({ stage: "silver", table: "b" }, 3);
  c.inc({ stage: "gold", table: "a" }, 7);
  const snapshot = registry.snapshot();
  assert.equal(histogramOf(snapshot, "d_seconds", { interval: "5m" })!.count, 1);
  assert.equal(histogramOf(snapshot, "d_seconds")!.count, 2);
  assert.equal(histogramOf(snapshot, "missing_seconds"), undefined);
  assert.equal(seriesSum(snapshot, "n_total", { stage: "silver" }), 5);
  assert.equal(seriesSum(snapshot, "n_total"), 12);
  assert.equal(seriesSum(undefined, "n_total"), 0);
});

Deno.test("sampleQuantile() takes the nearest rank", () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(sampleQuantile(sorted, 0.5), 50);
  assert.equal(sampleQuantile(sorted, 0.99), 99);
  assert.equal(sampleQuantile(sorted, 1), 100);
  assert.equal(sampleQuantile([], 0.5), null);
});

function samples(lag: (second: number) => number, seconds = 120): LagSample[] {
  return Array.from({ length: seconds / 2 }, (_, i) => ({
    at: i * 2000,
    byGroup: { g: lag(i * 2) },
  }));
}

Deno.test("judgeLag() accepts a lag that is flat, even when it is not small", () => {
  const [verdict] = judgeLag(samples(() => 40_000), ["g"], 10_000);
  assert.equal(verdict!.bounded, true, verdict!.why);
  assert.equal(verdict!.maxS, 4);
});

Deno.test("judgeLag() accepts a growing lag while it stays below 2 s of input", () => {
  const [verdict] = judgeLag(samples((s) => 100 + s * 100), ["g"], 10_000);
  assert.equal(verdict!.bounded, true, verdict!.why);
});

Deno.test("judgeLag() refuses a lag that keeps growing past 2 s of input", () => {
  const [verdict] = judgeLag(samples((s) => s * 1_000), ["g"], 10_000);
  assert.equal(verdict!.bounded, false);
  assert.match(verdict!.why, /lag growing/);
});

Deno.test("judgeLag() refuses a lag that once exceeds the bound, even if it recovered", () => {
  const [verdict] = judgeLag(samples((s) => (s === 10 ? 150_000 : 1_000)), ["g"], 10_000);
  assert.equal(verdict!.bounded, false);
  assert.match(verdict!.why, /15 s of input/);
});

Deno.test("judgeLag() refuses a group it has no samples of", () => {
  const [verdict] = judgeLag(samples(() => 0), ["other"], 10_000);
  assert.equal(verdict!.bounded, false);
  assert.match(verdict!.why, /not enough lag samples/);
});
