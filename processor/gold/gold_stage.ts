/**
 * Gold: 5-minute and 1-hour OHLCV candles per symbol in event time, from the silver topic.
 *
 * How it stays exact under crashes, replays and rebalances:
 * - a candle row holds its whole fold state, including `folded_offsets` (raw partition ->
 *   highest raw offset folded in); a symbol's trades arrive in raw-offset order, so a
 *   redelivered trade is recognised and skipped (see `candle.ts`);
 * - a batch's candles are written before the runner commits its offset, so after `kill -9` the
 *   restarted worker reloads each open candle from Cassandra and replays only what was not
 *   committed: every replayed trade is either already in the row (skipped) or not (folded);
 * - each row is written `USING TIMESTAMP` of its state's version (`writeTimestamp()`), so a
 *   stale write from a worker that just lost the partition can never replace a newer state.
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
 * partitions over (start, restart, rebalance) reads their clocks and the window ends that may
 * hold open windows, and when the watermark passes such an end reads those windows back and
 * makes them final, as the previous owner would have, whether or not a trade ever comes for them
 * again. The time the partition had no owner counts as idle, but a backlog waiting in Kafka is
 * folded in first (see `TAKEOVER_GRACE_MS`). The same index bounds memory: past
 * `maxCachedWindows` candles, the least recently used leave memory (they are written, and read
 * back when a trade touches them or when they fall due).
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Producer } from "kafkajs";
import { writeMetrics, writeRows } from "../../shared/cassandra_writer.ts";

import type { Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";

import { type WireCodec } from "../../shared/wire.ts";
import type { Stage, StageBatch } from "../stage_runner.ts";
import { createStageInput } from "../stage_input.ts";
import { type Candle, foldTrade } from "./candle.ts";
import { createCandlePublisher } from "./candle_publisher.ts";
import { CandleCache, entryKey } from "./candle_cache.ts";
import { createCandleRows } from "./candle_rows.ts";
import { type GoldContext } from "./gold_context.ts";
import { createGoldMetrics } from "./gold_metrics.ts";
import { flush } from "./flush.ts";
import { finalizeDue } from "./finalization.ts";
import { createFinalityStore } from "./finality_store.ts";
import { type PartitionState, PartitionStates } from "./partition_states.ts";
import { observe, watermarkAt } from "./watermark.ts";
import { type Interval, INTERVAL_MS, INTERVALS, windowStart } from "../../shared/gold_table.ts";

/**
 * Default bound on candles in memory. A candle in memory takes about 860 bytes of heap (measured
 * with 100,000 of them); 50,000 take about 43 MB of the stage's 128 MiB old space.
 */
export const MAX_CACHED_WINDOWS = 50_000;

/** Dependencies of {@linkcode createGoldStage}. */
export interface GoldStageOptions {
  readonly session: cassandra.Client;
  readonly keyspace: string;
  readonly producer: Producer;
  readonly deadLetterTopic: string;
  /** Decodes the silver records, encodes the dead letters and candle updates. */
  readonly wire: WireCodec;
  readonly allowedLatenessMs: number;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Most Cassandra requests in flight. Default 32. */
  readonly concurrency?: number;
  /** Most candles held in memory. Default {@linkcode MAX_CACHED_WINDOWS}. */
  readonly maxCachedWindows?: number;
  /** Called with every candle after it was written. Default none. */
  readonly onCandle?: (candle: Candle) => void;
  /**
   * Topic to publish every written candle to (Avro CandleUpdate), best effort and without
   * waiting: see `candle_publisher.ts`. Default none.
   */
  readonly candleTopic?: string;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
}

