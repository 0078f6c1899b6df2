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
 * @module
 */
import cassandra from "cassandra-driver";
import type { Producer } from "kafkajs";
import { decode } from "../../shared/avro.ts";
import { type RowWrite, writeMetrics, writeRows } from "../../shared/cassandra_writer.ts";
import {
  type KeyedDeadLetter,
  publishDeadLetters,
  reasonOf,
  recordDeadLetter,
} from "../../shared/dead_letter.ts";
import type { Logger } from "../../shared/log.ts";
import { END_TO_END_LATENCY_BUCKETS, type MetricsRegistry } from "../../shared/metrics.ts";
import type { SilverTrade } from "../../shared/types.ts";
import type { Stage, StageBatch } from "../stage_runner.ts";
import { type Candle, finalize, foldTrade, vwap, writeTimestamp } from "./candle.ts";
import { candleUpdateOf, createCandlePublisher } from "./candle_publisher.ts";
import { type Decimal, formatDecimal, parseDecimal } from "./decimal.ts";
import { observe, type PartitionClock, reachedAt, watermarkAt } from "./watermark.ts";
import { GOLD_TABLE, goldBucket, type Interval, INTERVAL_MS, windowStart } from "./window.ts";

/** The intervals gold maintains. */
export const INTERVALS: readonly Interval[] = ["5m", "1h"];

