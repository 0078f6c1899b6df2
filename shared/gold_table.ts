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

/** The candle intervals gold folds and stores. */
export type Interval = CandleInterval;

/** The intervals served by rolling stored candles up: never stored. */
export type RollupInterval = "15m" | "4h";

/** Every interval `/api/candles` serves: stored or rolled up. */
export type ServedInterval = Interval | RollupInterval;

/** Every stored interval, shortest first. */
export const INTERVALS: readonly Interval[] = ["1m", "5m", "1h", "1d"];

/** The rolled-up intervals, shortest first. */
export const ROLLUP_INTERVALS: readonly RollupInterval[] = ["15m", "4h"];

/** Every served interval, shortest first. */
export const SERVED_INTERVALS: readonly ServedInterval[] = ["1m", "5m", "15m", "1h", "4h", "1d"];

/** Length of each interval in milliseconds. */
export const INTERVAL_MS: Readonly<Record<ServedInterval, number>> = {
  "1m": 60_000,
  "5m": 300_000,
  "15m": 900_000,
  "1h": 3_600_000,
  "4h": 14_400_000,
  "1d": 86_400_000,
};

/** The stored interval each roll-up adds up: 15m from 5m rows, 4h from 1h rows. */
export const ROLLUP_SOURCE: Readonly<Record<RollupInterval, Interval>> = {
  "15m": "5m",
  "4h": "1h",
};

/** Whether `interval` is a stored interval (else it is rolled up). */
export function isStored(interval: ServedInterval): interval is Interval {
  return (INTERVALS as readonly string[]).includes(interval);
}

/** Gold table of each interval. */
export const GOLD_TABLE: Readonly<Record<Interval, string>> = {
  "1m": "trades_gold_1m",
  "5m": "trades_gold_5m",
  "1h": "trades_gold_1h",
  "1d": "trades_gold_1d",
};

/**
 * The UTC span of a gold table's partition (`bucket`), chosen so a partition stays bounded:
 * 1m by day (1,440 rows), 5m by month (at most 8,928), 1h by year (at most 8,784), 1d by year
 * (at most 366).
 */
export const GOLD_BUCKET_SPAN: Readonly<Record<Interval, "day" | "month" | "year">> = {
  "1m": "day",
  "5m": "month",
  "1h": "year",
  "1d": "year",
};

/**
 * Start of the UTC-aligned window of `interval` that holds `eventTime` (ms). Every length divides
 * a UTC day and the epoch starts at UTC midnight, so windows align to UTC days (1d: a UTC day).
 */
export function windowStart(eventTime: number, interval: ServedInterval): number {
  const size = INTERVAL_MS[interval];
  return Math.floor(eventTime / size) * size;
}

/** End (exclusive) of the window that starts at `start`. */
export function windowEnd(start: number, interval: ServedInterval): number {
  return start + INTERVAL_MS[interval];
}

/** `YYYY-MM-DD` of a UTC date. */
function isoDate(year: number, month: number, day: number): string {
  return `${String(year).padStart(4, "0")}-${String(month + 1).padStart(2, "0")}-${
    String(day).padStart(2, "0")
  }`;
}

/**
 * The partition bucket of a window, as a `YYYY-MM-DD` date: the UTC day for 1-minute candles,
 * the first day of the UTC month for 5-minute ones, of the UTC year for hourly and daily ones
 * ({@linkcode GOLD_BUCKET_SPAN}).
 */
export function goldBucket(windowStartMs: number, interval: Interval): string {
  const d = new Date(windowStartMs);
  const span = GOLD_BUCKET_SPAN[interval];
  return isoDate(
    d.getUTCFullYear(),
    span === "year" ? 0 : d.getUTCMonth(),
    span === "day" ? d.getUTCDate() : 1,
  );
}

/** The buckets that cover [from, to) for `interval`, oldest first. */
export function goldBucketsBetween(from: number, to: number, interval: Interval): string[] {
  const out: string[] = [];
  if (to <= from) return out;
  const span = GOLD_BUCKET_SPAN[interval];
  const d = new Date(from);
  let year = d.getUTCFullYear();
  let month = span === "year" ? 0 : d.getUTCMonth();
  let day = span === "day" ? d.getUTCDate() : 1;
  for (;;) {
    // Date.UTC carries an overflowing day or month into the next month or year.
    const start = new Date(Date.UTC(year, month, day));
    if (start.getTime() >= to) break;
    out.push(goldBucket(start.getTime(), interval));
    year = start.getUTCFullYear();
    month = start.getUTCMonth();
    day = start.getUTCDate();
    if (span === "day") day++;
    else if (span === "month") month++;
    else year++;
  }
  return out;
}

