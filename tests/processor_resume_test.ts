/**
 * How long a stage's partitions stall after its process is killed with SIGKILL, at the deployed
 * defaults (`KAFKA_SESSION_TIMEOUT_MS`, `KAFKA_HEARTBEAT_INTERVAL_MS` and the group membership
 * of `shared/config.ts`, nothing overridden): the stages run as `deno task processor` runs them,
 * each a child process under `superviseStage` (restarted after a death by the supervisors'
 * policy, each with its warm standby), while trades arrive live. Each stage in turn is killed
 * with `kill -9` once its standby is ready, and two times are read from the group every 100 ms:
 * until the group hands the killed process's partitions to another member (the stall the group
 * imposes), and until the group commits again (a batch of those partitions made durable).
 *
 * The handover must take under 5 s (issue 21; before static membership and the standby it took
 * the 30 s session timeout, and the first commit came 32 to 34 s after the kill); the first
 * commit, which adds a first batch's work on a loaded machine, under 15 s. Both are printed:
 * `deno test -A tests/processor_resume_test.ts`. `RESUME_BASELINE=1` measures what it was before,
 * asserting nothing: dynamic members (`KAFKA_GROUP_INSTANCE_ID=off`) and no standby.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Admin, Producer } from "kafkajs";
import type { Config } from "../shared/config.ts";
import { delay } from "../shared/delay.ts";
import { createKafka } from "../shared/kafka.ts";
import { createLogger, silentLogger } from "../shared/log.ts";
import { roleEnv } from "../shared/process/role.ts";
import { type RunningProcess, spawnProcess } from "../shared/process/spawn.ts";
import { groupIdOf, inputTopicOf, type StageName, STAGES } from "../shared/topology.ts";
import { STANDBY_READY } from "../processor/stage_standby.ts";
import { superviseStage } from "../processor/stage_supervisor.ts";
import { cleanup, provision, testConfig, waitFor } from "./helpers.ts";
import { progress } from "./progress.ts";
import { generateFeed, produceFeed } from "./trade_feed.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("..", import.meta.url).pathname;

/** The bound issue 21 sets on the stall after a crash: the group hands the partitions over. */
const STALL_BOUND_MS = 5_000;
/**
 * The bound on the first commit after a kill: the handover plus the first batch, which on this
 * shared 2-core machine under load (load average 15 to 35) took 1 to 11 s however the process
 * got there (cold code paths, a starved CPU). Before static membership it was over 30 s.
 */
const COMMIT_BOUND_MS = 15_000;
/** Trades produced every 100 ms while the test runs (500 a second). */
const TRADES_PER_TICK = 50;

