import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { silentLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import type { WorkerReport } from "../shared/types.ts";
import { createCollector, seriesKey } from "./collector.ts";

function report(
  time: number,
  count: number,
  state: WorkerReport["state"] = "running",
): WorkerReport {
  const registry = new MetricsRegistry();
  registry.counter("pipeline_stage_messages_in_total", "in").inc({ stage: "silver" }, count);
  return {
    workerId: "silver-a",
    role: "silver",
    host: "h",
    pid: 7,
    startedAt: 0,
    time,
    state,
    metrics: JSON.stringify(registry.snapshot()),
  };
}

function collector(now: () => number) {
  return createCollector({
    kafka: {} as Kafka,
    topic: "t",
    groupId: "g",
    log: silentLogger(),
    now,
    staleAfterMs: 10_000,
    forgetAfterMs: 60_000,
  });
}

Deno.test("the collector computes counter rates between two reports", () => {
  let now = 10_000;
  const c = collector(() => now);
  c.accept(report(8_000, 100));
  c.accept(report(10_000, 300));
  const [w] = c.workers();
  assert.equal(w!.rates[seriesKey("pipeline_stage_messages_in_total", { stage: "silver" })], 100);
  assert.equal(w!.up, true);
  now = 20_001;
  assert.equal(c.workers()[0]!.up, false, "no report for over 10 s: down");
  now = 70_001;
  assert.equal(c.workers().length, 0, "forgotten after a minute");
});

Deno.test("the collector ignores reports older than the one it has, and marks stopped workers", () => {
  const c = collector(() => 10_000);
  c.accept(report(9_000, 5));
  c.accept(report(8_000, 1));
  assert.equal(c.workers()[0]!.lastReport, 9_000);
  c.accept(report(9_500, 6, "stopped"));
  assert.equal(c.workers()[0]!.up, false);
});
