/**
 * US equity trading sessions in New York time, for silver (each trade's session), feed-gap coverage and the watchlist.
 *
 * Sessions (New York wall-clock time, Monday to Friday):
 *
 * | session       | from (inclusive) | to (exclusive) |
 * | ------------- | ---------------- | -------------- |
 * | `PRE_MARKET`  | 04:00            | 09:30          |
 * | `REGULAR`     | 09:30            | 16:00          |
 * | `AFTER_HOURS` | 16:00            | 20:00          |
 * | `CLOSED`      | 20:00            | 04:00          |
 *
 * Saturday and Sunday are `CLOSED` all day.
 *
 * **No holiday calendar.** The session comes from the clock alone: a print on a market holiday
 * (Christmas on a weekday, Good Friday, …) is labelled by its time like any other weekday, and
 * early closes (13:00 on some half days) are not modelled.
 *
 * The New York UTC offset is computed from the US daylight saving rule with integer arithmetic,
 * not with `Intl.DateTimeFormat`, because {@linkcode tradingSession} runs once per trade:
 *
 * - since 2007: EDT (UTC-4) from the second Sunday of March 02:00 local to the first Sunday of
 *   November 02:00 local, EST (UTC-5) otherwise;
 * - 1987–2006: first Sunday of April to the last Sunday of October, same hours.
 *
 * Years before 1987 are computed with the 1987–2006 rule, which does not match history (1974–75
 * and 1976–86 had other dates); the silver stage's default floor (2000-01-01) never sees them. If
 * US law changes the rule, the cross-check against the time-zone database in
 * `trading_session_test.ts` fails once the runtime's tzdata carries the change.
 *
 * @module
 */
import { SYMBOL_PATTERN } from "./config.ts";
import type { TradingSession } from "./types.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** UTC offset of EST, in milliseconds. */
const EST = -5 * HOUR;
/** UTC offset of EDT, in milliseconds. */
const EDT = -4 * HOUR;
/** The largest distance from the epoch a `Date` can hold (±100,000,000 days). */
const MAX_TIME = 8.64e15;

const PRE_MARKET_OPEN = 4 * HOUR;
const REGULAR_OPEN = 9 * HOUR + 30 * MINUTE;
const REGULAR_CLOSE = 16 * HOUR;
const AFTER_HOURS_CLOSE = 20 * HOUR;

/**
 * Whether `symbol` is a US equity: a well-formed symbol (it matches `SYMBOL_PATTERN` of
 * `shared/config.ts`) with no exchange prefix, such as `AAPL` or `BRK.B`. Crypto and FX symbols
 * carry a prefix (`BINANCE:BTCUSDT`, `OANDA:EUR_USD`) and are not; nor is a malformed symbol.
 *
 * Finnhub's free feed carries only US stocks without a prefix; a non-US listing such as `RY.TO`
 * would also count as a US equity.
 */
export function isUsEquity(symbol: string): boolean {
  return SYMBOL_PATTERN.test(symbol) && symbol.indexOf(":") === -1;
}

/**
 * The US equity {@linkcode TradingSession} at `eventTimeMs` (Unix epoch milliseconds UTC), by
 * New York wall-clock time with daylight saving. Boundaries belong to the session they open:
 * 04:00:00.000 is `PRE_MARKET`, 09:30:00.000 `REGULAR`, 16:00:00.000 `AFTER_HOURS` and
 * 20:00:00.000 `CLOSED`. No holiday calendar: see the module documentation.
 *
 * Allocation-free and without `Intl`; it remembers the boundaries of the last New York day it
 * saw, so consecutive trades of the same day cost a few comparisons. The memo never changes a
 * result.
 *
 * Throws a `RangeError` when `eventTimeMs` is not a finite time a `Date` can hold.
 */
export function tradingSession(eventTimeMs: number): TradingSession {
  if (!(eventTimeMs >= memo.dayStart && eventTimeMs < memo.dayEnd)) rememberDayOf(eventTimeMs);
  if (eventTimeMs < memo.preMarketOpen || eventTimeMs >= memo.afterHoursClose) return "CLOSED";
  if (eventTimeMs < memo.regularOpen) return "PRE_MARKET";
  if (eventTimeMs < memo.regularClose) return "REGULAR";
  return "AFTER_HOURS";
}

