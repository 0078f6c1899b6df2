/**
 * Gold's flush: writes what one silver partition has to write, in an order that keeps the
 * invariants of `finality_store.ts` (a window end is listed before any index entry ending there
 * is written, and leaves the list only once every window ending there is written final; an index
 * entry is written after its candle row, and deleted after the final row, with that row's write
 * timestamp):
 * 1. the candle rows (each `USING TIMESTAMP` of its state's version), the partition's watermark
 *    clock when it moved, and the window ends the new index entries will need;
 * 2. the index entries of windows written open, and the deletes of the entries of windows
 *    written final;
 * 3. the removal of the ends whose windows are all final.
 * Each step waits until the one before is written. A final candle leaves memory once its row is
 * written; an index entry counts as written only once it is.
 *
 * The invariants are each partition's own, so the partitions flushed together share each step's
 * write: one write round of candle rows for all of them, then one of index entries, then one of
 * ends, instead of three per partition one partition after another. A fetch round of six
 * partitions was flushed in up to 18 Cassandra round trips in a row, and the candles of the last
 * partition waited for up to 15 before theirs.
 *
 * @module
 */
import type { RowWrite } from "../../shared/cassandra_writer.ts";
import { GOLD_TABLE } from "../../shared/gold_table.ts";
import { writeTimestamp } from "./candle.ts";
import type { CacheEntry, CandleCache } from "./candle_cache.ts";
import { candleUpdateOf } from "./candle_publisher.ts";
import { openWindowKey } from "./finality_store.ts";
import { type GoldContext, watermark } from "./gold_context.ts";
import { finalizationHeld, releasableEnds } from "./open_windows.ts";
import type { PartitionState } from "./partition_states.ts";
import type { PartitionClock } from "./watermark.ts";

/**
 * Writes what each of `partitions` has to write, every step for all of them at once (see the
 * module's header for the order).
 */
export async function flush(gold: GoldContext, partitions: Iterable<number>): Promise<void> {
  const flushes = new Map<number, PartitionFlush>();
  for (const partition of partitions) {
    const state = gold.states.get(partition);
    if (state) flushes.set(partition, { partition, state, dirty: [], unindexed: [] });
  }
  if (flushes.size === 0) return;
  collectPending(gold.cache, flushes);
  await writeCandles(gold, [...flushes.values()]);
  await writeIndex(gold, [...flushes.values()]);
  await releaseEnds(gold, [...flushes.values()]);
  gold.metrics.openWindows.set(gold.cache.size);
}

/** What {@linkcode flush} writes of one partition's candles in memory. */
interface PartitionFlush {
  readonly partition: number;
  readonly state: PartitionState;
  /** The entries changed since last written, with their keys. */
  readonly dirty: [string, CacheEntry][];
  /** The open windows without an index entry written by this worker. */
  readonly unindexed: CacheEntry[];
}

/**
 * The candles of each partition of `flushes` to write and to index, in one pass over memory. A
 * final candle that is not dirty (read back only to skip a redelivery) has nothing to write and
 * leaves memory here.
 */
function collectPending(cache: CandleCache, flushes: ReadonlyMap<number, PartitionFlush>): void {
  for (const item of cache.entries()) {
    const entry = item[1];
    const pending = flushes.get(entry.partition);
    if (!pending) continue;
    if (entry.dirty) pending.dirty.push(item);
    // A final row read back only to skip a redelivery has nothing to write: let it go.
    else if (entry.candle.isFinal) cache.delete(item[0]);
    if (!entry.candle.isFinal && entry.index !== "written") pending.unindexed.push(entry);
  }
}

/**
 * Step 1, for every partition at once: the dirty candle rows, the clock when it moved, and the
 * ends that the index entries of `unindexed` need and the partition's `open_window_ends` lacks.
 */
