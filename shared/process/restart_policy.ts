/**
 * When a supervised process that died on its own is started again, as pure arithmetic on the
 * times it started and died (no timers: unit tests pass numbers).
 *
 * - Backoff: the deaths of one unhealthy streak wait `baseMs`, then twice as long each time,
 *   up to `maxMs` (`shared/backoff.ts`). A run that lasted `healthyMs` or more ends the streak:
 *   the death after it waits `baseMs` again. (A backoff that never resets makes a process that
 *   crashes once a day wait the cap after a week, for no reason.)
 * - Death window: more than `maxDeaths` deaths within `deathWindowMs` are not transient, however
 *   long each run was: the supervisor gives up and says so instead of restarting.
 *
 * `deno task start` and `deno task processor` both supervise with {@linkcode RESTART_POLICY}.
 *
 * @module
 */
import { exponentialDelay } from "../backoff.ts";

/** The numbers of a restart policy, ms. */
export interface RestartPolicy {
  /** The wait before the first restart of a streak. */
  readonly baseMs: number;
  /** The longest wait. */
  readonly maxMs: number;
  /** A run at least this long was healthy: the next death starts a new streak. */
  readonly healthyMs: number;
  /** More deaths than this within {@linkcode deathWindowMs}: give up. */
  readonly maxDeaths: number;
  readonly deathWindowMs: number;
}

/**
 * The supervisors' policy: restarts wait 1, 2, 4, 8, 16 and then 30 s while each run dies within
 * a minute; a run of a minute or more resets the wait to 1 s; a sixth death within 5 minutes
 * gives up.
 */
export const RESTART_POLICY: RestartPolicy = {
  baseMs: 1_000,
  maxMs: 30_000,
  healthyMs: 60_000,
  maxDeaths: 5,
  deathWindowMs: 5 * 60_000,
};

/** What to do after a death. */
export type RestartDecision =
  | {
    readonly action: "restart";
    /** How long to wait before starting it again. */
    readonly delayMs: number;
    /** Restarts so far, this one included. */
    readonly restarts: number;
    /** Deaths within the window, this one included. */
    readonly deaths: number;
  }
  | { readonly action: "give-up"; readonly deaths: number };

/** The restart history of one supervised process. */
export interface RestartTracker {
  /** Records a death of the run started at `startedAt` and decides what comes next. */
  died(run: { readonly startedAt: number; readonly diedAt: number }): RestartDecision;
}

/** A fresh history under `policy`. */
export function createRestartTracker(policy: RestartPolicy = RESTART_POLICY): RestartTracker {
  let streak = 0;
  let restarts = 0;
  let deaths: number[] = [];
  return {
    died({ startedAt, diedAt }) {
      if (diedAt - startedAt >= policy.healthyMs) streak = 0;
      streak++;
      deaths = [...deaths.filter((at) => diedAt - at < policy.deathWindowMs), diedAt];
      if (deaths.length > policy.maxDeaths) return { action: "give-up", deaths: deaths.length };
      restarts++;
      const delayMs = exponentialDelay(streak - 1, { baseMs: policy.baseMs, maxMs: policy.maxMs });
      return { action: "restart", delayMs, restarts, deaths: deaths.length };
    },
  };
}

/** `5 minutes`, `90 s`: a window as people read it. */
export function describeWindow(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} minute${ms === 60_000 ? "" : "s"}` : `${ms / 1000} s`;
}
