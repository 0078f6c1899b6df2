/**
 * Pipeline benchmark: the whole pipeline on this machine, every part its own OS process: the
 * simulator -> the producer -> Kafka -> the bronze, silver and gold stages -> Cassandra. Each
 * step runs one rate on fresh topics, consumer groups and keyspace (dropped afterwards), with
 * fresh processes, for a warm-up and then `--duration-s` measured seconds, and reports:
 *
 * - whether the consumer lag of every stage's group stayed bounded (the criterion is printed;
 *   see `describeCriterion()` in `pipeline_stats.ts`) while the producer delivered the rate;
 *   rates are stepped up and the run stops at the first one that is not sustained;
 * - p50/p99 from ingest to the silver row (`pipeline_ingest_to_silver_seconds`, the delta of the
 *   silver worker's histogram between the end of the warm-up and the end of the step), and the
 *   same from a sample of silver rows in Cassandra (`stored_at - ingest_time`: `stored_at` is
 *   taken when the batch starts, before its writes, so that figure is a lower bound and the
 *   histogram is the one to go by);
 * - the delay from a window's watermark to its final gold row
 *   (`pipeline_gold_watermark_to_final_seconds`, whole run; 5-minute windows all finalize once
 *   per 5 minutes of event time, which the simulator stamps from the wall clock, so a run of
 *   300 s sees one boundary, with `GOLD_ALLOWED_LATENESS_MS` = `--lateness-ms`);
 * - with `--live-page`: p50/p99 from a trade's ingest to the market page's `update` event that
 *   first shows it in its candle, as a client of `/api/stream` on a status process of the step
 *   receives it, and of the same trades to gold's row write and to the candle update's arrival
 *   at a consumer of the bench's own (`live_page_latency.ts`; over the measured span); the
 *   status process's CPU and memory are then measured with the others;
 * - CPU (percent of one core, over the measured span) and peak resident memory (VmRSS, whole
 *   step) of every process, Kafka's and Cassandra's JVMs included, the machine's CPU and load;
 * - Cassandra's own coordinator write latency per table and its busiest thread pools.
 *
 * Worker metrics are read from the metrics topic as the status endpoint reads them
 * (`createCollector`), lag from Kafka (`consumerLag`). SIGINT/SIGTERM stop the children (SIGTERM,
 * then SIGKILL after a grace period), drop the step's topics and keyspace, and exit 130.
 *
 *   deno run -A bench/pipeline_bench.ts [--rates 5000,10000,20000,30000] [--duration-s 300]
 *     [--warmup-s 20] [--latency-rate 5000] [--symbols 40] [--lateness-ms 2000] [--seed 1]
 *     [--log-level warn] [--worker-v8-flags --max-old-space-size=96] [--label name]
 *     [--stage-cpu-prof] [--out .artifacts/pipeline_bench.json]
 *   deno run -A bench/pipeline_bench.ts --report .artifacts/pipeline_bench.json   # print it again
 *
 * The producer and the stages run with their own heap flags (`shared/process/role.ts`), as
 * `deno task start` runs them, so their memory is what it is there; `--worker-v8-flags` replaces
 * them ("" for none).
 *
 * Writes `.artifacts/pipeline_bench.json` (or `--out`); the children's logs go to
 * `.artifacts/pipeline_bench/<start time>/<rate>/<process>.log`, and with `--stage-cpu-prof` each
 * stage's V8 CPU profile (`deno run --cpu-prof`, written when it stops) to
 * `<rate>/prof-<stage>/`. Run it on a quiet machine:
 * the report lists what else was running.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type cassandra from "cassandra-driver";
import type { Admin } from "kafkajs";
import { createCassandraClient } from "../shared/cassandra.ts";
import { type Config, isolatedNames, loadConfig } from "../shared/config.ts";
import { createKafka, hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { delay } from "../shared/delay.ts";
import { withTimeout } from "../local_services/_util.ts";
import { createLogger, describeError, type Logger } from "../shared/log.ts";
import { roleEnv, type RoleName, roleProcess } from "../shared/process/role.ts";
import { type ProcessExit, type RunningProcess, spawnProcess } from "../shared/process/spawn.ts";
import type { MetricsSnapshot } from "../shared/metrics.ts";
import type { WorkerRole } from "../shared/types.ts";
import { type Collector, createCollector, type WorkerView } from "../shared/report_collector.ts";
import { deprovision, provision } from "../shared/provision.ts";
import { randomId } from "../shared/random.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { createWireCodec } from "../shared/wire.ts";
import {
  DEFAULT_LAG_CRITERION,
  describeCriterion,
  type HistogramData,
  histogramDelta,
  histogramOf,
  histogramQuantile,
  judgeLag,
  type LagSample,
  type LagVerdict,
  sampleSummary,
  seriesSum,
} from "./pipeline_stats.ts";
import { CLOCK_TICKS, cpuTicks, machineTicks, rssBytes, servicePid } from "./proc_stats.ts";
import { groupIdOf, STAGES, stageSubscriptions } from "../shared/topology.ts";
import { consumerLag } from "../shared/lag.ts";
import { INTERVALS } from "../shared/gold_table.ts";
import { benchSymbols } from "./symbols.ts";
import {
  type CandleUpdateWatcher,
  type LivePageLatency,
  livePageLatency,
  type LivePageWatcher,
  type PathLatency,
  watchCandleUpdates,
  watchLivePage,
} from "./live_page_latency.ts";

const ROOT = new URL("../", import.meta.url);
/** How long a child gets between SIGTERM and SIGKILL. */
const GRACE_MS = 15_000;
/** The producer must have delivered this share of the target rate. */
const DELIVERED_SHARE = 0.98;

/** The processes measured; `status` only runs with `--live-page`. */
type ProcessName = "simulator" | WorkerRole | "kafka" | "cassandra" | "status";
const PROCESS_NAMES: readonly ProcessName[] = [
  "simulator",
  "producer",
  "bronze",
  "silver",
  "gold",
  "kafka",
  "cassandra",
  "status",
];

// --- /proc readers (the same reading as bench/producer_bench.ts's cpuTicks/machineTicks) ------

function loadAverage(): number[] {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
}

/** This process and its ancestors (the `deno` launcher, a shell, `timeout`...). */
function ownLineage(): Set<number> {
  const out = new Set<number>();
  for (let pid = Deno.pid; pid > 1 && !out.has(pid);) {
    out.add(pid);
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      break;
    }
  }
  return out;
}

/** Other `deno test`/`deno run` processes on the machine (someone else's work), by pid. */
function otherDenoProcesses(ours: ReadonlySet<number>): string[] {
  const lineage = ownLineage();
  const out: string[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || ours.has(pid) || lineage.has(pid)) continue;
    try {
      const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
      const i = args.findIndex((a) => /(^|\/)deno$/.test(a));
      if (i >= 0 && (args[i + 1] === "test" || args[i + 1] === "run")) {
        out.push(`${pid} ${args.slice(i + 1).join(" ").slice(0, 160)}`);
      }
    } catch { /* gone */ }
  }
  return out;
}