async function writeCandles(gold: GoldContext, flushes: readonly PartitionFlush[]): Promise<void> {
  const at = new Date(gold.now());
  const rows: RowWrite<number>[] = [];
  const written: {
    pending: PartitionFlush;
    clock: PartitionClock | undefined;
    newEnds: number[];
  }[] = [];
  for (const pending of flushes) {
    const { partition, state, dirty, unindexed } = pending;
    const newEnds = [
      ...new Set(unindexed.map((e) => e.candle.windowEnd).filter((end) => !state.ends.has(end))),
    ];
    const clock = state.clock !== state.saved ? state.clock : undefined;
    if (dirty.length === 0 && !clock && newEnds.length === 0) continue;
    for (const [, entry] of dirty) rows.push(gold.rows.upsert(entry.candle, at, rows.length));
    if (clock) rows.push(gold.store.writeClock(partition, clock, at.getTime()));
    if (newEnds.length > 0) rows.push(gold.store.addEnds(partition, newEnds));
    written.push({ pending, clock, newEnds });
  }
  if (rows.length === 0) return;
  await gold.write(rows);
  for (const { pending, clock, newEnds } of written) {
    const { partition, state, dirty } = pending;
    if (clock) state.saved = clock;
    for (const end of newEnds) state.ends.add(end);
    candlesWritten(gold, partition, state, dirty, at);
  }
}

/**
 * After step 1: each candle written is clean; a final one leaves memory and its index entry
 * (unless it never had one) is queued for deletion; every one goes to `onCandle` and the
 * publisher.
 */
function candlesWritten(
  gold: GoldContext,
  partition: number,
  state: PartitionState,
  dirty: readonly [string, CacheEntry][],
  at: Date,
): void {
  const done = gold.now();
  for (const [key, entry] of dirty) {
    entry.dirty = false;
    gold.metrics.written.inc({ stage: "gold", table: GOLD_TABLE[entry.candle.interval] });
    if (entry.candle.isFinal) {
      if (entry.crossedAt !== undefined) {
        gold.metrics.finalDelay.observe(Math.max(0, done - entry.crossedAt) / 1000, {
          interval: entry.candle.interval,
        });
      }
      if (entry.index !== "none") {
        state.deletes.push(
          gold.store.deleteEntry(
            partition,
            openWindowKey(entry.candle),
            writeTimestamp(entry.candle),
          ),
        );
      }
      gold.cache.delete(key);
    }
    gold.onCandle?.(entry.candle);
  }
  gold.publisher?.publish(dirty.map(([, entry]) => candleUpdateOf(entry.candle, at.getTime())));
}

/**
 * Step 2, for every partition at once: the queued index deletes and the entries of the open
 * windows not indexed yet.
 */
async function writeIndex(gold: GoldContext, flushes: readonly PartitionFlush[]): Promise<void> {
  const rows: RowWrite<number>[] = [];
  const written: { pending: PartitionFlush; deletes: number }[] = [];
  for (const pending of flushes) {
    const { partition, state, unindexed } = pending;
    const deletes = state.deletes.length;
    if (deletes === 0 && unindexed.length === 0) continue;
    rows.push(...state.deletes);
    for (const e of unindexed) {
      rows.push(
        gold.store.insertEntry(partition, openWindowKey(e.candle), writeTimestamp(e.candle)),
      );
    }
    written.push({ pending, deletes });
  }
  if (rows.length === 0) return;
  await gold.write(rows);
  for (const { pending, deletes } of written) {
    pending.state.deletes.splice(0, deletes);
    for (const entry of pending.unindexed) entry.index = "written";
  }
}

/**
 * Step 3, for every partition at once: removes from `open_window_ends` the ends whose windows
 * are all final.
 */
async function releaseEnds(gold: GoldContext, flushes: readonly PartitionFlush[]): Promise<void> {
  const at = gold.now();
  const rows: RowWrite<number>[] = [];
  const released: { state: PartitionState; ends: number[] }[] = [];
  for (const { partition, state } of flushes) {
    const ends = releasable(gold, partition, state, at);
    if (ends.length === 0) continue;
    rows.push(gold.store.removeEnds(partition, ends));
    released.push({ state, ends });
  }
  if (rows.length === 0) return;
  await gold.write(rows);
  for (const { state, ends } of released) for (const end of ends) state.ends.delete(end);
}

/** The ends of `partition` whose windows are all final at `at` (see `releasableEnds`). */
function releasable(
  gold: GoldContext,
  partition: number,
  state: PartitionState,
  at: number,
): number[] {
  if (state.deletes.length > 0 || finalizationHeld(state.heldUntil, at)) return [];
  const wm = watermark(gold, state, at);
  if (![...state.ends].some((end) => end <= wm && !state.unread.has(end))) return [];
  const openInMemory = new Set<number>();
  for (const [, entry] of gold.cache.ofPartition(partition)) {
    if (!entry.candle.isFinal) openInMemory.add(entry.candle.windowEnd);
  }
  return releasableEnds({
    ends: state.ends,
    watermark: wm,
    openInMemory,
    unread: state.unread,
  });
}
