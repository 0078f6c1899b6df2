import assert from "node:assert/strict";
import { METRIC } from "../shared/metric_names.ts";
import { FEED_GAP_CAUSES } from "../shared/types.ts";
import { createProducerMetrics } from "./metrics.ts";
import { producerMetricsSnapshot } from "./prometheus.ts";

Deno.test("snapshot() is a frozen copy that later updates do not change", () => {
  const metrics = createProducerMetrics(100);
  metrics.tradesReceived = 5;
  const before = metrics.snapshot();
  metrics.tradesReceived = 6;
  assert.equal(before.tradesReceived, 5);
  assert.equal(before.bufferCapacity, 100);
  assert.ok(Object.isFrozen(before));
  assert.equal("snapshot" in before, false);
});

Deno.test("snapshot() summarises produce latency over recent batches", () => {
  const metrics = createProducerMetrics();
  assert.equal(metrics.snapshot().produceLatencyMs.count, 0);
  for (let ms = 1; ms <= 100; ms++) metrics.recordProduceLatency(ms);
  const latency = metrics.snapshot().produceLatencyMs;
  assert.deepEqual(latency, { count: 100, last: 100, mean: 50.5, p50: 51, p99: 100, max: 100 });
  for (let i = 0; i < 2000; i++) metrics.recordProduceLatency(7);
  assert.deepEqual(metrics.snapshot().produceLatencyMs.max, 7, "old batches leave the window");
});

Deno.test("snapshot() copies the feed-gap counters by cause; the Prometheus shape names each cause, in seconds", () => {
  const metrics = createProducerMetrics();
  metrics.feedGaps.reconnect = 2;
  metrics.feedGapMs.reconnect = 1_500;
  const before = metrics.snapshot();
  metrics.feedGaps.reconnect = 3;
  assert.equal(before.feedGaps.reconnect, 2);
  assert.ok(Object.isFrozen(before.feedGaps));
  const families = producerMetricsSnapshot(before).families;
  const gaps = families.find((f) => f.name === METRIC.producerFeedGaps)!;
  const seconds = families.find((f) => f.name === METRIC.producerFeedGapSeconds)!;
  assert.equal(gaps.kind, "counter");
  assert.deepEqual(
    seconds.series.map((s) => [s.labels["cause"], s.value]),
    FEED_GAP_CAUSES.map((cause) => [cause, cause === "reconnect" ? 1.5 : 0]),
  );
  assert.equal(gaps.series.find((s) => s.labels["cause"] === "reconnect")?.value, 2);
});
