/**
 * Folding trades into OHLCV candles: pure, exact and idempotent.
 *
 * - open/close are the trades with the earliest/latest `(eventTime, rawPartition, rawOffset)`,
 *   so the result does not depend on arrival order;
 * - volume and the price x volume sum are exact decimals (see `decimal.ts`); price-only trades
 *   (`v = 0`) move open/high/low/close and the trade count, never volume or VWAP;
 * - `foldedOffsets` remembers, per raw partition, the highest raw offset folded in. A symbol's
 *   trades reach gold in raw-offset order, so a trade at or below that offset is a redelivery
 *   (a producer retry, a replayed topic, a restart) and is skipped, never counted twice, while
 *   two identical prints of one frame (two offsets) both count.
 *
 * @module
 */
import type { SilverTrade } from "../../shared/types.ts";
import {
  add,
  type Decimal,
  decimalFromNumber,
  divide,
  multiply,
  ZERO,
} from "../../shared/decimal.ts";
import { type Interval, VWAP_SCALE, windowEnd, windowStart } from "../../shared/gold_table.ts";

/** Where a trade sits in the total order used for open and close. */
export interface TradeKey {
  readonly eventTime: number;
  readonly partition: number;
  readonly offset: number;
}

/** One candle's full state: everything needed to keep folding into it after a restart. */
export interface Candle {
  readonly symbol: string;
  readonly interval: Interval;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly openKey: TradeKey;
  readonly closeKey: TradeKey;
  readonly volume: Decimal;
  readonly pvSum: Decimal;
  readonly tradeCount: number;
  readonly priceOnlyCount: number;
  /** Raw partition -> highest raw offset folded in. */
  readonly foldedOffsets: ReadonlyMap<number, number>;
  /** Trades folded in after the window was final. */
  readonly lateCount: number;
  /** Whether the watermark has passed the window's end. */
  readonly isFinal: boolean;
}

/** Orders trade keys: event time, then raw partition, then raw offset. */
export function compareKeys(a: TradeKey, b: TradeKey): number {
  return a.eventTime - b.eventTime || a.partition - b.partition || a.offset - b.offset;
}

/** The key of a silver trade. */
export function keyOf(trade: SilverTrade): TradeKey {
  return { eventTime: trade.eventTime, partition: trade.rawPartition, offset: trade.rawOffset };
}

/** Whether `trade` was already folded into `candle` (a redelivery). */
export function alreadyFolded(candle: Candle, trade: SilverTrade): boolean {
  const folded = candle.foldedOffsets.get(trade.rawPartition);
  return folded !== undefined && trade.rawOffset <= folded;
}

/** What a trade adds to a candle's sums: its exact volume and price x volume (0 if price-only). */
export interface TradeAmounts {
  readonly volume: Decimal;
  readonly pv: Decimal;
}

/**
 * The exact amounts `trade` adds to every candle it is folded into. Gold folds each trade into one
 * window per interval: computing these once per trade, not once per window, is most of the
 * decimal work saved.
 */
export function amountsOf(trade: SilverTrade): TradeAmounts {
  if (trade.priceOnly) return { volume: ZERO, pv: ZERO };
  const volume = decimalFromNumber(trade.volume);
  return { volume, pv: multiply(decimalFromNumber(trade.price), volume) };
}

/** Options of {@linkcode foldTrade}. */
export interface FoldOptions {
  /** The trade arrived after its window was final: count it as late. Default false. */
  readonly late?: boolean;
  /** The trade's {@linkcode amountsOf}, when already computed. Default: computed here. */
  readonly amounts?: TradeAmounts;
}

/**
 * Folds `trade` into `candle` (or starts a candle when there is none) and returns the new
 * candle, or the same object when the trade was already folded in. Throws a `RangeError` when
 * the trade belongs to another symbol or window.
 */
export function foldTrade(
  candle: Candle | undefined,
  trade: SilverTrade,
  interval: Interval,
  options: FoldOptions = {},
): Candle {
  const start = windowStart(trade.eventTime, interval);
  const key = keyOf(trade);
  const { volume, pv } = options.amounts ?? amountsOf(trade);
  const late = options.late ? 1 : 0;
  if (!candle) {
    return {
      symbol: trade.symbol,
      interval,
      windowStart: start,
      windowEnd: windowEnd(start, interval),
      open: trade.price,
      high: trade.price,
      low: trade.price,
      close: trade.price,
      openKey: key,
      closeKey: key,
      volume,
      pvSum: pv,
      tradeCount: 1,
      priceOnlyCount: trade.priceOnly ? 1 : 0,
      foldedOffsets: new Map([[trade.rawPartition, trade.rawOffset]]),
      lateCount: late,
      isFinal: false,
    };
  }
  if (
    candle.symbol !== trade.symbol || candle.windowStart !== start || candle.interval !== interval
  ) {
    throw new RangeError(
      `Cannot fold a ${trade.symbol} trade at ${trade.eventTime} into the ${candle.symbol} ${candle.interval} candle starting ${candle.windowStart}`,
    );
  }
  if (alreadyFolded(candle, trade)) return candle;
  const opens = compareKeys(key, candle.openKey) < 0;
  const closes = compareKeys(key, candle.closeKey) > 0;
  const foldedOffsets = new Map(candle.foldedOffsets);
  foldedOffsets.set(trade.rawPartition, trade.rawOffset);
  return {
    ...candle,
    open: opens ? trade.price : candle.open,
    openKey: opens ? key : candle.openKey,
    close: closes ? trade.price : candle.close,
    closeKey: closes ? key : candle.closeKey,
    high: Math.max(candle.high, trade.price),
    low: Math.min(candle.low, trade.price),
    volume: add(candle.volume, volume),
    pvSum: add(candle.pvSum, pv),
    tradeCount: candle.tradeCount + 1,
    priceOnlyCount: candle.priceOnlyCount + (trade.priceOnly ? 1 : 0),
    foldedOffsets,
    lateCount: candle.lateCount + late,
  };
}

/** The candle's volume-weighted average price, or null when its volume is 0. */
export function vwap(candle: Pick<Candle, "volume" | "pvSum">): Decimal | null {
  return candle.volume.units === 0n ? null : divide(candle.pvSum, candle.volume, VWAP_SCALE);
}

/** The candle marked final (same object when it already is). */
export function finalize(candle: Candle): Candle {
  return candle.isFinal ? candle : { ...candle, isFinal: true };
}

/**
 * A monotone version of a candle's state, used as the Cassandra write timestamp so a stale
 * write (fewer trades folded, or not yet final) can never overwrite a newer one, whichever
 * worker or restart issued it. Microseconds: the window start, plus twice the trade count,
 * plus one when final.
 */
export function writeTimestamp(candle: Candle): bigint {
  return BigInt(candle.windowStart) * 1000n + BigInt(candle.tradeCount) * 2n +
    (candle.isFinal ? 1n : 0n);
}
