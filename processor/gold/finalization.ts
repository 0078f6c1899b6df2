/**
 * Gold's finalization: when a partition's watermark passes a window's end, the window is made
 * final (`is_final = true`, which raises its write timestamp by one, so the final row wins over
 * an open row of the same trades) and marked for writing; the flush (`flush.ts`) writes it and
 * deletes its index entry.
 *
 * Invariants:
 * - nothing is made final while a partition taken over waits for its first batch
 *   (`finalizationHeld`), so a backlog waiting in Kafka is folded in first;
 * - windows not in memory (taken over, or evicted) are found through the open-windows index of
 *   each due end, oldest first, a page at a time: a page's candles are read, made final and
 *   written before the next page is read, and the end counts as read only once all its pages
 *   are; the windows in memory are made final after, so a page never meets their deletes;
 * - a window's `crossedAt` is the wall time the watermark reached its end, for the
 *   `pipeline_gold_watermark_to_final_seconds` histogram.
 *
 * @module
 */
import { INTERVAL_MS } from "../../shared/gold_table.ts";
import { finalize, writeTimestamp } from "./candle.ts";
import { type CacheEntry, entryKey } from "./candle_cache.ts";
import { flush } from "./flush.ts";
import { type GoldContext, watermark } from "./gold_context.ts";
import { dueEnds, finalizationHeld } from "./open_windows.ts";
import { type PartitionClock, reachedAt } from "./watermark.ts";

/** Index entries read back per page when making windows not in memory final. */
const INDEX_PAGE_SIZE = 500;

/**
 * Marks final every open window of `partition` that the watermark has passed at `at`, reading
 * back (and writing) those not in memory first.
 */
export async function finalizeDue(gold: GoldContext, partition: number, at: number): Promise<void> {
  const state = gold.states.get(partition);
  if (!state || finalizationHeld(state.heldUntil, at)) return;
  for (const end of dueEnds(state.unread, watermark(gold, state, at))) {
    await readDueWindows(gold, partition, end);
    state.unread.delete(end);
  }
  markDue(gold, partition, at);
}

/** Marks final every open candle in memory of `partition` that the watermark has passed. */
function markDue(gold: GoldContext, partition: number, at: number): void {
  const state = gold.states.get(partition);
  if (!state?.clock || finalizationHeld(state.heldUntil, at)) return;
  const wm = watermark(gold, state, at);
  for (const [, entry] of gold.cache.ofPartition(partition)) {
    if (entry.candle.isFinal) continue;
    if (entry.candle.windowEnd <= wm) markFinal(entry, state.clock, gold.allowedLatenessMs);
  }
}

/** Makes the entry's candle final and dirty, noting when the watermark reached its end. */
function markFinal(entry: CacheEntry, clock: PartitionClock, allowedLatenessMs: number): void {
  entry.candle = finalize(entry.candle);
  entry.crossedAt = reachedAt(clock, entry.candle.windowEnd, allowedLatenessMs);
  entry.dirty = true;
}

/**
 * Makes final every open window of `partition` ending at `end` that is not in memory: reads
 * the index a page at a time, each page's candles are read, made final and written before
 * the next page, so memory holds one page at a time.
 */
async function readDueWindows(gold: GoldContext, partition: number, end: number): Promise<void> {
  const { cache, store } = gold;
  const state = gold.states.get(partition)!;
  let pageState: string | undefined;
  do {
    const page = await store.readOpenWindows(partition, end, {
      fetchSize: INDEX_PAGE_SIZE,
      ...(pageState === undefined ? {} : { pageState }),
    });
    const wanted = page.windows.filter((w) =>
      !cache.has(entryKey(w.interval, w.symbol, w.windowEnd - INTERVAL_MS[w.interval]))
    );
    const candles = await gold.rows.read(
      wanted.map((w) => [w.interval, w.symbol, w.windowEnd - INTERVAL_MS[w.interval]] as const),
    );
    wanted.forEach((w, i) => {
      const candle = candles[i];
      if (candle === undefined) {
        // No row (expired): nothing to make final; the entry is garbage.
        state.deletes.push(store.deleteEntry(partition, w));
      } else if (candle.isFinal) {
        state.deletes.push(store.deleteEntry(partition, w, writeTimestamp(candle)));
      } else {
        // Due (the caller only reads ends the watermark passed): final at once. The windows
        // in memory wait for the caller, so that this read never meets their deletes.
        const entry: CacheEntry = { candle, dirty: false, partition, index: "written" };
        markFinal(entry, state.clock!, gold.allowedLatenessMs);
        cache.set(entryKey(w.interval, w.symbol, candle.windowStart), entry);
        gold.metrics.readBack.inc({ interval: w.interval });
      }
    });
    await flush(gold, [partition]);
    pageState = page.pageState;
  } while (pageState !== undefined);
}