// --- child processes ---------------------------------------------------------------------------

/** One child process of the benchmark; its output goes to `logPath`. */
interface Child {
  readonly name: ProcessName;
  readonly pid: number;
  readonly process: RunningProcess;
  readonly logPath: string;
  /** Resolves once it exited and its log is written. */
  readonly ended: Promise<ProcessExit>;
  status?: ProcessExit;
  stopping: boolean;
}

/** Every child still to be reaped, for the signal handler. */
const children = new Set<Child>();

/**
 * Starts `role` with `env` added to ours, with its own heap flags (`roleProcess`) unless `v8Flags`
 * replaces them ("": none). When `ready`
 * is given, resolves with its first match in one of the child's lines (and throws if the child
 * exits before).
 */
async function spawnRole(
  role: RoleName,
  options: {
    env: Record<string, string>;
    logDir: string;
    args?: readonly string[];
    ready?: RegExp;
    v8Flags?: string | undefined;
    /** Directory for a `--cpu-prof` profile of the child; none when absent. */
    cpuProfDir?: string;
  },
): Promise<{ child: Child; match: RegExpExecArray | null }> {
  const logPath = `${options.logDir}/${role}.log`;
  const file = await Deno.open(logPath, { create: true, append: true });
  const found = Promise.withResolvers<RegExpExecArray | null>();
  if (!options.ready) found.resolve(null);
  const encoder = new TextEncoder();
  const process = spawnProcess(
    roleProcess(role, {
      env: roleEnv({ overrides: options.env }),
      args: options.args ?? [],
      ...(options.v8Flags === undefined ? {} : { v8Flags: options.v8Flags }),
      denoFlags: options.cpuProfDir === undefined
        ? []
        : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`],
      cwd: ROOT.pathname,
    }),
    {
      onLine: (line) => {
        file.writeSync(encoder.encode(`${line}\n`));
        const match = options.ready?.exec(line);
        if (match) found.resolve(match);
      },
    },
  );
  const child: Child = {
    name: role,
    pid: process.pid,
    process,
    logPath,
    stopping: false,
    ended: process.exited.then((status) => {
      file.close();
      child.status = status;
      children.delete(child);
      found.reject(
        new Error(`${role} exited (code ${status.code}) before it was ready; see ${logPath}`),
      );
      return status;
    }),
  };
  children.add(child);
  found.promise.catch(() => {});
  return {
    child,
    match: await within(found.promise, 120_000, `${role} (its ready line, see ${logPath})`),
  };
}

/** SIGTERM, then SIGKILL whatever is left after `graceMs`; resolves when all have exited. */
async function stopChildren(list: readonly Child[], graceMs = GRACE_MS): Promise<void> {
  const alive = list.filter((c) => c.status === undefined);
  for (const child of alive) child.stopping = true;
  await Promise.all(alive.map((c) => c.process.stop(graceMs)));
  await Promise.all(alive.map((c) => c.ended));
}

// --- one step ----------------------------------------------------------------------------------

interface Settings {
  readonly durationS: number;
  readonly warmupS: number;
  readonly symbols: readonly string[];
  readonly latenessMs: number;
  readonly seed: number;
  readonly logLevel: string;
  /**
   * V8 flags replacing the producer's and the stages' own (`--v8-flags=`; "" for none); by
   * default they run with theirs, as everywhere else.
   */
  readonly workerV8Flags: string | undefined;
  /** Write each stage's CPU profile into its step's log directory. */
  readonly stageCpuProf: boolean;
  /** Names the run in the JSON (e.g. "before", "after"). */
  readonly label: string;
  /** Start a status process and measure ingest -> live page event (`--live-page`). */
  readonly livePage: boolean;
  readonly logRoot: string;
}

/** The latest report of each role (the one worker of that role in a step). */
function latestByRole(collector: Collector): Map<WorkerRole, WorkerView> {
  const out = new Map<WorkerRole, WorkerView>();
  for (const view of collector.workers()) {
    const current = out.get(view.role);
    if (!current || view.lastReport > current.lastReport) out.set(view.role, view);
  }
  return out;
}

interface Mark {
  readonly at: number;
  readonly reports: Map<WorkerRole, WorkerView>;
  readonly cpu: Map<ProcessName, number>;
  readonly machine: { busy: number; total: number };
  readonly simulatorSent: number;
}

interface LatencyFigures {
  readonly count: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs?: number | null;
  /** True when p99 lies past the largest finite bucket (it is then that bucket's bound). */
  readonly p99AboveBuckets?: boolean;
}

interface ProcessFigures {
  readonly pid: number | null;
  readonly cpuPct: number | null;
  readonly rssMaxMiB: number | null;
}

interface StepResult {
  readonly rate: number;
  readonly measuredS: number;
  readonly rates: {
    readonly simulatorSent: number;
    readonly producerAcked: number;
    readonly producerDropped: number;
    readonly bronzeIn: number;
    readonly silverIn: number;
    readonly goldIn: number;
  };
  readonly lag: readonly LagVerdict[];
  /** Mean records per batch each stage made durable over the measured span. */
  readonly batchRecords: Readonly<Record<string, number>>;
  readonly producer: {
    readonly produceLatencyP50Ms: number | null;
    readonly produceLatencyP99Ms: number | null;
    readonly bufferMaxTrades: number;
  };
  readonly ingestToSilver: LatencyFigures;
  readonly ingestToSilverFromCassandra: LatencyFigures;
  /** Trade ingest to the market page's event that first shows it (`live_page_latency.ts`). */
  readonly ingestToLivePage: LivePageLatency | null;
  readonly watermarkToFinal: Readonly<Record<string, LatencyFigures>>;
  readonly batchDuration: Readonly<Record<string, LatencyFigures>>;
  /** One Cassandra write request as the stage saw it (`pipeline_cassandra_write_duration_seconds`). */
  readonly cassandraWrite: Readonly<Record<string, LatencyFigures>>;
  readonly stageRetries: Readonly<Record<string, number>>;
  readonly deadLetters: number;
  readonly goldLateTrades: number;
  readonly processes: Readonly<Record<string, ProcessFigures>>;
  readonly machine: {
    readonly cpuPct: number;
    /** Machine CPU not used by the processes above (other people's work), % of all cores. */
    readonly otherCpuPct: number;
    readonly loadAverageStart: readonly number[];
    readonly loadAverageEnd: readonly number[];
    readonly otherDenoProcesses: readonly string[];
  };
  readonly cassandra: {
    readonly coordinatorWriteLatency: readonly {
      table: string;
      p50Ms: number;
      p99Ms: number;
      maxMs: number;
      perSecond: number;
    }[];
    readonly threadPoolsMaxPending: Readonly<Record<string, number>>;
  };
  readonly sustained: boolean;
  readonly why: string;
}

function ms(seconds: number | null | undefined): number | null {
  return seconds === null || seconds === undefined ? null : Math.round(seconds * 10_000) / 10;
}

function latencyFrom(h: HistogramData | undefined): LatencyFigures {
  const p99 = histogramQuantile(h, 0.99);
  return {
    count: h?.count ?? 0,
    p50Ms: ms(histogramQuantile(h, 0.5)?.seconds),
    p99Ms: ms(p99?.seconds),
    p99AboveBuckets: p99?.above ?? false,
  };
}

function snapshotOf(mark: Mark, role: WorkerRole): MetricsSnapshot | undefined {
  return mark.reports.get(role)?.snapshot;
}

/** How much a counter grew between two marks, and over how many seconds of report time. */
function counterDelta(
  a: Mark,
  b: Mark,
  role: WorkerRole,
  name: string,
): { delta: number; seconds: number } {
  const before = a.reports.get(role);
  const after = b.reports.get(role);
  if (!before || !after || after.lastReport <= before.lastReport) return { delta: 0, seconds: 0 };
  return {
    delta: seriesSum(after.snapshot, name) - seriesSum(before.snapshot, name),
    seconds: (after.lastReport - before.lastReport) / 1000,
  };
}

/** Per-second rate of a counter between two marks, by the reports' own times. */
function counterRate(a: Mark, b: Mark, role: WorkerRole, name: string): number {
  const { delta, seconds } = counterDelta(a, b, role, name);
  return seconds === 0 ? 0 : Math.round(delta / seconds);
}

/** Who may exit only when told to. */
function exitedByItself(started: readonly Child[]): Child | undefined {
  return started.find((c) => c.status !== undefined && !c.stopping);
}

/**
 * `promise`, or an error naming `what` once `ms` passed: a step never waits without bound on a
 * server or a child (it fails, and says on what).
 */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until each of `roles` reports as up, failing fast when a child exits. */
async function waitForRoles(
  collector: Collector,
  roles: readonly WorkerRole[],
  started: readonly Child[],
  signal: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const up = latestByRole(collector);
    if (roles.every((r) => up.get(r)?.up)) return;
    const dead = exitedByItself(started);
    if (dead) throw new Error(`${dead.name} exited before reporting; see ${dead.logPath}`);
    if (signal.aborted) throw new Error("interrupted");
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${roles.join(", ")} to report; reporting: ${
          [...up.keys()].join(", ") || "none"
        }`,
      );
    }
    await delay(250, signal);
  }
}