/** Dependencies of {@linkcode createGoldStage}. */
export interface GoldStageOptions {
  readonly session: cassandra.Client;
  readonly keyspace: string;
  readonly producer: Producer;
  readonly deadLetterTopic: string;
  readonly allowedLatenessMs: number;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Most Cassandra requests in flight. Default 32. */
  readonly concurrency?: number;
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

interface Entry {
  candle: Candle;
  dirty: boolean;
  readonly partition: number;
  /** Wall time the watermark passed the window's end, once it has. */
  crossedAt?: number;
}

function entryKey(interval: Interval, symbol: string, start: number): string {
  return `${interval}\u0000${symbol}\u0000${start}`;
}

/** The gold stage. */
export function createGoldStage(options: GoldStageOptions): Stage {
  const { session, keyspace, producer, metrics, allowedLatenessMs } = options;
  const now = options.now ?? Date.now;
  const observeWrites = writeMetrics(metrics, "gold");
  const cache = new Map<string, Entry>();
  const clocks = new Map<number, PartitionClock>();
  const upserts = new Map<Interval, string>();
  const publisher = options.candleTopic === undefined ? undefined : createCandlePublisher({
    producer,
    topic: options.candleTopic,
    metrics,
    log: options.log,
  });
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
  const late = metrics.counter(
    "pipeline_gold_late_trades_total",
    "Trades that arrived after their window was final; folded in as an amendment.",
  );
  const redelivered = metrics.counter(
    "pipeline_gold_redelivered_trades_total",
    "Trades gold had already folded in (pipeline retries and replays), skipped.",
  );
  const written = metrics.counter(
    "pipeline_stage_rows_written_total",
    "Rows written to Cassandra.",
  );
  const finalDelay = metrics.histogram(
    "pipeline_gold_watermark_to_final_seconds",
    "Time from the watermark passing a window's end to its final gold row being written.",
    END_TO_END_LATENCY_BUCKETS,
  );
  const openWindows = metrics.gauge(
    "pipeline_gold_open_windows",
    "Candles held in memory, not final yet.",
  );
  const dead = metrics.counter(
    "pipeline_dead_letters_total",
    "Records sent to the dead-letter topic, by stage and reason.",
  );
  const watermarkGauge = metrics.gauge(
    "pipeline_gold_watermark_seconds",
    "Event-time watermark per silver partition, Unix seconds.",
  );

  function watermark(partition: number, at: number): number {
    return watermarkAt(clocks.get(partition), at, allowedLatenessMs);
  }

  async function load(keys: readonly [Interval, string, number][]): Promise<void> {
    const limit = options.concurrency ?? 32;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, keys.length) }, async () => {
        while (next < keys.length) {
          const [interval, symbol, start] = keys[next++]!;
          const result = await session.execute(selects.get(interval)!, [
            symbol,
            cassandra.types.LocalDate.fromString(goldBucket(start, interval)),
            new Date(start),
          ], { prepare: true });
          const row = result.first();
          if (row) {
            cache.set(entryKey(interval, symbol, start), {
              candle: candleFromRow(row, interval),
              dirty: false,
              partition: -1,
            });
          }
        }
      }),
    );
  }

  /** Marks final every cached candle of `partition` that the watermark has passed. */
  function finalizeDue(partition: number | undefined, at: number): void {
    for (const entry of cache.values()) {
      if (entry.candle.isFinal) continue;
      if (partition !== undefined && entry.partition !== partition) continue;
      if (entry.candle.windowEnd <= watermark(entry.partition, at)) {
        entry.candle = finalize(entry.candle);
        entry.crossedAt = reachedAt(
          clocks.get(entry.partition)!,
          entry.candle.windowEnd,
          allowedLatenessMs,
        );
        entry.dirty = true;
      }
    }
  }

  async function flush(partition: number | undefined): Promise<void> {
    const dirty: [string, Entry][] = [];
    for (const item of cache) {
      if (partition !== undefined && item[1].partition !== partition) continue;
      if (item[1].dirty) dirty.push(item);
      // A final row read back only to skip a redelivery has nothing to write: let it go.
      else if (item[1].candle.isFinal) cache.delete(item[0]);
    }
    if (dirty.length === 0) return;
    const at = new Date(now());
    const rows: RowWrite<number>[] = dirty.map(([, entry], i) => ({
      query: upserts.get(entry.candle.interval)!,
      partition: `${entry.candle.symbol}\u0000${entry.candle.windowStart}`,
      timestamp: writeTimestamp(entry.candle),
      ref: i,
      params: rowParams(entry.candle, at),
    }));
    const failures = await writeRows(session, rows, {
      concurrency: options.concurrency ?? 32,
      observe: observeWrites,
    });
    if (failures.length > 0) {
      // Candle rows are built by us from validated trades: a refusal is a bug, not bad input.
      throw failures[0]!.error;
    }
    const done = now();
    for (const [key, entry] of dirty) {
      entry.dirty = false;
      written.inc({ stage: "gold", table: GOLD_TABLE[entry.candle.interval] });
      if (entry.candle.isFinal) {
        if (entry.crossedAt !== undefined) {
          finalDelay.observe(Math.max(0, done - entry.crossedAt) / 1000, {
            interval: entry.candle.interval,
          });
        }
        cache.delete(key);
      }
      options.onCandle?.(entry.candle);
    }
    publisher?.publish(dirty.map(([, entry]) => candleUpdateOf(entry.candle, at.getTime())));
    openWindows.set(cache.size);
  }

  return {
    name: "gold",
    async processBatch(batch: StageBatch) {
      const trades: SilverTrade[] = [];
      const letters: KeyedDeadLetter[] = [];
      batch.messages.forEach((message) => {
        try {
          if (!message.value) throw new TypeError("Record has no value");
          trades.push(decode("SilverTrade", message.value));
        } catch (error) {
          letters.push(recordDeadLetter(
            { topic: batch.topic, partition: batch.partition, message },
            { stage: "gold", reason: reasonOf(error), reasonCode: "undecodable", time: now() },
          ));
        }
      });
      // Read the rows of every window this batch touches that is not in memory yet.
      const missing = new Map<string, [Interval, string, number]>();
      for (const trade of trades) {
        for (const interval of INTERVALS) {
          const start = windowStart(trade.eventTime, interval);
          const key = entryKey(interval, trade.symbol, start);
          if (!cache.has(key)) missing.set(key, [interval, trade.symbol, start]);
        }
      }
      await load([...missing.values()]);
      const arrival = now();
      for (const trade of trades) {
        for (const interval of INTERVALS) {
          const start = windowStart(trade.eventTime, interval);
          const key = entryKey(interval, trade.symbol, start);
          let entry = cache.get(key);
          if (entry && entry.partition !== batch.partition) {
            entry = { ...entry, partition: batch.partition };
            cache.set(key, entry);
          }
          const end = start + INTERVAL_MS[interval];
          const isLate = entry?.candle.isFinal === true ||
            end <= watermark(batch.partition, arrival);
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
            cache.set(key, { candle: after, dirty: true, partition: batch.partition });
          }
        }
        clocks.set(batch.partition, observe(clocks.get(batch.partition), trade, arrival));
      }
      finalizeDue(batch.partition, arrival);
      await flush(batch.partition);
      await publishDeadLetters(producer, options.deadLetterTopic, letters);
      for (const { letter } of letters) dead.inc({ stage: "gold", reason: letter.reasonCode });
      const wm = watermark(batch.partition, arrival);
      if (Number.isFinite(wm)) {
        watermarkGauge.set(wm / 1000, { partition: String(batch.partition) });
      }
    },
    onRebalance() {
      // Another worker may have moved these rows on while the partition was away: read again.
      cache.clear();
      clocks.clear();
      openWindows.set(0);
    },
    async tick() {
      finalizeDue(undefined, now());
      await flush(undefined);
    },
    async close() {
      await flush(undefined);
      await publisher?.drain(2000);
    },
  };
}

function toDecimal(value: unknown): Decimal {
  return parseDecimal(String(value));
}

function bigDecimal(d: Decimal): cassandra.types.BigDecimal {
  return cassandra.types.BigDecimal.fromString(formatDecimal(d));
}

/** The bound parameters of a candle's upsert. */
function rowParams(c: Candle, at: Date): unknown[] {
  const average = vwap(c);
  return [
    c.symbol,
    cassandra.types.LocalDate.fromString(goldBucket(c.windowStart, c.interval)),
    new Date(c.windowStart),
    new Date(c.windowEnd),
    c.open,
    c.high,
    c.low,
    c.close,
    bigDecimal(c.volume),
    bigDecimal(c.pvSum),
    average === null ? null : bigDecimal(average),
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
