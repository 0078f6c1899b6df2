/**
 * What a rebuild writes, decided without I/O: the silver trades re-derived from the raw records
 * with silver's own validation (`processor/silver/validate.ts`), the candles folded from them with
 * gold's own fold (`processor/gold/candle.ts`), and the differences from what is stored.
 *
 * Silver rows and candles are keyed by the raw source position, so writing one again rewrites
 * the same row: a rebuild is idempotent, and a rerun repairs one that was stopped.
 *
 * Rules (each the simplest one that keeps the tables exact while the live stages run):
 * - a stored silver row whose raw record was read and now is rejected is removed; a stored row
 *   whose raw record was not read (received after the late margin, or during the rebuild) is
 *   kept as it is, and folded into gold when it is below what the source read on its raw
 *   partition (`foldableKept`);
 * - gold is folded from the silver trades as they are after the rebuild, whichever layers are
 *   written, and only windows that live gold will not write again are written: windows stored
 *   final, and windows without a row that every live partition's watermark has passed. A window
 *   stored open is live gold's (it is folding it in memory: "left open"; one whose row differs
 *   from the rebuilt fold is reported, to rebuild again once it is final), and so is one whose
 *   row folded a trade past what the rebuild read ("live ahead": a trade received during the
 *   rebuild);
 * - a rebuilt candle is written with the fold's own version as write timestamp
 *   (`writeTimestamp()`), raised above the stored row's write time when that is higher (a hand
 *   edit, or a policy that now drops trades), so the rewrite always lands.
 *
 * @module
 */
import type { Interval } from "../shared/gold_table.ts";
import { INTERVALS, windowStart } from "../shared/gold_table.ts";
import { formatDecimal } from "../shared/decimal.ts";
import type { RawTrade, SilverTrade } from "../shared/types.ts";
import {
  type Candle,
  finalize,
  foldTrade,
  vwap,
  writeTimestamp,
} from "../processor/gold/candle.ts";
import {
  type RejectionCode,
  type SilverRules,
  type SourcePosition,
  toSilverTrade,
  TradeRejection,
} from "../processor/silver/validate.ts";

/** One raw record as read from Kafka or bronze. */
export interface SourceRecord {
  readonly raw: RawTrade;
  readonly position: SourcePosition;
}

/** The key of a source position. */
export function positionKey(topic: string, partition: number, offset: number): string {
  return `${topic}\u0000${partition}\u0000${offset}`;
}

/** The key of a silver row (its primary key but the bucket, which follows from event time). */
export function silverKey(t: SilverTrade): string {
  return `${t.symbol}\u0000${t.eventTime}\u0000${t.rawPartition}\u0000${t.rawOffset}`;
}

/** Silver re-derived from the records of a span. */
export interface DerivedSilver {
  /** The valid trades with event time in the span, in source order. */
  readonly trades: SilverTrade[];
  /** Records with event time in the span that silver rejects, by code. */
  readonly rejected: Partial<Record<RejectionCode, number>>;
  /** Every source position read (in the span or not). */
  readonly read: ReadonlySet<string>;
}

/**
 * Validates each record whose event time is in [from, to) (and whose symbol is wanted) exactly as
 * the silver stage does. `symbols` undefined: every symbol.
 */
export function deriveSilver(
  records: Iterable<SourceRecord>,
  span: { readonly from: number; readonly to: number },
  rules: SilverRules,
  symbols?: ReadonlySet<string>,
): DerivedSilver {
  const trades: SilverTrade[] = [];
  const rejected: Partial<Record<RejectionCode, number>> = {};
  const read = new Set<string>();
  for (const { raw, position } of records) {
    read.add(positionKey(position.topic, position.partition, position.offset));
    if (symbols && !symbols.has(raw.s)) continue;
    if (!(raw.t >= span.from && raw.t < span.to)) continue;
    try {
      trades.push(toSilverTrade(raw, position, rules));
    } catch (error) {
      if (!(error instanceof TradeRejection)) throw error;
      rejected[error.code] = (rejected[error.code] ?? 0) + 1;
    }
  }
  return { trades, rejected, read };
}

/** A stored silver row changed by the rebuild. */
export interface Changed<T> {
  readonly before: T;
  readonly after: T;
}

/** How the stored silver rows of a span differ from the rebuilt ones. */
export interface SilverDiff {
  /** Rebuilt trades without a stored row. */
  readonly added: SilverTrade[];
  /** Stored rows whose raw record was read and is now rejected (or out of the span). */
  readonly removed: SilverTrade[];
  /** Stored rows whose columns differ from the rebuilt trade. */
  readonly changed: Changed<SilverTrade>[];
  readonly unchanged: number;
  /** Stored rows whose raw record was not read: left as they are, still folded into gold. */
  readonly kept: SilverTrade[];
}