/**
 * The processes of one step: stages, the status process (for the market page's event stream),
 * then the simulator at `rate`, then the producer.
 */
async function startPipeline(
  rate: number,
  settings: Settings,
  env: Record<string, string>,
  logDir: string,
  collector: Collector,
  started: Child[],
  signal: AbortSignal,
): Promise<
  { producer: Child; simulator: Child; controlUrl: string; statusUrl: string | undefined }
> {
  // The stages first, so nothing the producer writes waits for a consumer to exist.
  for (const stage of STAGES) {
    const cpuProfDir = settings.stageCpuProf ? `${logDir}/prof-${stage}` : undefined;
    started.push(
      (await spawnRole(stage, {
        env,
        logDir,
        v8Flags: settings.workerV8Flags,
        ...(cpuProfDir === undefined ? {} : { cpuProfDir }),
      })).child,
    );
  }
  await waitForRoles(collector, STAGES, started, signal);
  const status = !settings.livePage ? undefined : await spawnRole("status", {
    // Its address is on an info line.
    env: {
      ...env,
      STATUS_HOST: "127.0.0.1",
      STATUS_PORT: "0",
      STATUS_TOKEN: "",
      LOG_LEVEL: "info",
    },
    logDir,
    ready: /listening on (http:\/\/\S+)/,
  });
  if (status) started.push(status.child);
  const simulator = await spawnRole("simulator", {
    args: [
      "--port",
      "0",
      "--rate",
      String(rate),
      "--seed",
      String(settings.seed),
      "--symbols-limit",
      String(Math.max(50, settings.symbols.length)),
    ],
    env: {},
    logDir,
    ready: /listening url=(ws:\/\/\S+) control=(http:\/\/\S+)/,
  });
  started.push(simulator.child);
  const { child: producer } = await spawnRole("producer", {
    env: { ...env, FINNHUB_WS_URL: simulator.match![1]! },
    logDir,
    v8Flags: settings.workerV8Flags,
  });
  started.push(producer);
  await waitForRoles(collector, ["producer", ...STAGES], started, signal);
  return {
    producer,
    simulator: simulator.child,
    controlUrl: simulator.match![2]!,
    statusUrl: status === undefined ? undefined : status.match![1]!,
  };
}

/** What is sampled while a step runs. */
interface Samples {
  readonly rssMax: Map<ProcessName, number>;
  readonly lag: LagSample[];
  readonly poolsMaxPending: Record<string, number>;
  /** Other people's `deno test`/`deno run` processes seen while the step ran. */
  readonly others: Set<string>;
  /** Most trades the producer held in its buffer, as its reports said. */
  producerBufferMax: number;
}

/** What {@linkcode sampleFor} reads from. */
interface Probes {
  readonly pids: ReadonlyMap<ProcessName, number | null>;
  readonly admin: Admin;
  readonly subscriptions: readonly { group: string; topic: string }[];
  readonly session: cassandra.Client;
  readonly collector: Collector;
  readonly started: readonly Child[];
  readonly signal: AbortSignal;
}

/**
 * For `seconds`: memory of every process each second, consumer lag every 2 s (kept in
 * `samples.lag` when `keepLag`), Cassandra's pending tasks per thread pool every 5 s. Throws
 * when a child exits by itself.
 */
async function sampleFor(
  seconds: number,
  probes: Probes,
  samples: Samples,
  options: { keepLag: boolean },
): Promise<void> {
  const until = performance.now() + seconds * 1000;
  for (let tick = 0; performance.now() < until && !probes.signal.aborted; tick++) {
    const dead = exitedByItself(probes.started);
    if (dead) {
      throw new Error(
        `${dead.name} exited by itself (code ${dead.status!.code}); see ${dead.logPath}`,
      );
    }
    const producerReport = latestByRole(probes.collector).get("producer")?.snapshot;
    samples.producerBufferMax = Math.max(
      samples.producerBufferMax,
      seriesSum(producerReport, "pipeline_producer_buffer_depth_trades"),
    );
    for (const [name, pid] of probes.pids) {
      const rss = pid === null ? NaN : rssBytes(pid);
      if (Number.isFinite(rss)) {
        samples.rssMax.set(name, Math.max(samples.rssMax.get(name) ?? 0, rss));
      }
    }
    if (tick % 2 === 0) {
      const byGroup: Record<string, number> = {};
      const lags = await within(
        consumerLag(probes.admin, probes.subscriptions),
        60_000,
        "Kafka (consumer lag)",
      );
      for (const l of lags) {
        byGroup[l.group] = (byGroup[l.group] ?? 0) + l.lag;
      }
      if (options.keepLag) samples.lag.push({ at: Date.now(), byGroup });
    }
    if (tick % 5 === 0) {
      const ours = new Set(probes.started.map((c) => c.pid));
      for (const other of otherDenoProcesses(ours)) samples.others.add(other);
      const pools = await probes.session.execute(
        "SELECT name, pending_tasks FROM system_views.thread_pools",
      ).catch(() => undefined);
      for (const row of pools?.rows ?? []) {
        const name = String(row.get("name"));
        const pending = Number(row.get("pending_tasks"));
        samples.poolsMaxPending[name] = Math.max(samples.poolsMaxPending[name] ?? 0, pending);
      }
    }
    await delay(Math.max(0, Math.min(1000, until - performance.now())), probes.signal);
  }
}

