/**
 * The gold tables as every reader and writer sees them: the intervals, the UTC-aligned
 * event-time windows, the Cassandra partition bucket each window belongs to, and the candle a row
 * holds ({@linkcode CandleRow}, read with {@linkcode readCandles}). Gold writes the rows (with its
 * fold state besides, `processor/gold/`); the market page and `deno task start` read them. Each
 * row also says how much of its window the feed covered (`gap_ms`, `gap_count`, written only by
 * the gold worker's feed-gap consumer, `processor/gold/gap_stage.ts`); a row holding only those
 * is a window with a gap and no trade, and no candle ({@linkcode hasCandle}).
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { formatDecimal, parseDecimal } from "./decimal.ts";
import { coverageOf } from "./gap_coverage.ts";
import { tradingMsWithin } from "./trading_session.ts";
import type { CandleInterval } from "./types.ts";

/** The candle intervals gold maintains. */
export type Interval = CandleInterval;

/** Every interval, shortest first. */
export const INTERVALS: readonly Interval[] = ["5m", "1h"];

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

/** A candle as a gold row holds it for people: prices, exact volume and VWAP, counts. */
export interface CandleRow {
  readonly symbol: string;
  readonly interval: Interval;
  /** Window start, epoch milliseconds UTC. */
  readonly windowStart: number;
  /** Window end (exclusive), epoch milliseconds UTC. */
  readonly windowEnd: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** Exact decimal, as text. */
  readonly volume: string;
  /** Exact decimal, as text; `null` when the volume is 0. */
  readonly vwap: string | null;
  readonly tradeCount: number;
  readonly isFinal: boolean;
  /**
   * Milliseconds of the window in the symbol's trading hours that known feed gaps cover
   * (`shared/gap_coverage.ts`); 0 when none.
   */
  readonly gapMs: number;
  /** Distinct feed gaps touching the window in trading hours. */
  readonly gapCount: number;
  /** `1 - gapMs / trading ms of the window`, 1 when the window has no trading time. */
  readonly coverage: number;
}

/** The columns {@linkcode candleRowOf} reads. */
export const CANDLE_ROW_COLUMNS =
  "symbol, window_start, window_end, open, high, low, close, volume, vwap, trade_count, " +
  "is_final, gap_ms, gap_count";

/**
 * Whether a gold row holds a candle. A window with no trade may still have a row holding only
 * its feed-gap columns (written by the gap consumer, `processor/gold/gap_stage.ts`): no candle.
 */
export function hasCandle(row: cassandra.types.Row): boolean {
  const count = row.get("trade_count");
  return count !== null && count !== undefined;
}

function decimalText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return formatDecimal(parseDecimal(String(value)));
}

/**
 * The candle of a gold row read with (at least) {@linkcode CANDLE_ROW_COLUMNS}; the row must
 * hold one ({@linkcode hasCandle}).
 */
export function candleRowOf(row: cassandra.types.Row, interval: Interval): CandleRow {
  const symbol: string = row.get("symbol");
  const start = (row.get("window_start") as Date).getTime();
  const end = (row.get("window_end") as Date).getTime();
  const gapMs = Number(row.get("gap_ms") ?? 0n);
  return {
    symbol,
    interval,
    windowStart: start,
    windowEnd: end,
    open: row.get("open"),
    high: row.get("high"),
    low: row.get("low"),
    close: row.get("close"),
    volume: decimalText(row.get("volume")) ?? "0",
    vwap: decimalText(row.get("vwap")),
    tradeCount: Number(row.get("trade_count") ?? 0n),
    isFinal: row.get("is_final") === true,
    gapMs,
    gapCount: row.get("gap_count") ?? 0,
    coverage: coverageOf(gapMs, tradingMsWithin(symbol, start, end)),
  };
}

/** What {@linkcode readCandles} reads. */
export interface CandleRange {
  readonly symbol: string;
  readonly interval: Interval;
  /** Windows starting at or after this (rounded down to a window start), epoch ms. */
  readonly from: number;
  /** Windows starting before this, epoch ms. */
  readonly to: number;
  /** The newest this many of the range. */
  readonly limit: number;
}

/**
 * The newest `limit` candles of the range, oldest first. Every read binds the whole partition
 * key (symbol and bucket); a range crossing buckets reads each, newest first, until the limit.
 */
export async function readCandles(
  session: cassandra.Client,
  keyspace: string,
  range: CandleRange,
): Promise<CandleRow[]> {
  const query = `SELECT ${CANDLE_ROW_COLUMNS} FROM ${keyspace}.${GOLD_TABLE[range.interval]}
    WHERE symbol = ? AND bucket = ? AND window_start >= ? AND window_start < ? LIMIT ?`;
  const from = windowStart(range.from, range.interval);
  const rows: CandleRow[] = [];
  for (const bucket of goldBucketsBetween(from, range.to, range.interval).reverse()) {
    const want = range.limit - rows.length;
    if (want <= 0) break;
    const result = await session.execute(query, [
      range.symbol,
      cassandra.types.LocalDate.fromString(bucket),
      new Date(from),
      new Date(range.to),
      want,
    ], { prepare: true });
    // Rows come newest first (CLUSTERING ORDER BY window_start DESC). A row of a window with
    // no trade but a feed gap holds no candle (a window without trades has none either).
    for (const row of result.rows) if (hasCandle(row)) rows.push(candleRowOf(row, range.interval));
  }
  return rows.reverse();
}