/**
 * The session of a trade of `symbol` at `eventTimeMs`: {@linkcode tradingSession} for a US
 * equity (see {@linkcode isUsEquity}), `null` for anything else (crypto and FX trade around the
 * clock).
 */
export function sessionFor(symbol: string, eventTimeMs: number): TradingSession | null {
  return isUsEquity(symbol) ? tradingSession(eventTimeMs) : null;
}

/**
 * New York's UTC offset at `eventTimeMs` in milliseconds: `-14_400_000` (EDT, UTC-4) or
 * `-18_000_000` (EST, UTC-5). Local time is `eventTimeMs + newYorkUtcOffsetMs(eventTimeMs)`.
 *
 * Throws a `RangeError` when `eventTimeMs` is not a finite time a `Date` can hold.
 */
export function newYorkUtcOffsetMs(eventTimeMs: number): number {
  assertTime(eventTimeMs);
  const year = yearOfDay(Math.floor(eventTimeMs / DAY));
  return offsetAt(eventTimeMs, { start: dstStartDay(year), end: dstEndDay(year) });
}

/** First and last Sunday (local day numbers) of daylight saving time in one year. */
interface DstDays {
  readonly start: number;
  readonly end: number;
}

function offsetAt(eventTimeMs: number, dst: DstDays): number {
  // 02:00 EST is 07:00 UTC; 02:00 EDT is 06:00 UTC. The transitions are far from New Year, so
  // the UTC year and the New York year agree whenever it matters.
  return eventTimeMs >= dst.start * DAY + 7 * HOUR && eventTimeMs < dst.end * DAY + 6 * HOUR
    ? EDT
    : EST;
}

/**
 * The UTC instants that bound one New York calendar day and its sessions. A weekend day has its
 * session boundaries at +Infinity, so every instant of it is before the pre-market open.
 */
const memo = {
  dayStart: 0,
  dayEnd: 0,
  preMarketOpen: 0,
  regularOpen: 0,
  regularClose: 0,
  afterHoursClose: 0,
};

function rememberDayOf(eventTimeMs: number): void {
  assertTime(eventTimeMs);
  const year = yearOfDay(Math.floor(eventTimeMs / DAY));
  const start = dstStartDay(year);
  const end = dstEndDay(year);
  const day = Math.floor((eventTimeMs + offsetAt(eventTimeMs, { start, end })) / DAY);
  // `day` may be December 31 of the year before (UTC is ahead): it is EST either way, and so are
  // the checks below, since they only compare it with March-November days of `year`.
  // A transition happens at 02:00 local: midnight still has the previous day's offset, and every
  // session boundary (04:00 and later) has the new one. Transitions fall on Sundays, which are
  // CLOSED all day, so this care only keeps the memo's bounds exact; it costs nothing.
  const midnightOffset = day > start && day <= end ? EDT : EST;
  const nextMidnightOffset = day + 1 > start && day + 1 <= end ? EDT : EST;
  const daytimeOffset = day >= start && day < end ? EDT : EST;
  const localMidnight = day * DAY;
  // Clamped to the valid range, so an out-of-range time never hits the memo and skips the check.
  memo.dayStart = Math.max(localMidnight - midnightOffset, -MAX_TIME);
  memo.dayEnd = Math.min(localMidnight + DAY - nextMidnightOffset, MAX_TIME + 1);
  const weekday = weekdayOfDay(day);
  if (weekday === 0 || weekday === 6) {
    memo.preMarketOpen = Infinity;
    memo.regularOpen = Infinity;
    memo.regularClose = Infinity;
    memo.afterHoursClose = Infinity;
    return;
  }
  const daytimeMidnight = localMidnight - daytimeOffset; // local 00:00 at the daytime offset
  memo.preMarketOpen = daytimeMidnight + PRE_MARKET_OPEN;
  memo.regularOpen = daytimeMidnight + REGULAR_OPEN;
  memo.regularClose = daytimeMidnight + REGULAR_CLOSE;
  memo.afterHoursClose = daytimeMidnight + AFTER_HOURS_CLOSE;
}