/** The figures at one moment: the workers' latest reports, CPU ticks, the simulator's count. */
async function takeMark(
  collector: Collector,
  pids: ReadonlyMap<ProcessName, number | null>,
  controlUrl: string,
): Promise<Mark> {
  const cpu = new Map<ProcessName, number>();
  for (const [name, pid] of pids) if (pid !== null) cpu.set(name, cpuTicks(pid));
  const stats = await within(
    fetch(`${controlUrl}stats`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.json()),
    10_000,
    "the simulator's /control/stats",
  );
  return {
    at: Date.now(),
    reports: latestByRole(collector),
    cpu,
    machine: machineTicks(),
    simulatorSent: stats.tradesSent as number,
  };
}

/** Cassandra's coordinator write latency of the keyspace's tables (a recent, decaying view). */
async function coordinatorWriteLatency(
  session: cassandra.Client,
  keyspace: string,
): Promise<StepResult["cassandra"]["coordinatorWriteLatency"]> {
  const result = await session.execute(
    "SELECT * FROM system_views.coordinator_write_latency WHERE keyspace_name = ?",
    [keyspace],
  ).catch(() => undefined);
  return (result?.rows ?? []).map((row) => ({
    table: String(row.get("table_name")),
    p50Ms: Number(row.get("p50th_ms")),
    p99Ms: Number(row.get("p99th_ms")),
    maxMs: Number(row.get("max_ms")),
    perSecond: Math.round(Number(row.get("per_second"))),
  })).filter((r) => r.perSecond > 0 || r.p99Ms > 0);
}

/**
 * Stops the live-page watchers, each given at most 15 s: a run once sat idle for minutes after its
 * measured span with the page's stream still open, and a stop that hangs is named in the log
 * instead of holding up the bench.
 */
async function stopWatchers(
  watcher: LivePageWatcher | undefined,
  updates: CandleUpdateWatcher | undefined,
  log: Logger,
): Promise<void> {
  const bounded = async (name: string, stop: (() => Promise<void>) | undefined) => {
    if (stop === undefined) return;
    const stopped = await withTimeout(stop().then(() => true), 15_000, false);
    if (!stopped) log.warn(`${name} did not stop within 15 s; going on without it`);
  };
  await bounded("the live-page watcher", watcher && (() => watcher.stop()));
  await bounded("the candle-updates consumer", updates && (() => updates.stop()));
}

/** The step's figures from the marks at the end of the warm-up (`a`) and of the step (`b`). */
function stepFigures(
  rate: number,
  a: Mark,
  b: Mark,
  samples: Samples,
  pids: ReadonlyMap<ProcessName, number | null>,
  groups: readonly string[],
):
  & Omit<
    StepResult,
    "ingestToSilverFromCassandra" | "ingestToLivePage" | "cassandra" | "machine"
  >
  & {
    machineCpuPct: number;
    knownCpuPct: number;
  } {
  const seconds = (b.at - a.at) / 1000;
  const processes: Record<string, ProcessFigures> = {};
  let knownCpuPct = 0;
  for (const name of PROCESS_NAMES) {
    const before = a.cpu.get(name);
    const after = b.cpu.get(name);
    const cpuPct = before === undefined || after === undefined || !Number.isFinite(after)
      ? null
      : Math.round((after - before) / CLOCK_TICKS / seconds * 100);
    knownCpuPct += cpuPct ?? 0;
    const rss = samples.rssMax.get(name);
    processes[name] = {
      pid: pids.get(name) ?? null,
      cpuPct,
      rssMaxMiB: rss === undefined ? null : Math.round(rss / 1048576),
    };
  }
  const delta = (role: WorkerRole, name: string) =>
    histogramDelta(histogramOf(snapshotOf(a, role), name), histogramOf(snapshotOf(b, role), name));
  const batchDuration: Record<string, LatencyFigures> = {};
  const cassandraWrite: Record<string, LatencyFigures> = {};
  const stageRetries: Record<string, number> = {};
  const batchRecords: Record<string, number> = {};
  for (const stage of STAGES) {
    const batches = counterDelta(a, b, stage, "pipeline_stage_batches_total").delta;
    const records = counterDelta(a, b, stage, "pipeline_stage_messages_in_total").delta;
    batchRecords[stage] = batches === 0 ? 0 : Math.round(records / batches);
    batchDuration[stage] = latencyFrom(delta(stage, "pipeline_stage_batch_duration_seconds"));
    cassandraWrite[stage] = latencyFrom(delta(stage, "pipeline_cassandra_write_duration_seconds"));
    stageRetries[stage] = seriesSum(snapshotOf(b, stage), "pipeline_stage_retries_total");
  }
  const finalDelay = (interval: string) =>
    latencyFrom(
      histogramOf(snapshotOf(b, "gold"), "pipeline_gold_watermark_to_final_seconds", { interval }),
    );
  const lag = judgeLag(samples.lag, groups, rate);
  const produceLatency = (quantile: string) => {
    const family = snapshotOf(b, "producer")?.families.find((f) =>
      f.name === "pipeline_producer_produce_latency_seconds"
    );
    return family?.series.find((x) => x.labels["quantile"] === quantile)?.value ?? null;
  };
  const rates = {
    simulatorSent: Math.round((b.simulatorSent - a.simulatorSent) / seconds),
    producerAcked: counterRate(a, b, "producer", "pipeline_producer_trades_acked_total"),
    producerDropped: seriesSum(snapshotOf(b, "producer"), "pipeline_producer_trades_dropped_total"),
    bronzeIn: counterRate(a, b, "bronze", "pipeline_stage_messages_in_total"),
    silverIn: counterRate(a, b, "silver", "pipeline_stage_messages_in_total"),
    goldIn: counterRate(a, b, "gold", "pipeline_stage_messages_in_total"),
  };
  const reasons: string[] = [];
  if (rates.producerAcked < rate * DELIVERED_SHARE) {
    reasons.push(
      `the producer delivered ${rates.producerAcked}/s < ${DELIVERED_SHARE * 100}% of ${rate}/s`,
    );
  }
  if (rates.producerDropped > 0) reasons.push(`the producer dropped ${rates.producerDropped}`);
  for (const verdict of lag) if (!verdict.bounded) reasons.push(`${verdict.group}: ${verdict.why}`);
  return {
    rate,
    measuredS: Math.round(seconds),
    rates,
    lag,
    batchRecords,
    producer: {
      produceLatencyP50Ms: ms(produceLatency("0.5")),
      produceLatencyP99Ms: ms(produceLatency("0.99")),
      bufferMaxTrades: samples.producerBufferMax,
    },
    ingestToSilver: latencyFrom(delta("silver", "pipeline_ingest_to_silver_seconds")),
    watermarkToFinal: Object.fromEntries(INTERVALS.map((i) => [i, finalDelay(i)])),
    batchDuration,
    cassandraWrite,
    stageRetries,
    deadLetters: STAGES.reduce(
      (n, stage) => n + seriesSum(snapshotOf(b, stage), "pipeline_dead_letters_total"),
      0,
    ),
    goldLateTrades: seriesSum(snapshotOf(b, "gold"), "pipeline_gold_late_trades_total"),
    processes,
    sustained: reasons.length === 0,
    why: reasons.join("; ") || "ok",
    machineCpuPct: Math.round(
      (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total) * 100,
    ),
    knownCpuPct,
  };
}

