/**
 * The processor under faults, against real Kafka and Cassandra and real OS processes: each stage
 * runs as `deno run -A --v8-flags=<its heap bound> processor/main.ts --stage <s>`, exactly as
 * deployed (`shared/process/role.ts`), and is killed with SIGKILL mid-stream, run twice in one
 * group, or left running while Cassandra is stopped and started again. Whatever happens, bronze,
 * silver and gold must end equal to the independent reference (`tests/reference.py`) with no
 * trade lost and none counted twice.
 *
 * Every random choice (the feed, which moments to kill at, which instance dies) comes from one
 * seed, printed at the start of each test; `PROCESSOR_FAULTS_SEED=<n>` replays it. Each child's
 * output goes to a file in a temporary directory that is printed, with the last lines of every
 * log, when a test fails.
 *
 * Note: a process killed with SIGKILL stays a member of its consumer group until its session
 * times out (`KAFKA_SESSION_TIMEOUT_MS`, 6 s here instead of the default 30 s), and the group does
 * not rebalance before that; much of this file's running time is those waits. The kill -9 test
 * runs its stages as static members (`KAFKA_GROUP_INSTANCE_ID`, as a supervisor does) with the
 * default 30 s session, so a restarted process takes the partitions back at once; the other tests run dynamic members
 * (two instances of a stage must not share an id), so they wait for the session timeout.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import "../shared/kafkajs_produce_retry.ts"; // before kafkajs: its producers must not drop
import "../shared/kafkajs_endtxn_retry.ts"; // before kafkajs: nor give up a commit
import { type Admin, AssignerProtocol, type KafkaMessage, type Producer } from "kafkajs";
import cassandra from "cassandra-driver";
import {
  cassandraReachable,
  servicesStatus,
  startService,
  stopService,
} from "../local_services/services.ts";
import { hourBucket } from "../shared/buckets.ts";
import { delay } from "../shared/delay.ts";
import type { Config } from "../shared/config.ts";
import { createKafka } from "../shared/kafka.ts";
import { silentLogger } from "../shared/log.ts";
import { MetricsRegistry, type MetricsSnapshot } from "../shared/metrics.ts";
import { roleEnv, roleProcess } from "../shared/process/role.ts";
import { type ProcessExit, type RunningProcess, spawnProcess } from "../shared/process/spawn.ts";
import type { DeadLetter, SilverTrade } from "../shared/types.ts";
import { createGoldStage } from "../processor/gold/gold_stage.ts";
import {
  GOLD_TABLE,
  goldBucket,
  type Interval,
  INTERVAL_MS,
  INTERVALS,
} from "../shared/gold_table.ts";
import {
  cleanup,
  provision,
  session,
  testConfig,
  testWire,
  waitFor,
  writerWire,
} from "./helpers.ts";
import { progress, type SeededRun, seededRun } from "./progress.ts";
import { randomId } from "../shared/random.ts";
import {
  assertGoldMatches,
  countRows,
  eventHours,
  goldTradeCount,
  readDeadLetters,
  readGold,
  total,
} from "./pipeline_assertions.ts";
import { computeReference, type Reference } from "./reference.ts";
import { generateFeed, groundTruthNdjson, produceFeed, type SentTrade } from "./trade_feed.ts";
import { groupIdOf, inputTopicOf, type StageName, STAGES } from "../shared/topology.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("..", import.meta.url).pathname;
const HOUR = 3_600_000;

// ---------------------------------------------------------------------------------------------
// Configuration shared with the child processes
// ---------------------------------------------------------------------------------------------

/**
 * A fresh test config (`testConfig()`: new topics, groups and keyspace) and the environment
 * that makes `loadConfig` in a child process resolve to the same names and settings.
 */
function freshConfig(
  overrides: Record<string, string> = {},
): { env: Record<string, string>; config: Config } {
  const config = testConfig({
    KAFKA_PARTITIONS: "3",
    GOLD_ALLOWED_LATENESS_MS: "1000",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_INTERVAL_MS: "1000",
    LOG_LEVEL: "warn",
    ...overrides,
  });
  return { env: roleEnv({ config }), config };
}

/** The start of a seeded test; `PROCESSOR_FAULTS_SEED` replays a run. */
function seededTest(name: string, fallback: number): SeededRun {
  return seededRun(name, "PROCESSOR_FAULTS_SEED", fallback);
}

// ---------------------------------------------------------------------------------------------
// Stage processes
// ---------------------------------------------------------------------------------------------

/** One run of `processor/main.ts --stage <stage>`. */
interface StageProcess {
  readonly stage: StageName;
  /** Names the instance; its restarts append to the same log file. */
  readonly label: string;
  readonly pid: number;
  readonly child: RunningProcess;
  /** Resolves once the process exited and its output is in the log file. */
  readonly ended: Promise<ProcessExit>;
  /** Set when the process exited. */
  status?: ProcessExit;
  /** Set when the test killed it. */
  killed: boolean;
}

/** Every stage process of one test, and where their logs go. */
interface Fleet {
  readonly env: Record<string, string>;
  readonly dir: string;
  readonly processes: StageProcess[];
  /** Rejects when a process exits that the test did not kill. */
  readonly failed: Promise<never>;
  readonly fail: (error: Error) => void;
}

async function createFleet(env: Record<string, string>, name: string): Promise<Fleet> {
  const dir = await Deno.makeTempDir({ prefix: `processor-faults-${name}-` });
  const failed = Promise.withResolvers<never>();
  failed.promise.catch(() => {}); // observed through Promise.race; never unhandled
  return { env, dir, processes: [], failed: failed.promise, fail: failed.reject };
}

