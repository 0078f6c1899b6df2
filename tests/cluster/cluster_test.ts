/**
 * Losing nodes under load: the real pipeline (simulator, producer, bronze, silver, gold and the
 * status endpoint as OS processes, tests/faults/harness.ts) on the local three-node cluster
 * (three Cassandra nodes, three KRaft brokers; replication 3, min.insync.replicas 2, acks=all,
 * LOCAL_QUORUM), configured by variables only. Every scenario ends as the fault suite does:
 * nothing missing or doubled in Kafka against the simulator's ground truth, bronze, silver and
 * gold equal to the independent reference, lag zero; and no worker restarted (every process
 * started at the beginning is still running, none was started again).
 *
 * `CLUSTER_SUITE=full` (`deno task test:cluster`): 60 s outages at 1,000 trades/s.
 * `CLUSTER_SUITE=short`: one Cassandra node, the busiest broker and the producer lease's
 * coordinator killed for 20 s each.
 * Unset: ignored (see cluster_harness.ts).
 */
import assert from "node:assert/strict";
import { delay } from "../../shared/delay.ts";
import { activeController, pinnedCassandraClient, stopNode } from "../../local_services/cluster.ts";
import { freePort, waitFor } from "../helpers.ts";
import {
  account,
  type Accounting,
  assertOutcome,
  assertTables,
  drainFeed,
  expectedFrom,
  metric,
  type Pipeline,
  SECRETS,
  seededScenario,
  startPipeline,
  startStatus,
  startWorkers,
  statusGet,
  testOptions,
} from "../faults/harness.ts";
import { groupIdOf, STAGES } from "../../shared/topology.ts";
import { Secret } from "../../shared/secret.ts";
import { leaseNames } from "../../producer/lease.ts";
import {
  brokerName,
  CLUSTER_ENV,
  ensureAllUp,
  FULL,
  groupCoordinator,
  IGNORE_REASON,
  killNode,
  leaderCounts,
  longestStall,
  nodetool,
  restartNode,
  SIZE,
  startMeter,
  SUITE,
  useCluster,
  waitFullIsr,
} from "./cluster_harness.ts";

const RUN = SUITE === "full" || SUITE === "short";
if (!RUN) console.log(`tests/cluster/cluster_test.ts ignored: ${IGNORE_REASON}`);

/** Trades per second of the feed; `CLUSTER_SUITE_RATE` overrides. */
const RATE = Number(Deno.env.get("CLUSTER_SUITE_RATE") ?? (FULL ? 1_000 : 300));
const OUTAGE_MS = FULL ? 60_000 : 20_000;
/** The producer lease's session; `CLUSTER_SUITE_LEASE_SESSION_MS` overrides the default 6 s. */
const LEASE_SESSION_MS = Deno.env.get("CLUSTER_SUITE_LEASE_SESSION_MS");

type Log = (line: string) => void;

interface Context {
  readonly p: Pipeline;
  readonly log: Log;
  readonly statusPort: number;
}

/**
 * Runs the pipeline on the cluster, calls `faults` once trades flow through silver, then drains
 * the feed and checks the outcome. Asserts no worker was restarted.
 */
