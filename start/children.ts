/**
 * The children of `deno task start`: each role (`shared/process/role.ts`) run with start's
 * environment plus the config, its secrets and start's pid as supervisor, in its own session
 * (so a Ctrl-C in the terminal reaches only start), supervised with the supervisors' restart
 * policy (`shared/process/supervise.ts`).
 *
 * - Output: every line goes to `.local/start/logs/<name>.log`; WARN and ERROR lines (not the
 *   kafkajs notices every worker prints once) are kept for the view; without a terminal every
 *   line is copied to stderr as `[name] line`, on a terminal only errors before the view shows.
 * - A child that dies before the pipeline is ready fails the run, with its last lines. Once
 *   ready, a death is reported and restarted after the policy's wait; the policy giving up fails
 *   the run. Each stage keeps a warm standby (`processor/stage_standby.ts`, its lines in the
 *   stage's log), promoted at once when the stage dies.
 * - Stop in order: the producer (it flushes to Kafka), then the stages (each finishes its batch
 *   and commits), then the status endpoint and the simulator, each group once the one before it
 *   exited, each child SIGTERM then SIGKILL after its grace.
 *
 * @module
 */
import { type Config, secretEnv } from "../shared/config.ts";
import {
  describeWindow,
  RESTART_POLICY,
  type RestartDecision,
} from "../shared/process/restart_policy.ts";
import { REPOSITORY_ROOT, roleEnv, type RoleName, roleProcess } from "../shared/process/role.ts";
import {
  type ProcessExit,
  type ProcessSpec,
  type RunningProcess,
  spawnProcess,
} from "../shared/process/spawn.ts";
import { supervise } from "../shared/process/supervise.ts";
import { delay } from "../shared/delay.ts";
import { createLogger } from "../shared/log.ts";
import { type StageName, STAGES } from "../shared/topology.ts";
import { createStandby, type Standby, superviseWithStandby } from "../processor/stage_standby.ts";
import { indent, type Output, safeWrite, type Screen, seconds } from "./output.ts";
import type { StopControl } from "./stop.ts";
import type { ChildView } from "./view.ts";

/** Where each child's output goes, as `<name>.log`. */
export const LOG_DIR = `${REPOSITORY_ROOT}.local/start/logs`;

/** kafkajs warnings every worker prints once at start; not problems. */
const KNOWN_NOISE =
  /KafkaJS v2\.0\.0 switched default partitioner|Limiting retries for the idempotent producer/;

/** Stop order: each group stops only after the one before it exited. */
const STOP_ORDER: readonly (readonly RoleName[])[] = [
  ["producer"],
  ["bronze", "silver", "gold"],
  ["status", "simulator"],
];
/** What each child does when asked to stop, and how long it may take before SIGKILL. */
const STOPPING: Readonly<Record<RoleName, { note: string; graceMs: number }>> = {
  producer: { note: " (flushing accepted trades to Kafka)", graceMs: 30_000 },
  bronze: { note: " (finishing its batch, committing offsets)", graceMs: 60_000 },
  silver: { note: " (finishing its batch, committing offsets)", graceMs: 60_000 },
  gold: { note: " (flushing open candles, committing offsets)", graceMs: 60_000 },
  status: { note: "", graceMs: 10_000 },
  simulator: { note: "", graceMs: 10_000 },
};

function isStage(role: RoleName): role is StageName {
  return (STAGES as readonly string[]).includes(role);
}

/** How many WARN/ERROR lines the view keeps. */
const PROBLEMS_KEPT = 20;

/** One supervised child. */
export interface Entry {
  readonly name: RoleName;
  readonly spec: ProcessSpec;
  /** The current run; `null` before the first. */
  process: RunningProcess | null;
  state: ChildView["state"];
  restarts: number;
  /** Resolves once supervision ended. */
  supervised: Promise<void>;
}

/** The pid of the entry's process while it runs. */
export function pidOf(entry: Entry): number | null {
  return entry.process && !entry.process.exit ? entry.process.pid : null;
}

