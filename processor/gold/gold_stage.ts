/**
 * Gold: 5-minute and 1-hour OHLCV candles per symbol in event time, from the silver topic.
 *
 * How it stays exact under crashes, replays and rebalances:
 * - a candle row holds its whole fold state, including `folded_offsets` (raw partition ->
 *   highest raw offset folded in); a symbol's trades arrive in raw-offset order, so a
 *   redelivered trade is recognised and skipped (see `candle.ts`, `batch_fold.ts`);
 * - a batch's candles are written before the runner commits its offset, so after `kill -9` the
 *   restarted worker reloads each open candle from Cassandra and replays only what was not
 *   committed: every replayed trade is either already in the row (skipped) or not (folded);
 * - each row is written `USING TIMESTAMP` of its state's version (`writeTimestamp()`), so a
 *   stale write from a worker that just lost the partition can never replace a newer state
 *   (`candle_rows.ts`).
 *
 * Finality: the watermark of a partition is the latest event time seen (capped at the trade's
 * ingest time, so a clock-skewed print cannot race it ahead) minus the allowed lateness, and it
 * advances with the wall clock while the partition is idle. A window whose end the watermark
 * has passed is written with `is_final = true` and leaves memory. A trade that arrives later
 * for a final window is still folded in (the row is amended, `late_count` grows and the
 * `pipeline_gold_late_trades_total` metric counts it): candles always equal the fold of every
 * valid trade, and nothing is lost from gold or silver.
 *
 * Finality survives the worker: each partition's watermark clock, and an index of the windows
 * written while open, are kept in Cassandra (`finality_store.ts`). A worker that takes
 * partitions over (start, restart, rebalance: `partition_states.ts`) reads their clocks and the
 * window ends that may hold open windows, and when the watermark passes such an end reads those
 * windows back and makes them final, as the previous owner would have, whether or not a trade
 * ever comes for them again (`finalization.ts`; the order of the writes that keeps the index
 * right is `flush.ts`'s). The time the partition had no owner counts as idle, but a backlog
 * waiting in Kafka is folded in first (see `TAKEOVER_GRACE_MS`). The same index bounds memory:
 * past `maxCachedWindows` candles, the least recently used leave memory (they are written, and
 * read back when a trade touches them or when they fall due: `candle_cache.ts`).
 *
 * The stage is a list of steps over one {@linkcode GoldContext} (`gold_context.ts`), run one at
 * a time: per batch, decode (`../stage_input.ts`), take partitions over after a rebalance, fold
 * the trades and make due windows final; then flush every partition folded since its last flush
 * and evict; then dead-letter; per tick, finalize and flush every partition. The runner hands a
 * fetch round's batches over together (`concurrentPartitions`) and the stage queues their steps
 * in that order, so the round's batches all fold before the first of them flushes, and that one
 * flush writes them all (`flush.ts`): a round of six partitions costs one write of candle rows,
 * not six in a row. A batch returns once a flush that began after its fold has written it; a
 * takeover first writes what was folded, then forgets the candles in memory.
 *
 * @module
 */
import { writeMetrics, writeRows } from "../../shared/cassandra_writer.ts";
import { createSerialQueue } from "../../shared/serial_queue.ts";
import type { Stage, StageBatch } from "../stage_runner.ts";
import type { StageOptions } from "../stage_options.ts";
import { createStageInput } from "../stage_input.ts";
import { foldBatch } from "./batch_fold.ts";
import type { Candle } from "./candle.ts";
import { CandleCache } from "./candle_cache.ts";
import { createCandlePublisher } from "./candle_publisher.ts";
import { createCandleRows } from "./candle_rows.ts";
import { finalizeDue } from "./finalization.ts";
import { createFinalityStore } from "./finality_store.ts";
import { flush } from "./flush.ts";
import { type GoldContext, watermark } from "./gold_context.ts";
import { createGoldMetrics } from "./gold_metrics.ts";
import { type PartitionState, PartitionStates } from "./partition_states.ts";

/**
 * Default bound on candles in memory. A candle in memory takes about 860 bytes of heap (measured
 * with 100,000 of them); 50,000 take about 43 MB of the stage's 128 MiB old space.
 */
export const MAX_CACHED_WINDOWS = 50_000;

/** Dependencies of {@linkcode createGoldStage}. */
export interface GoldStageOptions extends StageOptions {
  /** How long after a window's end a late trade still amends it (the wire decodes silver). */
  readonly allowedLatenessMs: number;
  /** Most candles held in memory. Default {@linkcode MAX_CACHED_WINDOWS}. */
  readonly maxCachedWindows?: number;
  /** Called with every candle after it was written. Default none. */
  readonly onCandle?: (candle: Candle) => void;
  /**
   * Topic to publish every written candle to (Avro CandleUpdate), best effort and without
   * waiting: see `candle_publisher.ts`. Default none.
   */
  readonly candleTopic?: string;
}

