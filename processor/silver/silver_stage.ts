/**
 * Silver: validates and normalises each raw trade. A valid trade becomes a `trades_silver` row,
 * moves the `latest_prices` row of its symbol, and is published on the silver topic keyed by
 * symbol, in raw-offset order. An invalid one goes to the dead-letter topic with the reason.
 * Everything a batch produces is durable before the runner commits its offset.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { hourBucket } from "../../shared/buckets.ts";
import { encodedValues } from "../../shared/cassandra_values.ts";
import {
  createCoalescingWriter,
  type RowWrite,
  writeMetrics,
} from "../../shared/cassandra_writer.ts";
import { createCoalescingPublisher, createSendQueue } from "../../shared/chunked_send.ts";
import { reasonOf } from "../../shared/dead_letter.ts";
import { END_TO_END_LATENCY_BUCKETS } from "../../shared/metrics.ts";
import type { SilverTrade } from "../../shared/types.ts";
import type { Stage, StageBatch } from "../stage_runner.ts";
import type { StageOptions } from "../stage_options.ts";
import { createStageInput } from "../stage_input.ts";
import { tradeRowValues } from "../trade_row_values.ts";
import { type SilverRules, toSilverTrade, TradeRejection } from "./validate.ts";
import { METRIC } from "../../shared/metric_names.ts";

/** Dependencies of {@linkcode createSilverStage}. */
export interface SilverStageOptions extends StageOptions {
  /** Where the silver records go (the wire decodes raw records and encodes silver ones). */
  readonly silverTopic: string;
  readonly rules: SilverRules;
}

/** Whether trade `a` comes after `b` in event time, then source position. */
function later(a: SilverTrade, b: SilverTrade): boolean {
  return (a.eventTime - b.eventTime || a.rawPartition - b.rawPartition ||
    a.rawOffset - b.rawOffset) > 0;
}