/** Whether two silver trades of one key hold the same columns (`stored_at` aside). */
export function sameSilver(a: SilverTrade, b: SilverTrade): boolean {
  return a.price === b.price && a.volume === b.volume && a.priceOnly === b.priceOnly &&
    a.session === b.session && a.ingestTime === b.ingestTime && a.rawTopic === b.rawTopic &&
    a.conditions.length === b.conditions.length &&
    a.conditions.every((c, i) => c === b.conditions[i]);
}

/** Compares the stored silver rows of a span with the rebuilt trades. */
export function diffSilver(
  stored: readonly SilverTrade[],
  rebuilt: readonly SilverTrade[],
  read: ReadonlySet<string>,
): SilverDiff {
  const storedByKey = new Map(stored.map((t) => [silverKey(t), t]));
  const added: SilverTrade[] = [];
  const changed: Changed<SilverTrade>[] = [];
  let unchanged = 0;
  const rebuiltKeys = new Set<string>();
  for (const after of rebuilt) {
    const key = silverKey(after);
    rebuiltKeys.add(key);
    const before = storedByKey.get(key);
    if (!before) added.push(after);
    else if (sameSilver(before, after)) unchanged++;
    else changed.push({ before, after });
  }
  const removed: SilverTrade[] = [];
  const kept: SilverTrade[] = [];
  for (const [key, row] of storedByKey) {
    if (rebuiltKeys.has(key)) continue;
    if (read.has(positionKey(row.rawTopic, row.rawPartition, row.rawOffset))) removed.push(row);
    else kept.push(row);
  }
  return { added, removed, changed, unchanged, kept };
}

/**
 * The kept silver rows gold may fold: those below what the source read on their raw partition.
 * A row past it was written by live silver during the rebuild, and the rows before it may not
 * all be written yet (silver writes a batch's rows concurrently): folding it would mark them
 * folded (`foldedOffsets`), and live gold would then skip them.
 */
export function foldableKept(
  kept: readonly SilverTrade[],
  knownEnd: ReadonlyMap<number, number>,
): SilverTrade[] {
  return kept.filter((t) => t.rawOffset < (knownEnd.get(t.rawPartition) ?? 0));
}

/** The key of a gold window. */
export function windowKey(interval: Interval, symbol: string, start: number): string {
  return `${interval}\u0000${symbol}\u0000${start}`;
}

/**
 * Folds `trades` into candles of every interval with gold's own `foldTrade`, in raw source order
 * (partition, offset), as live gold receives a symbol's trades. The candles are not final.
 */
export function foldCandles(
  trades: readonly SilverTrade[],
  intervals: readonly Interval[] = INTERVALS,
): Map<string, Candle> {
  const ordered = [...trades].sort((a, b) =>
    a.rawPartition - b.rawPartition || a.rawOffset - b.rawOffset
  );
  const out = new Map<string, Candle>();
  for (const trade of ordered) {
    for (const interval of intervals) {
      const key = windowKey(interval, trade.symbol, windowStart(trade.eventTime, interval));
      out.set(key, foldTrade(out.get(key), trade, interval));
    }
  }
  return out;
}

/** A stored candle row, with what only the row knows. */
export interface StoredCandle {
  readonly candle: Candle;
  /** The stored `vwap` column as exact text, or null. */
  readonly vwap: string | null;
  /** The highest write time (µs) of the row's fold columns. */
  readonly writeTime: bigint;
}

/** A gold window: its interval, symbol and start. */
export interface GoldWindow {
  readonly interval: Interval;
  readonly symbol: string;
  readonly start: number;
}

/** One write to a gold table. */
export interface GoldWrite {
  readonly kind: "add" | "amend" | "remove";
  readonly key: string;
  readonly before: StoredCandle | undefined;
  /** The candle to write (undefined for a removal). */
  readonly after: Candle | undefined;
  /** The write timestamp, µs. */
  readonly timestamp: bigint;
  readonly window: GoldWindow;
}

/** What the rebuild does with the gold windows of a span. */
export interface GoldPlan {
  readonly writes: GoldWrite[];
  readonly unchanged: number;
  /** Windows stored open (live gold folds them), or not yet past every watermark. */
  readonly leftOpen: string[];
  /**
   * The windows of `leftOpen` whose stored row differs from the rebuilt fold (or is missing):
   * live gold has not written them yet, or folds them with rules the rebuild now applies
   * differently. A rerun once they are final makes them exact.
   */
  readonly openDiffer: GoldWindow[];
  /** Windows whose row folded trades past what the rebuild read. */
  readonly liveAhead: string[];
}

/** What {@linkcode planGold} needs besides the candles. */
export interface GoldPlanOptions {
  /**
   * Per raw partition, the offset after the last one the rebuild knows (read from the source, or
   * of a kept silver row): a row that folded an offset at or past it is ahead of the rebuild.
   */
  readonly knownEnd: ReadonlyMap<number, number>;
  /**
   * A window without a row is written only when it ends at or before this: the lowest watermark
   * of the live gold partitions (`-Infinity` when gold has none).
   */
  readonly finalBefore: number;
}

