/**
 * The one supervisor: runs a process, and when it dies without being asked to, starts it again
 * as the restart policy says (`restart_policy.ts`: backoff that resets after a healthy run, and
 * giving up after too many deaths in a window). `deno task start` supervises each child with it,
 * `deno task processor` each stage.
 *
 * The supervisor never stops the process itself: once `signal` aborts, the caller stops it (in
 * its own order, with its own grace) and the exit that follows ends the supervision.
 *
 * @module
 */
import { delay } from "../delay.ts";
import {
  createRestartTracker,
  type RestartDecision,
  type RestartPolicy,
} from "./restart_policy.ts";
import type { ProcessExit, RunningProcess } from "./spawn.ts";

/** Options of {@linkcode supervise}. */
export interface SuperviseOptions {
  /** Starts one run of the process (`spawnProcess(spec, ...)`). */
  readonly spawn: () => RunningProcess;
  /** Aborted: an exit ends the supervision instead of being restarted. */
  readonly signal: AbortSignal;
  /** Default {@linkcode RESTART_POLICY}. */
  readonly policy?: RestartPolicy;
  /** Epoch ms, for run lengths and the death window. Default `Date.now`. */
  readonly now?: () => number;
  /** The wait before a restart, ending early when `signal` aborts. Default `delay`. */
  readonly wait?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Each run, once started. */
  readonly onStart?: (process: RunningProcess) => void;
  /**
   * A death nobody asked for, with the policy's decision (before its wait). Return `"fail"` to
   * end the supervision without a restart (e.g. a death before the pipeline was ready).
   */
  readonly onDeath?: (exit: ProcessExit, decision: RestartDecision) => "fail" | void;
}

/** How a supervision ended. */
export type SupervisionEnd =
  | { readonly outcome: "stopped"; readonly exit: ProcessExit }
  | {
    readonly outcome: "failed";
    readonly exit: ProcessExit;
    readonly decision: RestartDecision;
  };

/** Runs the process until `signal` aborts, or until it fails for good. */
export async function supervise(options: SuperviseOptions): Promise<SupervisionEnd> {
  const { signal } = options;
  const tracker = createRestartTracker(options.policy);
  const now = options.now ?? Date.now;
  const wait = options.wait ?? delay;
  for (;;) {
    const startedAt = now();
    const process = options.spawn();
    options.onStart?.(process);
    const exit = await process.exited;
    if (signal.aborted) return { outcome: "stopped", exit };
    const decision = tracker.died({ startedAt, diedAt: now() });
    const verdict = options.onDeath?.(exit, decision);
    if (verdict === "fail" || decision.action === "give-up") {
      return { outcome: "failed", exit, decision };
    }
    await wait(decision.delayMs, signal);
    if (signal.aborted) return { outcome: "stopped", exit };
  }
}
