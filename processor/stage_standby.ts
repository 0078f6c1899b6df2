/**
 * A warm standby for a supervised stage: a second process of the stage (`processor/main.ts
 * --stage <s> --standby`) that has loaded its code, reached the schema registry, connected to
 * Cassandra and Kafka and built the stage, and then waits, holding no partition and consuming
 * nothing, until {@linkcode PROMOTE_SIGNAL}. When the stage process dies, the supervisor promotes
 * the standby instead of starting a process from nothing, and starts a new standby.
 *
 * Why: with static membership (`group_instance.ts`) the group hands a dead member's partitions
 * to its successor as soon as the successor joins, so the stall after a crash is the time to
 * bring that successor up. Started cold that is the restart delay plus 1 to 12 s of loading and
 * connecting on this 2-core machine under load (measured: `tests/processor_resume_test.ts`); a
 * standby joins within a second of its promotion. The cost is one idle process per stage (its
 * memory is in the README).
 *
 * The standby says it is ready with the log line {@linkcode STANDBY_READY}; until then it is not
 * promoted (a SIGUSR1 before its listener is installed would kill it) and a death starts a fresh
 * process as before.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { ProcessSpec, RunningProcess, SpawnOptions } from "../shared/process/spawn.ts";

/** The signal that promotes a standby to the stage's active process. */
export const PROMOTE_SIGNAL: Deno.Signal = "SIGUSR1";

/**
 * How long after a stage process starts its standby is started: not at once, so that the two do
 * not load at the same time, nor while a promoted standby works through its first batches (on a
 * loaded machine the new standby's loading slowed that first batch down by seconds).
 */
export const STANDBY_START_DELAY_MS = 20_000;

/** The line a standby logs once it is ready to take over. */
export const STANDBY_READY = "standby ready: waiting to take over";

/** Options of {@linkcode createStandby}. */
export interface StandbyOptions {
  /** The standby's process (with `--standby`). */
  readonly spec: ProcessSpec;
  readonly spawn: (spec: ProcessSpec, options: SpawnOptions) => RunningProcess;
  /** Receives each line the standby writes (it is also how readiness is seen). */
  readonly output: (line: string) => void;
  readonly log: Logger;
  /** Called with each standby process started (for a forced exit to kill). */
  readonly onSpawn?: (child: RunningProcess) => void;
}

/** One stage's standby process, started and promoted by its supervisor. */
export interface Standby {
  /** True while a standby process is running and ready to take over. */
  ready(): boolean;
  /** Promotes the ready standby and hands it over; `null` when none is ready. */
  promote(): RunningProcess | null;
  /** Starts a standby unless one is running. */
  start(): void;
  /** Stops the standby, if any (SIGTERM, then SIGKILL after `graceMs`). */
  stop(graceMs: number): Promise<void>;
}

/** Creates the standby of one stage; nothing starts before {@linkcode Standby.start}. */
export function createStandby(options: StandbyOptions): Standby {
  let current: { child: RunningProcess; ready: boolean } | undefined;
  const running = () => current !== undefined && current.child.exit === null;
  return {
    ready: () => running() && current!.ready,
    promote() {
      if (!running() || !current!.ready) return null;
      const { child } = current!;
      current = undefined;
      child.kill(PROMOTE_SIGNAL);
      return child;
    },
    start() {
      if (running()) return;
      const entry = { ready: false } as { child: RunningProcess; ready: boolean };
      entry.child = options.spawn(options.spec, {
        onLine: (line) => {
          if (!entry.ready && line.includes(STANDBY_READY)) entry.ready = true;
          options.output(line);
        },
      });
      current = entry;
      options.onSpawn?.(entry.child);
      entry.child.exited.then((exit) => {
        if (current !== entry) return;
        current = undefined;
        options.log.warn(`standby of ${options.spec.name} exited`, {
          code: exit.code,
          signal: exit.signal,
        });
      });
    },
    async stop(graceMs) {
      const entry = current;
      current = undefined;
      await entry?.child.stop(graceMs);
    },
  };
}

/** The `supervise` options of a stage's supervisor, changed to use `standby`. */
export interface StandbySupervision {
  /** Promotes the ready standby, or starts a process from nothing. */
  spawn(): RunningProcess;
  /** No wait when a standby is ready: the restart delay is for starting from nothing. */
  wait(ms: number, signal: AbortSignal): Promise<void>;
  /** Call when a stage process started or was promoted: starts the next standby later. */
  started(child: RunningProcess): void;
}

/**
 * Wraps a stage supervisor's `spawn` and `wait` (`shared/process/supervise.ts`) so that a death
 * promotes `standby` when it is ready, and a standby is started
 * {@linkcode STANDBY_START_DELAY_MS} after each start.
 */
export function superviseWithStandby(
  standby: Standby,
  options: {
    readonly stage: string;
    readonly spawn: () => RunningProcess;
    readonly wait: (ms: number, signal: AbortSignal) => Promise<void>;
    readonly signal: AbortSignal;
    readonly log: Logger;
  },
): StandbySupervision {
  const { signal } = options;
  return {
    spawn() {
      const promoted = standby.promote();
      if (!promoted) return options.spawn();
      options.log.info(`stage ${options.stage}: its standby takes over`, { pid: promoted.pid });
      return promoted;
    },
    wait: (ms, waitSignal) => standby.ready() ? Promise.resolve() : options.wait(ms, waitSignal),
    started() {
      options.wait(STANDBY_START_DELAY_MS, signal).then(() => {
        if (!signal.aborted) standby.start();
      }, () => {});
    },
  };
}