async function onCluster(
  name: string,
  seedFallback: number,
  faults: (ctx: Context) => Promise<void>,
  after?: (ctx: Context, a: Accounting) => Promise<void>,
): Promise<void> {
  const { log, seed } = seededScenario(name, seedFallback);
  const cluster = await useCluster(log);
  let p: Pipeline | undefined;
  let passed = false;
  try {
    await ensureAllUp(log);
    p = await startPipeline({
      name: name.replaceAll(/\W+/g, "-"),
      log,
      // The producer as deployed for failover: it holds the API key's lease and writes in
      // transactions, and a standby waits to take over.
      env: {
        ...CLUSTER_ENV,
        KAFKA_PARTITIONS: "6",
        PRODUCER_LEASE: "kafka",
        ...(LEASE_SESSION_MS ? { PRODUCER_LEASE_SESSION_MS: LEASE_SESSION_MS } : {}),
      },
      simulator: { rate: RATE, seed },
    });
    const pipeline = p;
    const statusPort = freePort();
    await startWorkers(p);
    await p.spawn("producer", "producer-standby");
    await startStatus(p, statusPort);
    await p.guarded(waitFor("trades to reach the silver topic", async () => {
      const ends = await pipeline.admin.fetchTopicOffsets(pipeline.config.kafka.topics.silver);
      return ends.some((x) => Number(x.high) > 0);
    }, { timeoutMs: 180_000, intervalMs: 500 }));
    const workers = p.children.map((c) => `${c.label}#${c.pid}`);
    log(`trades flow at ${RATE}/s through ${workers.join(", ")}`);
    const meter = startMeter(p);
    const began = Date.now();
    await delay(5_000);
    await faults({ p, log, statusPort });
    await p.guarded(delay(10_000));
    const ended = Date.now();
    await drainFeed(p, 300_000);
    const stall = await meter.report(began, ended);
    log(stall.line);
    const a = await account(p);
    log(
      `sent ${a.sent}, in Kafka ${a.inKafka}, missing ${a.missing.length} (0 duplicates: checked)`,
    );
    assert.equal(a.missing.length, 0, "no trade lost between the simulator and Kafka");
    await assertOutcome(p, a, log, 600_000);
    assert.deepEqual(
      p.children.map((c) => `${c.label}#${c.pid}`),
      workers,
      "no worker was started again",
    );
    assert.ok(p.children.every((c) => c.status === undefined), "every worker is still running");
    log(`no restart: ${workers.join(", ")} ran from start to end`);
    log(`producer lease at the end: ${leaseStates(p)}`);
    await after?.({ p, log, statusPort }, a);
    passed = true;
  } finally {
    // CLUSTER_SUITE_LOGS=<dir>: keep every worker's log, also of a scenario that passed.
    const keep = Deno.env.get("CLUSTER_SUITE_LOGS");
    if (keep && p) {
      const to = `${keep}/${name.replaceAll(/\W+/g, "-")}-${Date.now()}`;
      await Deno.mkdir(to, { recursive: true });
      for (const label of new Set(p.children.map((c) => c.label))) {
        await Deno.copyFile(`${p.dir}/${label}.log`, `${to}/${label}.log`).catch(() => {});
      }
    }
    await p?.stop(passed);
    await ensureAllUp(log).catch((e) => log(`could not restart every node: ${e}`));
    await cluster.stop();
  }
}

/** Each producer's lease state in its latest report, and the trades it handed to Kafka. */
function leaseStates(p: Pipeline): string {
  return [...p.reports.values()].filter((r) => r.role === "producer").map((r) =>
    `${r.workerId}: ${
      metric(r.metrics, "pipeline_producer_lease_active") === 1 ? "active" : "standby"
    }, acked ${metric(r.metrics, "pipeline_producer_trades_acked_total")}`
  ).join("; ");
}

/** kill -9 of `node`, `OUTAGE_MS` down, restart; logs the times. */
async function outage(ctx: Context, node: string): Promise<void> {
  const killedAt = await killNode(node, ctx.log);
  await ctx.p.guarded(delay(Math.max(0, killedAt + OUTAGE_MS - Date.now())));
  const ms = await restartNode(node, ctx.log);
  ctx.log(
    `${node}: down ${((Date.now() - killedAt) / 1000).toFixed(1)} s, back up in ${
      (ms / 1000).toFixed(1)
    } s`,
  );
}

/** The bronze, silver and gold of node `index` read at ONE through a client pinned to it. */
async function assertNodeHolds(ctx: Context, a: Accounting, index: number): Promise<void> {
  const address = `127.0.0.${index}:9142`;
  const client = pinnedCassandraClient(address, { keyspace: ctx.p.config.cassandra.keyspace });
  const pinned = { ...ctx.p, client };
  try {
    const t0 = Date.now();
    try {
      await assertTables(pinned, expectedFrom(a.raw, a.reference), 90_000);
      ctx.log(
        `read at ONE on ${address} (the node that was down) equals the reference after ${
          ((Date.now() - t0) / 1000).toFixed(1)
        } s: hints were enough, no repair run`,
      );
    } catch (error) {
      ctx.log(`read at ONE on ${address} differs (${error}): running nodetool repair`);
      const r0 = Date.now();
      await nodetool(index, ["repair", "--full", ctx.p.config.cassandra.keyspace]);
      ctx.log(`nodetool repair took ${((Date.now() - r0) / 1000).toFixed(1)} s`);
      await assertTables(pinned, expectedFrom(a.raw, a.reference), 60_000);
      ctx.log(`read at ONE on ${address} equals the reference after the repair`);
    }
  } finally {
    await client.shutdown().catch(() => {});
  }
}