/** The silver stage. */
export function createSilverStage(options: SilverStageOptions): Stage {
  const { session, keyspace, producer, metrics, rules, wire } = options;
  const now = options.now ?? Date.now;
  const insertSilver = `INSERT INTO ${keyspace}.trades_silver (symbol, bucket, event_time,
    raw_partition, raw_offset, raw_topic, price, volume, price_only, conditions, session,
    ingest_time, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
  // The write timestamp is the trade's event time, so an older trade never replaces a newer
  // price, whatever order they are written in.
  const upsertLatest = `INSERT INTO ${keyspace}.latest_prices (symbol, price, volume,
    event_time, raw_partition, raw_offset, session, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
  const rowsOut = metrics.counter(
    METRIC.stageRowsWritten,
    "Rows written to Cassandra.",
  );
  const published = metrics.counter(
    "pipeline_stage_messages_out_total",
    "Records the stage published downstream.",
  );
  const latency = metrics.histogram(
    "pipeline_ingest_to_silver_seconds",
    "Time from the producer receiving a trade to its silver row being written.",
    END_TO_END_LATENCY_BUCKETS,
  );

  // Columns that repeat from row to row are serialised once (see cassandra_values.ts).
  const { text, int, hour, time, list, resets: cacheResets } = tradeRowValues("silver", metrics);
  const sessionText = encodedValues("text", 16);
  const bool = encodedValues("boolean", 2);

  /** One key Buffer per symbol, reused for every record of it. */
  const keys = new Map<string, Buffer>();
  const keyOf = (symbol: string): Buffer => {
    let key = keys.get(symbol);
    if (key === undefined) {
      if (keys.size >= 100_000) {
        keys.clear();
        cacheResets.inc({ stage: "silver", cache: "keys" });
      }
      keys.set(symbol, key = Buffer.from(symbol));
    }
    return key;
  };

  /** Per partition, the batch whose silver records are published while its writes are retried. */
  const publishedBeforeRetry = new Map<number, string>();

  // The partitions' batches of a fetch round write together, as they publish together below:
  // their rows share Cassandra requests instead of each leaving a part-filled one.
  const writeSilver = createCoalescingWriter<number>(session, {
    concurrency: options.concurrency ?? 32,
    observe: writeMetrics(metrics, "silver"),
  });
  const sendQueue = createSendQueue();
  // The batches of the partitions worked on at once publish together: one produce request for
  // what arrived while the last one was in flight, instead of one request per partition batch.
  const publishSilver = createCoalescingPublisher(producer, options.silverTopic, sendQueue);
  const input = createStageInput({
    stage: "silver",
    wire,
    producer,
    deadLetterTopic: options.deadLetterTopic,
    metrics,
    now,
    send: sendQueue,
  });

  return {
    name: "silver",
    concurrentPartitions: true,
    onRebalance() {
      publishedBeforeRetry.clear();
    },
    async processBatch(batch: StageBatch) {
      const { records, rejects } = await input.decode(batch, "Trade");
      const storedAt = new Date(now());
      const storedAtBytes = time(storedAt);
      const rows: RowWrite<number>[] = [];
      const trades: SilverTrade[] = [];
      const latest = new Map<string, SilverTrade>();
      for (const { index: i, message, value: raw } of records) {
        let trade: SilverTrade;
        try {
          trade = toSilverTrade(raw, {
            topic: batch.topic,
            partition: batch.partition,
            offset: Number(message.offset),
          }, rules);
        } catch (error) {
          if (!(error instanceof TradeRejection)) throw error;
          rejects.reject(i, error.message, error.code);
          continue;
        }
        trades.push(trade);
        const current = latest.get(trade.symbol);
        if (!current || later(trade, current)) latest.set(trade.symbol, trade);
        rows.push({
          query: insertSilver,
          partition: `${trade.symbol}\u0000${hourBucket(trade.eventTime)}`,
          ref: i,
          params: [
            text(trade.symbol),
            hour(hourBucket(trade.eventTime)),
            new Date(trade.eventTime),
            int(trade.rawPartition),
            BigInt(trade.rawOffset),
            text(trade.rawTopic),
            trade.price,
            trade.volume,
            bool(trade.priceOnly),
            list(trade.conditions),
            sessionText(trade.session),
            time(trade.ingestTime),
            storedAtBytes,
          ],
        });
      }
      for (const trade of latest.values()) {
        rows.push({
          query: upsertLatest,
          partition: trade.symbol,
          timestamp: BigInt(trade.eventTime) * 1000n,
          ref: -1,
          params: [
            trade.symbol,
            trade.price,
            trade.volume,
            new Date(trade.eventTime),
            trade.rawPartition,
            BigInt(trade.rawOffset),
            trade.session,
            storedAt,
          ],
        });
      }
      // The same batch comes back while a retry is under way (Cassandra down): what was already
      // published for it is not published again, so an outage does not multiply silver records.
      const batchKey = `${batch.partition}:${batch.messages[0]?.offset}:${
        batch.messages.at(-1)?.offset
      }`;
      const alreadySent = publishedBeforeRetry.get(batch.partition) === batchKey;
      const [written, sent] = await Promise.allSettled([
        writeSilver(rows),
        // With the other partitions' batches, in chunks (a whole consumed batch can be over the
        // broker's size limit for one send).
        alreadySent ? Promise.resolve() : publishSilver(
          trades.map((t) => ({
            key: keyOf(t.symbol),
            value: wire.encode("SilverTrade", t),
            timestamp: String(t.eventTime),
          })),
        ),
      ]);
      if (sent.status === "fulfilled") publishedBeforeRetry.set(batch.partition, batchKey);
      if (written.status === "rejected") throw written.reason;
      if (sent.status === "rejected") throw sent.reason;
      publishedBeforeRetry.delete(batch.partition);
      // A row Cassandra refuses on its own merits (never seen so far) is dead-lettered too:
      // it must not block the partition.
      for (const failure of written.value) {
        if (failure.ref >= 0) {
          rejects.reject(
            failure.ref,
            `Cassandra refused the row: ${reasonOf(failure.error)}`,
            "write_refused",
          );
        }
      }
      await input.deadLetter(rejects);
      const done = now();
      for (const trade of trades) latency.observe(Math.max(0, done - trade.ingestTime) / 1000);
      rowsOut.inc({ stage: "silver", table: "trades_silver" }, trades.length);
      rowsOut.inc({ stage: "silver", table: "latest_prices" }, latest.size);
      published.inc({ stage: "silver", topic: options.silverTopic }, trades.length);
    },
  };
}
