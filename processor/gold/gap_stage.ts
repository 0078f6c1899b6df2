/**
 * The gold worker's consumer of feed gaps: stores every `FeedGap` of the gaps topic in
 * `feed_gaps` and amends the coverage of every gold window the gap touches in the symbol's
 * trading hours (`gap_ms`, `gap_count`: see `shared/gap_coverage.ts`).
 *
 * Exact under replays, reordering and late knowledge, because nothing is accumulated: a window's
 * two numbers are recomputed from every gap `feed_gaps` holds for the symbol around it, after the
 * new gap is stored, and written `USING TIMESTAMP` ordered by what was known
 * (`coverageWriteTimestamp()`). A replayed gap rewrites the same rows and numbers; of two
 * amendments racing, the one that knew more wins; a gap learned long after its candles were
 * final (the producer's own downtime, published at its next start) amends them like any other.
 * Only those two columns are written, never a column the fold writes, so an amendment and a fold
 * never overwrite each other. A window with no trades gets the two cells and no candle: readers
 * skip such rows (`readCandles()`), and if a late trade makes a candle there, gold's insert
 * leaves the cells in place.
 *
 * It runs in the gold worker process (`processor/worker.ts`) with a consumer group of its own
 * (`gapsGroupIdOf()`): gaps are a few an hour, not worth a process of their own, and the batch
 * loop, retries and dead letters are the stage runner's. A record that cannot be decoded or is
 * not a gap (`validateFeedGap()`) is dead-lettered, never retried.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import {
  type RowWrite,
  writeMetrics,
  type WriteOutcome,
  writeRows,
} from "../../shared/cassandra_writer.ts";
import { feedGapRows, readFeedGaps, windowGapsWrite } from "../../shared/feed_gap_table.ts";
import { type GapSpan, union, validateFeedGap, windowGaps } from "../../shared/gap_coverage.ts";
import {
  type Interval,
  INTERVAL_MS,
  INTERVALS,
  windowEnd,
  windowStart,
} from "../../shared/gold_table.ts";
import { reasonOf } from "../../shared/dead_letter.ts";
import type { TimeSpan } from "../../shared/trading_session.ts";
import type { FeedGap } from "../../shared/types.ts";
import { createStageInput } from "../stage_input.ts";
import type { Stage, StageBatch } from "../stage_runner.ts";
import type { StageOptions } from "../stage_options.ts";

/** Window coverages written per `writeRows` call: bounds memory for a days-long gap. */
const WRITE_CHUNK = 2_000;

/** Dependencies of {@linkcode createGapStage}: its wire decodes FeedGap records. */
export type GapStageOptions = StageOptions;

/** The stage that stores feed gaps and amends gold coverage. */
export function createGapStage(options: GapStageOptions): Stage {
  const { session, keyspace, log, metrics } = options;
  const now = options.now ?? Date.now;
  const concurrency = options.concurrency ?? 32;
  const observe = writeMetrics(metrics, "gold");
  const input = createStageInput({
    stage: "gold",
    wire: options.wire,
    producer: options.producer,
    deadLetterTopic: options.deadLetterTopic,
    metrics,
    now,
  });
  const stored = metrics.counter(
    "pipeline_gold_feed_gaps_stored_total",
    "Feed gaps stored in feed_gaps by the gold worker (replays included).",
  );
  const amended = metrics.counter(
    "pipeline_gold_gap_windows_amended_total",
    "Gold windows whose gap_ms/gap_count were (re)computed and written, by interval.",
  );

  const target: CoverageTarget = { session, keyspace, concurrency, observe };

  return {
    name: "gold",
    async processBatch(batch: StageBatch) {
      const { records, rejects } = await input.decode(batch, "FeedGap");
      const gaps: FeedGap[] = [];
      for (const record of records) {
        try {
          gaps.push(validateFeedGap(record.value));
        } catch (error) {
          rejects.reject(record.index, reasonOf(error), "invalid_feed_gap");
        }
      }
      const at = now();
      await write(target, gaps.flatMap((gap) => feedGapRows(keyspace, gap, at)));
      stored.inc({}, gaps.length);
      for (const [symbol, spans] of spansBySymbol(gaps)) {
        const written = await amendCoverage(target, symbol, spans);
        for (const interval of INTERVALS) amended.inc({ interval }, written[interval]);
      }
      await input.deadLetter(rejects);
      if (gaps.length > 0) {
        log.info("feed gaps stored, coverage amended", {
          gaps: gaps.map((g) => ({ gapId: g.gapId, fromMs: g.fromMs, toMs: g.toMs })),
        });
      }
    },
  };
}

