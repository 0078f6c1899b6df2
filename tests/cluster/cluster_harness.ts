/**
 * The cluster suite's pieces: the local three-node cluster (local_services/cluster.ts) brought up
 * for the suite and stopped after it when the suite started it, the pipeline of the fault
 * harness (tests/faults/harness.ts) pointed at it by configuration only, and the measures every
 * scenario reports: the longest stall of the producer's deliveries (the raw topic's end offsets)
 * and of silver's progress (its committed offsets), sampled every 250 ms.
 *
 * `CLUSTER_SUITE=full` runs every scenario at the full length and rate (`deno task
 * test:cluster`); `CLUSTER_SUITE=short` the short variant; unset, the suite is ignored: the
 * cluster alone takes 1.5-4 minutes to start on this machine and 5.6 GiB of memory, too much for
 * the default `deno test -A`.
 *
 * @module
 */
import type { Admin } from "kafkajs";
import {
  clusterDown,
  clusterEnv,
  clusterNodes,
  clusterStatus,
  clusterUp,
  nodePid,
  startNode,
  stopNode,
} from "../../local_services/cluster.ts";
import { groupIdOf, inputTopicOf } from "../../shared/topology.ts";
import { waitFor } from "../helpers.ts";
import type { Pipeline } from "../faults/harness.ts";

/** Nodes of each kind. */
export const SIZE = 3;

/** `full`, `short`, or undefined (ignored). */
export const SUITE = Deno.env.get("CLUSTER_SUITE");
export const FULL = SUITE === "full";

/** Why the default run skips the suite; printed when it does. */
export const IGNORE_REASON =
  "the cluster suite needs a three-node Cassandra and Kafka cluster (1.5-4 min to start here, " +
  "5.6 GiB resident): run `deno task test:cluster` (full) or CLUSTER_SUITE=short deno test -A " +
  "tests/cluster/ (short: one Cassandra node and one broker killed for 20 s)";

/** The pipeline's variables for the cluster (brokers, contact points, replication 3). */
export const CLUSTER_ENV = clusterEnv(SIZE);

/** Brings the cluster up; `stop()` stops it again only if this call started any node. */
export async function useCluster(log: (line: string) => void): Promise<{ stop(): Promise<void> }> {
  const before = await Promise.all(clusterNodes(SIZE).map(nodePid));
  const quiet = () => {};
  const statuses = await clusterStatus(SIZE, { log: quiet });
  if (statuses.every((s) => s.reachable)) {
    log("cluster already up: leaving it running afterwards");
    return { stop: () => Promise.resolve() };
  }
  const ms = await clusterUp(SIZE, { log });
  log(`cluster up in ${(ms / 1000).toFixed(1)} s`);
  const startedHere = before.every((pid) => pid === null);
  return {
    async stop() {
      if (!startedHere) return;
      await ensureAllUp(quiet).catch(() => {});
      await clusterDown(SIZE, { log });
    },
  };
}

/** Starts every node that is not answering (after a scenario that left some down). */
export async function ensureAllUp(log: (line: string) => void): Promise<void> {
  for (const s of await clusterStatus(SIZE, { log: () => {} })) {
    if (!s.reachable) await startNode(SIZE, s.name, { log });
  }
}

/** kill -9 of node `name`; @returns when it was killed (epoch ms). */
export async function killNode(name: string, log: (line: string) => void): Promise<number> {
  await stopNode(SIZE, name, { kill: true, log });
  return Date.now();
}

/** Restarts node `name` and waits until it answers; @returns how long that took, ms. */
export async function restartNode(name: string, log: (line: string) => void): Promise<number> {
  const t0 = Date.now();
  await startNode(SIZE, name, { log });
  return Date.now() - t0;
}

/** Broker id of `kafka-<n>` is n. */
export function brokerName(id: number): string {
  return `kafka-${id}`;
}

/** How many partitions of `topics` each broker leads. */
export async function leaderCounts(admin: Admin, topics: string[]): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  const { topics: meta } = await admin.fetchTopicMetadata({ topics });
  for (const t of meta) {
    for (const p of t.partitions) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
  }
  return counts;
}

/**
 * The broker coordinating consumer group `groupId`: the leader of its `__consumer_offsets`
 * partition, `(hashCode(groupId) & 0x7fffffff) % partitions` as the broker computes it (Java's
 * `String.hashCode`, kafka.coordinator.group.GroupMetadataManager#partitionFor).
 */
