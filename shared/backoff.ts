/**
 * The one exponential backoff: attempt `n` waits `min(maxMs, baseMs * 2^n)`, optionally with
 * "equal jitter" (a uniform pick in the upper half of that step, so processes that failed
 * together do not retry in lockstep and no wait is shorter than half its step). The producer's
 * reconnects, the stages' batch retries and the supervisors' restarts all compute their waits
 * here; what differs between them is only the numbers.
 *
 * @module
 */

/** Options of {@linkcode exponentialDelay}. */
export interface ExponentialDelayOptions {
  /** The wait of attempt 0, ms. */
  readonly baseMs: number;
  /** The longest wait, ms. */
  readonly maxMs: number;
  /** `"equal"`: a uniform pick in the upper half of the step; `"none"` (default): the step. */
  readonly jitter?: "none" | "equal";
  /** Uniform random number in [0, 1), for the jitter. Default `Math.random`. */
  readonly random?: () => number;
}

/**
 * The wait before attempt `attempt` (0 for the first retry): `min(maxMs, baseMs * 2^attempt)`,
 * jittered when asked, in whole milliseconds. A negative or fractional attempt counts as its
 * floor, at least 0; any attempt, however large, stays at the cap.
 */
export function exponentialDelay(attempt: number, options: ExponentialDelayOptions): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 52);
  const step = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  if ((options.jitter ?? "none") === "none") return Math.round(step);
  const random = options.random ?? Math.random;
  return Math.round(step / 2 + random() * (step / 2));
}