/** Digits after the point of a stored (and rolled-up) VWAP, rounded half-even. */
export const VWAP_SCALE = 10;

/** A candle as a gold row holds it for people: prices, exact volume and VWAP, counts. */
export interface CandleRow {
  readonly symbol: string;
  /** A stored interval, or a roll-up's (`rollup.ts`). */
  readonly interval: ServedInterval;
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
 * A candle with the sums that add up over windows besides volume and trade count: what a roll-up
 * (`rollup.ts`) is made of.
 */
export interface SummedCandle extends CandleRow {
  /** Exact decimal sum of price x volume, as text. */
  readonly pvSum: string;
  readonly priceOnlyCount: number;
  /** Trades folded in after the window was final. */
  readonly lateCount: number;
}

/** The columns {@linkcode summedCandleOf} reads. */
export const SUMMED_CANDLE_COLUMNS = `${CANDLE_ROW_COLUMNS}, pv_sum, price_only_count, late_count`;

/** The candle of a gold row read with (at least) {@linkcode SUMMED_CANDLE_COLUMNS}. */
export function summedCandleOf(row: cassandra.types.Row, interval: Interval): SummedCandle {
  return {
    ...candleRowOf(row, interval),
    pvSum: decimalText(row.get("pv_sum")) ?? "0",
    priceOnlyCount: Number(row.get("price_only_count") ?? 0n),
    lateCount: Number(row.get("late_count") ?? 0n),
  };
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
export function readCandles(
  session: cassandra.Client,
  keyspace: string,
  range: CandleRange,
): Promise<CandleRow[]> {
  return readRange(session, keyspace, range, CANDLE_ROW_COLUMNS, candleRowOf);
}

/** As {@linkcode readCandles}, with the sums a roll-up adds up. */
export function readSummedCandles(
  session: cassandra.Client,
  keyspace: string,
  range: CandleRange,
): Promise<SummedCandle[]> {
  return readRange(session, keyspace, range, SUMMED_CANDLE_COLUMNS, summedCandleOf);
}

async function readRange<T>(
  session: cassandra.Client,
  keyspace: string,
  range: CandleRange,
  columns: string,
  of: (row: cassandra.types.Row, interval: Interval) => T,
): Promise<T[]> {
  const query = `SELECT ${columns} FROM ${keyspace}.${GOLD_TABLE[range.interval]}
    WHERE symbol = ? AND bucket = ? AND window_start >= ? AND window_start < ? LIMIT ?`;
  const from = windowStart(range.from, range.interval);
  const rows: T[] = [];
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
    for (const row of result.rows) if (hasCandle(row)) rows.push(of(row, range.interval));
  }
  return rows.reverse();
}

/** A candle with the exact sum of price x volume its VWAP is computed from. */
export interface CandleWithSum extends CandleRow {
  /** Exact decimal, as text. */
  readonly pvSum: string;
}

/** What {@linkcode readCandlesStream} reads: every candle of the span. */
export interface CandleSpan {
  readonly symbol: string;
  readonly interval: Interval;
  /** Windows starting at or after this (rounded down to a window start), epoch ms. */
  readonly from: number;
  /** Windows starting before this, epoch ms. */
  readonly to: number;
}

/** Options of {@linkcode readCandlesStream}. */
export interface ReadCandlesStreamOptions {
  /** Rows a page fetches from Cassandra. Default 1,000. */
  readonly fetchSize?: number;
}

/**
 * Every candle of the span, oldest first, read a page at a time: bucket by bucket, oldest
 * first, each with the driver's paging, the next page fetched only when the consumer asks for
 * it. Memory stays one page however long the span (exports: `export/`).
 */
export async function* readCandlesStream(
  session: cassandra.Client,
  keyspace: string,
  span: CandleSpan,
  options: ReadCandlesStreamOptions = {},
): AsyncGenerator<SummedCandle> {
  const query = `SELECT ${SUMMED_CANDLE_COLUMNS} FROM ${keyspace}.${GOLD_TABLE[span.interval]}
    WHERE symbol = ? AND bucket = ? AND window_start >= ? AND window_start < ?
    ORDER BY window_start ASC`;
  const from = windowStart(span.from, span.interval);
  for (const bucket of goldBucketsBetween(from, span.to, span.interval)) {
    const result = await session.execute(query, [
      span.symbol,
      cassandra.types.LocalDate.fromString(bucket),
      new Date(from),
      new Date(span.to),
    ], { prepare: true, fetchSize: options.fetchSize ?? 1000 });
    // The async iterator fetches the following pages on demand.
    for await (const row of result) {
      if (hasCandle(row)) yield summedCandleOf(row, span.interval);
    }
  }
}