/**
 * One step: provisions fresh topics, groups and keyspace, runs the pipeline at `rate` for the
 * warm-up and the measured span, stops every process, and drops what it created.
 */
async function runStep(rate: number, settings: Settings, signal: AbortSignal): Promise<StepResult> {
  const id = randomId();
  const env: Record<string, string> = {
    ...isolatedNames("bench", id),
    GOLD_ALLOWED_LATENESS_MS: String(settings.latenessMs),
    FINNHUB_SYMBOLS: settings.symbols.join(","),
    LOG_LEVEL: settings.logLevel,
  };
  const config = loadConfig({ ...Deno.env.toObject(), ...env });
  const log = createLogger("bench", { level: "warn" });
  const logDir = `${settings.logRoot}/${rate}`;
  await Deno.mkdir(logDir, { recursive: true });
  const loadAverageStart = loadAverage();
  console.log(
    `\n== ${rate} trades/s: keyspace ${config.cassandra.keyspace}, topics bench.${id}.*, ` +
      `logs ${logDir}`,
  );
  const started: Child[] = [];
  let watcher: LivePageWatcher | undefined;
  let updates: CandleUpdateWatcher | undefined;
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: "bench" });
  const admin = kafka.admin();
  const collectorGroup = `${config.kafka.groupPrefix}.status-bench`;
  const updatesGroup = `${config.kafka.groupPrefix}.status-bench-candles`;
  const wire = createWireCodec(createSchemaRegistryClient(config.registry));
  const collector = createCollector({
    kafka,
    topic: config.kafka.topics.metrics,
    groupId: collectorGroup,
    wire,
    log,
  });
  const session = createCassandraClient(config.cassandra, { applicationName: "market-bench" });
  await provision(config);
  try {
    await admin.connect();
    await collector.start();
    const { producer, simulator, controlUrl, statusUrl } = await startPipeline(
      rate,
      settings,
      env,
      logDir,
      collector,
      started,
      signal,
    );
    const pids = new Map<ProcessName, number | null>(
      PROCESS_NAMES.map((name) => [name, started.find((c) => c.name === name)?.pid ?? null]),
    );
    pids.set("kafka", servicePid("kafka"));
    pids.set("cassandra", servicePid("cassandra"));
    const subscriptions = stageSubscriptions(config);
    const probes: Probes = { pids, admin, subscriptions, session, collector, started, signal };
    const samples: Samples = {
      rssMax: new Map(),
      lag: [],
      poolsMaxPending: {},
      others: new Set(),
      producerBufferMax: 0,
    };

    if (statusUrl !== undefined) {
      watcher = watchLivePage(statusUrl);
      updates = watchCandleUpdates({
        kafka,
        topic: config.kafka.topics.candles,
        groupId: updatesGroup,
        wire,
        log,
      });
    }
    await sampleFor(settings.warmupS, probes, samples, { keepLag: false });
    const a = await takeMark(collector, pids, controlUrl);
    await sampleFor(settings.durationS, probes, samples, { keepLag: true });
    const b = await takeMark(collector, pids, controlUrl);
    await stopWatchers(watcher, updates, log);
    if (signal.aborted) throw new Error("interrupted");
    const cassandraLatency = await coordinatorWriteLatency(session, config.cassandra.keyspace);
    const { machineCpuPct, knownCpuPct, ...figures } = stepFigures(
      rate,
      a,
      b,
      samples,
      pids,
      subscriptions.map((s) => s.group),
    );
    // The feed first, so the stages drain what was produced; then the stages.
    await stopChildren([producer, simulator]);
    await stopChildren(started);
    return {
      ...figures,
      ingestToSilverFromCassandra: await silverRowLatency(
        session,
        config,
        settings.symbols,
        a.at,
        b.at,
      ),
      // Trades of the last 3 s of the span may show after the watcher stopped: left out.
      ingestToLivePage: watcher === undefined ? null : await livePageLatency(
        session,
        config.cassandra.keyspace,
        {
          page: watcher.shown,
          events: watcher.events(),
          reconnects: watcher.reconnects(),
          ...(updates ? { goldWritten: updates.written, updateConsumed: updates.consumed } : {}),
        },
        a.at,
        b.at - 3_000,
      ),
      machine: {
        cpuPct: machineCpuPct,
        otherCpuPct: Math.max(
          0,
          Math.round(machineCpuPct - knownCpuPct / navigator.hardwareConcurrency),
        ),
        loadAverageStart,
        loadAverageEnd: loadAverage(),
        otherDenoProcesses: [...samples.others],
      },
      cassandra: {
        coordinatorWriteLatency: cassandraLatency,
        threadPoolsMaxPending: samples.poolsMaxPending,
      },
    };
  } finally {
    await stopWatchers(watcher, updates, log);
    await stopChildren(started);
    await session.shutdown().catch(() => {});
    await collector.stop().catch(() => {});
    await admin.deleteGroups([
      ...STAGES.map((s) => groupIdOf(config, s)),
      collectorGroup,
      ...(updates ? [updatesGroup] : []),
    ])
      .catch(() => {});
    await admin.disconnect().catch(() => {});
    await deprovision(config);
  }
}

/**
 * `stored_at - ingest_time` of up to 2,000 silver rows per symbol and hour with an event time in
 * `[from, to]`. `stored_at` is taken when the silver batch starts, before its writes: a lower
 * bound of the real latency.
 */