/** Starts one stage process; its output is appended to `<dir>/<label>.log`. */
async function spawnStage(fleet: Fleet, stage: StageName, label: string): Promise<StageProcess> {
  const file = await Deno.open(`${fleet.dir}/${label}.log`, { append: true, create: true });
  const encoder = new TextEncoder();
  const write = (line: string) => file.writeSync(encoder.encode(`${line}\n`));
  write(`--- ${new Date().toISOString()} test: starting ${label}`);
  const child = spawnProcess(roleProcess(stage, { env: fleet.env, name: label, cwd: ROOT }), {
    onLine: write,
  });
  const proc: StageProcess = {
    stage,
    label,
    pid: child.pid,
    child,
    killed: false,
    ended: child.exited.then((status) => {
      file.close();
      proc.status = status;
      if (!proc.killed) {
        fleet.fail(
          new Error(
            `${label} (pid ${child.pid}) exited by itself: code ${status.code}, signal ${status.signal}`,
          ),
        );
      }
      return status;
    }),
  };
  fleet.processes.push(proc);
  return proc;
}

/** `kill -9`, and waits until the process is gone. */
async function killStage(proc: StageProcess): Promise<void> {
  proc.killed = true;
  proc.child.kill();
  await proc.ended;
}

/** Kills every process still running; on failure prints where the logs are and their tails. */
async function stopFleet(fleet: Fleet, passed: boolean): Promise<void> {
  await Promise.all(fleet.processes.filter((p) => p.status === undefined).map(killStage));
  if (passed) {
    await Deno.remove(fleet.dir, { recursive: true });
    return;
  }
  const labels = [...new Set(fleet.processes.map((p) => p.label))];
  console.error(`stage logs are kept in ${fleet.dir}`);
  for (const label of labels) {
    const text = await Deno.readTextFile(`${fleet.dir}/${label}.log`).catch(() => "");
    const lines = text.trimEnd().split("\n");
    console.error(
      `----- ${label}.log (last ${Math.min(lines.length, 40)} of ${lines.length}) -----`,
    );
    console.error(lines.slice(-40).join("\n"));
  }
}

/**
 * Drops the test's topics and keyspace; after a failure, keeps them when
 * `PROCESSOR_FAULTS_KEEP=1`, to look into.
 */
async function cleanupUnlessKept(config: Config, passed: boolean): Promise<void> {
  if (!passed && Deno.env.get("PROCESSOR_FAULTS_KEEP") === "1") {
    console.error(
      `kept keyspace ${config.cassandra.keyspace} and topics ${config.kafka.topics.raw}, ...`,
    );
    return;
  }
  await cleanup(config);
}

/** Runs `work`, failing at once when a stage process exits that the test did not kill. */
function guarded<T>(fleet: Fleet, work: Promise<T>): Promise<T> {
  return Promise.race([work, fleet.failed]);
}

/** Fails when any log line of the fleet says the consumer crashed. */
async function assertNoConsumerCrash(fleet: Fleet): Promise<void> {
  for (const label of new Set(fleet.processes.map((p) => p.label))) {
    const text = await Deno.readTextFile(`${fleet.dir}/${label}.log`);
    const crash = text.split("\n").find((line) => line.includes("consumer crashed"));
    assert.equal(crash, undefined, `${label} logged a consumer crash`);
  }
}

/**
 * Runs `body` with a fresh, provisioned config (`freshConfig(overrides)`) and an empty fleet
 * whose logs go to a directory named after `name`; then kills whatever still runs and drops
 * the topics and keyspace. When `body` fails, the logs are printed and kept (the topics and
 * keyspace too with `PROCESSOR_FAULTS_KEEP=1`).
 */
async function withFleet(
  name: string,
  overrides: Record<string, string>,
  body: (fleet: Fleet, config: Config) => Promise<void>,
): Promise<void> {
  const { env, config } = freshConfig(overrides);
  await provision(config);
  const fleet = await createFleet(env, name);
  let passed = false;
  try {
    await body(fleet, config);
    passed = true;
  } finally {
    await stopFleet(fleet, passed);
    await cleanupUnlessKept(config, passed);
  }
}

/** The test's own clients: a Kafka admin and idempotent producer, and a Cassandra session. */
interface Clients {
  readonly admin: Admin;
  readonly producer: Producer;
  readonly client: cassandra.Client;
}

/** Runs `body` with {@linkcode Clients} of `config`, connected; closes them after. */
async function withClients<T>(config: Config, body: (clients: Clients) => Promise<T>): Promise<T> {
  const kafka = createKafka(config.kafka, silentLogger());
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true });
  const client = session(config);
  try {
    await admin.connect();
    await producer.connect();
    return await body({ admin, producer, client });
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await client.shutdown();
  }
}

/**
 * Waits until the tables equal the reference (at most 2 min), asserts it in detail, and that
 * no consumer crashed; fails at once when a stage process exits by itself.
 */
async function assertScenarioOutcome(
  fleet: Fleet,
  client: cassandra.Client,
  config: Config,
  s: Scenario,
  log: (line: string) => void,
): Promise<void> {
  await guarded(fleet, assertTablesEqualReference(client, config, s, { timeoutMs: 120_000 }));
  log("tables equal the reference");
  await assertNoConsumerCrash(fleet);
}

// ---------------------------------------------------------------------------------------------
// Kafka positions
// ---------------------------------------------------------------------------------------------