/** The offsets the group of `stage` has committed on its input topic, summed. */
async function committed(admin: Admin, config: Config, stage: StageName): Promise<number> {
  const [topic] = await admin.fetchOffsets({
    groupId: groupIdOf(config, stage),
    topics: [inputTopicOf(config, stage)],
  });
  return (topic?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}

/** The members of the group of `stage` and whether each holds partitions. */
async function members(admin: Admin, config: Config, stage: StageName) {
  const { groups } = await admin.describeGroups([groupIdOf(config, stage)]);
  const group = groups[0]!;
  return {
    stable: group.state === "Stable",
    ids: group.members.map((m) => m.memberId),
    assigned: group.members.every((m) => m.memberAssignment.length > 0),
  };
}

/** Times after a kill, in ms from the kill. */
interface Stall {
  /** Until the group handed the partitions to another member (the killed one is gone). */
  readonly handover: number;
  /** Until the group committed again: a batch of them made durable by the new member. */
  readonly commit: number;
}

/**
 * Polls the group of `stage` every 100 ms from `since` (the kill of the member `killed`, when
 * the group had committed `from` records) until both times of a {@linkcode Stall} are seen.
 */
async function measureStall(
  admin: Admin,
  config: Config,
  stage: StageName,
  killed: readonly string[],
  from: number,
  since: number,
): Promise<Stall> {
  let handover: number | undefined;
  let commit: number | undefined;
  for (;;) {
    const now = performance.now();
    if (handover === undefined) {
      const group = await members(admin, config, stage);
      const gone = group.ids.length > 0 && group.ids.every((id) => !killed.includes(id));
      if (group.stable && gone && group.assigned) handover = now - since;
    }
    if (commit === undefined && (await committed(admin, config, stage)) > from) {
      commit = now - since;
    }
    if (handover !== undefined && commit !== undefined) return { handover, commit };
    if (now - since > 120_000) {
      throw new Error(`${stage}: no handover or no commit within 120 s of the kill`);
    }
    await delay(100);
  }
}

/** Produces trades at a steady rate until `signal` aborts. */
async function produceLive(producer: Producer, topic: string, signal: AbortSignal) {
  const now = Date.now();
  const feed = generateFeed({
    seed: 21,
    count: 200_000,
    start: now - 3 * 3_600_000,
    stepMs: 20,
    ingestTime: now,
  });
  for (let i = 0; i < feed.length && !signal.aborted; i += TRADES_PER_TICK) {
    const began = performance.now();
    await produceFeed(producer, topic, feed.slice(i, i + TRADES_PER_TICK));
    await delay(Math.max(0, 100 - (performance.now() - began)));
  }
}

Deno.test({
  name: "a stage killed with kill -9 resumes its partitions within 5 s at the default settings",
  ...opts,
  async fn() {
    const log = progress("resume");
    // The deployed defaults: no session, heartbeat or membership variable is overridden.
    const baseline = Deno.env.get("RESUME_BASELINE") === "1";
    const config = testConfig({
      LOG_LEVEL: "info",
      ...(baseline ? { KAFKA_GROUP_INSTANCE_ID: "off" } : {}),
    });
    if (baseline) log("baseline: dynamic members, no standby");
    log(
      `session timeout ${config.kafka.sessionTimeoutMs} ms, heartbeat ${config.kafka.heartbeatIntervalMs} ms`,
    );
    await provision(config);
    const dir = await Deno.makeTempDir({ prefix: "processor-resume-" });
    const stop = new AbortController();
    const current = new Map<StageName, RunningProcess>();
    /** Each stage's standby once it said it is ready, until it is promoted. */
    const standbys = new Map<StageName, RunningProcess>();
    const children = new Set<RunningProcess>();
    const kafka = createKafka(config.kafka, silentLogger());
    const admin = kafka.admin();
    const producer = kafka.producer({ idempotent: true });
    let passed = false;
    const supervised: Promise<unknown>[] = [];
    let feeding: Promise<void> = Promise.resolve();
    try {
      await admin.connect();
      await producer.connect();
      const env = roleEnv({ config, supervised: true });
      for (const stage of STAGES) {
        const file = await Deno.open(`${dir}/${stage}.log`, { append: true, create: true });
        const encoder = new TextEncoder();
        const write = (line: string) => file.writeSync(encoder.encode(`${line}\n`));
        supervised.push(
          superviseStage(stage, {
            signal: stop.signal,
            log: createLogger(`supervisor.${stage}`, { level: "info", write }),
            children,
            env,
            spawn: (spec, options) => {
              write(`--- ${new Date().toISOString()} test: starting ${spec.name}`);
              const child = spawnProcess({ ...spec, cwd: ROOT }, {
                onLine: (line) => {
                  write(line);
                  options.onLine?.(line);
                  if (line.includes(STANDBY_READY)) standbys.set(stage, child);
                },
              });
              return child;
            },
            standby: !baseline,
            standbyOutput: () => {},
            onActive: (child) => {
              current.set(stage, child);
              if (standbys.get(stage) === child) standbys.delete(stage);
            },
          }).finally(() => file.close()),
        );
      }
      feeding = produceLive(producer, config.kafka.topics.raw, stop.signal);

      const stalls = new Map<StageName, Stall>();
      for (const stage of ["gold", "bronze", "silver"] as const) {
        // Every stage commits again (the previous kill is over) before the next one.
        for (const s of STAGES) {
          const before = await committed(admin, config, s);
          await waitFor(
            `${s} to commit`,
            async () => (await committed(admin, config, s)) > before,
            {
              timeoutMs: 120_000,
              intervalMs: 100,
            },
          );
        }
        // The steady state: the stage's standby is up (it starts 20 s after the stage).
        await waitFor(
          `the ${stage} standby to be ready`,
          () => baseline || standbys.get(stage)?.exit === null,
          {
            timeoutMs: 120_000,
            intervalMs: 100,
          },
        );
        const child = current.get(stage)!;
        const killed = (await members(admin, config, stage)).ids;
        const killedAt = performance.now();
        child.kill("SIGKILL");
        await child.exited;
        const from = await committed(admin, config, stage);
        const stall = await measureStall(admin, config, stage, killed, from, killedAt);
        stalls.set(stage, stall);
        log(
          `kill -9 of ${stage}: partitions handed over after ${seconds(stall.handover)}, ` +
            `first commit after ${seconds(stall.commit)}`,
        );
      }
      const summary = [...stalls].map(([s, t]) =>
        `${s} ${seconds(t.handover)} / ${seconds(t.commit)}`
      ).join(", ");
      console.log(`after kill -9, partitions handed over / first commit: ${summary}`);
      for (const [stage, t] of baseline ? [] : stalls) {
        assert.ok(
          t.handover < STALL_BOUND_MS,
          `${stage}: the group held the killed member's partitions ${seconds(t.handover)}`,
        );
        assert.ok(
          t.commit < COMMIT_BOUND_MS,
          `${stage}: the first commit after the kill came after ${seconds(t.commit)}`,
        );
      }
      passed = true;
    } finally {
      stop.abort();
      await feeding.catch(() => {});
      await Promise.all(supervised.map((p) => p.catch(() => {})));
      for (const child of children) child.kill();
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      await cleanup(config);
      if (passed) await Deno.remove(dir, { recursive: true });
      else console.error(`stage logs are kept in ${dir}`);
    }
  },
});

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