async function silverRowLatency(
  session: cassandra.Client,
  config: Config,
  symbols: readonly string[],
  from: number,
  to: number,
): Promise<LatencyFigures> {
  const query = `SELECT ingest_time, stored_at FROM ${config.cassandra.keyspace}.trades_silver
    WHERE symbol = ? AND bucket = ? AND event_time >= ? AND event_time <= ? LIMIT 2000`;
  const delays: number[] = [];
  for (const symbol of symbols) {
    for (let hour = from - from % 3_600_000; hour <= to; hour += 3_600_000) {
      const result = await session.execute(
        query,
        [symbol, new Date(hour), new Date(from), new Date(to)],
        { prepare: true, fetchSize: 2000 },
      );
      for (const row of result.rows) {
        const ingest = (row.get("ingest_time") as Date).getTime();
        const stored = (row.get("stored_at") as Date).getTime();
        delays.push(stored - ingest);
      }
    }
  }
  return sampleSummary(delays);
}

// --- report ------------------------------------------------------------------------------------

function table(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [header, ...rows].map((r) => r.map((c) => (c === null ? "-" : String(c))));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r, n) => {
    const line = r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ");
    return n === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
  }).join("\n");
}

/**
 * CPU time per trade of each process at a step's rate (µs, from its CPU % of one core), their
 * sum, and the rate at which that sum would fill every core of the machine: the ceiling of this
 * machine while each part costs what it costs.
 */
function cpuBudget(step: StepResult): {
  rate: number;
  perTradeUs: Record<string, number>;
  totalUs: number;
  ceilingRate: number;
} {
  const perTradeUs: Record<string, number> = {};
  let totalUs = 0;
  for (const [name, p] of Object.entries(step.processes)) {
    if (p.cpuPct === null) continue;
    perTradeUs[name] = Math.round(p.cpuPct / 100 * 1e6 / step.rate);
    totalUs += perTradeUs[name]!;
  }
  return {
    rate: step.rate,
    perTradeUs,
    totalUs,
    ceilingRate: Math.round(navigator.hardwareConcurrency * 1e6 / totalUs),
  };
}

/** A first reading of what limits the rate, from the figures of the failed step. */
function diagnose(step: StepResult): string {
  const notes: string[] = [];
  const laggards = step.lag.filter((l) => !l.bounded).map((l) => l.group.split(".").at(-1));
  if (laggards.length > 0) notes.push(`lag not bounded in: ${laggards.join(", ")}`);
  if (step.rates.producerAcked < step.rate * DELIVERED_SHARE) {
    notes.push(`the producer delivered only ${step.rates.producerAcked}/s`);
  }
  const busy = Object.entries(step.processes)
    .filter(([, p]) => (p.cpuPct ?? 0) >= 85)
    .map(([name, p]) => `${name} ${p.cpuPct}%`);
  if (busy.length > 0) notes.push(`processes near or above one core: ${busy.join(", ")}`);
  if (step.machine.cpuPct >= 90) {
    notes.push(`the machine's CPU was ${step.machine.cpuPct}% busy (all cores)`);
  }
  const pending = Object.entries(step.cassandra.threadPoolsMaxPending).filter(([, n]) => n > 0);
  if (pending.length > 0) {
    notes.push(
      `Cassandra queued work: ${pending.map(([name, n]) => `${name} ${n} pending`).join(", ")}`,
    );
  }
  const slowest = [...step.cassandra.coordinatorWriteLatency].sort((x, y) => y.p99Ms - x.p99Ms)[0];
  if (slowest) {
    notes.push(`Cassandra write p99 ${slowest.p99Ms} ms (${slowest.table}, coordinator)`);
  }
  return notes.join("; ");
}