/** The gold stage. */
export function createGoldStage(options: GoldStageOptions): Stage {
  const { session, keyspace, producer, metrics, allowedLatenessMs, wire } = options;
  const now = options.now ?? Date.now;
  const concurrency = options.concurrency ?? 32;
  const maxCached = options.maxCachedWindows ?? MAX_CACHED_WINDOWS;
  const observeWrites = writeMetrics(metrics, "gold");
  const store = createFinalityStore({ session, keyspace });
  const candleRows = createCandleRows({ session, keyspace, concurrency });
  const input = createStageInput({
    stage: "gold",
    wire,
    producer,
    deadLetterTopic: options.deadLetterTopic,
    metrics,
    now,
  });
  /** Candles in memory, least recently used first. */
  const cache = new CandleCache(maxCached);
  /** The state of every partition this worker works on. */
  const states = new PartitionStates({ store, now, log: options.log });
  const publisher = options.candleTopic === undefined ? undefined : createCandlePublisher({
    producer,
    topic: options.candleTopic,
    wire,
    metrics,
    log: options.log,
  });
  const goldMetrics = createGoldMetrics(metrics);
  const {
    late,
    redelivered,
    openWindows,
    evicted,
    watermark: watermarkGauge,
  } = goldMetrics;
  const gold: GoldContext = {
    cache,
    states,
    store,
    rows: candleRows,
    metrics: goldMetrics,
    allowedLatenessMs,
    now,
    async write(rows) {
      const failures = await writeRows(session, rows, { concurrency, observe: observeWrites });
      if (failures.length > 0) {
        // Candle rows are built by us from validated trades: a refusal is a bug, not bad input.
        throw failures[0]!.error;
      }
    },
    onCandle: options.onCandle,
    publisher,
  };

  function watermark(state: PartitionState, at: number): number {
    return watermarkAt(state.clock, at, allowedLatenessMs);
  }

  /**
   * After a rebalance: forgets everything (another worker may have moved these rows on while
   * a partition was away) and reads the state of every assigned partition.
   */
  async function takeOver(): Promise<void> {
    await states.takeOver(() => {
      cache.clear();
      openWindows.set(0);
    });
  }

  /** Drops least recently used candles while more than the bound are in memory. */
  function evict(): void {
    for (const entry of cache.evict()) {
      if (entry.candle.isFinal) continue;
      states.get(entry.partition)?.unread.add(entry.candle.windowEnd);
      evicted.inc({ interval: entry.candle.interval });
    }
    openWindows.set(cache.size);
  }

  return {
    name: "gold",
    async processBatch(batch: StageBatch) {
      const { records, rejects } = await input.decode(batch, "SilverTrade");
      await takeOver();
      const state = await states.getOrRead(batch.partition);
      const trades = records.map((r) => r.value);
      // Read the rows of every window this batch touches that is not in memory yet.
      const missing = new Map<string, [Interval, string, number]>();
      for (const trade of trades) {
        for (const interval of INTERVALS) {
          const start = windowStart(trade.eventTime, interval);
          const key = entryKey(interval, trade.symbol, start);
          if (!cache.has(key)) missing.set(key, [interval, trade.symbol, start]);
        }
      }
      const rows = await candleRows.read([...missing.values()]);
      [...missing.keys()].forEach((key, i) => {
        const candle = rows[i];
        if (candle) {
          cache.set(key, {
            candle,
            dirty: false,
            partition: batch.partition,
            // A final row's entry was deleted when it was written; an open one may have one.
            index: candle.isFinal ? "none" : "unknown",
          });
        }
      });
      const arrival = now();
      if (state.heldUntil !== undefined) {
        // The first batch since the takeover: what it holds was waiting in Kafka, not late.
        state.heldUntil = undefined;
        if (state.clock) state.clock = { ...state.clock, lastArrival: arrival };
      }
      const touched = new Set<string>();
      for (const trade of trades) {
        for (const interval of INTERVALS) {
          const start = windowStart(trade.eventTime, interval);
          const key = entryKey(interval, trade.symbol, start);
          touched.add(key);
          let entry = cache.get(key);
          if (entry && entry.partition !== batch.partition) {
            // The symbol moved partitions (the topic grew): index it under this one too.
            entry = { ...entry, partition: batch.partition, index: "unknown" };
            cache.set(key, entry);
          }
          const end = start + INTERVAL_MS[interval];
          const isLate = entry?.candle.isFinal === true || end <= watermark(state, arrival);
          const before = entry?.candle;
          const after = foldTrade(before, trade, interval, { late: isLate });
          if (after === before) {
            if (interval === "5m") redelivered.inc({ stage: "gold" });
            continue;
          }
          if (isLate) late.inc({ stage: "gold", interval });
          if (entry) {
            entry.candle = after;
            entry.dirty = true;
          } else {
            cache.set(key, {
              candle: after,
              dirty: true,
              partition: batch.partition,
              index: "none",
            });
          }
        }
        state.clock = observe(state.clock, trade, arrival);
      }
      cache.touch(touched);
      await finalizeDue(gold, batch.partition, arrival);
      await flush(gold, batch.partition);
      evict();
      await input.deadLetter(rejects);
      const wm = watermark(state, arrival);
      if (Number.isFinite(wm)) {
        watermarkGauge.set(wm / 1000, { partition: String(batch.partition) });
      }
    },
    onRebalance(partitions) {
      // Read on the next batch or tick: batches and ticks never overlap, this event may.
      states.assign(partitions);
    },
    async tick() {
      await takeOver();
      const at = now();
      for (const partition of states.partitions()) {
        await finalizeDue(gold, partition, at);
        await flush(gold, partition);
      }
    },
    async close() {
      for (const partition of states.partitions()) await flush(gold, partition);
      await publisher?.drain(2000);
    },
  };
}
