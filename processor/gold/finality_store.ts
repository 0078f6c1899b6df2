/**
 * Gold's finality state in Cassandra (`schemas/cassandra/003_gold_finality.cql`): the index of
 * windows written while not final (`gold_open_windows`), and per silver partition the watermark
 * clock and the window ends that may hold open windows (`gold_partitions`). With them a worker
 * that takes a partition over (after a restart or a rebalance) knows its watermark and every
 * window still open there, and makes each final when the watermark passes its end, whether or not
 * a trade ever comes for it again.
 *
 * Invariants the gold stage keeps with these statements:
 * - a window end is in its partition's `open_window_ends` before any index entry ending there is
 *   written, and leaves it only once every window ending there is written final;
 * - an index entry is written after the candle row it points at, with that row's write timestamp
 *   (the state version), and deleted after the final row is written, with the final row's write
 *   timestamp: a stale writer (fewer trades, or not final) never brings back a deleted entry;
 * - every read names its partition: no `ALLOW FILTERING`, no scan.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import type { RowWrite } from "../../shared/cassandra_writer.ts";
import type { PartitionClock } from "./watermark.ts";
import { type Interval, INTERVAL_MS, INTERVALS } from "../../shared/gold_table.ts";

/** What Cassandra holds for one silver partition. */
export interface PartitionRecord {
  /** The watermark clock last written; undefined when gold never saw a trade of it. */
  readonly clock: PartitionClock | undefined;
  /** Window ends (ms) that may have open windows, oldest first. */
  readonly ends: readonly number[];
}

/** One index entry: a window of a silver partition written while not final. */
export interface OpenWindowKey {
  readonly interval: Interval;
  readonly symbol: string;
  readonly windowEnd: number;
}

/** Options of {@linkcode createFinalityStore}. */
export interface FinalityStoreOptions {
  readonly session: cassandra.Client;
  readonly keyspace: string;
}

/** Reads and the writes (as {@linkcode RowWrite}s for `writeRows`) of gold's finality state. */
export interface FinalityStore {
  /** The partition's clock and open window ends. */
  readPartition(partition: number): Promise<PartitionRecord>;
  /**
   * One page of the index entries of `partition` ending at `windowEnd`. Follow `pageState`
   * (undefined on the last page) for the rest: a page picks up after the last one, so entries
   * deleted meanwhile are never read again.
   */
  readOpenWindows(
    partition: number,
    windowEnd: number,
    options: { readonly pageState?: string; readonly fetchSize: number },
  ): Promise<{ windows: OpenWindowKey[]; pageState: string | undefined }>;
  /** Writes the clock, with its last arrival as write timestamp. */
  writeClock(partition: number, clock: PartitionClock, at: number): RowWrite<number>;
  /** Adds window ends to the partition's `open_window_ends`. */
  addEnds(partition: number, ends: readonly number[]): RowWrite<number>;
  /** Removes window ends from the partition's `open_window_ends`. */
  removeEnds(partition: number, ends: readonly number[]): RowWrite<number>;
  /** Writes an index entry with the candle row's write timestamp. */
  insertEntry(partition: number, key: OpenWindowKey, timestamp: bigint): RowWrite<number>;
  /**
   * Deletes an index entry with the final row's write timestamp, or, when there is no row at
   * all, with the current time.
   */
  deleteEntry(partition: number, key: OpenWindowKey, timestamp?: bigint): RowWrite<number>;
}

