/**
 * The reference coverage of a candle, for the feed-gap tests: independent of
 * `shared/gap_coverage.ts` and `shared/trading_session.ts`. The window is cut at every gap bound
 * and every whole minute (trading hours change only on whole minutes), and each piece is judged
 * by its first instant, with Intl's New York time for a US stock's hours (04:00-20:00 Monday to
 * Friday); a symbol with an exchange prefix (crypto, FX) is always in hours.
 *
 * @module
 */
import type { FeedGap } from "../shared/types.ts";

const MINUTE = 60_000;

const newYork = new Intl.DateTimeFormat("en-US", {
  timeZone: "America/New_York",
  weekday: "short",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** Whether `symbol` trades at `time`, by Intl's New York clock. */
export function inTradingHours(symbol: string, time: number): boolean {
  if (symbol.includes(":")) return true;
  const parts = Object.fromEntries(newYork.formatToParts(time).map((p) => [p.type, p.value]));
  const minuteOfDay = Number(parts.hour) * 60 + Number(parts.minute);
  return parts.weekday !== "Sat" && parts.weekday !== "Sun" && minuteOfDay >= 240 &&
    minuteOfDay < 1200;
}

/** What a candle of `symbol` over `[from, to)` must say, given every gap known. */
export interface ExpectedCoverage {
  readonly gapMs: number;
  readonly gapCount: number;
  readonly coverage: number;
}

/** The reference coverage of `[from, to)` for `symbol` under `gaps` (any symbols, any order). */
export function expectedCoverage(
  symbol: string,
  from: number,
  to: number,
  gaps: readonly FeedGap[],
): ExpectedCoverage {
  const mine = gaps.filter((g) => g.symbols.includes(symbol));
  const cuts = new Set<number>([from, to]);
  for (let m = Math.ceil(from / MINUTE) * MINUTE; m < to; m += MINUTE) cuts.add(m);
  for (const g of mine) for (const t of [g.fromMs, g.toMs]) if (t > from && t < to) cuts.add(t);
  const points = [...cuts].sort((a, b) => a - b);
  let gapMs = 0;
  let tradingMs = 0;
  const ids = new Set<string>();
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]!;
    if (!inTradingHours(symbol, start)) continue;
    const length = points[i + 1]! - start;
    tradingMs += length;
    const covering = mine.filter((g) => g.fromMs <= start && start < g.toMs);
    if (covering.length > 0) gapMs += length;
    for (const g of covering) ids.add(g.gapId);
  }
  return { gapMs, gapCount: ids.size, coverage: tradingMs === 0 ? 1 : 1 - gapMs / tradingMs };
}