const busiestBroker = async (p: Pipeline) => {
  const counts = await leaderCounts(p.admin, [
    p.config.kafka.topics.raw,
    p.config.kafka.topics.silver,
  ]);
  const [id, n] = [...counts].sort((x, y) => y[1] - x[1])[0]!;
  return { id, n, counts };
};

Deno.test({
  name: `cluster: kill -9 of one Cassandra node for ${
    OUTAGE_MS / 1000
  } s, then its data equals the others'`,
  ignore: !RUN,
  ...testOptions,
  async fn() {
    // Node 1: the seed, and the first contact point of every worker.
    await onCluster("cassandra node kill", 2101, async (ctx) => {
      await outage(ctx, "cassandra-1");
    }, (ctx, a) => assertNodeHolds(ctx, a, 1));
  },
});

Deno.test({
  name: `cluster: kill -9 of the broker leading most partitions for ${OUTAGE_MS / 1000} s`,
  ignore: !RUN,
  ...testOptions,
  async fn() {
    await onCluster("broker kill", 2102, async (ctx) => {
      const { id, n, counts } = await busiestBroker(ctx.p);
      const coordinator = await groupCoordinator(ctx.p.admin, groupIdOf(ctx.p.config, "silver"));
      const leaseCoordinator = await leaseCoordinatorOf(ctx);
      ctx.log(
        `leaders of raw+silver by broker: ${
          JSON.stringify(Object.fromEntries(counts))
        }; group coordinator of silver: broker ${coordinator}, of the producer lease: broker ${leaseCoordinator}; killing broker ${id} (${n})`,
      );
      await outage(ctx, brokerName(id));
      await waitFullIsr(ctx.p.admin, [ctx.p.config.kafka.topics.raw]);
    });
  },
});

/** The broker coordinating the producer lease's group. */
function leaseCoordinatorOf(ctx: Context): Promise<number> {
  const lease = leaseNames({
    finnhub: { ...ctx.p.config.finnhub, apiKey: new Secret(SECRETS.FINNHUB_API_KEY) },
    kafka: ctx.p.config.kafka,
  });
  return groupCoordinator(ctx.p.admin, lease.groupId);
}

Deno.test({
  name: `cluster: kill -9 of the broker coordinating the producer lease for ${OUTAGE_MS / 1000} s`,
  ignore: !RUN,
  ...testOptions,
  async fn() {
    // The holder's membership must outlive the move of its coordinator: the lease stays with the
    // active producer (the standby acknowledges nothing) and nothing it held is lost.
    await onCluster("lease coordinator kill", 2106, async (ctx) => {
      const id = await leaseCoordinatorOf(ctx);
      ctx.log(`group coordinator of the producer lease: broker ${id}; killing it`);
      await outage(ctx, brokerName(id));
      ctx.log(`lease coordinator now: broker ${await leaseCoordinatorOf(ctx)}`);
      await waitFullIsr(ctx.p.admin, [ctx.p.config.kafka.topics.raw]);
    });
  },
});

Deno.test({
  name: `cluster: kill -9 of the active KRaft controller for ${OUTAGE_MS / 1000} s`,
  ignore: !FULL,
  ...testOptions,
  async fn() {
    await onCluster("controller kill", 2103, async (ctx) => {
      const id = await activeController(SIZE);
      assert.ok(id !== null, "an active controller");
      ctx.log(`active controller: node ${id}`);
      await outage(ctx, brokerName(id));
      ctx.log(`controller now: node ${await activeController(SIZE)}`);
      await waitFullIsr(ctx.p.admin, [ctx.p.config.kafka.topics.raw]);
    });
  },
});