/** Whether the candle's fold columns equal the stored row's. */
export function sameCandle(stored: StoredCandle, c: Candle): boolean {
  const s = stored.candle;
  const average = vwap(c);
  return s.windowEnd === c.windowEnd && s.open === c.open && s.high === c.high &&
    s.low === c.low && s.close === c.close && formatDecimal(s.volume) === formatDecimal(c.volume) &&
    formatDecimal(s.pvSum) === formatDecimal(c.pvSum) &&
    stored.vwap === (average === null ? null : formatDecimal(average)) &&
    s.tradeCount === c.tradeCount && s.priceOnlyCount === c.priceOnlyCount &&
    sameKey(s.openKey, c.openKey) && sameKey(s.closeKey, c.closeKey) &&
    s.isFinal === c.isFinal && sameOffsets(s.foldedOffsets, c.foldedOffsets);
}

function sameKey(
  a: { eventTime: number; partition: number; offset: number },
  b: { eventTime: number; partition: number; offset: number },
): boolean {
  return a.eventTime === b.eventTime && a.partition === b.partition && a.offset === b.offset;
}

function sameOffsets(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [p, o] of a) if (b.get(p) !== o) return false;
  return true;
}

/** Whether the stored row folded a trade past what the rebuild read. */
export function aheadOf(candle: Candle, knownEnd: ReadonlyMap<number, number>): boolean {
  for (const [partition, offset] of candle.foldedOffsets) {
    if (offset >= (knownEnd.get(partition) ?? 0)) return true;
  }
  return false;
}

/**
 * Decides every window of `stored` and `rebuilt` (both keyed by {@linkcode windowKey}): see the
 * module's header for the rules.
 */
export function planGold(
  stored: ReadonlyMap<string, StoredCandle>,
  rebuilt: ReadonlyMap<string, Candle>,
  options: GoldPlanOptions,
): GoldPlan {
  const writes: GoldWrite[] = [];
  const leftOpen: string[] = [];
  const openDiffer: GoldWindow[] = [];
  const liveAhead: string[] = [];
  let unchanged = 0;
  for (const key of new Set([...stored.keys(), ...rebuilt.keys()])) {
    const before = stored.get(key);
    const fresh = rebuilt.get(key);
    const c = (before?.candle ?? fresh)!;
    const window = { interval: c.interval, symbol: c.symbol, start: c.windowStart };
    if (before && !before.candle.isFinal) {
      leftOpen.push(key);
      if (!fresh || !sameCandle(before, fresh)) openDiffer.push(window);
      continue;
    }
    if (before && aheadOf(before.candle, options.knownEnd)) {
      liveAhead.push(key);
      continue;
    }
    if (!before) {
      if (fresh!.windowEnd > options.finalBefore) {
        leftOpen.push(key);
        openDiffer.push(window);
        continue;
      }
      const after = finalize(fresh!);
      writes.push({ kind: "add", key, before, after, timestamp: writeTimestamp(after), window });
      continue;
    }
    if (!fresh) {
      writes.push({
        kind: "remove",
        key,
        before,
        after: undefined,
        timestamp: before.writeTime + 1n,
        window,
      });
      continue;
    }
    // Late trades counted by live gold are history the raw log does not hold: kept.
    const after: Candle = { ...finalize(fresh), lateCount: before.candle.lateCount };
    if (sameCandle(before, after)) {
      unchanged++;
      continue;
    }
    const version = writeTimestamp(after);
    const timestamp = version > before.writeTime ? version : before.writeTime + 1n;
    writes.push({ kind: "amend", key, before, after, timestamp, window });
  }
  return { writes, unchanged, leftOpen, openDiffer, liveAhead };
}

/** The columns of a candle that differ, as `name before -> after` (for `--verbose`). */
export function candleChanges(before: StoredCandle | undefined, after: Candle | undefined): string {
  const show = (c: Candle | undefined, v: string | null | undefined) =>
    c === undefined ? undefined : {
      open: String(c.open),
      high: String(c.high),
      low: String(c.low),
      close: String(c.close),
      volume: formatDecimal(c.volume),
      vwap: String(v),
      trades: String(c.tradeCount),
    };
  const averageAfter = after ? vwap(after) : null;
  const a = show(before?.candle, before?.vwap);
  const b = show(after, averageAfter === null ? null : formatDecimal(averageAfter));
  if (!a && !b) return "(none)";
  if (!a) return `(none) -> ${describeFields(b!)}`;
  if (!b) return `${describeFields(a)} -> (none)`;
  const parts: string[] = [];
  for (const name of Object.keys(a) as (keyof typeof a)[]) {
    if (a[name] !== b[name]) parts.push(`${name} ${a[name]} -> ${b[name]}`);
  }
  return parts.length > 0 ? parts.join(", ") : "fold state (offsets, open/close keys)";
}

function describeFields(fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(" ");
}