function describeExit(exit: ProcessExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/** The last lines of the entry's latest run. */
export function tailOf(entry: Entry): readonly string[] {
  return entry.process?.tail() ?? [];
}

/** Every child of a run. */
export interface Children {
  /** Each child by name, in start order. */
  readonly entries: ReadonlyMap<RoleName, Entry>;
  /** The latest WARN/ERROR lines and restart notes, newest last. */
  readonly problems: readonly string[];
  /** Starts `role` (with more arguments, and variables for it alone) under supervision. */
  start(role: RoleName, args?: string[], overrides?: Record<string, string>): Entry;
  /** The pipeline is ready: from now on a death is restarted, not a failed start. */
  markReady(): void;
  /** The children as the view shows them. */
  views(): ChildView[];
  /** SIGKILL to every child, now. */
  killAll(): void;
  /** Stops every child in order; true when each exited cleanly. */
  stopInOrder(): Promise<boolean>;
  /** Closes the log files. */
  close(): void;
}

/** Options of {@linkcode createChildren}. */
export interface ChildrenOptions {
  readonly config: Config;
  /** Start's environment, which every child inherits. */
  readonly env: Readonly<Record<string, string>>;
  readonly out: Output;
  readonly screen: Screen;
  readonly stop: StopControl;
}

/** No child yet. */
export function createChildren(options: ChildrenOptions): Children {
  const { config, out, screen, stop } = options;
  const entries = new Map<RoleName, Entry>();
  const logFiles = new Map<string, Deno.FsFile>();
  const problems: string[] = [];
  let ready = false;
  const env = roleEnv({
    inherit: options.env,
    config,
    secrets: secretEnv(config),
    supervised: true,
  });

  const standbys = new Map<RoleName, Standby>();
  const standbyProcesses = new Set<RunningProcess>();

  /** The standby of `stage`, its lines going to the stage's log, and how to supervise with it. */
  function stageStandby(
    stage: StageName,
    childEnv: Record<string, string>,
    args: string[],
    cold: () => RunningProcess,
  ) {
    const log = createLogger(`start.${stage}`, { write: (line) => onLine(stage, line) });
    const standby = createStandby({
      spec: roleProcess(stage, {
        env: childEnv,
        args: [...args, "--standby"],
        name: `${stage}-standby`,
      }),
      spawn: (spec, options) => spawnProcess(spec, { ...options, newSession: true }),
      output: (line) => onLine(stage, line),
      log,
      onSpawn: (child) => {
        standbyProcesses.add(child);
        child.exited.finally(() => standbyProcesses.delete(child));
      },
    });
    standbys.set(stage, standby);
    return superviseWithStandby(standby, {
      stage,
      spawn: cold,
      wait: delay,
      signal: stop.signal,
      log,
    });
  }

  function notice(problem: string) {
    problems.push(problem);
    if (problems.length > PROBLEMS_KEPT) problems.shift();
  }

  function onLine(name: string, line: string) {
    const file = logFiles.get(name);
    // Disk full or file gone: the line still reaches the view or stderr.
    if (file) safeWrite(file, line + "\n");
    const level = KNOWN_NOISE.test(line)
      ? undefined
      : / (ERROR|WARN) /.exec(line.slice(0, 40))?.[1];
    if (level) notice(`${line.slice(11, 19)} ${line.slice(25)}`.slice(0, 300));
    if (!out.tty || (!screen.active && level === "ERROR")) {
      safeWrite(Deno.stderr, `[${name}] ${line}\n`);
    }
  }

  function openLog(name: string) {
    try {
      Deno.mkdirSync(LOG_DIR, { recursive: true });
      const path = `${LOG_DIR}/${name}.log`;
      logFiles.set(name, Deno.openSync(path, { write: true, create: true, truncate: true }));
    } catch {
      // No log file: the lines still reach the view's error list or stderr.
    }
  }

  /** Reports a death; `"fail"` when it fails the run instead of a restart. */
  function onDeath(entry: Entry, exit: ProcessExit, decision: RestartDecision) {
    const { name } = entry;
    const what = `${name} exited unexpectedly (${describeExit(exit)})`;
    const lastLines = `Its last lines:\n${
      indent(tailOf(entry))
    }\n(full log: ${LOG_DIR}/${name}.log)`;
    if (!ready || decision.action === "give-up") {
      entry.state = "failed";
      stop.request({
        kind: "failure",
        message: ready
          ? `${what}, the ${decision.deaths}th time in ${
            describeWindow(RESTART_POLICY.deathWindowMs)
          }: not a transient failure, stopping everything. ${lastLines}`
          : `${what} while starting. ${lastLines}`,
      });
      return "fail" as const;
    }
    entry.restarts = decision.restarts;
    entry.state = "restarting";
    const how = standbys.get(name)?.ready()
      ? "its standby takes over"
      : `restarting it in ${seconds(decision.delayMs)}`;
    const message = `${what}; ${how} (restart ${entry.restarts})`;
    notice(`${new Date().toISOString().slice(11, 19)} ${message}`);
    if (!screen.active) out.warn(message);
  }

  async function stopOne(entry: Entry): Promise<boolean> {
    const { name } = entry;
    const standbyStopped = standbys.get(name)?.stop(STOPPING[name].graceMs);
    if (pidOf(entry) === null) {
      await entry.supervised;
      await standbyStopped;
      return entry.state !== "failed";
    }
    entry.state = "stopping";
    out.say(`stopping ${name}${STOPPING[name].note}...`);
    const t = performance.now();
    const exit = await entry.process!.stop(STOPPING[name].graceMs);
    await entry.supervised;
    await standbyStopped;
    entry.state = "stopped";
    if (exit.code !== 0 || exit.signal) {
      out.warn(
        `${name} stopped with ${describeExit(exit)} after ${seconds(performance.now() - t)}`,
      );
      return false;
    }
    out.say(`${name} stopped in ${seconds(performance.now() - t)}`);
    return true;
  }

  return {
    entries,
    problems,
    start(role, args = [], overrides = {}) {
      openLog(role);
      const childEnv = { ...env, ...overrides };
      const entry: Entry = {
        name: role,
        spec: roleProcess(role, { env: childEnv, args }),
        process: null,
        state: "starting",
        restarts: 0,
        supervised: Promise.resolve(),
      };
      entries.set(role, entry);
      const cold = () =>
        spawnProcess(entry.spec, { newSession: true, onLine: (line) => onLine(role, line) });
      // A stage keeps a warm standby that takes over at once when it dies
      // (processor/stage_standby.ts), as under `deno task processor`.
      const withStandby = isStage(role) ? stageStandby(role, childEnv, args, cold) : null;
      entry.supervised = supervise({
        spawn: withStandby?.spawn ?? cold,
        ...(withStandby ? { wait: withStandby.wait } : {}),
        signal: stop.signal,
        policy: RESTART_POLICY,
        onStart: (process) => {
          entry.process = process;
          entry.state = ready ? "running" : "starting";
          withStandby?.started(process);
        },
        onDeath: (exit, decision) => onDeath(entry, exit, decision),
      }).then((end) => {
        if (end.outcome === "stopped") entry.state = "stopped";
      });
      return entry;
    },
    markReady() {
      ready = true;
      for (const entry of entries.values()) {
        if (entry.state === "starting") entry.state = "running";
      }
    },
    views: () =>
      [...entries.values()].map((e) => ({
        name: e.name,
        pid: pidOf(e),
        state: e.state,
        restarts: e.restarts,
      })),
    killAll() {
      for (const entry of entries.values()) entry.process?.kill();
      for (const child of standbyProcesses) child.kill();
    },
    async stopInOrder() {
      let clean = true;
      for (const group of STOP_ORDER) {
        const present = group.flatMap((name) => entries.get(name) ?? []);
        const results = await Promise.all(present.map(stopOne));
        if (results.includes(false)) clean = false;
      }
      return clean;
    },
    close() {
      for (const file of logFiles.values()) file.close();
    },
  };
}
