/**
 * How much of a candle's window the feed covered, pure: the arithmetic behind the `gap_ms` and
 * `gap_count` columns of the gold tables and the `coverage` of `/api/candles`.
 *
 * A window's trading time is its part inside the symbol's trading hours
 * (`tradingSpansWithin()` of `trading_session.ts`: 04:00-20:00 New York, Monday to Friday, for a
 * US equity; always for crypto and FX). Of that time:
 *
 * - `gapMs` is the length covered by the union of the known gaps (two overlapping gaps count
 *   once);
 * - `gapCount` is the number of distinct gaps (by id) that cover any of it;
 * - `coverage` is `1 - gapMs / tradingMs`, and 1 when the window has no trading time.
 *
 * A gap entirely outside trading hours (a stock overnight or at the weekend) touches nothing: no
 * trade could be missing. Both numbers only grow as gaps become known, which is what makes their
 * write timestamp ({@linkcode coverageWriteTimestamp}) order-free.
 *
 * @module
 */
import { SYMBOL_PATTERN } from "./config.ts";
import { type TimeSpan, tradingSpansWithin } from "./trading_session.ts";
import { FEED_GAP_CAUSES, type FeedGap, type FeedGapCause } from "./types.ts";

/** A gap as coverage needs it: its id and its span `[from, to)`, epoch ms. */
export interface GapSpan {
  readonly gapId: string;
  readonly from: number;
  readonly to: number;
}

/** What the gaps took of one window. */
export interface WindowGaps {
  /** Milliseconds of the window in trading hours covered by the union of the gaps. */
  readonly gapMs: number;
  /** Distinct gaps covering any trading time of the window. */
  readonly gapCount: number;
}

/** The longest gap accepted (366 days): longer is not a feed gap but a broken clock. */
export const MAX_GAP_MS = 366 * 86_400_000;

/** The largest distance from the epoch a `Date` can hold. */
const MAX_TIME = 8.64e15;

/**
 * The gaps' share of the window `[windowStart, windowEnd)` of `symbol`: see the module
 * documentation. Gaps may overlap, repeat (the same id twice counts once) and lie anywhere.
 */
export function windowGaps(
  symbol: string,
  window: TimeSpan,
  gaps: readonly GapSpan[],
): WindowGaps {
  const trading = tradingSpansWithin(symbol, window.from, window.to);
  if (trading.length === 0) return { gapMs: 0, gapCount: 0 };
  const ids = new Set<string>();
  const clipped: TimeSpan[] = [];
  for (const gap of gaps) {
    const span = { from: Math.max(gap.from, window.from), to: Math.min(gap.to, window.to) };
    if (span.from >= span.to) continue;
    if (overlapMs(trading, [span]) > 0) {
      ids.add(gap.gapId);
      clipped.push(span);
    }
  }
  return { gapMs: overlapMs(trading, union(clipped)), gapCount: ids.size };
}

/** `1 - gapMs / tradingMs`, and 1 when there is no trading time. */
export function coverageOf(gapMs: number, tradingMs: number): number {
  if (tradingMs <= 0) return 1;
  return Math.min(1, Math.max(0, 1 - gapMs / tradingMs));
}

/**
 * The write timestamp (microseconds) of a window's `gap_ms`/`gap_count` cells: ordered by what
 * was known, never by when it was written. Knowing more gaps never lowers either number, and a
 * new gap touching the window raises the count, so the write computed from more knowledge has
 * the larger timestamp whatever order two writers land in, and a rewrite of the same knowledge
 * is the same cell. The base is the window start in microseconds, as the fold's own timestamps
 * (`processor/gold/candle.ts`), so the cells stay in the row's time family.
 */
export function coverageWriteTimestamp(windowStart: number, gaps: WindowGaps): bigint {
  // gapMs < 2^27 for any window up to a day (86,400,000 ms); the count ranks first.
  return BigInt(windowStart) * 1000n + BigInt(gaps.gapCount) * 2n ** 27n + BigInt(gaps.gapMs);
}

/** Sorted, merged spans covering the same time as `spans` (touching spans merge). */
export function union(spans: readonly TimeSpan[]): TimeSpan[] {
  const sorted = spans.filter((s) => s.from < s.to).sort((a, b) => a.from - b.from);
  const out: { from: number; to: number }[] = [];
  for (const span of sorted) {
    const last = out[out.length - 1];
    if (last && span.from <= last.to) last.to = Math.max(last.to, span.to);
    else out.push({ from: span.from, to: span.to });
  }
  return out;
}

/** Length of the intersection of two sorted lists of disjoint spans. */
function overlapMs(a: readonly TimeSpan[], b: readonly TimeSpan[]): number {
  let total = 0;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    total += Math.max(0, Math.min(x.to, y.to) - Math.max(x.from, y.from));
    if (x.to < y.to) i++;
    else j++;
  }
  return total;
}

/**
 * Checks a decoded {@linkcode FeedGap} before anything is written for it; throws a `RangeError`
 * naming the field and the value when it cannot be a gap: an empty id, times that are not
 * integer epoch milliseconds, `toMs` before `fromMs` or more than {@linkcode MAX_GAP_MS} after
 * it, no symbols or a malformed one, an unknown cause. A gap of no length (a reconnect within one
 * millisecond) is a gap: it is stored and listed, and covers nothing.
 */
export function validateFeedGap(gap: FeedGap): FeedGap {
  if (gap.gapId.length === 0 || gap.gapId.length > 200) {
    throw new RangeError(
      `Invalid feed gap: gapId must have 1-200 characters, got ${gap.gapId.length}`,
    );
  }
  for (const field of ["fromMs", "toMs", "detectedAtMs"] as const) {
    const value = gap[field];
    if (!Number.isSafeInteger(value) || Math.abs(value) > MAX_TIME) {
      throw new RangeError(
        `Invalid feed gap ${gap.gapId}: ${field} must be integer epoch milliseconds, got ${value}`,
      );
    }
  }
  if (!(gap.toMs >= gap.fromMs) || gap.toMs - gap.fromMs > MAX_GAP_MS) {
    throw new RangeError(
      `Invalid feed gap ${gap.gapId}: toMs must be from fromMs to ${MAX_GAP_MS} ms after it, ` +
        `got fromMs ${gap.fromMs}, toMs ${gap.toMs}`,
    );
  }
  if (gap.symbols.length === 0) {
    throw new RangeError(`Invalid feed gap ${gap.gapId}: symbols must not be empty`);
  }
  for (const symbol of gap.symbols) {
    if (!SYMBOL_PATTERN.test(symbol)) {
      throw new RangeError(
        `Invalid feed gap ${gap.gapId}: symbol ${JSON.stringify(symbol)} is not a symbol`,
      );
    }
  }
  if (!FEED_GAP_CAUSES.includes(gap.cause as FeedGapCause)) {
    throw new RangeError(
      `Invalid feed gap ${gap.gapId}: cause must be one of ${FEED_GAP_CAUSES.join(", ")}, ` +
        `got ${JSON.stringify(gap.cause)}`,
    );
  }
  return gap;
}