/** The gold stage. */
export function createGoldStage(options: GoldStageOptions): Stage {
  const now = options.now ?? Date.now;
  const gold = createGoldContext(options, now);
  const input = createStageInput({
    stage: "gold",
    wire: options.wire,
    producer: options.producer,
    deadLetterTopic: options.deadLetterTopic,
    metrics: options.metrics,
    now,
  });
  const serial = createSerialQueue();
  /** Partitions folded since their last flush. */
  const folded = new Set<number>();

  /** Flushes every partition folded since its last flush, in one flush, then evicts. */
  async function flushFolded(): Promise<void> {
    if (folded.size === 0) return;
    const partitions = [...folded];
    folded.clear();
    try {
      await flush(gold, partitions);
    } catch (error) {
      // Still to write: the batches waiting on them flush them again (or fail and are retried).
      for (const partition of partitions) folded.add(partition);
      throw error;
    }
    evict(gold);
  }

  /**
   * After a rebalance: writes what was folded, then forgets everything (another worker may
   * have moved these rows on while a partition was away) and reads the state of every assigned
   * partition.
   */
  async function takeOver(): Promise<void> {
    if (!gold.states.takeOverDue()) return;
    await flushFolded();
    await gold.states.takeOver(() => {
      gold.cache.clear();
      gold.metrics.openWindows.set(0);
    });
  }

  return {
    name: "gold",
    concurrentPartitions: true,
    async processBatch(batch: StageBatch) {
      // Queued before anything is awaited: the batches of a fetch round fold in the order the
      // runner hands them over, all before the first flush they queue.
      const rejects = await serial(async () => {
        const { records, rejects } = await input.decode(batch, "SilverTrade");
        await takeOver();
        const state = await gold.states.getOrRead(batch.partition);
        const trades = records.map((r) => r.value);
        const arrival = await foldBatch(gold, batch.partition, state, trades);
        await finalizeDue(gold, batch.partition, arrival);
        folded.add(batch.partition);
        showWatermark(gold, batch.partition, state, arrival);
        return rejects;
      });
      await serial(flushFolded);
      await input.deadLetter(rejects);
    },
    onRebalance(partitions) {
      // Read on the next batch or tick: this event may come while they run.
      gold.states.assign(partitions);
    },
    tick() {
      return serial(async () => {
        await takeOver();
        const at = now();
        for (const partition of gold.states.partitions()) {
          await finalizeDue(gold, partition, at);
          folded.add(partition);
        }
        await flushFolded();
      });
    },
    close() {
      return serial(async () => {
        for (const partition of gold.states.partitions()) folded.add(partition);
        await flushFolded();
        await gold.publisher?.drain(2000);
      });
    },
  };
}

/** One worker's clients, state and metrics. */
function createGoldContext(options: GoldStageOptions, now: () => number): GoldContext {
  const { session, keyspace, producer, metrics } = options;
  const concurrency = options.concurrency ?? 32;
  const observeWrites = writeMetrics(metrics, "gold");
  const store = createFinalityStore({ session, keyspace });
  return {
    rows: createCandleRows({ session, keyspace, concurrency }),
    store,
    /** Candles in memory, least recently used first. */
    cache: new CandleCache(options.maxCachedWindows ?? MAX_CACHED_WINDOWS),
    /** The state of every partition this worker works on. */
    states: new PartitionStates({ store, now, log: options.log }),
    publisher: options.candleTopic === undefined ? undefined : createCandlePublisher({
      producer,
      topic: options.candleTopic,
      wire: options.wire,
      metrics,
      log: options.log,
    }),
    metrics: createGoldMetrics(metrics),
    allowedLatenessMs: options.allowedLatenessMs,
    now,
    async write(rows) {
      const failures = await writeRows(session, rows, { concurrency, observe: observeWrites });
      if (failures.length > 0) {
        // Candle rows are built by us from validated trades: a refusal is a bug, not bad input.
        throw failures[0]!.error;
      }
    },
    onCandle: options.onCandle,
  };
}

/**
 * Drops least recently used candles while more than the bound are in memory; the end of each
 * open one is read back from the index when it falls due.
 */
function evict(gold: GoldContext): void {
  for (const entry of gold.cache.evict()) {
    if (entry.candle.isFinal) continue;
    gold.states.get(entry.partition)?.unread.add(entry.candle.windowEnd);
    gold.metrics.evicted.inc({ interval: entry.candle.interval });
  }
  gold.metrics.openWindows.set(gold.cache.size);
}

/** Sets the partition's watermark gauge, once it has one. */
function showWatermark(
  gold: GoldContext,
  partition: number,
  state: PartitionState,
  at: number,
): void {
  const wm = watermark(gold, state, at);
  if (Number.isFinite(wm)) {
    gold.metrics.watermark.set(wm / 1000, { partition: String(partition) });
  }
}
