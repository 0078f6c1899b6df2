/**
 * Candles of every served interval (`SERVED_INTERVALS` of `gold_table.ts`) read from Cassandra:
 * a stored interval straight from its gold table, a roll-up (15m, 4h) from the rows of the
 * stored interval it is made of, added up by {@linkcode rollUp} (`rollup.ts`).
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import {
  type CandleRow,
  INTERVAL_MS,
  isStored,
  readCandles,
  readCandlesStream,
  type ReadCandlesStreamOptions,
  readSummedCandles,
  ROLLUP_SOURCE,
  type ServedInterval,
  type SummedCandle,
  windowStart,
} from "./gold_table.ts";
import { readWindowCoverage } from "./feed_gap_table.ts";
import { constituentsPerWindow, rollUp, type RollUpOptions } from "./rollup.ts";

/** Roll-ups gathered before their exact coverage is read in one go, when streaming. */
const COVERAGE_BATCH = 256;

/**
 * `candles` (roll-ups of one symbol) with their exact feed-gap coverage, computed from the gaps
 * themselves (`readWindowCoverage`) in one read: `rollUp()` can only sum its constituents' and
 * would count a gap over two of them twice, and miss the gaps of those without a candle.
 */
async function withExactCoverage(
  session: cassandra.Client,
  keyspace: string,
  candles: readonly SummedCandle[],
): Promise<SummedCandle[]> {
  if (candles.length === 0) return [];
  const coverage = await readWindowCoverage(
    session,
    keyspace,
    candles[0]!.symbol,
    candles.map((c) => ({ from: c.windowStart, to: c.windowEnd })),
  );
  return candles.map((c, i) => ({ ...c, ...coverage[i]! }));
}

/** What {@linkcode readServedCandles} reads. */
export interface ServedRange {
  readonly symbol: string;
  readonly interval: ServedInterval;
  /** Windows starting at or after this (rounded down to a window start), epoch ms. */
  readonly from: number;
  /** Windows starting before this, epoch ms. */
  readonly to: number;
  /** The newest this many of the range. */
  readonly limit: number;
}

/**
 * The newest `limit` candles of the range, oldest first. A roll-up reads the stored rows of its
 * windows (the last window whole, though it ends after `to`) and one window's worth more than
 * `limit` windows can hold: when the read stops at its limit, the oldest roll-up may be missing
 * constituents and is left out.
 */
export async function readServedCandles(
  session: cassandra.Client,
  keyspace: string,
  range: ServedRange,
  options: RollUpOptions,
): Promise<CandleRow[]> {
  const { interval } = range;
  if (isStored(interval)) return await readCandles(session, keyspace, { ...range, interval });
  const per = constituentsPerWindow(interval);
  const readLimit = (range.limit + 1) * per;
  const rows = await readSummedCandles(session, keyspace, {
    symbol: range.symbol,
    interval: ROLLUP_SOURCE[interval],
    from: windowStart(range.from, interval),
    to: windowStart(range.to - 1, interval) + INTERVAL_MS[interval],
    limit: readLimit,
  });
  const rolled = rollUp(rows, interval, options);
  if (rows.length >= readLimit) rolled.shift();
  return await withExactCoverage(session, keyspace, rolled.slice(-range.limit));
}

/** What {@linkcode readServedCandlesStream} reads: every candle of the span, of any served interval. */
export interface ServedSpan {
  readonly symbol: string;
  readonly interval: ServedInterval;
  /** Windows starting at or after this (rounded down to a window start), epoch ms. */
  readonly from: number;
  /** Windows starting before this, epoch ms. */
  readonly to: number;
}

/**
 * Every candle of the span, oldest first, a Cassandra page at a time (exports: `export/`): a
 * stored interval by `readCandlesStream`; a roll-up from the stream of the rows it is made of
 * (the last window whole, though it ends after `to`), each window rolled up as soon as the
 * stream passes it, and given its exact coverage 256 roll-ups at a time, so memory holds one
 * page and 256 roll-ups.
 */
export async function* readServedCandlesStream(
  session: cassandra.Client,
  keyspace: string,
  span: ServedSpan,
  options: RollUpOptions & ReadCandlesStreamOptions,
): AsyncGenerator<SummedCandle> {
  const { interval } = span;
  const { now, allowedLatenessMs, ...read } = options;
  if (isStored(interval)) {
    yield* readCandlesStream(session, keyspace, { ...span, interval }, read);
    return;
  }
  const rows = readCandlesStream(session, keyspace, {
    symbol: span.symbol,
    interval: ROLLUP_SOURCE[interval],
    from: windowStart(span.from, interval),
    to: windowStart(span.to - 1, interval) + INTERVAL_MS[interval],
  }, read);
  let group: SummedCandle[] = [];
  let groupStart = NaN;
  let rolled: SummedCandle[] = [];
  for await (const row of rows) {
    const start = windowStart(row.windowStart, interval);
    if (start !== groupStart && group.length > 0) {
      rolled.push(...rollUp(group, interval, { now, allowedLatenessMs }));
      group = [];
      if (rolled.length >= COVERAGE_BATCH) {
        yield* await withExactCoverage(session, keyspace, rolled);
        rolled = [];
      }
    }
    groupStart = start;
    group.push(row);
  }
  if (group.length > 0) rolled.push(...rollUp(group, interval, { now, allowedLatenessMs }));
  yield* await withExactCoverage(session, keyspace, rolled);
}
