import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { silentLogger } from "./log.ts";
import { MetricsRegistry, renderPrometheus } from "./metrics.ts";
import type { WorkerReport } from "./types.ts";
import { createMemoryRegistry } from "./memory_registry.ts";
import { createWireCodec } from "./wire.ts";
import {
  checkReport,
  type CollectorOptions,
  createCollector,
  MAX_METRICS_CHARS,
  MAX_SERIES,
  MAX_WORKERS,
  parseSnapshot,
  seriesKey,
} from "./report_collector.ts";

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

/** A collector that never reads Kafka (reports go in through `accept`), at time `now()`. */
function collector(now: () => number, options: Partial<CollectorOptions> = {}) {
  return createCollector({
    kafka: {} as Kafka,
    wire: createWireCodec(createMemoryRegistry()),
    topic: "t",
    groupId: "g",
    log: silentLogger(),
    now,
    ...options,
  });
}

Deno.test("the collector computes counter rates between two reports", () => {
  let now = 10_000;
  const c = collector(() => now, { staleAfterMs: 10_000, forgetAfterMs: 60_000 });
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
  const c = collector(() => 10_000, { staleAfterMs: 10_000, forgetAfterMs: 60_000 });
  c.accept(report(9_000, 5));
  c.accept(report(8_000, 1));
  assert.equal(c.workers()[0]!.lastReport, 9_000);
  c.accept(report(9_500, 6, "stopped"));
  assert.equal(c.workers()[0]!.up, false);
});

function hostile(overrides: Partial<WorkerReport>): WorkerReport {
  return { ...report(1_000, 1), ...overrides };
}

Deno.test("the collector keeps at most maxWorkers workers, forgetting the least recently reporting", () => {
  const metrics = new MetricsRegistry();
  const c = collector(() => 10_000, { metrics });
  for (let i = 0; i < 10_000; i++) c.accept(hostile({ workerId: `w${i}`, time: 1_000 + i }));
  const workers = c.workers();
  assert.equal(workers.length, MAX_WORKERS);
  assert.ok(workers.some((w) => w.workerId === "w9999"));
  assert.ok(!workers.some((w) => w.workerId === "w0"));
  const text = renderPrometheus([{ snapshot: metrics.snapshot() }]);
  assert.match(
    text,
    new RegExp(`^pipeline_status_workers_evicted_total ${10_000 - MAX_WORKERS}$`, "m"),
  );
});

Deno.test("the collector refuses reports that would break /metrics or its bounds, and counts them", () => {
  const metrics = new MetricsRegistry();
  const c = collector(() => 10_000, { metrics });
  const family = (f: unknown) => JSON.stringify({ families: [f] });
  const counter = (series: unknown[]) =>
    family({ name: "x_total", help: "", kind: "counter", series });
  const cases: [string, Partial<WorkerReport>][] = [
    ["role", { role: "__proto__" as WorkerReport["role"] }],
    ["state", { state: "zombie" as WorkerReport["state"] }],
    ["workerId", { workerId: "w".repeat(10_000) }],
    ["not JSON", { metrics: "{" }],
    ["no families", { metrics: "{}" }],
    ["too long", { metrics: " ".repeat(MAX_METRICS_CHARS + 1) }],
    ["bad name", { metrics: family({ name: "a b\n# fake", help: "", kind: "gauge", series: [] }) }],
    ["bad kind", { metrics: family({ name: "a", help: "", kind: "summary", series: [] }) }],
    [
      "histogram without buckets",
      {
        metrics: family({
          name: "h",
          help: "",
          kind: "histogram",
          series: [{ labels: {}, value: 0 }],
        }),
      },
    ],
    ["worker label", { metrics: counter([{ labels: { worker: "x" }, value: 1 }]) }],
    ["bad label name", { metrics: counter([{ labels: { "a-b": "x" }, value: 1 }]) }],
    ["label value", { metrics: counter([{ labels: { symbol: "x".repeat(1000) }, value: 1 }]) }],
    ["value", { metrics: counter([{ labels: {}, value: "1" }]) }],
    [
      "too many series",
      {
        metrics: counter(
          Array.from({ length: MAX_SERIES + 1 }, (_, i) => ({ labels: { s: `S${i}` }, value: 1 })),
        ),
      },
    ],
  ];
  for (const [what, overrides] of cases) {
    c.accept(hostile({ workerId: `bad-${what}`, ...overrides }));
    assert.equal(c.workers().length, 0, what);
  }
  const text = renderPrometheus([{ snapshot: metrics.snapshot() }]);
  assert.match(text, new RegExp(`^pipeline_status_reports_rejected_total ${cases.length}$`, "m"));
  assert.equal(
    ({} as Record<string, unknown>)["in"],
    undefined,
    "nothing reached Object.prototype",
  );
  // A good report still goes through, a NaN gauge (null in JSON) included.
  c.accept(hostile({
    metrics: family({ name: "g", help: "", kind: "gauge", series: [{ labels: {}, value: null }] }),
  }));
  assert.equal(c.workers().length, 1);
});

Deno.test("checkReport() says what is wrong", () => {
  assert.throws(
    () => checkReport(hostile({ role: "boss" as WorkerReport["role"] })),
    /worker report refused: role "boss" is not one of producer,bronze,silver,gold/,
  );
  assert.throws(
    () =>
      parseSnapshot(
        JSON.stringify({
          families: [{ name: "a", kind: "gauge", series: [{ labels: { role: "x" }, value: 1 }] }],
        }),
      ),
    /worker report refused: a has a label named "role"/,
  );
});
