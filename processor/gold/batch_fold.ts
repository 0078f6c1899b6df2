/**
 * Gold's batch fold: the trades of one batch of a silver partition folded into the candles in
 * memory, into the window of each interval that holds the trade's event time.
 *
 * Invariants:
 * - every window the batch touches is in memory before its first trade is folded, read back
 *   from its row when it is not: a candle folds on from its whole state, so a redelivered
 *   trade is recognised and skipped (`candle.ts`), never counted twice;
 * - a trade is late when its window is final already, or when the watermark (as the trades
 *   before it in the batch moved it, at the batch's arrival time) has passed the window's end:
 *   it is still folded in, as an amendment, and counted;
 * - the first batch after a takeover ends the partition's hold, and the idle time restarts at
 *   its arrival: what it holds was waiting in Kafka, not late;
 * - the windows touched become the most recently used, in the order first touched.
 *
 * @module
 */
import { type Interval, INTERVAL_MS, INTERVALS, windowStart } from "../../shared/gold_table.ts";
import type { SilverTrade } from "../../shared/types.ts";
import { amountsOf, foldTrade, type TradeAmounts } from "./candle.ts";
import { entryKey } from "./candle_cache.ts";
import { type GoldContext, watermark } from "./gold_context.ts";
import type { PartitionState } from "./partition_states.ts";
import { observe } from "./watermark.ts";

/**
 * Folds `trades` (of one batch of `partition`, in offset order) into the candles in memory and
 * moves the partition's clock on. Returns the batch's arrival time.
 */
export async function foldBatch(
  gold: GoldContext,
  partition: number,
  state: PartitionState,
  trades: readonly SilverTrade[],
): Promise<number> {
  await readMissingWindows(gold, partition, trades);
  const arrival = gold.now();
  endTakeoverHold(state, arrival);
  const touched = new Set<string>();
  for (const trade of trades) {
    // Once per trade: the decimal work is the same in every interval's window.
    const amounts = amountsOf(trade);
    for (const interval of INTERVALS) {
      touched.add(foldInto(gold, { partition, state, arrival }, trade, interval, amounts));
    }
    state.clock = observe(state.clock, trade, arrival);
  }
  gold.cache.touch(touched);
  return arrival;
}

/** Reads the rows of every window `trades` touch that is not in memory yet. */
async function readMissingWindows(
  gold: GoldContext,
  partition: number,
  trades: readonly SilverTrade[],
): Promise<void> {
  const missing = new Map<string, [Interval, string, number]>();
  for (const trade of trades) {
    for (const interval of INTERVALS) {
      const start = windowStart(trade.eventTime, interval);
      const key = entryKey(interval, trade.symbol, start);
      if (!gold.cache.has(key)) missing.set(key, [interval, trade.symbol, start]);
    }
  }
  const rows = await gold.rows.read([...missing.values()]);
  [...missing.keys()].forEach((key, i) => {
    const candle = rows[i];
    if (candle) {
      gold.cache.set(key, {
        candle,
        dirty: false,
        partition,
        // A final row's entry was deleted when it was written; an open one may have one.
        index: candle.isFinal ? "none" : "unknown",
      });
    }
  });
}

/** On the first batch since a takeover: finalization may go on, idle time restarts now. */
function endTakeoverHold(state: PartitionState, arrival: number): void {
  if (state.heldUntil === undefined) return;
  // The first batch since the takeover: what it holds was waiting in Kafka, not late.
  state.heldUntil = undefined;
  if (state.clock) state.clock = { ...state.clock, lastArrival: arrival };
}

/** Where a batch is folded. */
interface BatchOf {
  readonly partition: number;
  readonly state: PartitionState;
  readonly arrival: number;
}

/** Folds `trade` into its window of `interval`; returns the window's key. */
function foldInto(
  gold: GoldContext,
  { partition, state, arrival }: BatchOf,
  trade: SilverTrade,
  interval: Interval,
  amounts: TradeAmounts,
): string {
  const start = windowStart(trade.eventTime, interval);
  const key = entryKey(interval, trade.symbol, start);
  let entry = gold.cache.get(key);
  if (entry && entry.partition !== partition) {
    // The symbol moved partitions (the topic grew): index it under this one too.
    entry = { ...entry, partition, index: "unknown" };
    gold.cache.set(key, entry);
  }
  const end = start + INTERVAL_MS[interval];
  const isLate = entry?.candle.isFinal === true || end <= watermark(gold, state, arrival);
  const before = entry?.candle;
  const after = foldTrade(before, trade, interval, { late: isLate, amounts });
  if (after === before) {
    // Counted once per trade: in its window of the first interval.
    if (interval === INTERVALS[0]) gold.metrics.redelivered.inc({ stage: "gold" });
    return key;
  }
  if (isLate) gold.metrics.late.inc({ stage: "gold", interval });
  if (entry) {
    entry.candle = after;
    entry.dirty = true;
  } else {
    gold.cache.set(key, { candle: after, dirty: true, partition, index: "none" });
  }
  return key;
}
