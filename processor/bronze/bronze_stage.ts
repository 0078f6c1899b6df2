/**
 * Bronze: every raw-topic record, as received, into `trades_bronze` with its source position
 * (topic, partition, offset) and ingest time. Nothing is filtered for content; a record that is
 * not a decodable Avro Trade goes to the dead-letter topic with the reason (`unknown_schema_id`,
 * `undecodable`: see shared/wire.ts), and the partition moves on.
 *
 * @module
 */
import { createSendQueue } from "../../shared/chunked_send.ts";
import { hourBucket } from "../../shared/buckets.ts";
import { encodedValues } from "../../shared/cassandra_values.ts";
import {
  createCoalescingWriter,
  type RowWrite,
  writeMetrics,
} from "../../shared/cassandra_writer.ts";
import { reasonOf } from "../../shared/dead_letter.ts";
import type { RawTrade } from "../../shared/types.ts";
import type { Stage, StageBatch } from "../stage_runner.ts";
import type { StageOptions } from "../stage_options.ts";
import { createStageInput } from "../stage_input.ts";
import { tradeRowValues } from "../trade_row_values.ts";
import { METRIC } from "../../shared/metric_names.ts";

/** Longest symbol bronze stores, in UTF-8 bytes; a longer one is dead-lettered. */
export const MAX_KEY_BYTES = 256;

/** Dependencies of {@linkcode createBronzeStage}: its wire decodes raw records. */
export type BronzeStageOptions = StageOptions;

/** A raw trade's `c` as the two bronze columns. */
export function conditionsColumns(c: RawTrade["c"]): [string[] | null, string] {
  if (c === "ABSENT") return [null, "absent"];
  if (c === null) return [null, "null"];
  return [[...c], "list"];
}

/** The bronze stage. */
export function createBronzeStage(options: BronzeStageOptions): Stage {
  const { session, keyspace, producer, deadLetterTopic, wire, metrics } = options;
  const now = options.now ?? Date.now;
  // The partitions' batches of a fetch round write together: their rows share Cassandra
  // requests instead of each leaving a part-filled one (see createCoalescingWriter).
  const writeBronze = createCoalescingWriter<number>(session, {
    concurrency: options.concurrency ?? 32,
    observe: writeMetrics(metrics, "bronze"),
  });
  const insert = `INSERT INTO ${keyspace}.trades_bronze (symbol, bucket, source_partition,
    source_offset, source_topic, price, event_time, volume, conditions, conditions_kind,
    ingest_time, connection_id, frame_seq, trade_index, stored_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
  const out = metrics.counter(METRIC.stageRowsWritten, "Rows written to Cassandra.");
  const encoder = new TextEncoder();
  // Columns that repeat from row to row are serialised once (see cassandra_values.ts).
  const { text, int, hour, time, list } = tradeRowValues("bronze", metrics);
  const kindText = encodedValues("text", 16);

  const input = createStageInput({
    stage: "bronze",
    wire,
    producer,
    deadLetterTopic,
    metrics,
    now,
    send: createSendQueue(),
  });

  return {
    name: "bronze",
    concurrentPartitions: true,
    async processBatch(batch: StageBatch) {
      const { records, rejects } = await input.decode(batch, "Trade");
      const storedAt = time(now());
      const topic = text(batch.topic);
      const partition = int(batch.partition);
      const rows: RowWrite<number>[] = [];
      for (const { index: i, message, value: trade } of records) {
        if (trade.s === "" || encoder.encode(trade.s).length > MAX_KEY_BYTES) {
          rejects.reject(
            i,
            `Cannot store trade: symbol must be 1 to ${MAX_KEY_BYTES} bytes, got ${
              encoder.encode(trade.s).length
            }`,
            "bad_symbol_key",
          );
          continue;
        }
        const [conditions, kind] = conditionsColumns(trade.c);
        rows.push({
          query: insert,
          partition: `${trade.s}\u0000${hourBucket(trade.ingestTime)}`,
          ref: i,
          params: [
            text(trade.s),
            hour(hourBucket(trade.ingestTime)),
            partition,
            BigInt(message.offset),
            topic,
            trade.p,
            BigInt(trade.t),
            trade.v,
            list(conditions),
            kindText(kind),
            time(trade.ingestTime),
            text(trade.connectionId),
            BigInt(trade.frameSeq),
            int(trade.tradeIndex),
            storedAt,
          ],
        });
      }
      const failures = await writeBronze(rows);
      for (const failure of failures) {
        rejects.reject(
          failure.ref,
          `Cassandra refused the row: ${reasonOf(failure.error)}`,
          "write_refused",
        );
      }
      await input.deadLetter(rejects);
      out.inc({ stage: "bronze", table: "trades_bronze" }, rows.length - failures.length);
    },
  };
}
