/**
 * What a long, seeded integration test prints as it goes: progress lines stamped with the
 * seconds since it started, and its seed, which an environment variable replays.
 *
 * @module
 */
import { mulberry32 } from "../shared/random.ts";

/** Prints a test's progress lines, each with the seconds since the test started. */
export function progress(name: string): (line: string) => void {
  const started = performance.now();
  return (line) =>
    console.log(`[${name} +${((performance.now() - started) / 1000).toFixed(1)} s] ${line}`);
}

/**
 * The seed of a seeded test: the environment variable `variable` when set (to replay a run),
 * else `fallback`; printed through `log` with how to replay it.
 */
function replaySeed(
  variable: string,
  log: (line: string) => void,
  fallback: number,
): number {
  const text = Deno.env.get(variable);
  const seed = text ? Number(text) : fallback;
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`${variable} must be an integer, got ${JSON.stringify(text)}`);
  }
  log(`seed ${seed} (replay: ${variable}=${seed})`);
  return seed;
}

/** What a seeded test starts with. */
export interface SeededRun {
  /** Prints a progress line (see {@linkcode progress}). */
  readonly log: (line: string) => void;
  readonly seed: number;
  /** Random numbers in [0, 1) from `seed`. */
  readonly rand: () => number;
}

/**
 * The start of a seeded test named `name`: its progress log, and its seed (the environment
 * variable `variable` when set, else `fallback`), printed with how to replay it.
 */
export function seededRun(name: string, variable: string, fallback: number): SeededRun {
  const log = progress(name);
  const seed = replaySeed(variable, log, fallback);
  return { log, seed, rand: mulberry32(seed) };
}
