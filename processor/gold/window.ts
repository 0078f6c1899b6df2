/**
 * Window arithmetic for gold candles: event-time windows aligned to UTC, and the Cassandra
 * partition bucket each window belongs to.
 *
 * @module
 */

/** The candle intervals gold maintains. */
export type Interval = "5m" | "1h";

/** Length of each interval in milliseconds. */
export const INTERVAL_MS: Readonly<Record<Interval, number>> = { "5m": 300_000, "1h": 3_600_000 };

/** Gold table of each interval. */
export const GOLD_TABLE: Readonly<Record<Interval, string>> = {
  "5m": "trades_gold_5m",
  "1h": "trades_gold_1h",
};

/** Start of the UTC-aligned window of `interval` that holds `eventTime` (ms). */
export function windowStart(eventTime: number, interval: Interval): number {
  const size = INTERVAL_MS[interval];
  return Math.floor(eventTime / size) * size;
}

/** End (exclusive) of the window that starts at `start`. */
export function windowEnd(start: number, interval: Interval): number {
  return start + INTERVAL_MS[interval];
}

/**
 * The partition bucket of a window, as a `YYYY-MM-DD` date: the first day of the UTC month for
 * 5-minute candles (at most 8,928 a partition), of the UTC year for hourly ones (at most 8,784).
 */
export function goldBucket(windowStartMs: number, interval: Interval): string {
  const d = new Date(windowStartMs);
  const year = d.getUTCFullYear();
  const month = interval === "5m" ? d.getUTCMonth() + 1 : 1;
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-01`;
}

/** The buckets that cover [from, to) for `interval`, oldest first. */
export function goldBucketsBetween(from: number, to: number, interval: Interval): string[] {
  const out: string[] = [];
  if (to <= from) return out;
  const d = new Date(from);
  let year = d.getUTCFullYear();
  let month = interval === "5m" ? d.getUTCMonth() : 0;
  for (;;) {
    const start = Date.UTC(year, month, 1);
    if (start >= to) break;
    out.push(goldBucket(start, interval));
    if (interval === "5m") {
      month++;
      if (month === 12) {
        month = 0;
        year++;
      }
    } else year++;
  }
  return out;
}