/** The store over `session`, for the tables of `keyspace`. */
export function createFinalityStore(options: FinalityStoreOptions): FinalityStore {
  const { session, keyspace } = options;
  const index = `${keyspace}.gold_open_windows`;
  const partitions = `${keyspace}.gold_partitions`;
  const statements = {
    readPartition: `SELECT max_event_time, last_arrival, open_window_ends FROM ${partitions}
      WHERE silver_partition = ?`,
    readIndex: `SELECT candle_interval, symbol FROM ${index}
      WHERE silver_partition = ? AND window_end = ?`,
    writeClock: `UPDATE ${partitions} SET max_event_time = ?, last_arrival = ?, updated_at = ?
      WHERE silver_partition = ?`,
    addEnds: `UPDATE ${partitions} SET open_window_ends = open_window_ends + ?
      WHERE silver_partition = ?`,
    removeEnds: `UPDATE ${partitions} SET open_window_ends = open_window_ends - ?
      WHERE silver_partition = ?`,
    insertEntry: `INSERT INTO ${index} (silver_partition, window_end, candle_interval, symbol)
      VALUES (?, ?, ?, ?)`,
    deleteEntry: `DELETE FROM ${index}
      WHERE silver_partition = ? AND window_end = ? AND candle_interval = ? AND symbol = ?`,
  };
  const entryParams = (partition: number, key: OpenWindowKey) => [
    partition,
    new Date(key.windowEnd),
    key.interval,
    key.symbol,
  ];
  return {
    async readPartition(partition) {
      const row = (await session.execute(statements.readPartition, [partition], {
        prepare: true,
      })).first();
      if (!row) return { clock: undefined, ends: [] };
      const maxEventTime = row.get("max_event_time") as Date | null;
      const lastArrival = row.get("last_arrival") as Date | null;
      const ends = (row.get("open_window_ends") as Date[] | null) ?? [];
      return {
        clock: maxEventTime && lastArrival
          ? { maxEventTime: maxEventTime.getTime(), lastArrival: lastArrival.getTime() }
          : undefined,
        ends: ends.map((d) => d.getTime()).sort((a, b) => a - b),
      };
    },
    async readOpenWindows(partition, windowEnd, { pageState, fetchSize }) {
      const result = await session.execute(statements.readIndex, [
        partition,
        new Date(windowEnd),
      ], { prepare: true, fetchSize, ...(pageState === undefined ? {} : { pageState }) });
      const windows: OpenWindowKey[] = [];
      for (const row of result.rows) {
        const interval = row.get("candle_interval");
        // Written by gold only; anything else is not an entry it can act on.
        if (!(INTERVALS as readonly string[]).includes(interval)) continue;
        windows.push({ interval: interval as Interval, symbol: row.get("symbol"), windowEnd });
      }
      return { windows, pageState: result.pageState ?? undefined };
    },
    writeClock(partition, clock, at) {
      return {
        query: statements.writeClock,
        params: [
          new Date(clock.maxEventTime),
          new Date(clock.lastArrival),
          new Date(at),
          partition,
        ],
        partition: `clock\u0000${partition}`,
        timestamp: BigInt(clock.lastArrival) * 1000n,
        ref: -1,
      };
    },
    addEnds(partition, ends) {
      return {
        query: statements.addEnds,
        params: [ends.map((end) => new Date(end)), partition],
        partition: `ends+\u0000${partition}`,
        ref: -1,
      };
    },
    removeEnds(partition, ends) {
      return {
        query: statements.removeEnds,
        params: [ends.map((end) => new Date(end)), partition],
        partition: `ends-\u0000${partition}`,
        ref: -1,
      };
    },
    insertEntry(partition, key, timestamp) {
      return {
        query: statements.insertEntry,
        params: entryParams(partition, key),
        partition: `${partition}\u0000${key.windowEnd}`,
        timestamp,
        ref: -1,
      };
    },
    deleteEntry(partition, key, timestamp) {
      return {
        query: statements.deleteEntry,
        params: entryParams(partition, key),
        partition: `${partition}\u0000${key.windowEnd}`,
        ...(timestamp === undefined ? {} : { timestamp }),
        ref: -1,
      };
    },
  };
}

/** The index key of a candle's window. */
export function openWindowKey(
  candle: { readonly interval: Interval; readonly symbol: string; readonly windowStart: number },
): OpenWindowKey {
  return {
    interval: candle.interval,
    symbol: candle.symbol,
    windowEnd: candle.windowStart + INTERVAL_MS[candle.interval],
  };
}
