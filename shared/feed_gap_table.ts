/**
 * The `feed_gaps` table and the coverage columns of the gold tables
 * (`schemas/cassandra/005_feed_gaps.cql`): writing a gap, reading one symbol's gaps over a time
 * range (the gold worker's gap consumer and `/api/gaps`), and writing a window's
 * `gap_ms`/`gap_count`.
 *
 * A gap is stored once per symbol and per UTC day it overlaps, so the gaps overlapping any range
 * are in the partitions of the range's days. Every row of a gap is written `USING TIMESTAMP` of
 * its end: the same gap id published again with a later end (the producer saw more of its own
 * downtime) wins over the shorter one in whatever order they arrive, and readers take each id
 * once, with its latest end.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import type { RowWrite } from "./cassandra_writer.ts";
import type { GapSpan, WindowGaps } from "./gap_coverage.ts";
import { coverageOf, coverageWriteTimestamp, windowGaps } from "./gap_coverage.ts";
import { GOLD_TABLE, goldBucket, type Interval } from "./gold_table.ts";
import { type TimeSpan, tradingMsWithin } from "./trading_session.ts";
import type { FeedGap } from "./types.ts";

const DAY = 86_400_000;

/** A stored gap, as readers see it. */
export interface StoredGap extends GapSpan {
  readonly cause: string;
  readonly symbols: readonly string[];
}

/** The UTC days (`YYYY-MM-DD`) that `[from, to)` overlaps, oldest first. */
export function gapDayBuckets(from: number, to: number): string[] {
  const out: string[] = [];
  for (let day = Math.floor(from / DAY) * DAY; day < to; day += DAY) {
    out.push(new Date(day).toISOString().slice(0, 10));
  }
  return out;
}

/** The rows of `gap` in `feed_gaps`, one per symbol and UTC day, for `writeRows`. */
export function feedGapRows(keyspace: string, gap: FeedGap, storedAt: number): RowWrite<string>[] {
  const query = `INSERT INTO ${keyspace}.feed_gaps (symbol, bucket, gap_from, gap_id, gap_to,
    cause, symbols, connection_id, detected_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
  const rows: RowWrite<string>[] = [];
  for (const symbol of new Set(gap.symbols)) {
    // A gap of no length is still stored (and listed), under the day of its instant.
    for (const bucket of gapDayBuckets(gap.fromMs, Math.max(gap.toMs, gap.fromMs + 1))) {
      rows.push({
        query,
        partition: `${symbol}\u0000${bucket}`,
        timestamp: BigInt(gap.toMs) * 1000n,
        ref: gap.gapId,
        params: [
          symbol,
          cassandra.types.LocalDate.fromString(bucket),
          new Date(gap.fromMs),
          gap.gapId,
          new Date(gap.toMs),
          gap.cause,
          [...gap.symbols],
          gap.connectionId,
          new Date(gap.detectedAtMs),
          new Date(storedAt),
        ],
      });
    }
  }
  return rows;
}

/** What {@linkcode readFeedGaps} reads. */
export interface GapRange {
  readonly symbol: string;
  /** Gaps ending after this, epoch ms. */
  readonly from: number;
  /** Gaps starting before this, epoch ms. */
  readonly to: number;
  /** The first this many gaps (by start) of the range. */
  readonly limit: number;
}

/**
 * The gaps of `symbol` that overlap `[from, to)`, each id once (with its latest end), ordered by
 * start then id: the first `limit` of them. Reads the partition of each UTC day of the range, in
 * order, and stops once a day's gaps reach the limit (a gap first seen in a later day starts
 * after every gap already seen). Each day reads at most `limit + 1` rows by start, those that
 * ended before `from` included: a day with more gaps than that before `from` could hide some
 * (a gap every 10 minutes is 144 a day).
 */
export async function readFeedGaps(
  session: cassandra.Client,
  keyspace: string,
  range: GapRange,
): Promise<StoredGap[]> {
  const query = `SELECT gap_id, gap_from, gap_to, cause, symbols FROM ${keyspace}.feed_gaps
    WHERE symbol = ? AND bucket = ? AND gap_from < ? LIMIT ?`;
  const byId = new Map<string, StoredGap>();
  for (const bucket of gapDayBuckets(range.from, range.to)) {
    const result = await session.execute(query, [
      range.symbol,
      cassandra.types.LocalDate.fromString(bucket),
      new Date(range.to),
      range.limit + 1,
    ], { prepare: true });
    for (const row of result.rows) {
      const gap: StoredGap = {
        gapId: row.get("gap_id"),
        from: (row.get("gap_from") as Date).getTime(),
        to: (row.get("gap_to") as Date).getTime(),
        cause: row.get("cause") ?? "",
        symbols: row.get("symbols") ?? [],
      };
      if (gap.to <= range.from) continue;
      const known = byId.get(gap.gapId);
      if (!known || gap.to > known.to) byId.set(gap.gapId, gap);
    }
    if (byId.size >= range.limit) break;
  }
  return [...byId.values()]
    .sort((a, b) => a.from - b.from || (a.gapId < b.gapId ? -1 : a.gapId > b.gapId ? 1 : 0))
    .slice(0, range.limit);
}

/**
 * The coverage of any windows of `symbol` (ascending or not), computed from `feed_gaps` rather
 * than read from gold rows: for a window no gold table stores, such as a served roll-up (15m
 * from 5m rows, 4h from 1h rows), where summing the parts would count a gap spanning two of them
 * twice in `gapCount` and miss the gaps of parts without a candle. One read over the windows'
 * whole range.
 */
export async function readWindowCoverage(
  session: cassandra.Client,
  keyspace: string,
  symbol: string,
  windows: readonly TimeSpan[],
): Promise<(WindowGaps & { readonly coverage: number })[]> {
  if (windows.length === 0) return [];
  const from = Math.min(...windows.map((w) => w.from));
  const to = Math.max(...windows.map((w) => w.to));
  const gaps = await readFeedGaps(session, keyspace, { symbol, from, to, limit: 1_000_000 });
  return windows.map((window) => {
    const counted = windowGaps(symbol, window, gaps);
    return {
      ...counted,
      coverage: coverageOf(counted.gapMs, tradingMsWithin(symbol, window.from, window.to)),
    };
  });
}

/**
 * The write of one window's coverage: only `gap_ms` and `gap_count` (never a column the fold
 * writes), `USING TIMESTAMP` ordered by what was known (`coverageWriteTimestamp()`). A window
 * with no candle yet gets the two cells alone; gold's later insert of the candle leaves them.
 */
export function windowGapsWrite(
  keyspace: string,
  key: { readonly interval: Interval; readonly symbol: string; readonly windowStart: number },
  gaps: WindowGaps,
): RowWrite<string> {
  const { interval, symbol, windowStart } = key;
  const bucket = goldBucket(windowStart, interval);
  return {
    query: `UPDATE ${keyspace}.${GOLD_TABLE[interval]} SET gap_ms = ?, gap_count = ?
      WHERE symbol = ? AND bucket = ? AND window_start = ?`,
    partition: `${symbol}\u0000${bucket}`,
    timestamp: coverageWriteTimestamp(windowStart, gaps),
    ref: `${interval} ${symbol} ${windowStart}`,
    params: [
      BigInt(gaps.gapMs),
      gaps.gapCount,
      symbol,
      cassandra.types.LocalDate.fromString(bucket),
      new Date(windowStart),
    ],
  };
}