function assertTime(eventTimeMs: number): void {
  if (!(Math.abs(eventTimeMs) <= MAX_TIME)) {
    throw new RangeError(
      `Cannot compute a trading session: the event time must be a finite number of milliseconds within ±${MAX_TIME}, got ${eventTimeMs}`,
    );
  }
}

/** Local day number (days since 1970-01-01) of the first Sunday of daylight saving time. */
function dstStartDay(year: number): number {
  return year >= 2007
    ? firstSundayOnOrAfter(daysFromCivil(year, 3, 1)) + 7
    : firstSundayOnOrAfter(daysFromCivil(year, 4, 1));
}

/** Local day number of the Sunday daylight saving time ends. */
function dstEndDay(year: number): number {
  return year >= 2007
    ? firstSundayOnOrAfter(daysFromCivil(year, 11, 1))
    : firstSundayOnOrAfter(daysFromCivil(year, 10, 25));
}

function firstSundayOnOrAfter(day: number): number {
  return day + (7 - weekdayOfDay(day)) % 7;
}

/** 0 for Sunday to 6 for Saturday; day 0 (1970-01-01) was a Thursday. */
function weekdayOfDay(day: number): number {
  return (day % 7 + 11) % 7;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
function daysFromCivil(year: number, month: number, dayOfMonth: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + dayOfMonth -
    1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) +
    dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** The proleptic Gregorian year of a day number (H. Hinnant's `civil_from_days`). */
function yearOfDay(day: number): number {
  const z = day + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) -
    Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const year = yearOfEra + era * 400;
  return shiftedMonth >= 10 ? year + 1 : year;
}

/** A half-open span of time `[from, to)` in epoch milliseconds. */
export interface TimeSpan {
  readonly from: number;
  readonly to: number;
}

/**
 * The parts of `[fromMs, toMs)` inside `symbol`'s trading hours, in time order, each as long as
 * possible (two spans never touch): for a US equity (see {@linkcode isUsEquity}) the instants
 * whose {@linkcode tradingSession} is not `CLOSED` (04:00-20:00 New York time, Monday to Friday,
 * no holiday calendar); for anything else (crypto, FX) the whole span, since they trade around
 * the clock. Empty when `toMs <= fromMs`.
 *
 * Feed-gap coverage counts only these parts: a gap while a stock's market is closed hides no
 * trade. Costs two steps a New York day of the span.
 *
 * Throws a `RangeError` when a bound is not a finite time a `Date` can hold.
 */
export function tradingSpansWithin(symbol: string, fromMs: number, toMs: number): TimeSpan[] {
  assertTime(fromMs);
  assertTime(toMs);
  if (toMs <= fromMs) return [];
  if (!isUsEquity(symbol)) return [{ from: fromMs, to: toMs }];
  const spans: TimeSpan[] = [];
  let t = fromMs;
  while (t < toMs) {
    if (tradingSession(t) === "CLOSED") {
      // Before the day's pre-market (a weekend day has it at +Infinity) or after its close.
      t = t < memo.preMarketOpen && memo.preMarketOpen < memo.dayEnd
        ? memo.preMarketOpen
        : memo.dayEnd;
      continue;
    }
    const end = Math.min(memo.afterHoursClose, toMs);
    spans.push({ from: t, to: end });
    t = end;
  }
  return spans;
}

/**
 * How many milliseconds of `[fromMs, toMs)` are in `symbol`'s trading hours: the total length
 * of {@linkcode tradingSpansWithin}. The whole span for crypto and FX; 0 when `toMs <= fromMs`.
 */
export function tradingMsWithin(symbol: string, fromMs: number, toMs: number): number {
  let total = 0;
  for (const span of tradingSpansWithin(symbol, fromMs, toMs)) total += span.to - span.from;
  return total;
}
