/**
 * A worker started by a supervisor (`deno task start`, or `deno task processor` for its stages)
 * stops when that supervisor is gone. The supervisor puts its pid in
 * {@linkcode SUPERVISOR_PID_VARIABLE}; the worker checks once a second that its parent is still
 * that pid. A supervisor killed with `kill -9` (or by the OOM killer) cannot stop its children,
 * and `start` runs them in their own sessions, so nothing else would: they would keep running,
 * holding ports and consumer-group memberships. Once orphaned, the worker sends itself SIGTERM
 * and stops exactly as on Ctrl-C (the producer flushes, a stage commits what it wrote).
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** Set by a supervisor on each child it starts: the supervisor's own pid. */
export const SUPERVISOR_PID_VARIABLE = "PIPELINE_SUPERVISOR_PID";

/** The environment entry a supervisor adds to a child's environment. */
export function supervisedEnv(): Record<string, string> {
  return { [SUPERVISOR_PID_VARIABLE]: String(Deno.pid) };
}

/** The supervisor's pid from `env`: `null` when absent; a clear error when not a pid. */
export function supervisorPid(env: Readonly<Record<string, string | undefined>>): number | null {
  const raw = env[SUPERVISOR_PID_VARIABLE];
  if (raw === undefined || raw === "") return null;
  if (!/^[1-9][0-9]{0,9}$/.test(raw)) {
    throw new RangeError(
      `${SUPERVISOR_PID_VARIABLE} must be a process id (a positive integer), got ${
        JSON.stringify(raw)
      }`,
    );
  }
  return Number(raw);
}

/** Options of {@linkcode stopWhenSupervisorGone}. */
export interface SupervisorWatchOptions {
  /** How often the parent is checked. Default 1,000 ms. */
  readonly intervalMs?: number;
  /** The current parent pid. Default `Deno.ppid` (read anew on each call). */
  readonly parentPid?: () => number;
  /** What to do once orphaned. Default: send this process SIGTERM. */
  readonly onGone?: () => void;
}

/**
 * Watches the supervisor named in `env` (does nothing when none is named). Returns a function
 * that ends the watch. The timer does not keep the process alive.
 */
export function stopWhenSupervisorGone(
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  options: SupervisorWatchOptions = {},
): () => void {
  const expected = supervisorPid(env);
  if (expected === null) return () => {};
  const parentPid = options.parentPid ?? (() => Deno.ppid);
  const onGone = options.onGone ?? (() => Deno.kill(Deno.pid, "SIGTERM"));
  const timer = setInterval(() => {
    const parent = parentPid();
    if (parent === expected) return;
    clearInterval(timer);
    log.warn("supervisor is gone: stopping", { supervisorPid: expected, parentPid: parent });
    onGone();
  }, options.intervalMs ?? 1_000);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
