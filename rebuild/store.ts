/**
 * The tables a rebuild reads and writes: silver rows and gold candles of a span, the lowest
 * watermark of live gold, and the writes (each a whole row, keyed by raw source position, so a
 * write repeated by a rerun rewrites the same row). Gold rows are written with gold's own upsert
 * (`processor/gold/candle_rows.ts`): only the fold columns, never `gap_ms`/`gap_count`.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { hourBucket } from "../shared/buckets.ts";
import { type RowWrite } from "../shared/cassandra_writer.ts";
import { formatDecimal, parseDecimal } from "../shared/decimal.ts";
import {
  GOLD_TABLE,
  goldBucket,
  goldBucketsBetween,
  type Interval,
  INTERVALS,
} from "../shared/gold_table.ts";
import type { SilverTrade, TradingSession } from "../shared/types.ts";
import { candleFromRow, type CandleRows } from "../processor/gold/candle_rows.ts";
import { watermarkAt } from "../processor/gold/watermark.ts";
import { type GoldWrite, type StoredCandle, windowKey } from "./plan.ts";
import { pages } from "./sources.ts";
import { hoursBetween } from "./span.ts";

type Span = { readonly from: number; readonly to: number };

/** The symbols of `latest_prices` (one row per symbol that ever had a valid trade). */
export async function knownSymbols(session: cassandra.Client, keyspace: string): Promise<string[]> {
  const out: string[] = [];
  for await (const row of pages(session, `SELECT symbol FROM ${keyspace}.latest_prices`, [])) {
    out.push(row.get("symbol"));
  }
  return out;
}

/** The stored silver rows of `symbols` with event time in `span`. */
export async function readSilver(
  session: cassandra.Client,
  keyspace: string,
  symbols: readonly string[],
  span: Span,
): Promise<SilverTrade[]> {
  const query = `SELECT symbol, event_time, raw_partition, raw_offset, raw_topic, price, volume,
    price_only, conditions, session, ingest_time FROM ${keyspace}.trades_silver
    WHERE symbol = ? AND bucket = ? AND event_time >= ? AND event_time < ?`;
  const out: SilverTrade[] = [];
  for (const symbol of symbols) {
    for (const hour of hoursBetween(span.from, span.to)) {
      const params = [symbol, new Date(hour), new Date(span.from), new Date(span.to)];
      for await (const row of pages(session, query, params)) {
        out.push({
          symbol: row.get("symbol"),
          price: row.get("price"),
          eventTime: (row.get("event_time") as Date).getTime(),
          volume: row.get("volume"),
          priceOnly: row.get("price_only") === true,
          conditions: (row.get("conditions") as string[] | null) ?? [],
          session: (row.get("session") as TradingSession | null) ?? null,
          ingestTime: (row.get("ingest_time") as Date).getTime(),
          rawTopic: row.get("raw_topic"),
          rawPartition: row.get("raw_partition"),
          rawOffset: Number(row.get("raw_offset")),
        });
      }
    }
  }
  return out;
}

/** Fold columns whose write time says how new a stored candle is. */
const TIMED_COLUMNS = [
  "window_end",
  "open",
  "high",
  "low",
  "close",
  "volume",
  "pv_sum",
  "vwap",
  "trade_count",
  "price_only_count",
  "open_time",
  "open_partition",
  "open_offset",
  "close_time",
  "close_partition",
  "close_offset",
  "is_final",
];

/** The stored candles of `symbols` of every interval with windows starting in `span`. */
export async function readGold(
  session: cassandra.Client,
  keyspace: string,
  symbols: readonly string[],
  span: Span,
  intervals: readonly Interval[] = INTERVALS,
): Promise<Map<string, StoredCandle>> {
  const out = new Map<string, StoredCandle>();
  const columns = ["symbol", "window_start", ...TIMED_COLUMNS, "folded_offsets", "late_count"];
  const times = TIMED_COLUMNS.map((c) => `WRITETIME(${c}) AS wt_${c}`);
  for (const interval of intervals) {
    const query = `SELECT ${[...columns, ...times].join(", ")} FROM ${keyspace}.${
      GOLD_TABLE[interval]
    } WHERE symbol = ? AND bucket = ? AND window_start >= ? AND window_start < ?`;
    for (const symbol of symbols) {
      for (const bucket of goldBucketsBetween(span.from, span.to, interval)) {
        const params = [
          symbol,
          cassandra.types.LocalDate.fromString(bucket),
          new Date(span.from),
          new Date(span.to),
        ];
        for await (const row of pages(session, query, params)) {
          // A row with only gap columns (no fold yet) is not a candle.
          if (row.get("trade_count") === null) continue;
          const candle = candleFromRow(row, interval);
          const vwap = row.get("vwap");
          let writeTime = 0n;
          for (const c of TIMED_COLUMNS) {
            const t = row.get(`wt_${c}`) as bigint | null;
            if (t !== null && t > writeTime) writeTime = t;
          }
          out.set(windowKey(interval, symbol, candle.windowStart), {
            candle,
            vwap: vwap === null ? null : formatDecimal(parseDecimal(String(vwap))),
            writeTime,
          });
        }
      }
    }
  }
  return out;
}

