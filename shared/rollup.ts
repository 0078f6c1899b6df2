/**
 * Roll-ups, pure: the 15-minute and 4-hour candles served from stored 5-minute and hourly rows
 * (`ROLLUP_SOURCE` of `gold_table.ts`), never stored themselves.
 *
 * A roll-up is exact because every stored sum adds up: a 15m window is the union of three 5m
 * windows (a 4h window of four hourly ones, UTC-aligned both), so
 * - open is the open of its first constituent by window start, close the close of its last (each
 *   constituent's open/close is already its earliest/latest trade by event time, raw partition,
 *   raw offset, and constituents do not overlap in event time);
 * - high is the highest high, low the lowest low;
 * - volume, price x volume sum, trade count, price-only count and late count are sums (exact
 *   decimals for the first two, `decimal.ts`), and VWAP is the summed price x volume over the
 *   summed volume, rounded as gold rounds it (`VWAP_SCALE` digits, half-even): never an average
 *   of averages;
 * - a roll-up is final when every constituent is final and its own window has ended more than the
 *   allowed lateness ago: a constituent with no trade yet has no row, so the constituents' flags
 *   alone cannot say the last of them is over;
 * - feed-gap coverage is provisional here: `gapMs` is the constituents' sum (exact over the
 *   constituents that have a row, since they do not overlap), `gapCount` their largest count (a
 *   gap over two constituents is one gap). Readers replace both with the exact values from the
 *   gaps themselves (`withExactCoverage` of `served_candles.ts`), which also counts the gaps of
 *   constituent windows that had no trade and so no candle.
 *
 * @module
 */
import { add, divide, formatDecimal, parseDecimal, ZERO } from "./decimal.ts";
import { coverageOf } from "./gap_coverage.ts";
import { tradingMsWithin } from "./trading_session.ts";
import {
  INTERVAL_MS,
  ROLLUP_SOURCE,
  type RollupInterval,
  type SummedCandle,
  VWAP_SCALE,
  windowEnd,
  windowStart,
} from "./gold_table.ts";

/** What decides whether a roll-up is final. */
export interface RollUpOptions {
  /** Wall time now, epoch ms. */
  readonly now: number;
  /** Gold's allowed lateness (`GOLD_ALLOWED_LATENESS_MS`). */
  readonly allowedLatenessMs: number;
}

/**
 * The `interval` roll-ups of `candles` (stored rows of one symbol, of the interval the roll-up
 * is made from, in any order), oldest first: one per roll-up window holding at least one of
 * them. Throws a `RangeError` naming the row when a candle is of another interval or symbol, or
 * two candles share a window.
 */
export function rollUp(
  candles: readonly SummedCandle[],
  interval: RollupInterval,
  options: RollUpOptions,
): SummedCandle[] {
  const source = ROLLUP_SOURCE[interval];
  const groups = new Map<number, SummedCandle[]>();
  const symbol = candles[0]?.symbol;
  for (const c of candles) {
    if (c.interval !== source) {
      throw new RangeError(
        `Cannot roll ${c.interval} candles up into ${interval}: ${interval} is made of ${source} candles`,
      );
    }
    if (c.symbol !== symbol) {
      throw new RangeError(
        `Cannot roll up candles of two symbols (${symbol} and ${c.symbol}) into one ${interval} series`,
      );
    }
    if (c.windowStart !== windowStart(c.windowStart, source)) {
      throw new RangeError(
        `Cannot roll up the ${source} candle at ${c.windowStart}: not the start of a ${source} window`,
      );
    }
    const start = windowStart(c.windowStart, interval);
    const group = groups.get(start);
    if (group) group.push(c);
    else groups.set(start, [c]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([start, group]) => rollUpWindow(group, interval, start, options));
}

/** One roll-up window of its constituents (at least one). */
function rollUpWindow(
  group: SummedCandle[],
  interval: RollupInterval,
  start: number,
  options: RollUpOptions,
): SummedCandle {
  const ordered = [...group].sort((a, b) => a.windowStart - b.windowStart);
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i]!.windowStart === ordered[i - 1]!.windowStart) {
      throw new RangeError(
        `Cannot roll up two ${ordered[i]!.interval} candles of ${
          ordered[i]!.symbol
        } for the window at ${ordered[i]!.windowStart}`,
      );
    }
  }
  const first = ordered[0]!;
  const last = ordered[ordered.length - 1]!;
  let volume = ZERO;
  let pvSum = ZERO;
  let high = -Infinity;
  let low = Infinity;
  let tradeCount = 0;
  let priceOnlyCount = 0;
  let lateCount = 0;
  let gapMs = 0;
  let gapCount = 0;
  for (const c of ordered) {
    gapMs += c.gapMs;
    gapCount = Math.max(gapCount, c.gapCount);
    volume = add(volume, parseDecimal(c.volume));
    pvSum = add(pvSum, parseDecimal(c.pvSum));
    high = Math.max(high, c.high);
    low = Math.min(low, c.low);
    tradeCount += c.tradeCount;
    priceOnlyCount += c.priceOnlyCount;
    lateCount += c.lateCount;
  }
  const end = windowEnd(start, interval);
  return {
    symbol: first.symbol,
    interval,
    windowStart: start,
    windowEnd: end,
    open: first.open,
    high,
    low,
    close: last.close,
    volume: formatDecimal(volume),
    vwap: volume.units === 0n ? null : formatDecimal(divide(pvSum, volume, VWAP_SCALE)),
    tradeCount,
    isFinal: ordered.every((c) => c.isFinal) && end + options.allowedLatenessMs <= options.now,
    pvSum: formatDecimal(pvSum),
    priceOnlyCount,
    lateCount,
    gapMs,
    gapCount,
    coverage: coverageOf(gapMs, tradingMsWithin(first.symbol, start, end)),
  };
}

/** How many `source` windows make one window of `interval` (3 for 15m, 4 for 4h). */
export function constituentsPerWindow(interval: RollupInterval): number {
  return INTERVAL_MS[interval] / INTERVAL_MS[ROLLUP_SOURCE[interval]];
}
