/**
 * Partition buckets of the bronze and silver tables: the start of the UTC hour of a time, so
 * no partition holds more than one hour of one symbol's trades.
 *
 * @module
 */

/** The start of the UTC hour of `time` (epoch ms). */
export function hourBucket(time: number): number {
  return Math.floor(time / 3_600_000) * 3_600_000;
}
