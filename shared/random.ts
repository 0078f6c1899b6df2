/**
 * A small seeded pseudo-random generator, for deterministic feeds and tests: the same seed
 * gives the same sequence, so a failure replays.
 *
 * @module
 */

/** A seeded PRNG (mulberry32): uniform in [0, 1), 32 bits of state. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A short random lower-case id (10 hex digits), e.g. for the names of an isolated run. */
export function randomId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 10);
}