function printReport(summary: Summary): void {
  const { steps } = summary;
  const pct = (verdicts: readonly LagVerdict[], stage: string) => {
    const v = verdicts.find((l) => l.group.endsWith(`.${stage}`));
    return v ? `${v.maxS}/${v.lastMeanS}` : null;
  };
  console.log(
    `\nLag criterion: ${summary.criterion}; and the producer delivered >= ${
      DELIVERED_SHARE * 100
    }% of the target rate with no drops.`,
  );
  console.log("\nThroughput (rates per second over the measured span; lag: max/last-minute mean,");
  console.log("in seconds of input)\n");
  console.log(table(
    [
      "target/s",
      "offered",
      "acked",
      "bronze",
      "silver",
      "gold",
      "lag bronze",
      "lag silver",
      "lag gold",
      "sustained",
    ],
    steps.map((s) => [
      s.rate,
      s.rates.simulatorSent,
      s.rates.producerAcked,
      s.rates.bronzeIn,
      s.rates.silverIn,
      s.rates.goldIn,
      pct(s.lag, "bronze"),
      pct(s.lag, "silver"),
      pct(s.lag, "gold"),
      s.sustained ? "yes" : "NO",
    ]),
  ));
  for (const s of steps.filter((s) => !s.sustained)) console.log(`  ${s.rate}/s: ${s.why}`);

  console.log("\nCPU % of one core over the measured span / peak RSS MiB over the step\n");
  console.log(table(
    ["target/s", ...PROCESS_NAMES, "machine", "other", "load 1m"],
    steps.map((s) => [
      s.rate,
      ...PROCESS_NAMES.map((n) => {
        const p = s.processes[n];
        return p ? `${p.cpuPct ?? "-"}% ${p.rssMaxMiB ?? "-"}M` : null;
      }),
      `${s.machine.cpuPct}%`,
      `${s.machine.otherCpuPct}%`,
      s.machine.loadAverageEnd[0],
    ]),
  ));

  console.log("\nLatency, ms: p50/p99 (observations)\n");
  const pair = (f: LatencyFigures) =>
    f.count === 0 ? "-" : `${f.p50Ms}/${f.p99Ms}${f.p99AboveBuckets ? "+" : ""} (${f.count})`;
  const livePair = (f: PathLatency | null | undefined) =>
    !f
      ? "-"
      : `${pair({ count: f.count, p50Ms: f.p50Ms, p99Ms: f.p99Ms })}${
        f.notShown > 0 ? ` !${f.notShown}` : ""
      }${f.unmatched > 0 ? ` ?${f.unmatched}` : ""}`;
  console.log(table(
    [
      "target/s",
      "ingest->silver",
      "silver rows: stored_at-ingest",
      "ingest->gold row",
      "ingest->update read",
      "ingest->live page",
      ...INTERVALS.map((i) => `watermark->final ${i}`),
    ],
    steps.map((s) => [
      s.rate,
      pair(s.ingestToSilver),
      pair(s.ingestToSilverFromCassandra),
      livePair(s.ingestToLivePage?.goldWritten),
      livePair(s.ingestToLivePage?.updateConsumed),
      `${livePair(s.ingestToLivePage)}${
        s.ingestToLivePage?.reconnects ? ` ~${s.ingestToLivePage.reconnects}` : ""
      }`,
      ...INTERVALS.map((i) => pair(s.watermarkToFinal[i]!)),
    ]),
  ));
  console.log(
    "  ingest->silver: silver's histogram, delta from the end of the warm-up (the figure to use).\n" +
      "  silver rows: sampled from Cassandra; stored_at is set when the batch starts, before its\n" +
      "  writes, so it is a lower bound. watermark->final: gold's histogram over the whole step.\n" +
      "  ingest->live page: each trade ingested in the span to the first /api/stream `update`\n" +
      "  event showing it in its 1m candle, as the bench's stream client received it; `!n`: n\n" +
      "  trades never shown before the span ended, `?n`: n events not matching silver, `~n`: the\n" +
      "  stream ended or failed n times and was opened again (after 2 s, as the page does). The same\n" +
      "  trades to the candle update that first counted them: its updatedAt (gold's row write, as\n" +
      "  it starts) and its arrival at the bench's own consumer of the candle-updates topic.",
  );

  console.log(
    "\nStages (b/s/g = bronze/silver/gold; write = one Cassandra request as the stage saw it)\n",
  );
  const perStage = (f: (stage: string) => unknown) =>
    STAGES.map((stage) => String(f(stage) ?? "-")).join("/");
  console.log(table(
    [
      "target/s",
      "records/batch",
      "batch p50 ms",
      "batch p99 ms",
      "write p50 ms",
      "write p99 ms",
      "retries",
    ],
    steps.map((s) => [
      s.rate,
      perStage((st) => s.batchRecords[st]),
      perStage((st) => s.batchDuration[st]?.p50Ms),
      perStage((st) => s.batchDuration[st]?.p99Ms),
      perStage((st) => s.cassandraWrite?.[st]?.p50Ms),
      perStage((st) => s.cassandraWrite?.[st]?.p99Ms),
      perStage((st) => s.stageRetries[st]),
    ]),
  ));
  console.log(
    "\nProducer and Cassandra (coordinator latency: Cassandra's own, recent, per table)\n",
  );
  console.log(table(
    [
      "target/s",
      "produce p50/p99 ms",
      "buffer max",
      "coordinator write p50/p99 ms",
      "most pending tasks",
    ],
    steps.map((s) => [
      s.rate,
      `${s.producer.produceLatencyP50Ms}/${s.producer.produceLatencyP99Ms}`,
      s.producer.bufferMaxTrades,
      s.cassandra.coordinatorWriteLatency.map((w) => `${w.table} ${w.p50Ms}/${w.p99Ms}`)
        .join(", "),
      Object.entries(s.cassandra.threadPoolsMaxPending).filter(([, n]) => n > 0)
        .map(([name, n]) => `${name} ${n}`).join(", ") || "0",
    ]),
  ));
  for (const s of steps) {
    if (s.machine.otherDenoProcesses.length > 0) {
      console.log(
        `  other work during ${s.rate}/s: ${s.machine.otherDenoProcesses.join("; ")}`,
      );
    }
  }

  console.log("\nTargets");
  for (const t of targetsOf(summary.steps, summary.latencyRate)) {
    const verdict = t.met === null ? "not measured" : t.met ? "met" : "NOT met";
    console.log(`  ${t.target}: ${t.figure} -> ${verdict}`);
  }
  const best = summary.steps.filter((s) => s.sustained).sort((a, b) => b.rate - a.rate)[0];
  if (best) {
    const budget = cpuBudget(best);
    console.log(
      `\nCPU per trade at ${best.rate}/s (µs of one core): ${
        Object.entries(budget.perTradeUs).sort(([, a], [, b]) => b - a)
          .map(([name, us]) => `${name} ${us}`).join(", ")
      }; total ${budget.totalUs} µs -> ${navigator.hardwareConcurrency} cores fill at about ` +
        `${budget.ceilingRate} trades/s`,
    );
  }
  const failed = summary.steps.find((s) => !s.sustained);
  if (failed) {
    console.log(`\nWhat limits the rate (${failed.rate}/s): ${diagnose(failed)}`);
  }
}

interface Summary {
  readonly machine: { cores: number; memoryMiB: number };
  readonly settings: Omit<Settings, "logRoot"> & { partitions: number };
  readonly criterion: string;
  readonly latencyRate: number;
  readonly steps: StepResult[];
  readonly highestSustainedRate: number | null;
  /** Each target of the issue, the figure measured for it, and whether it is met (null: no data). */
  readonly targets: readonly { target: string; figure: string; met: boolean | null }[];
  /** At the highest sustained rate: see {@linkcode cpuBudget}. */
  readonly cpuPerTrade: ReturnType<typeof cpuBudget> | null;
  readonly limit: { rate: number; reading: string } | null;
  readonly interrupted: boolean;
  readonly error?: string;
}

/** Each target of the issue, the figure measured for it, and whether it is met. */
function targetsOf(steps: readonly StepResult[], latencyRate: number): Summary["targets"] {
  const sustainedSteps = steps.filter((s) => s.sustained);
  const highest = sustainedSteps.length === 0
    ? null
    : Math.max(...sustainedSteps.map((s) => s.rate));
  const latencyStep = steps.find((s) => s.rate === latencyRate);
  const ingest = latencyStep?.ingestToSilver;
  const live = latencyStep?.ingestToLivePage;
  // Finality is judged at every sustained rate that saw a 5-minute boundary: the worst p99.
  const finals = sustainedSteps.map((s) => s.watermarkToFinal["5m"]!).filter((f) => f.count > 0);
  const finalP99Ms = finals.length === 0 ? null : Math.max(...finals.map((f) => f.p99Ms!));
  // Memory is judged at every rate run, sustained or not: buffers are bounded by design.
  let largest: { name: string; rssMaxMiB: number } | null = null;
  for (const s of steps) {
    for (const name of ["producer", "bronze", "silver", "gold"]) {
      const rss = s.processes[name]?.rssMaxMiB ?? 0;
      if (rss > (largest?.rssMaxMiB ?? 0)) {
        largest = { name: `${name} at ${s.rate}/s`, rssMaxMiB: rss };
      }
    }
  }
  return [
    {
      target: ">= 20,000 trades/s sustained",
      figure: `highest sustained ${highest ?? "none"} of ${steps.map((s) => s.rate).join(", ")}/s`,
      met: steps.length === 0 ? null : (highest ?? 0) >= 20_000,
    },
    {
      target: `p99 ingest->silver < 250 ms at ${latencyRate}/s`,
      figure: ingest?.count ? `${ingest.p99Ms}${ingest.p99AboveBuckets ? "+" : ""} ms` : "-",
      met: ingest?.count ? ingest.p99Ms! < 250 && !ingest.p99AboveBuckets : null,
    },
    {
      target: `p99 ingest->live page event < 1 s at ${latencyRate}/s`,
      figure: live?.count ? `${live.p99Ms} ms (${live.notShown} not shown)` : "-",
      met: live?.count ? live.p99Ms! < 1000 && live.notShown === 0 : null,
    },
    {
      target: "final gold row < 1 s after the watermark",
      figure: finalP99Ms === null
        ? "no 5m window finalized at a sustained rate"
        : `worst p99 ${finalP99Ms} ms over ${
          finals.reduce((n, f) => n + f.count, 0)
        } 5m windows (sustained rates)`,
      met: finalP99Ms === null ? null : finalP99Ms < 1000,
    },
    {
      target: "< 200 MB per worker (producer, stages)",
      figure: largest ? `largest ${largest.name}: ${largest.rssMaxMiB} MiB` : "-",
      // MB = 10^6 bytes.
      met: largest ? largest.rssMaxMiB * 1048576 < 200e6 : null,
    },
  ];
}