Deno.test({
  name: "cluster: rolling restart of the three Cassandra nodes, then of the three brokers",
  ignore: !FULL,
  ...testOptions,
  async fn() {
    await onCluster("rolling restart", 2104, async (ctx) => {
      const topics = [ctx.p.config.kafka.topics.raw, ctx.p.config.kafka.topics.silver];
      for (
        const name of ["cassandra-1", "cassandra-2", "cassandra-3", "kafka-1", "kafka-2", "kafka-3"]
      ) {
        const t0 = Date.now();
        await stopNode(SIZE, name, { log: ctx.log });
        const stopped = Date.now();
        await restartNode(name, ctx.log);
        if (name.startsWith("kafka")) await waitFullIsr(ctx.p.admin, topics);
        ctx.log(
          `${name}: stop ${((stopped - t0) / 1000).toFixed(1)} s, back ${
            ((Date.now() - stopped) / 1000).toFixed(1)
          } s${name.startsWith("kafka") ? " (replicas in sync again)" : ""}`,
        );
        await ctx.p.guarded(delay(5_000));
      }
    });
  },
});

Deno.test({
  name:
    "cluster: two Cassandra nodes down: writes stop cleanly, /readyz says why, and resume when one returns",
  ignore: !FULL,
  ...testOptions,
  async fn() {
    await onCluster("two cassandra nodes down", 2105, async (ctx) => {
      const { p, log, statusPort } = ctx;
      const retries = () =>
        [...p.reports.values()].filter((r) => (STAGES as readonly string[]).includes(r.role))
          .reduce((n, r) => n + metric(r.metrics, "pipeline_stage_retries_total"), 0);
      const retriesBefore = retries();
      const killedAt = Date.now();
      await killNode("cassandra-2", log);
      await killNode("cassandra-3", log);
      const ready = await p.guarded(
        waitFor("/readyz to say Cassandra is not at quorum", async () => {
          const r = await statusGet(statusPort, "/readyz", SECRETS.STATUS_TOKEN);
          return r.status === 503 && r.text.includes("LOCAL_QUORUM") ? r.text : false;
        }, { timeoutMs: 60_000, intervalMs: 1_000 }),
      );
      log(`/readyz after ${((Date.now() - killedAt) / 1000).toFixed(1)} s: 503 ${ready}`);
      await p.guarded(waitFor("the stages to count retries", () => retries() > retriesBefore, {
        timeoutMs: 60_000,
        intervalMs: 1_000,
      }));
      // The first failed attempt may name a closed socket (the node just died); later ones, logged
      // at every 10th attempt and by gold's tick, name the missing replicas.
      const why = await p.guarded(waitFor("a stage log naming the missing replicas", async () => {
        const logs = await Promise.all(
          STAGES.map((s) => Deno.readTextFile(`${p.dir}/${s}.log`).catch(() => "")),
        );
        return logs.join("\n").split("\n").find((l) =>
          / WARN /.test(l) && /Not enough replicas|LOCAL_QUORUM/.test(l)
        ) ?? false;
      }, { timeoutMs: 120_000, intervalMs: 1_000 }));
      log(`a stage says: ${why.slice(0, 400)}`);
      await p.guarded(delay(Math.max(0, killedAt + OUTAGE_MS - Date.now())));
      log(
        `pipeline_stage_retries_total ${retriesBefore} -> ${retries()} while two nodes were down`,
      );
      const backAt = Date.now();
      await restartNode("cassandra-2", log);
      await p.guarded(waitFor("/readyz to say ready again", async () => {
        const r = await statusGet(statusPort, "/readyz", SECRETS.STATUS_TOKEN);
        return r.status === 200;
      }, { timeoutMs: 120_000, intervalMs: 1_000 }));
      log(
        `one node back: /readyz 200 ${
          ((Date.now() - backAt) / 1000).toFixed(1)
        } s after the restart began`,
      );
      await p.guarded(delay(10_000));
      await restartNode("cassandra-3", log);
    });
  },
});

Deno.test("longestStall: the longest time a counter did not grow, inside the window", () => {
  const s = (at: number, value: number) => ({ at, value });
  assert.deepEqual(longestStall([s(0, 0), s(1, 1), s(5, 2), s(6, 3)], 0, 6), {
    ms: 4,
    from: 1,
    to: 5,
  });
  assert.deepEqual(longestStall([s(0, 1), s(1, 1), s(2, 1)], 0, 10), { ms: 10, from: 0, to: 10 });
  assert.deepEqual(longestStall([s(-5, 7), s(1, 8), s(2, 9), s(9, 10)], 0, 9), {
    ms: 7,
    from: 2,
    to: 9,
  });
  assert.deepEqual(longestStall([], 3, 3), { ms: 0, from: 3, to: 3 });
});
