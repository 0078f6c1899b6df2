import assert from "node:assert/strict";
import { createProducerMetrics } from "./metrics.ts";

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
