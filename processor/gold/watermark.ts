/**
 * The event-time watermark of one silver partition, pure: the latest event time seen (capped
 * at each trade's ingest time, so a print stamped in the future cannot race it ahead) minus the
 * allowed lateness, advancing with the wall clock while the partition is idle, so the last
 * windows of a quiet symbol still become final.
 *
 * @module
 */

/** What the watermark remembers of a partition. */
export interface PartitionClock {
  /** Latest event time seen, capped at ingest time (ms). */
  readonly maxEventTime: number;
  /** Wall time of the last trade (ms). */
  readonly lastArrival: number;
}

/** The clock after a trade with `eventTime` and `ingestTime` arrived at wall time `arrival`. */
export function observe(
  clock: PartitionClock | undefined,
  trade: { readonly eventTime: number; readonly ingestTime: number },
  arrival: number,
): PartitionClock {
  const seen = Math.min(trade.eventTime, trade.ingestTime);
  return {
    maxEventTime: clock ? Math.max(clock.maxEventTime, seen) : seen,
    lastArrival: clock ? Math.max(clock.lastArrival, arrival) : arrival,
  };
}

/** The watermark at wall time `now`; `-Infinity` before any trade. */
export function watermarkAt(
  clock: PartitionClock | undefined,
  now: number,
  allowedLatenessMs: number,
): number {
  if (!clock) return -Infinity;
  return clock.maxEventTime - allowedLatenessMs + Math.max(0, now - clock.lastArrival);
}

/** The wall time at which the watermark reached `time` (assuming it has by now). */
export function reachedAt(clock: PartitionClock, time: number, allowedLatenessMs: number): number {
  return clock.lastArrival + Math.max(0, time - (clock.maxEventTime - allowedLatenessMs));
}
