/**
 * Gold's candle rows as the gold stage reads and writes them: whole, with the fold state
 * (`folded_offsets`, open and close keys, `late_count`) besides what readers see
 * (`shared/gold_table.ts`), so a candle read back folds on exactly as if it had never left memory.
 *
 * Invariant: every upsert is written `USING TIMESTAMP` of its state's version
 * (`writeTimestamp()` in `candle.ts`), so of two writes of one window the one with more folded in
 * wins whatever order they land in; every read binds the whole primary key.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { forEachLimited, type RowWrite } from "../../shared/cassandra_writer.ts";
import { decimalBytes, encodedValues } from "../../shared/cassandra_values.ts";
import { type Decimal, parseDecimal } from "../../shared/decimal.ts";
import {
  GOLD_TABLE,
  goldBucket,
  hasCandle,
  type Interval,
  INTERVALS,
} from "../../shared/gold_table.ts";
import { type Candle, vwap, writeTimestamp } from "./candle.ts";

/** A window: its interval, symbol and start (ms). */
export type WindowKey = readonly [Interval, string, number];

/** Options of {@linkcode createCandleRows}. */
export interface CandleRowsOptions {
  readonly session: cassandra.Client;
  readonly keyspace: string;
  /** Most reads in flight. */
  readonly concurrency: number;
}

/** Reads and writes (as {@linkcode RowWrite}s for `writeRows`) of whole candle rows. */
export interface CandleRows {
  /** The rows of the given windows, in order (undefined where there is none). */
  read(keys: readonly WindowKey[]): Promise<(Candle | undefined)[]>;
  /** The upsert of `candle` with `updated_at` = `at`, under the candle's write timestamp. */
  upsert(candle: Candle, at: Date, ref: number): RowWrite<number>;
}

/** The rows of the gold tables of `keyspace`. */
export function createCandleRows(options: CandleRowsOptions): CandleRows {
  const { session, keyspace, concurrency } = options;
  const upserts = new Map<Interval, string>();
  const selects = new Map<Interval, string>();
  for (const interval of INTERVALS) {
    const table = `${keyspace}.${GOLD_TABLE[interval]}`;
    upserts.set(
      interval,
      `INSERT INTO ${table} (symbol, bucket, window_start, window_end, open, high, low, close,
        volume, pv_sum, vwap, trade_count, price_only_count, open_time, open_partition,
        open_offset, close_time, close_partition, close_offset, folded_offsets, is_final,
        late_count, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    selects.set(
      interval,
      `SELECT * FROM ${table} WHERE symbol = ? AND bucket = ? AND window_start = ?`,
    );
  }

  async function readOne([interval, symbol, start]: WindowKey): Promise<Candle | undefined> {
    const result = await session.execute(selects.get(interval)!, [
      symbol,
      cassandra.types.LocalDate.fromString(goldBucket(start, interval)),
      new Date(start),
    ], { prepare: true });
    const row = result.first();
    // A row holding only the feed-gap columns (`gap_stage.ts`) is a window without a candle yet.
    return row && hasCandle(row) ? candleFromRow(row, interval) : undefined;
  }

  return {
    async read(keys) {
      const out = new Array<Candle | undefined>(keys.length);
      await forEachLimited(keys.map((_, i) => i), concurrency, async (i) => {
        out[i] = await readOne(keys[i]!);
      });
      return out;
    },
    upsert(candle, at, ref) {
      return {
        query: upserts.get(candle.interval)!,
        partition: `${candle.symbol}\u0000${candle.windowStart}`,
        timestamp: writeTimestamp(candle),
        ref,
        params: rowParams(candle, at),
      };
    },
  };
}

function toDecimal(value: unknown): Decimal {
  return parseDecimal(String(value));
}

/** A gold row's bucket (a day, `YYYY-MM-DD`), serialised once per day. */
const dateBytes = encodedValues("date", 1_000);

/** The bound parameters of a candle's upsert. */
function rowParams(c: Candle, at: Date): unknown[] {
  const average = vwap(c);
  return [
    c.symbol,
    dateBytes(goldBucket(c.windowStart, c.interval)),
    new Date(c.windowStart),
    new Date(c.windowEnd),
    c.open,
    c.high,
    c.low,
    c.close,
    decimalBytes(c.volume),
    decimalBytes(c.pvSum),
    average === null ? null : decimalBytes(average),
    BigInt(c.tradeCount),
    BigInt(c.priceOnlyCount),
    new Date(c.openKey.eventTime),
    c.openKey.partition,
    BigInt(c.openKey.offset),
    new Date(c.closeKey.eventTime),
    c.closeKey.partition,
    BigInt(c.closeKey.offset),
    new Map([...c.foldedOffsets].map(([p, o]) => [p, BigInt(o)])),
    c.isFinal,
    BigInt(c.lateCount),
    at,
  ];
}

/** A candle read back from its row. */
export function candleFromRow(row: cassandra.types.Row, interval: Interval): Candle {
  const folded = row.get("folded_offsets") as Record<string, bigint> | Map<number, bigint> | null;
  const entries = folded instanceof Map
    ? [...folded]
    : Object.entries(folded ?? {}).map(([k, v]) => [Number(k), v] as const);
  return {
    symbol: row.get("symbol"),
    interval,
    windowStart: (row.get("window_start") as Date).getTime(),
    windowEnd: (row.get("window_end") as Date).getTime(),
    open: row.get("open"),
    high: row.get("high"),
    low: row.get("low"),
    close: row.get("close"),
    openKey: {
      eventTime: (row.get("open_time") as Date).getTime(),
      partition: row.get("open_partition"),
      offset: Number(row.get("open_offset")),
    },
    closeKey: {
      eventTime: (row.get("close_time") as Date).getTime(),
      partition: row.get("close_partition"),
      offset: Number(row.get("close_offset")),
    },
    volume: toDecimal(row.get("volume")),
    pvSum: toDecimal(row.get("pv_sum")),
    tradeCount: Number(row.get("trade_count")),
    priceOnlyCount: Number(row.get("price_only_count")),
    foldedOffsets: new Map(entries.map(([p, o]) => [Number(p), Number(o)])),
    lateCount: Number(row.get("late_count") ?? 0n),
    isFinal: row.get("is_final") === true,
  };
}