export async function groupCoordinator(admin: Admin, groupId: string): Promise<number> {
  let hash = 0;
  for (let i = 0; i < groupId.length; i++) hash = (Math.imul(hash, 31) + groupId.charCodeAt(i)) | 0;
  const { topics: [offsets] } = await admin.fetchTopicMetadata({ topics: ["__consumer_offsets"] });
  const partitions = offsets!.partitions;
  const id = (hash & 0x7fffffff) % partitions.length;
  return partitions.find((p) => p.partitionId === id)!.leader;
}

/** Waits until every partition of `topics` has all `SIZE` replicas in sync. */
export async function waitFullIsr(admin: Admin, topics: string[], timeoutMs = 180_000) {
  await waitFor(
    `every partition of ${topics.join(", ")} to have ${SIZE} in-sync replicas`,
    async () => {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      return meta.every((t) => t.partitions.every((p) => p.isr.length === SIZE));
    },
    { timeoutMs, intervalMs: 1_000 },
  );
}

/** One sample of a counter that only grows. */
export interface Sample {
  readonly at: number;
  readonly value: number;
}

/** The longest time the counter did not grow, between `from` and `to` (epoch ms). */
export function longestStall(
  samples: readonly Sample[],
  from: number,
  to: number,
): { ms: number; from: number; to: number } {
  let best = { ms: 0, from, to: from };
  let lastGrowth = from;
  let last: number | undefined;
  for (const s of samples) {
    if (s.at < from || s.at > to) {
      if (s.at < from) last = s.value;
      continue;
    }
    if (last !== undefined && s.value > last) {
      if (s.at - lastGrowth > best.ms) best = { ms: s.at - lastGrowth, from: lastGrowth, to: s.at };
      lastGrowth = s.at;
    }
    last = s.value;
  }
  if (to - lastGrowth > best.ms) best = { ms: to - lastGrowth, from: lastGrowth, to };
  return best;
}

/** Samples the producer's deliveries and silver's committed progress every 250 ms. */
export function startMeter(p: Pipeline) {
  const delivered: Sample[] = [];
  const silver: Sample[] = [];
  const raw = p.config.kafka.topics.raw;
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      await Promise.all([
        p.admin.fetchTopicOffsets(raw).then((offsets) => {
          delivered.push({ at, value: offsets.reduce((n, o) => n + Number(o.high), 0) });
        }).catch(() => {}),
        p.admin.fetchOffsets({
          groupId: groupIdOf(p.config, "silver"),
          topics: [inputTopicOf(p.config, "silver")],
        }).then(([t]) => {
          const value = (t?.partitions ?? []).reduce(
            (n, x) => n + Math.max(0, Number(x.offset)),
            0,
          );
          silver.push({ at, value });
        }).catch(() => {}),
      ]);
      await new Promise((r) => setTimeout(r, Math.max(0, at + 250 - Date.now())));
    }
  })();
  return {
    /** Stops sampling; the longest stall of each between `from` and `to`, as a line. */
    async report(
      from: number,
      to: number,
    ): Promise<{ line: string; producerMs: number; silverMs: number }> {
      running = false;
      await loop;
      const d = longestStall(delivered, from, to);
      const s = longestStall(silver, from, to);
      const at = (t: number) => `+${((t - from) / 1000).toFixed(1)} s`;
      return {
        producerMs: d.ms,
        silverMs: s.ms,
        line:
          `longest stall: producer deliveries ${(d.ms / 1000).toFixed(1)} s (${at(d.from)} .. ${
            at(d.to)
          }), silver progress ${(s.ms / 1000).toFixed(1)} s (${at(s.from)} .. ${at(s.to)}); ` +
          `${delivered.length} / ${silver.length} samples`,
      };
    },
  };
}

/** Runs `nodetool` of the cluster against Cassandra node `index`; its output. */
export async function nodetool(index: number, args: string[]): Promise<string> {
  const cli = new URL("../../local_services/cli.ts", import.meta.url).pathname;
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "-A",
      cli,
      "nodetool",
      "--cluster",
      String(SIZE),
      "--node",
      String(index),
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`nodetool ${args.join(" ")} failed: ${text}`);
  return text;
}
