import assert from "node:assert/strict";
import { MetricsRegistry } from "../../shared/metrics.ts";
import type { WorkerView } from "../../shared/report_collector.ts";
import { workerView } from "../test_doubles.ts";
import { healthOf } from "./health.ts";

const NOW = Date.parse("2026-12-01T12:00:00Z");

function worker(
  role: WorkerView["role"],
  rates: Record<string, number>,
  deadLetters = 0,
  up = true,
): WorkerView {
  const registry = new MetricsRegistry();
  if (deadLetters > 0) {
    registry.counter("pipeline_dead_letters_total", "").inc(
      { stage: role, reason: "bad_price" },
      deadLetters,
    );
  }
  return workerView(role, NOW, {
    workerId: `${role}-${Math.random()}`,
    up,
    snapshot: registry.snapshot(),
    rates,
  });
}

Deno.test("healthOf() sums rates, lag per stage and dead letters of the workers up", () => {
  const workers = [
    worker("producer", { "pipeline_producer_trades_received_total": 200 }),
    worker("silver", {
      'pipeline_stage_messages_in_total{stage="silver"}': 120.04,
      'pipeline_dead_letters_total{reason="bad_price",stage="silver"}': 0.5,
    }, 7),
    worker("silver", { 'pipeline_stage_messages_in_total{stage="silver"}': 80 }, 3),
    worker("gold", {}, 100, false),
  ];
  const lag = [
    { group: "m.silver", topic: "raw", partition: 0, logEnd: 10, committed: 4, lag: 6 },
    { group: "m.silver", topic: "raw", partition: 1, logEnd: 10, committed: 9, lag: 1 },
    { group: "m.gold", topic: "silver", partition: 0, logEnd: 5, committed: 5, lag: 0 },
    { group: "other", topic: "raw", partition: 0, logEnd: 99, committed: 0, lag: 99 },
  ];
  const health = healthOf(workers, lag, {
    groups: { "m.bronze": "bronze", "m.silver": "silver", "m.gold": "gold" },
    now: NOW,
  });
  assert.equal(health.time, NOW);
  assert.deepEqual(health.roles["producer"], {
    up: 1,
    inPerSecond: 200,
    outPerSecond: 0,
    lag: null,
  });
  assert.deepEqual(health.roles["silver"], { up: 2, inPerSecond: 200, outPerSecond: 0, lag: 7 });
  assert.deepEqual(health.roles["bronze"], { up: 0, inPerSecond: 0, outPerSecond: 0, lag: 0 });
  assert.equal(health.roles["gold"]!.up, 0);
  assert.equal(health.deadLetters, 10, "the stopped gold worker's 100 are not counted");
  assert.equal(health.deadLettersPerSecond, 0.5);
  assert.equal(health.lagKnown, true);
});

Deno.test("healthOf() says when lag is unknown instead of showing zero", () => {
  const health = healthOf([], undefined, { groups: {}, now: NOW });
  assert.equal(health.lagKnown, false);
  assert.equal(health.roles["gold"]!.lag, null);
});
