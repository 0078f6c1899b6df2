/**
 * Reconnect delays: exponential with jitter and a cap for ordinary failures, and a long fixed
 * delay when the server refused the handshake with 401 or 429 ("back off hard").
 *
 * @module
 */
import { exponentialDelay } from "../shared/backoff.ts";

/** Options of {@linkcode reconnectDelay}. */
export interface BackoffOptions {
  /** First delay, ms. */
  readonly baseMs: number;
  /** Largest delay, ms. */
  readonly maxMs: number;
  /** Uniform random number in [0, 1). Default `Math.random`. */
  readonly random?: () => number;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry after a failure): the
 * exponential step `min(maxMs, baseMs * 2^attempt)`, then "equal jitter", a uniform pick in the
 * upper half of that step. Several producers that lost the server together do not come back in
 * lockstep, and no delay is ever shorter than half its step.
 */
export function reconnectDelay(attempt: number, options: BackoffOptions): number {
  return exponentialDelay(attempt, { ...options, jitter: "equal" });
}

/**
 * The delay after the handshake was refused with `status` (401 bad key, 429 rate limit): at
 * least `authBackoffMs`, doubled for every refusal in a row up to eight times that, plus up to
 * 10% jitter. Never less than the ordinary delay for the same attempt.
 */
export function refusedHandshakeDelay(
  consecutiveRefusals: number,
  authBackoffMs: number,
  options: BackoffOptions,
): number {
  const random = options.random ?? Math.random;
  const exponent = Math.min(Math.max(0, consecutiveRefusals - 1), 3);
  const hard = authBackoffMs * 2 ** exponent;
  const delay = Math.round(hard + random() * hard * 0.1);
  return Math.max(delay, reconnectDelay(consecutiveRefusals, options));
}
