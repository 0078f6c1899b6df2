/**
 * A real Prometheus scraping the status endpoint of a running pipeline (simulator, producer,
 * three stages): consumer lag and per-stage throughput read back through Prometheus's HTTP API,
 * every PromQL expression of the dashboards and alert rules evaluated by Prometheus itself, the
 * alert expressions quiet on a healthy pipeline, and the worker-down and (scaled-down)
 * lag-growing rules firing for a stage that stopped.
 *
 * Needs the `prometheus` binary: `ensurePrometheus()` installs the Debian package when the test
 * runs as root, and otherwise the test fails saying how to install it.
 */
import assert from "node:assert/strict";
import { waitFor } from "./helpers.ts";
import { loadGrafanaFiles } from "./grafana_queries.ts";
import { observedTestOptions, startObservedPipeline } from "./observed_pipeline.ts";
import { ensurePrometheus, type PrometheusServer, startPrometheus } from "./prometheus_server.ts";
import { groupIdOf, STAGES, stageSubscriptions } from "../shared/topology.ts";

/** What Grafana puts in for its interval variables (the pipeline dashboard's rate windows). */
function fillIntervals(expr: string): string {
  return expr.replace(/\$\{?__(?:rate_)?interval\}?/g, "30s");
}

function ruleExpr(rules: readonly Record<string, unknown>[], uid: string): string {
  const rule = rules.find((r) => r["uid"] === uid);
  assert.ok(rule, `alert rule ${uid}`);
  const data = rule["data"] as { refId: string; model: { expr?: string } }[];
  const expr = data.find((d) => d.refId === "A")?.model.expr;
  assert.ok(expr, `alert rule ${uid} has a PromQL query A`);
  return expr;
}

Deno.test({
  name:
    "Prometheus scraping the status endpoint reads back lag and per-stage throughput, evaluates every dashboard and alert expression, and sees a stopped stage",
  ...observedTestOptions,
  async fn() {
    await ensurePrometheus(); // first: without the binary, fail before starting anything
    const files = await loadGrafanaFiles();
    const pipeline = await startObservedPipeline();
    let prometheus: PrometheusServer | undefined;
    try {
      const { config } = pipeline;
      const server = await startPrometheus({ targets: [`127.0.0.1:${pipeline.statusPort}`] });
      prometheus = server;
      await waitFor("Prometheus to scrape the status endpoint", async () => {
        const targets = await server.targets();
        if (targets[0]?.lastError) throw new Error(targets[0].lastError);
        return targets.length === 1 && targets[0]!.health === "up";
      }, { timeoutMs: 30_000, intervalMs: 250 });

      // Consumer lag: one series per stage group and partition of its input topic.
      const lag = await waitFor(
        "pipeline_consumer_lag_records of every stage's group",
        async () => {
          const samples = await server.query("pipeline_consumer_lag_records");
          const groups = new Set(samples.map((s) => s.metric["group"]));
          return stageSubscriptions(config).every(({ group }) => groups.has(group))
            ? samples
            : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      // A series per partition of every group: the three stages and gold's feed-gap consumer.
      assert.equal(
        lag.length,
        stageSubscriptions(config).length * config.kafka.partitions,
        "series per partition",
      );
      for (const sample of lag) {
        assert.ok(Number.isFinite(sample.value) && sample.value >= 0, JSON.stringify(sample));
        assert.match(sample.metric["partition"] ?? "", /^\d+$/);
        assert.ok(sample.metric["topic"], "topic label");
      }

      // Throughput: records per second into every stage, and trades acknowledged by Kafka.
      await waitFor("every stage's throughput above 0", async () => {
        const samples = await server.query(
          "sum by (stage) (rate(pipeline_stage_messages_in_total[10s]))",
        );
        const rate = (stage: string) => samples.find((s) => s.metric["stage"] === stage)?.value;
        return STAGES.every((stage) => (rate(stage) ?? 0) > 0) ? samples : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      await waitFor("the producer's acknowledged trades rate above 0", async () => {
        const [sample] = await server.query(
          "sum(rate(pipeline_producer_trades_acked_total[10s]))",
        );
        return (sample?.value ?? 0) > 0;
      }, { timeoutMs: 30_000, intervalMs: 500 });

      // Every expression of the Grafana files is PromQL this Prometheus evaluates.
      const expressions = files.queries.filter((q) => q.datasource.uid === "prometheus");
      assert.ok(expressions.length >= 20);
      for (const query of expressions) {
        await server.query(fillIntervals(query.text)).catch((error) => {
          throw new Error(`${query.where}: ${(error as Error).message}\n${query.text}`);
        });
      }

      // The alert expressions on a healthy pipeline: nothing fires.
      const workerDown = ruleExpr(files.rules, "pipeline-worker-down");
      const down = await server.query(workerDown);
      assert.deepEqual(
        down.map((s) => [s.metric["role"], s.value]).sort(),
        config.status.expectedWorkers.map((role) => [role, 0]).sort(),
        "worker-down: every role present and up",
      );
      const noTrades = await server.query(ruleExpr(files.rules, "pipeline-no-trades"));
      assert.ok(
        noTrades.every((s) => s.value === 0),
        `no-trades: empty outside market hours, 0 inside (${JSON.stringify(noTrades)})`,
      );
      assert.deepEqual(await server.query(ruleExpr(files.rules, "pipeline-low-volume")), []);
      assert.deepEqual(
        await server.query(ruleExpr(files.rules, "pipeline-consumer-lag-growing")),
        [],
      );
      for (const uid of ["pipeline-kafka-down", "pipeline-cassandra-down"]) {
        const samples = await server.query(ruleExpr(files.rules, uid));
        assert.deepEqual(samples.map((s) => s.value), [1], `${uid}: up`);
      }
      assert.deepEqual(
        await server.query(ruleExpr(files.rules, "pipeline-status-endpoint-down")),
        [],
      );

      // Stop gold: the worker-down rule fires for gold only, and gold's lag grows.
      await pipeline.stopStage("gold");
      await waitFor("worker-down to fire for gold", async () => {
        const firing = (await server.query(workerDown)).filter((s) => s.value > 0);
        return firing.length === 1 && firing[0]!.metric["role"] === "gold";
      }, { timeoutMs: 30_000, intervalMs: 500 });
      const goldGroup = groupIdOf(config, "gold");
      const goldLag = `sum(pipeline_consumer_lag_records{group="${goldGroup}"})`;
      const [before] = await server.query(goldLag);
      await waitFor("gold's consumer lag to grow", async () => {
        const [now] = await server.query(goldLag);
        return (now?.value ?? 0) > (before?.value ?? 0) + 50;
      }, { timeoutMs: 30_000, intervalMs: 500 });
      // The lag-growing rule, its threshold and window scaled down to the test's seconds.
      const lagRule = ruleExpr(files.rules, "pipeline-consumer-lag-growing");
      const scaled = lagRule.replace("> 10000", "> 0").replace("[10m]", "[15s]");
      assert.notEqual(scaled, lagRule.replace("> 10000", "> 0"), "the rule has a [10m] window");
      await waitFor("the (scaled) lag-growing rule to fire for gold's group", async () => {
        const firing = await server.query(scaled);
        return firing.some((s) => s.metric["group"] === goldGroup && s.value > 0);
      }, { timeoutMs: 30_000, intervalMs: 500 });
    } finally {
      await prometheus?.stop();
      await pipeline.stop();
    }
  },
});