/** Where {@linkcode amendCoverage} reads and writes. */
export interface CoverageTarget {
  readonly session: cassandra.Client;
  readonly keyspace: string;
  /** Most Cassandra requests in flight. */
  readonly concurrency: number;
  /** Observes each write request (`writeMetrics()`). Default none. */
  readonly observe?: (seconds: number, outcome: WriteOutcome) => void;
}

async function write(target: CoverageTarget, rows: readonly RowWrite<string>[]): Promise<void> {
  const failures = await writeRows(target.session, rows, {
    concurrency: target.concurrency,
    ...(target.observe ? { observe: target.observe } : {}),
  });
  // Rows built from validated gaps: a refusal is a bug or a schema not applied, not bad input.
  if (failures.length > 0) throw failures[0]!.error;
}

/**
 * Recomputes from `feed_gaps` and writes the coverage (`gap_ms`, `gap_count`) of every window of
 * every interval that `spans` (sorted, disjoint) of `symbol` overlap and some gap touches in
 * trading hours; returns how many windows it wrote per interval. Idempotent and order-free (see
 * the module documentation): anything that rewrites gold rows whole (a rebuild that deletes
 * rows) can call it for the span afterwards to put the coverage back.
 */
export async function amendCoverage(
  target: CoverageTarget,
  symbol: string,
  spans: readonly TimeSpan[],
): Promise<Record<Interval, number>> {
  const written = Object.fromEntries(INTERVALS.map((i) => [i, 0])) as Record<Interval, number>;
  for (const interval of INTERVALS) {
    const windows = touchedWindows(spans, interval);
    if (windows.length === 0) continue;
    const gaps = await readFeedGaps(target.session, target.keyspace, {
      symbol,
      from: windows[0]!,
      to: windowEnd(windows[windows.length - 1]!, interval),
      limit: 1_000_000,
    });
    let rows: RowWrite<string>[] = [];
    const flush = async () => {
      await write(target, rows);
      written[interval] += rows.length;
      rows = [];
    };
    for (const [start, counted] of coverages(symbol, interval, windows, gaps)) {
      const key = { interval, symbol, windowStart: start };
      rows.push(windowGapsWrite(target.keyspace, key, counted));
      if (rows.length >= WRITE_CHUNK) await flush();
    }
    await flush();
  }
  return written;
}

/** Each symbol's gaps of the batch, as merged spans. */
function spansBySymbol(gaps: readonly FeedGap[]): Map<string, TimeSpan[]> {
  const out = new Map<string, TimeSpan[]>();
  for (const gap of gaps) {
    for (const symbol of new Set(gap.symbols)) {
      let spans = out.get(symbol);
      if (!spans) out.set(symbol, spans = []);
      spans.push({ from: gap.fromMs, to: gap.toMs });
    }
  }
  for (const [symbol, spans] of out) out.set(symbol, union(spans));
  return out;
}

/** Starts of the windows of `interval` that `spans` (sorted, disjoint) overlap, ascending. */
export function touchedWindows(spans: readonly TimeSpan[], interval: Interval): number[] {
  const out: number[] = [];
  for (const span of spans) {
    let start = windowStart(span.from, interval);
    if (out.length > 0 && start <= out[out.length - 1]!) {
      start = out[out.length - 1]! + INTERVAL_MS[interval];
    }
    for (; start < span.to; start += INTERVAL_MS[interval]) out.push(start);
  }
  return out;
}

/**
 * The coverage of each window (ascending starts) that some gap touches in trading hours; the
 * gaps in view move along with the windows, so a long range costs one pass.
 */
function* coverages(
  symbol: string,
  interval: Interval,
  windows: readonly number[],
  gaps: readonly GapSpan[],
): Generator<[number, ReturnType<typeof windowGaps>]> {
  const byStart = [...gaps].sort((a, b) => a.from - b.from);
  let next = 0;
  let active: GapSpan[] = [];
  for (const start of windows) {
    const end = windowEnd(start, interval);
    while (next < byStart.length && byStart[next]!.from < end) active.push(byStart[next++]!);
    active = active.filter((g) => g.to > start);
    if (active.length === 0) continue;
    const counted = windowGaps(symbol, { from: start, to: end }, active);
    if (counted.gapCount > 0) yield [start, counted];
  }
}