/**
 * The lowest watermark of the live gold partitions (`gold_partitions`), without the idle advance
 * (so never ahead of live gold): a window ending at or before it is final in live gold, or will
 * be as soon as it is written. `-Infinity` when live gold has no partition.
 */
export async function lowestWatermark(
  session: cassandra.Client,
  keyspace: string,
  allowedLatenessMs: number,
): Promise<number> {
  let lowest = Infinity;
  const query = `SELECT max_event_time, last_arrival FROM ${keyspace}.gold_partitions`;
  for await (const row of pages(session, query, [])) {
    const max = row.get("max_event_time") as Date | null;
    const arrival = row.get("last_arrival") as Date | null;
    if (!max || !arrival) continue;
    const clock = { maxEventTime: max.getTime(), lastArrival: arrival.getTime() };
    lowest = Math.min(lowest, watermarkAt(clock, clock.lastArrival, allowedLatenessMs));
  }
  return lowest === Infinity ? -Infinity : lowest;
}

/** The writes of silver rows, with a statement equal to the silver stage's. */
export function silverWrites(
  keyspace: string,
  upserts: readonly SilverTrade[],
  removals: readonly SilverTrade[],
  at: Date,
): RowWrite<number>[] {
  const insert = `INSERT INTO ${keyspace}.trades_silver (symbol, bucket, event_time,
    raw_partition, raw_offset, raw_topic, price, volume, price_only, conditions, session,
    ingest_time, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
  const remove = `DELETE FROM ${keyspace}.trades_silver WHERE symbol = ? AND bucket = ?
    AND event_time = ? AND raw_partition = ? AND raw_offset = ?`;
  const partition = (t: SilverTrade) => `${t.symbol}\u0000${hourBucket(t.eventTime)}`;
  const key = (t: SilverTrade) => [
    t.symbol,
    new Date(hourBucket(t.eventTime)),
    new Date(t.eventTime),
    t.rawPartition,
    BigInt(t.rawOffset),
  ];
  return [
    ...upserts.map((t, i) => ({
      query: insert,
      partition: partition(t),
      ref: i,
      params: [
        ...key(t),
        t.rawTopic,
        t.price,
        t.volume,
        t.priceOnly,
        [...t.conditions],
        t.session,
        new Date(t.ingestTime),
        at,
      ],
    })),
    ...removals.map((t, i) => ({
      query: remove,
      partition: partition(t),
      ref: upserts.length + i,
      params: key(t),
    })),
  ];
}

/** The columns gold's fold writes (`processor/gold/candle_rows.ts`): all but the key and coverage. */
const FOLD_COLUMNS = [...TIMED_COLUMNS, "folded_offsets", "late_count", "updated_at"].join(", ");

/**
 * The writes of gold windows: gold's own upsert (fold columns only) under the planned write
 * timestamp, and the deletion of the fold columns of a window no trade is left in.
 */
export function goldWrites(
  keyspace: string,
  rows: CandleRows,
  writes: readonly GoldWrite[],
  at: Date,
): RowWrite<number>[] {
  return writes.map((w, i) => {
    if (w.after) return { ...rows.upsert(w.after, at, i), timestamp: w.timestamp };
    const { interval, symbol, start } = w.window;
    return {
      // The fold's columns only: the window's feed-gap coverage (gap_ms, gap_count, written by
      // the gap consumer, `processor/gold/gap_stage.ts`) stays, and a row left without
      // trade_count holds no candle for any reader (`hasCandle` of `shared/gold_table.ts`).
      query: `DELETE ${FOLD_COLUMNS} FROM ${keyspace}.${GOLD_TABLE[interval]}
        WHERE symbol = ? AND bucket = ? AND window_start = ?`,
      params: [
        symbol,
        cassandra.types.LocalDate.fromString(goldBucket(start, interval)),
        new Date(start),
      ],
      partition: `${symbol}\u0000${start}`,
      timestamp: w.timestamp,
      ref: i,
    };
  });
}