/** The offset the group of `stage` has committed on each partition of its input topic. */
async function committedOffsets(
  admin: Admin,
  config: Config,
  stage: StageName,
): Promise<Map<number, number>> {
  const [topic] = await admin.fetchOffsets({
    groupId: groupIdOf(config, stage),
    topics: [inputTopicOf(config, stage)],
  });
  return new Map(
    (topic?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]),
  );
}

/** Records the group of `stage` has committed on its input topic, summed over partitions. */
async function committed(admin: Admin, config: Config, stage: StageName): Promise<number> {
  return sum(await committedOffsets(admin, config, stage));
}

/**
 * The silver topic as raw positions (`<raw partition>/<raw offset>` of each record), per
 * partition in offset order, up to its current end.
 */
async function readSilverTopic(admin: Admin, config: Config): Promise<Map<number, string[]>> {
  const topic = config.kafka.topics.silver;
  const ends = new Map(
    (await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]),
  );
  const out = new Map([...ends.keys()].map((p) => [p, [] as string[]]));
  const consumer = createKafka(config.kafka, silentLogger()).consumer({
    groupId: `${config.kafka.groupPrefix}.silver-reader-${randomId()}`,
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const list = out.get(partition)!;
        if (Number(message.offset) === list.length) {
          const trade = await testWire().decodeAsync("SilverTrade", message.value!);
          list.push(`${trade.rawPartition}/${trade.rawOffset}`);
        }
      },
    });
    await waitFor("the silver topic to be read", () => {
      return [...ends].every(([p, end]) => out.get(p)!.length >= end);
    }, { timeoutMs: 60_000 });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** The latest metrics snapshot each stage process reported on the metrics topic. */