function summarize(
  steps: StepResult[],
  settings: Settings,
  latencyRate: number,
  partitions: number,
  interrupted: boolean,
  error: string | undefined,
): Summary {
  const sustained = steps.filter((s) => s.sustained).map((s) => s.rate);
  const highest = sustained.length === 0 ? null : Math.max(...sustained);
  const failed = steps.find((s) => !s.sustained);
  const best = steps.filter((s) => s.sustained).sort((a, b) => b.rate - a.rate)[0];
  const { logRoot: _, ...rest } = settings;
  return {
    machine: {
      cores: navigator.hardwareConcurrency,
      memoryMiB: Math.round(Deno.systemMemoryInfo().total / 1048576),
    },
    settings: { ...rest, partitions },
    criterion: describeCriterion(DEFAULT_LAG_CRITERION),
    latencyRate,
    steps,
    highestSustainedRate: highest,
    targets: targetsOf(steps, latencyRate),
    cpuPerTrade: best ? cpuBudget(best) : null,
    limit: failed ? { rate: failed.rate, reading: diagnose(failed) } : null,
    interrupted,
    ...(error ? { error } : {}),
  };
}

// --- main --------------------------------------------------------------------------------------

function positiveNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  }
  return value;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rates: { type: "string", default: "5000,10000,20000,30000" },
      "duration-s": { type: "string", default: "300" },
      "warmup-s": { type: "string", default: "20" },
      "latency-rate": { type: "string", default: "5000" },
      symbols: { type: "string", default: "40" },
      "lateness-ms": { type: "string", default: "2000" },
      seed: { type: "string", default: "1" },
      "log-level": { type: "string", default: "warn" },
      "worker-v8-flags": { type: "string" },
      "stage-cpu-prof": { type: "boolean", default: false },
      label: { type: "string", default: "" },
      "live-page": { type: "boolean", default: false },
      out: { type: "string", default: ".artifacts/pipeline_bench.json" },
      report: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(
      "deno run -A bench/pipeline_bench.ts [--rates 5000,10000,20000,30000] [--duration-s 300]\n" +
        "  [--warmup-s 20] [--latency-rate 5000] [--symbols 40] [--lateness-ms 2000] [--seed 1]\n" +
        "  [--log-level warn] [--worker-v8-flags --max-old-space-size=96] [--label name]\n" +
        "  [--stage-cpu-prof] [--out .artifacts/pipeline_bench.json]\n" +
        "deno run -A bench/pipeline_bench.ts --report .artifacts/pipeline_bench.json",
    );
    return 0;
  }
  if (values.report !== undefined) {
    printReport(JSON.parse(await Deno.readTextFile(values.report)) as Summary);
    return 0;
  }
  const rates = values.rates.split(",").map((r) => positiveNumber("rates", r)).sort((a, b) =>
    a - b
  );
  const latencyRate = positiveNumber("latency-rate", values["latency-rate"]);
  const symbolCount = positiveNumber("symbols", values.symbols);
  const symbols = benchSymbols(symbolCount);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const settings: Settings = {
    durationS: positiveNumber("duration-s", values["duration-s"]),
    warmupS: positiveNumber("warmup-s", values["warmup-s"]),
    symbols,
    latenessMs: Number(values["lateness-ms"]),
    seed: Number(values.seed),
    logLevel: values["log-level"],
    workerV8Flags: values["worker-v8-flags"],
    stageCpuProf: values["stage-cpu-prof"],
    label: values.label,
    livePage: values["live-page"],
    logRoot: new URL(`.artifacts/pipeline_bench/${stamp}`, ROOT).pathname,
  };
  hideKafkajsTimeoutWarning();

  const controller = new AbortController();
  let signals = 0;
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(name, () => {
      if (++signals === 1) {
        console.error(`\n${name}: stopping the children and cleaning up (again to kill at once)`);
        controller.abort();
        return;
      }
      for (const child of children) child.process.kill();
      Deno.exit(130);
    });
  }

  const partitions = loadConfig(Deno.env.toObject()).kafka.partitions;
  console.log(
    `pipeline bench: rates ${
      rates.join(", ")
    }/s, ${settings.warmupS} s warm-up + ${settings.durationS} s ` +
      `measured per rate, latency at ${latencyRate}/s, ${symbols.length} symbols, ${partitions} ` +
      `partitions, GOLD_ALLOWED_LATENESS_MS=${settings.latenessMs}; ${navigator.hardwareConcurrency} cores, ` +
      `load ${loadAverage().join(" ")}`,
  );
  const others = otherDenoProcesses(new Set());
  if (others.length > 0) console.log(`other deno processes running now:\n  ${others.join("\n  ")}`);
  console.log(`lag criterion: ${describeCriterion(DEFAULT_LAG_CRITERION)}`);

  const steps: StepResult[] = [];
  let error: string | undefined;
  const plan = rates.includes(latencyRate) ? rates : [latencyRate, ...rates];
  try {
    for (const rate of plan) {
      if (controller.signal.aborted) break;
      const step = await runStep(rate, settings, controller.signal);
      steps.push(step);
      console.log(
        `${rate}/s: ${step.sustained ? "sustained" : "NOT sustained"} (${step.why}); acked ` +
          `${step.rates.producerAcked}/s, ingest->silver p99 ${step.ingestToSilver.p99Ms} ms`,
      );
      if (!step.sustained && rates.includes(rate)) break;
    }
  } catch (e) {
    error = controller.signal.aborted ? "interrupted" : describeError(e);
    console.error(`bench stopped: ${error}`);
  }
  const summary = summarize(
    steps,
    settings,
    latencyRate,
    partitions,
    controller.signal.aborted,
    error,
  );
  printReport(summary);
  await Deno.mkdir(new URL("./", new URL(values.out, ROOT)), { recursive: true });
  const path = new URL(values.out, ROOT);
  await Deno.writeTextFile(path, JSON.stringify(summary, null, 2) + "\n");
  console.log(`\nwrote ${path.pathname}`);
  if (controller.signal.aborted) return 130;
  return error ? 1 : 0;
}

Deno.exit(await main());
