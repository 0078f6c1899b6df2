/**
 * The watchlist: one row per symbol with its last price, change since the session's open, the
 * day's volume, a sparkline of the day's closes and its session state. Pure: the route
 * (`market.ts`) reads the day's candles and hands them here, so every rule is unit-tested.
 *
 * **The day** of a symbol at `now`:
 * - US equity (no exchange prefix, `isUsEquity` of `shared/trading_session.ts`): the latest New
 *   York weekday whose pre-market (04:00 New York) has begun, from its 04:00 to its 20:00 New York
 *   time (pre-market, regular session and after-hours; trades in the closed hours do not count).
 *   So from Friday 04:00 to Monday 04:00 the day is Friday's; on a daylight-saving Sunday it is the
 *   Friday before, at that Friday's offset. No holiday calendar (as `trading_session.ts`).
 * - Anything else (crypto, FX: `BINANCE:BTCUSDT`): the UTC day of `now`, 00:00 to 24:00.
 *
 * **The session's open**: for a US equity at or after its regular open (09:30 New York), the
 * first trade at or after 09:30 (the open of the first candle starting at or after it), or the
 * day's first trade if none traded since; before 09:30, the day's first trade (the pre-market's).
 * For crypto and FX, the day's first trade. The day's candles are 5-minute ones, UTC-aligned:
 * every New York hour and half hour starts one, so "the first candle at or after 09:30" holds
 * exactly the first trades at or after 09:30.
 *
 * Change is `last - open` exact (both read as the decimal a double prints as, see
 * `shared/decimal.ts`), the percentage rounded half-to-even to 2 places; volume is the exact
 * decimal sum of the day's candles.
 *
 * @module
 */
import {
  add,
  decimalFromNumber,
  divide,
  formatDecimal,
  multiply,
  parseDecimal,
  ZERO,
} from "../../shared/decimal.ts";
import type { Interval } from "../../shared/gold_table.ts";
import { isUsEquity, newYorkUtcOffsetMs, tradingSession } from "../../shared/trading_session.ts";
import type { TradingSession } from "../../shared/types.ts";
import type { CandleJson } from "./store.ts";

/**
 * The candles a day is read from: 5 minutes, so the sparkline has at most 288 points and the
 * 09:30 open is a window start.
 */
export const WATCHLIST_INTERVAL: Interval = "5m";

/** Most symbols in one watchlist (the configured ones first, then those seen live). */
export const MAX_WATCHLIST_SYMBOLS = 200;

/** A symbol's session state: a US equity's session, or `OPEN` for what trades around the clock. */
export type WatchSession = TradingSession | "OPEN";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The span a row covers, epoch ms. */
export interface TradingDay {
  /** The day's date, `YYYY-MM-DD` (New York for US equities, UTC otherwise). */
  readonly date: string;
  /** Inclusive. */
  readonly from: number;
  /** Exclusive. */
  readonly to: number;
  /** The open is the first trade at or after this: the regular open, or `from`. */
  readonly openFrom: number;
}

/** One row of the watchlist, as `/api/watchlist` gives it. */
export interface WatchlistRow {
  readonly symbol: string;
  readonly session: WatchSession;
  readonly day: TradingDay;
  /** The session's open price; null when nothing traded in the day. */
  readonly open: number | null;
  /** Start of the candle the open comes from. */
  readonly openTime: number | null;
  /** Close of the day's newest candle. */
  readonly last: number | null;
  /** Start of the day's newest candle. */
  readonly lastTime: number | null;
  /** `last - open`, exact decimal. */
  readonly change: string | null;
  /** `100 * change / open`, 2 places. */
  readonly changePercent: string | null;
  /** The day's volume, exact decimal. */
  readonly volume: string;
  readonly trades: number;
  /**
   * `[candle start, close, volume, trades]` of the day's candles, oldest first: the sparkline,
   * and what a live update of a window replaces.
   */
  readonly windows: readonly (readonly [number, number, string, number])[];
}

function isoDate(day: number): string {
  return new Date(day * DAY).toISOString().slice(0, 10);
}

/** 0 for Sunday to 6 for Saturday; day 0 (1970-01-01) was a Thursday. */
function weekdayOf(day: number): number {
  return ((day % 7) + 11) % 7;
}

/** The day a row of `symbol` covers at `now` (see the module documentation). */
export function tradingDayOf(symbol: string, now: number): TradingDay {
  if (!isUsEquity(symbol)) {
    const from = Math.floor(now / DAY) * DAY;
    return { date: isoDate(from / DAY), from, to: from + DAY, openFrom: from };
  }
  const local = now + newYorkUtcOffsetMs(now);
  let day = Math.floor(local / DAY);
  if (local - day * DAY < 4 * HOUR) day--;
  while (weekdayOf(day) === 0 || weekdayOf(day) === 6) day--;
  // A weekday: one offset all day (transitions are on Sundays at 02:00).
  const offset = newYorkUtcOffsetMs(day * DAY + 12 * HOUR);
  const midnight = day * DAY - offset;
  const regularOpen = midnight + 9 * HOUR + 30 * MINUTE;
  return {
    date: isoDate(day),
    from: midnight + 4 * HOUR,
    to: midnight + 20 * HOUR,
    openFrom: now >= regularOpen ? regularOpen : midnight + 4 * HOUR,
  };
}

/** The session state of `symbol` at `now`: its trading session, or `OPEN` (crypto, FX). */
export function watchSessionOf(symbol: string, now: number): WatchSession {
  return isUsEquity(symbol) ? tradingSession(now) : "OPEN";
}

/**
 * The row of `symbol` at `now` from `candles`: candles of {@linkcode WATCHLIST_INTERVAL}, oldest
 * first; those outside the day are ignored.
 */
export function watchlistRow(
  symbol: string,
  now: number,
  candles: readonly CandleJson[],
): WatchlistRow {
  const day = tradingDayOf(symbol, now);
  const inDay = candles.filter((c) => c.time >= day.from && c.time < day.to);
  const opening = inDay.find((c) => c.time >= day.openFrom) ?? inDay[0];
  const newest = inDay.at(-1);
  let volume = ZERO;
  let trades = 0;
  for (const c of inDay) {
    volume = add(volume, parseDecimal(c.volume));
    trades += c.trades;
  }
  let change: string | null = null;
  let changePercent: string | null = null;
  if (opening && newest) {
    const open = decimalFromNumber(opening.open);
    const delta = add(decimalFromNumber(newest.close), { units: -open.units, scale: open.scale });
    change = formatDecimal(delta);
    changePercent = open.units === 0n
      ? null
      : formatDecimal(divide(multiply(delta, { units: 100n, scale: 0 }), open, 2));
  }
  return {
    symbol,
    session: watchSessionOf(symbol, now),
    day,
    open: opening?.open ?? null,
    openTime: opening?.time ?? null,
    last: newest?.close ?? null,
    lastTime: newest?.time ?? null,
    change,
    changePercent,
    volume: formatDecimal(volume),
    trades,
    windows: inDay.map((c) => [c.time, c.close, c.volume, c.trades] as const),
  };
}

/** The symbols a watchlist lists: the configured first, then those seen, at most `max`. */
export function watchlistSymbols(
  configured: readonly string[],
  seen: readonly string[],
  max = MAX_WATCHLIST_SYMBOLS,
): string[] {
  const out = [...new Set([...configured, ...seen])];
  return out.slice(0, max);
}