async function readReports(config: Config, signal: AbortSignal) {
  const latest = new Map<string, { role: string; metrics: MetricsSnapshot }>();
  const kafka = createKafka(config.kafka, silentLogger());
  const consumer = kafka.consumer({ groupId: `${config.kafka.groupPrefix}.reports-${randomId()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: config.kafka.topics.metrics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const report = await testWire().decodeAsync("WorkerReport", message.value!);
      latest.set(report.workerId, { role: report.role, metrics: JSON.parse(report.metrics) });
    },
  });
  signal.addEventListener("abort", () => void consumer.disconnect().catch(() => {}));
  return {
    /** Batch attempts `stage` retried, summed over its processes' latest reports. */
    retries(stage: StageName): number {
      let sum = 0;
      for (const { role, metrics } of latest.values()) {
        if (role !== stage) continue;
        const family = metrics.families.find((f) => f.name === "pipeline_stage_retries_total");
        for (const series of family?.series ?? []) sum += series.value;
      }
      return sum;
    },
  };
}

/** Records in the input topic of `stage`, summed over partitions. */
async function inputEnd(admin: Admin, config: Config, stage: StageName): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(inputTopicOf(config, stage));
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

/** The members of a stage's group and the partitions each holds. */
async function groupMembers(
  admin: Admin,
  config: Config,
  stage: StageName,
): Promise<{ state: string; members: string[]; partitions: number[][] }> {
  const { groups } = await admin.describeGroups([groupIdOf(config, stage)]);
  const group = groups[0]!;
  return {
    state: group.state,
    members: group.members.map((m) => m.memberId),
    partitions: group.members.map((m) => {
      const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      return [...(decoded?.assignment[inputTopicOf(config, stage)] ?? [])].sort();
    }),
  };
}

/** Waits until two members of the group of `stage` hold its partitions, both some. */
async function waitForTwoMembers(
  fleet: Fleet,
  admin: Admin,
  config: Config,
  stage: StageName,
): Promise<void> {
  await guarded(
    fleet,
    waitFor(`two members of the ${stage} group to share the partitions`, async () => {
      const group = await groupMembers(admin, config, stage);
      return group.state === "Stable" && group.partitions.length === 2 &&
        group.partitions.every((p) => p.length > 0);
    }, { timeoutMs: 60_000, intervalMs: 250 }),
  );
}

/**
 * Produces the feed in chunks at a steady rate, like a live source (a rate, not a wait for a
 * state). Once `until` is done, the rest goes out at once. Stops, sending nothing more, once
 * `signal` aborts (a test's `finally`, so a failed test leaves no feed running).
 */
async function produceLive(
  producer: Producer,
  topic: string,
  feed: readonly SentTrade[],
  options: {
    readonly chunk: number;
    readonly everyMs: number;
    readonly until?: Promise<unknown>;
    readonly signal?: AbortSignal;
  },
): Promise<void> {
  let live = true;
  options.until?.finally(() => live = false).catch(() => {});
  for (let i = 0; i < feed.length; i += options.chunk) {
    if (options.signal?.aborted) return;
    const began = Date.now();
    await produceFeed(producer, topic, feed.slice(i, i + options.chunk));
    const rest = options.everyMs - (Date.now() - began);
    if (live && i + options.chunk < feed.length && rest > 0) await delay(rest);
  }
}

function sum(offsets: ReadonlyMap<number, number>): number {
  return [...offsets.values()].reduce((a, b) => a + b, 0);
}

// ---------------------------------------------------------------------------------------------
// The feed, the reference and the final comparison
// ---------------------------------------------------------------------------------------------

/** A feed, its reference, and what the tables must hold in the end. */
interface Scenario {
  readonly feed: SentTrade[];
  readonly reference: Reference;
  readonly ingestTime: number;
  /** Symbols of the feed that bronze can store (not empty). */
  readonly symbols: string[];
  /** Rows bronze must hold. */
  readonly storable: number;
  /** Records bronze dead-letters (an empty symbol cannot be a partition key). */
  readonly emptySymbols: number;
  readonly from: number;
  readonly to: number;
}

async function scenario(seed: number, count: number, dir: string, config: Config) {
  const ingestTime = Date.now();
  // Event times start at hh:35 three hours back, so windows cross an hour boundary and every
  // valid trade is older than its ingest time.
  const start = hourBucket(ingestTime) - 3 * HOUR + 35 * 60_000;
  const feed = generateFeed({ seed, count, start, stepMs: 350, ingestTime });
  const truthPath = `${dir}/ground_truth.ndjson`;
  await Deno.writeTextFile(truthPath, groundTruthNdjson(feed));
  const reference = await computeReference(truthPath, config.silver);
  const storable = feed.filter((f) => f.trade.s !== "").length;
  const hours = Object.values(reference.candles["1h"]).flatMap((w) => Object.keys(w).map(Number));
  assert.ok(Math.max(...hours) + HOUR < ingestTime, "every valid event time is in the past");
  assert.ok(reference.invalid > 0 && reference.valid > count * 0.9, "both paths are exercised");
  return {
    feed,
    reference,
    ingestTime,
    symbols: [...new Set(feed.map((f) => f.trade.s))].filter((s) => s !== ""),
    storable,
    emptySymbols: feed.length - storable,
    from: Math.min(...hours),
    to: Math.max(...hours) + HOUR,
  } satisfies Scenario;
}

/** Throws, saying what differs, unless every table equals the reference. */
async function compareTables(client: cassandra.Client, s: Scenario): Promise<void> {
  const bronze = total(
    await countRows(client, "trades_bronze", s.symbols, [hourBucket(s.ingestTime)]),
  );
  if (bronze !== s.storable) throw new Error(`bronze holds ${bronze} of ${s.storable} rows`);
  const silverSymbols = Object.keys(s.reference.candles["5m"]);
  const silver = total(await countRows(client, "trades_silver", silverSymbols, eventHours(s.feed)));
  if (silver !== s.reference.valid) {
    throw new Error(`silver holds ${silver} of ${s.reference.valid} rows`);
  }
  await assertGoldMatches(client, s.reference, s.from, s.to);
}

/**
 * Waits until the tables equal the reference, then asserts it in detail: bronze rows per
 * symbol, silver rows, every 5m and 1h candle, trade counts summing to the valid trades, and
 * one dead letter (at least) for every rejected record.
 */
async function assertTablesEqualReference(
  client: cassandra.Client,
  config: Config,
  s: Scenario,
  options: { readonly timeoutMs: number },
): Promise<void> {
  await waitFor("bronze, silver and gold to equal the reference", async () => {
    await compareTables(client, s);
    return true;
  }, { timeoutMs: options.timeoutMs, intervalMs: 1000 });
  const bronze = await countRows(client, "trades_bronze", s.symbols, [hourBucket(s.ingestTime)]);
  for (const symbol of s.symbols) {
    assert.equal(
      bronze.get(symbol) ?? 0,
      s.feed.filter((f) => f.trade.s === symbol).length,
      `bronze rows of ${JSON.stringify(symbol)}`,
    );
  }
  const silverSymbols = Object.keys(s.reference.candles["5m"]);
  const silver = await countRows(client, "trades_silver", silverSymbols, eventHours(s.feed));
  assert.equal(total(silver), s.reference.valid, "silver rows: every valid trade exactly once");
  await assertGoldMatches(client, s.reference, s.from, s.to);
  for (const interval of ["5m", "1h"] as const) {
    const rows = await readGold(client, interval, silverSymbols, s.from, s.to);
    assert.equal(goldTradeCount(rows), s.reference.valid, `${interval} trade counts sum`);
  }
  // Stages are at-least-once towards the dead-letter topic: a replayed batch repeats its
  // letters. Every rejected record must be there, once or more, and nothing else.
  const positions = (letters: readonly DeadLetter[], source: DeadLetter["source"]) =>
    new Set(
      letters.filter((l) => l.source === source).map((l) =>
        `${l.sourcePartition}/${l.sourceOffset}`
      ),
    );
  const letters = await readDeadLetters(config, s.reference.invalid + s.emptySymbols, {
    done: (all) =>
      positions(all, "silver").size >= s.reference.invalid &&
      positions(all, "bronze").size >= s.emptySymbols,
  });
  assert.equal(positions(letters, "silver").size, s.reference.invalid, "silver dead letters");
  assert.equal(positions(letters, "bronze").size, s.emptySymbols, "bronze dead letters");
  assert.ok(letters.every((l) => l.source !== "gold"), "gold dead-letters nothing");
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

Deno.test({
  name: "kill -9 of each stage at several moments mid-stream leaves tables equal to the reference",
  ...opts,
  async fn() {
    const { log, rand } = seededTest("kill -9", 20261124);
    // Static members, as under a supervisor: each restart takes its stage's partitions back
    // as soon as it joins (processor/group_instance.ts), so the session can keep its default
    // length: a stage starved of CPU on a loaded machine does not lose the group.
    const statics = {
      KAFKA_GROUP_INSTANCE_ID: "kill-test",
      KAFKA_SESSION_TIMEOUT_MS: "30000",
      KAFKA_HEARTBEAT_INTERVAL_MS: "3000",
    };
    await withFleet("kill", statics, async (fleet, config) => {
      const s = await scenario(Math.floor(rand() * 2 ** 31), 40_000, fleet.dir, config);
      // Three moments per stage, each plus a delay so the kill lands at a different point of the
      // batches in hand. The first: some records committed, while trades arrive live (early, so
      // that every stage is killed within seconds and their waits for the group overlap; gold
      // before silver, which it then waits for anyway). Each later one: the group has handed the
      // partitions to the restarted process (at once: it rejoins under the killed member's
      // static id), which is then catching up on what arrived meanwhile.
      const moments = new Map(STAGES.map((stage) => [
        stage,
        [0, 1, 2].map((k) => ({
          records: k > 0
            ? 0
            : stage === "gold"
            ? 200 + Math.floor(rand() * 800)
            : 1500 + Math.floor(rand() * 1500),
          afterMs: Math.floor(rand() * (k === 0 ? 1500 : 500)),
        })),
      ]));
      for (const [stage, list] of moments) {
        log(
          `${stage} kills: ${
            list.map((m, k) =>
              `${k === 0 ? `${m.records} records committed` : "restart assigned"} +${m.afterMs} ms`
            ).join(", ")
          }`,
        );
      }
      await withClients(config, async ({ admin, producer, client }) => {
        const kills = new Map<StageName, number>();
        const goldKilled = Promise.withResolvers<void>();
        let produced = false;
        const killRepeatedly = async (stage: StageName): Promise<void> => {
          let proc = await spawnStage(fleet, stage, stage);
          let killed: string[] = [];
          for (const [k, moment] of moments.get(stage)!.entries()) {
            if (k === 0) {
              await waitFor(`${stage} to commit ${moment.records} records`, async () => {
                return (await committed(admin, config, stage)) >= moment.records;
              }, { timeoutMs: 60_000, intervalMs: 50 });
              if (stage === "silver") await goldKilled.promise;
            } else {
              await waitFor(`the ${stage} group to assign the restarted process`, async () => {
                const group = await groupMembers(admin, config, stage);
                return group.state === "Stable" && group.members.length === 1 &&
                  !killed.includes(group.members[0]!);
              }, { timeoutMs: 90_000, intervalMs: 50 });
            }
            // ...and it has input it has not committed (gold may wait for silver to resume).
            await waitFor(`${stage} to have input to work on`, async () => {
              const pending = (await inputEnd(admin, config, stage)) -
                await committed(admin, config, stage);
              return pending > 0 || produced;
            }, { timeoutMs: 90_000, intervalMs: 50 });
            await delay(moment.afterMs);
            killed = (await groupMembers(admin, config, stage)).members;
            await killStage(proc);
            const done = await committed(admin, config, stage);
            const end = await inputEnd(admin, config, stage);
            kills.set(stage, k + 1);
            log(`${stage} pid ${proc.pid} killed: ${done} records committed, ${end - done} not`);
            if (stage === "gold") goldKilled.resolve();
            proc = await spawnStage(fleet, stage, stage);
          }
        };
        const killing = Promise.all(STAGES.map(killRepeatedly));
        await guarded(
          fleet,
          Promise.all([
            // About 330 trades a second until every kill is done, so kills land mid-stream.
            produceLive(producer, config.kafka.topics.raw, s.feed, {
              chunk: 250,
              everyMs: 750,
              until: killing,
            }).then(() => produced = true),
            killing,
          ]),
        );
        assert.deepEqual(Object.fromEntries(kills), { bronze: 3, silver: 3, gold: 3 });
        log("every kill done and the feed produced: waiting for the tables");
        await assertScenarioOutcome(fleet, client, config, s, log);
      });
    });
  },
});

Deno.test({
  name: "two instances of one stage in one group give the same tables as one",
  ...opts,
  async fn() {
    const { log, rand } = seededTest("two instances", 4242);
    await withFleet("pair", {}, async (fleet, config) => {
      const s = await scenario(Math.floor(rand() * 2 ** 31), 24_000, fleet.dir, config);
      const plan = STAGES.map((stage) => ({
        stage,
        victim: rand() < 0.5 ? "a" : "b",
        share: Math.round((0.2 + rand() * 0.3) * 1000) / 1000,
      }));
      for (const p of plan) {
        log(
          `kill ${p.stage}-${p.victim} after ${(p.share * 100).toFixed(1)}% committed`,
        );
      }
      await withClients(config, async ({ admin, producer, client }) => {
        const instances = new Map<string, StageProcess>();
        for (const stage of STAGES) {
          for (const which of ["a", "b"]) {
            instances.set(
              `${stage}-${which}`,
              await spawnStage(fleet, stage, `${stage}-${which}`),
            );
          }
        }
        // Both instances hold partitions before any trade arrives.
        log("six processes started");
        for (const stage of STAGES) await waitForTwoMembers(fleet, admin, config, stage);
        const killOne = async (p: (typeof plan)[number]): Promise<void> => {
          const of = p.stage === "gold" ? s.reference.valid : s.feed.length;
          const goal = Math.ceil(p.share * of);
          await waitFor(`${p.stage} to commit ${goal} records`, async () => {
            return (await committed(admin, config, p.stage)) >= goal;
          }, { timeoutMs: 120_000, intervalMs: 50 });
          const victim = instances.get(`${p.stage}-${p.victim}`)!;
          await killStage(victim);
          log(`${victim.label} pid ${victim.pid} killed`);
          // The survivor takes every partition over once the group drops the dead member.
          await waitFor(`the other ${p.stage} instance to hold every partition`, async () => {
            const group = await groupMembers(admin, config, p.stage);
            return group.state === "Stable" && group.partitions.length === 1 &&
              group.partitions[0]!.length === config.kafka.partitions;
          }, { timeoutMs: 90_000, intervalMs: 250 });
          log(`the other ${p.stage} instance holds every partition`);
        };
        await guarded(
          fleet,
          Promise.all([
            produceLive(producer, config.kafka.topics.raw, s.feed, { chunk: 1000, everyMs: 400 }),
            ...plan.map(killOne),
          ]),
        );
        await assertScenarioOutcome(fleet, client, config, s, log);
      });
    });
  },
});

Deno.test({
  name: "gold restarted after writing a batch it had not committed counts none of it twice",
  ...opts,
  async fn() {
    // The mechanism the kill tests depend on, deterministically: a candle row's
    // `folded_offsets` must survive the round trip through Cassandra, or a restarted gold folds
    // every redelivered trade a second time.
    const { config } = freshConfig();
    await provision(config);
    const client = session(config);
    const producer = createKafka(config.kafka, silentLogger()).producer(); // never used: no letters
    const wire = await writerWire(config, ["silver", "deadLetter"]);
    const window = Date.UTC(2026, 10, 24, 9, 30);
    const messages: KafkaMessage[] = Array.from({ length: 100 }, (_, i) => {
      const trade: SilverTrade = {
        symbol: "AAPL",
        price: 100 + (i % 7),
        eventTime: window + i * 1000,
        volume: 1 + (i % 3),
        priceOnly: false,
        conditions: [],
        session: "REGULAR",
        ingestTime: window + 200_000,
        rawTopic: config.kafka.topics.raw,
        rawPartition: 1,
        rawOffset: 500 + i,
      };
      return {
        key: Buffer.from(trade.symbol),
        value: wire.encode("SilverTrade", trade),
        timestamp: String(trade.eventTime),
        attributes: 0,
        offset: String(i),
        headers: {},
      };
    });
    const gold = () =>
      createGoldStage({
        session: client,
        keyspace: config.cassandra.keyspace,
        producer,
        deadLetterTopic: config.kafka.topics.deadLetter,
        wire,
        allowedLatenessMs: 1000,
        log: silentLogger(),
        metrics: new MetricsRegistry(),
      });
    const batch = (from: number, to: number) => ({
      topic: config.kafka.topics.silver,
      partition: 0,
      messages: messages.slice(from, to),
    });
    let passed = false;
    try {
      // The first process writes trades 0..59 and dies before committing; the next one gets
      // 30..99 (30..59 again) from the committed offset, with nothing in memory.
      await gold().processBatch(batch(0, 60));
      const restarted = gold();
      await restarted.processBatch(batch(30, 100));
      await restarted.close?.();
      const rows = await readGold(client, "5m", ["AAPL"], window, window + 300_000);
      assert.equal(rows["AAPL"]?.[String(window)]?.["count"], 100);
      const row = (await client.execute(
        "SELECT folded_offsets FROM trades_gold_5m WHERE symbol = 'AAPL' AND bucket = '2026-11-01'",
      )).first();
      assert.deepEqual(row.get("folded_offsets"), new Map([[1, 599n]]));
      passed = true;
    } finally {
      await client.shutdown();
      await cleanupUnlessKept(config, passed);
    }
  },
});

Deno.test({
  name:
    "Cassandra stopped mid-stream: stages pause, commit nothing, resume by themselves and lose nothing",
  ...opts,
  async fn() {
    const { log, seed } = seededTest("cassandra down", 777);
    // The deployed 30 s session: a stage whose batch waits on Cassandra longer than a short
    // session is evicted from its group, and its next commit stops the process.
    const { env, config } = freshConfig({
      KAFKA_SESSION_TIMEOUT_MS: "30000",
      KAFKA_HEARTBEAT_INTERVAL_MS: "3000",
    });
    await provision(config);
    const fleet = await createFleet(env, "cassandra");
    const s = await scenario(seed, 24_000, fleet.dir, config);
    const [before, during, after] = [
      s.feed.slice(0, 8000),
      s.feed.slice(8000, 16_000),
      s.feed.slice(16_000),
    ];
    const contactPoints = [...config.cassandra.contactPoints];
    const admin = createKafka(config.kafka, silentLogger()).admin();
    const producer = createKafka(config.kafka, silentLogger()).producer({ idempotent: true });
    const client = session(config);
    const stopReports = new AbortController();
    const feedStop = new AbortController();
    let passed = false;
    try {
      await admin.connect();
      await producer.connect();
      const reports = await readReports(config, stopReports.signal);
      for (const stage of STAGES) await spawnStage(fleet, stage, stage);
      await guarded(
        fleet,
        (async () => {
          await produceLive(producer, config.kafka.topics.raw, before, {
            chunk: 1000,
            everyMs: 500,
            signal: feedStop.signal,
          });
          for (const stage of STAGES) {
            await waitFor(`${stage} to be mid-stream`, async () => {
              return (await committed(admin, config, stage)) >= 2000;
            }, { timeoutMs: 60_000, intervalMs: 100 });
          }
        })(),
      );

      // Stop Cassandra while trades keep arriving, and watch the stages through the outage.
      // Another process of this checkout that calls ensureServices() meanwhile (another test
      // run) starts Cassandra again: such a window proves nothing and is tried again.
      const outage = async (trades: readonly SentTrade[]): Promise<boolean> => {
        log("stopping Cassandra");
        const producing = produceLive(producer, config.kafka.topics.raw, trades, {
          chunk: 500,
          everyMs: 700,
          signal: feedStop.signal,
        });
        // Awaited below; if an assertion fails first, its failure must not go unhandled.
        producing.catch(() => {});
        await stopService("cassandra", { log });
        assert.equal(await cassandraReachable(contactPoints), false, "Cassandra is down");
        let interfered = false;
        // Each stage with something to read keeps retrying it (gold may have nothing to read).
        const allRetried = (since: ReadonlyMap<StageName, number>, more: number) => async () => {
          if (await cassandraReachable(contactPoints, { timeoutMs: 1000 })) {
            return interfered = true;
          }
          for (const stage of STAGES) {
            const retried = reports.retries(stage) >= since.get(stage)! + more;
            const idle = stage === "gold" &&
              (await committed(admin, config, stage)) >= await inputEnd(admin, config, stage);
            if (!retried && !idle) return false;
          }
          return true;
        };
        const retries = () => new Map(STAGES.map((stage) => [stage, reports.retries(stage)]));
        await waitFor("every stage to retry while Cassandra is down", allRetried(retries(), 1), {
          timeoutMs: 60_000,
          intervalMs: 250,
        });
        const held = new Map<StageName, Map<number, number>>();
        for (const stage of STAGES) held.set(stage, await committedOffsets(admin, config, stage));
        const retriedAtHeld = retries();
        await producing;
        await waitFor("every stage to retry twice more", allRetried(retriedAtHeld, 2), {
          timeoutMs: 60_000,
          intervalMs: 250,
        });
        const now = new Map<StageName, Map<number, number>>();
        for (const stage of STAGES) now.set(stage, await committedOffsets(admin, config, stage));
        const status = await servicesStatus({ log: () => {} });
        if (interfered || status.cassandra.running || status.cassandra.reachable) {
          log("another process started Cassandra during the outage: once more");
          return false;
        }
        for (const stage of ["bronze", "silver"] as const) {
          assert.deepEqual(
            now.get(stage),
            held.get(stage),
            `${stage} committed nothing while Cassandra was down`,
          );
          assert.ok(
            (await inputEnd(admin, config, stage)) > sum(held.get(stage)!),
            `${stage} has trades waiting`,
          );
        }
        // Gold may commit while Cassandra is down, but only silver records that repeat trades
        // it had already made durable (silver publishes a batch again each time it retries it):
        // those need no write. Nothing it committed may be a trade it sees for the first time.
        const silverTopic = await readSilverTopic(admin, config);
        for (const [partition, offset] of now.get("gold")!) {
          const from = held.get("gold")!.get(partition) ?? 0;
          const records = silverTopic.get(partition)!;
          const durable = new Set(records.slice(0, from));
          const fresh = records.slice(from, offset).filter((position) => !durable.has(position));
          assert.deepEqual(fresh, [], `gold committed new trades of partition ${partition}`);
        }
        for (const proc of fleet.processes) {
          assert.equal(proc.status, undefined, `${proc.label} is still running`);
        }
        const total = (offsets: Map<StageName, Map<number, number>>) =>
          JSON.stringify(Object.fromEntries(STAGES.map((x) => [x, sum(offsets.get(x)!)])));
        log(
          `paused: committed ${total(held)}, then ${total(now)}; batch retries ${
            JSON.stringify(Object.fromEntries(retries()))
          }`,
        );
        return true;
      };
      const windows = [during.slice(0, 3000), during.slice(3000, 5500), during.slice(5500)];
      let attempt = 0;
      while (!await guarded(fleet, outage(windows[attempt]!))) {
        assert.ok(++attempt < windows.length, "Cassandra stayed down for a whole outage window");
      }
      const rest = [...windows.slice(attempt + 1).flat(), ...after];

      log("starting Cassandra");
      await guarded(
        fleet,
        Promise.all([
          startService("cassandra", { log }),
          produceLive(producer, config.kafka.topics.raw, rest, {
            chunk: 1000,
            everyMs: 500,
            signal: feedStop.signal,
          }),
        ]),
      );
      await guarded(fleet, assertTablesEqualReference(client, config, s, { timeoutMs: 180_000 }));
      log("tables equal the reference");
      for (const proc of fleet.processes) {
        assert.equal(proc.status, undefined, `${proc.label} ran through the outage`);
      }
      await assertNoConsumerCrash(fleet);
      passed = true;
    } finally {
      feedStop.abort();
      stopReports.abort();
      await stopFleet(fleet, passed);
      if (!await cassandraReachable(contactPoints)) await startService("cassandra");
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      await client.shutdown();
      await cleanupUnlessKept(config, passed);
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Finality of windows open when gold dies
// ---------------------------------------------------------------------------------------------

/** Lateness of the finality tests: longer than a killed member takes to be replaced (~8 s). */
const FINALITY_LATENESS_MS = 15_000;

/**
 * Trades that leave windows open: for each of 12 symbols, three trades 3, 2 and 1 s before `end`
 * (an hour mark, so the symbol's 1m, 5m and 1h windows all end there). Every partition's watermark
 * then sits 1 s before `end` minus the lateness, and its windows fall due `1 s + lateness` after
 * gold saw the last trade, once its partition has been idle that long.
 */
function openWindowFeed(end: number, ingestTime: number): SentTrade[] {
  const symbols = [
    "AAPL",
    "MSFT",
    "TSLA",
    "NVDA",
    "AMZN",
    "META",
    "GOOG",
    "NFLX",
    "AMD",
    "INTC",
    "BINANCE:BTCUSDT",
    "OANDA:EUR_USD",
  ];
  return symbols.flatMap((s, i) =>
    [3000, 2000, 1000].map((before, k) => ({
      trade: {
        s,
        p: 100 + i + k / 4,
        t: end - before,
        v: s.startsWith("OANDA:") ? 0 : 1 + k,
        c: null,
        ingestTime,
        connectionId: "finality",
        frameSeq: i * 3 + k + 1,
        tradeIndex: 0,
      },
      seq: i * 3 + k,
    }))
  );
}

/** The stored intervals whose windows end at `end` (1m, 5m and 1h at an hour mark). */
function intervalsEndingAt(end: number): Interval[] {
  return INTERVALS.filter((interval) => end % INTERVAL_MS[interval] === 0);
}

/** `is_final` and `trade_count` of each symbol's window of every interval ending at `end`. */
async function windowsEndingAt(
  client: cassandra.Client,
  symbols: readonly string[],
  end: number,
): Promise<Map<string, { final: boolean; count: number }>> {
  const out = new Map<string, { final: boolean; count: number }>();
  for (const interval of intervalsEndingAt(end)) {
    const start = end - INTERVAL_MS[interval];
    for (const symbol of symbols) {
      const row = (await client.execute(
        `SELECT is_final, trade_count FROM ${GOLD_TABLE[interval]}
          WHERE symbol = ? AND bucket = ? AND window_start = ?`,
        [
          symbol,
          cassandra.types.LocalDate.fromString(goldBucket(start, interval)),
          new Date(start),
        ],
        { prepare: true },
      )).first();
      if (row) {
        out.set(`${interval} ${symbol}`, {
          final: row.get("is_final") === true,
          count: Number(row.get("trade_count")),
        });
      }
    }
  }
  return out;
}

/**
 * Sends {@linkcode openWindowFeed}, waits until gold committed it with every window written and
 * open, calls `kill` (which kills gold and starts what replaces it) and then watches, sending
 * nothing more: every window must become final by its due time (the kill time, plus the 1 s
 * from the last event time to the end, plus the lateness) plus 2 s. Returns how many seconds
 * past that due time the last window became final.
 */
async function assertOpenWindowsFinalizedAfter(
  fleet: Fleet,
  config: Config,
  log: (line: string) => void,
  kill: () => Promise<void>,
): Promise<number> {
  return await withClients(config, async ({ admin, producer, client }) => {
    const end = hourBucket(Date.now()) - 2 * HOUR;
    const feed = openWindowFeed(end, Date.now());
    const symbols = [...new Set(feed.map((f) => f.trade.s))];
    await produceFeed(producer, config.kafka.topics.raw, feed);
    await guarded(
      fleet,
      waitFor("gold to commit every trade", async () => {
        return (await committed(admin, config, "gold")) >= feed.length;
      }, { timeoutMs: 90_000, intervalMs: 50 }),
    );
    const windowCount = symbols.length * intervalsEndingAt(end).length;
    const before = await windowsEndingAt(client, symbols, end);
    assert.equal(before.size, windowCount, "every window has its row");
    assert.ok([...before.values()].every((w) => !w.final), "every window is open at the kill");
    const killedAt = Date.now();
    await kill();
    const due = killedAt + 1000 + FINALITY_LATENESS_MS;
    log(`gold killed; windows fall due in ${((due - Date.now()) / 1000).toFixed(1)} s`);
    const finalAt = new Map<string, number>();
    await guarded(
      fleet,
      waitFor("every window to be final (or 20 s past due)", async () => {
        const now = Date.now();
        for (const [key, w] of await windowsEndingAt(client, symbols, end)) {
          if (w.final && !finalAt.has(key)) finalAt.set(key, now);
        }
        return finalAt.size === windowCount || now > due + 20_000;
      }, { timeoutMs: 120_000, intervalMs: 100 }),
    );
    const late = Math.max(...[...finalAt.values()].map((t) => t - due)) / 1000;
    log(
      `${finalAt.size} of ${windowCount} windows final; last ${
        late.toFixed(2)
      } s past due (allowed 2 s)`,
    );
    assert.equal(finalAt.size, windowCount, "every window became final");
    assert.ok(late <= 2, `the last window became final ${late.toFixed(2)} s past due`);
    const after = await windowsEndingAt(client, symbols, end);
    for (const [key, w] of after) assert.equal(w.count, 3, `${key}: every trade, once`);
    return late;
  });
}

Deno.test({
  name: "gold killed with windows open and restarted finalizes them on time with nothing more sent",
  ...opts,
  async fn() {
    const log = progress("finality after restart");
    const lateness = { GOLD_ALLOWED_LATENESS_MS: String(FINALITY_LATENESS_MS) };
    await withFleet("finality-restart", lateness, async (fleet, config) => {
      for (const stage of STAGES) await spawnStage(fleet, stage, stage);
      let gold = fleet.processes.find((p) => p.stage === "gold")!;
      await assertOpenWindowsFinalizedAfter(fleet, config, log, async () => {
        await killStage(gold);
        gold = await spawnStage(fleet, "gold", "gold");
      });
    });
  },
});

Deno.test({
  name: "the surviving gold instance finalizes the windows a killed instance left open",
  ...opts,
  async fn() {
    const log = progress("finality after rebalance");
    const lateness = { GOLD_ALLOWED_LATENESS_MS: String(FINALITY_LATENESS_MS) };
    await withFleet("finality-rebalance", lateness, async (fleet, config) => {
      for (const stage of ["bronze", "silver"] as const) await spawnStage(fleet, stage, stage);
      const a = await spawnStage(fleet, "gold", "gold-a");
      await spawnStage(fleet, "gold", "gold-b");
      await withClients(config, ({ admin }) => waitForTwoMembers(fleet, admin, config, "gold"));
      await assertOpenWindowsFinalizedAfter(fleet, config, log, () => killStage(a));
    });
  },
});
