/**
 * What every stage does with its input before and after its own work: decode each record of a
 * batch with the wire codec, and send what it cannot take to the dead-letter topic, counted by
 * stage and reason. A record that cannot be decoded (no value, a schema id the registry does not
 * know, bytes in neither framing) is dead-lettered whole and never stops the partition; the
 * registry being down is the one retriable failure (`wire.resolve`), so the batch is retried
 * without committing and nothing is dead-lettered for an outage.
 *
 * @module
 */
import type { KafkaMessage, Producer } from "kafkajs";
import type { RecordTypes, SchemaName } from "../shared/avro.ts";
import {
  type KeyedDeadLetter,
  publishDeadLetters,
  reasonOf,
  recordDeadLetter,
} from "../shared/dead_letter.ts";
import type { MetricsRegistry } from "../shared/metrics.ts";
import { METRIC } from "../shared/metric_names.ts";
import type { StageName } from "../shared/topology.ts";
import { type WireCodec, wireErrorCode } from "../shared/wire.ts";
import type { StageBatch } from "./stage_runner.ts";

/** One record of a batch, decoded, with its index in the batch. */
export interface Decoded<T> {
  readonly index: number;
  readonly message: KafkaMessage;
  readonly value: T;
}

/** The records of a batch a stage refuses, as dead letters. */
export interface Rejects {
  /** Dead-letters record `index` of the batch with `reason` (`reasonCode`, a short code). */
  reject(index: number, reason: string, reasonCode: string): void;
  readonly letters: readonly KeyedDeadLetter[];
}

/** A batch decoded: what could be read, and the rejects so far. */
export interface DecodedBatch<T> {
  readonly records: readonly Decoded<T>[];
  readonly rejects: Rejects;
}

/** Options of {@linkcode createStageInput}. */
export interface StageInputOptions {
  readonly stage: StageName;
  readonly wire: WireCodec;
  readonly producer: Producer;
  readonly deadLetterTopic: string;
  readonly metrics: MetricsRegistry;
  readonly now: () => number;
  /**
   * Runs each dead-letter send, for a stage that orders its sends (`createSendQueue`). Default:
   * sends at once.
   */
  readonly send?: (send: () => Promise<void>) => Promise<void>;
}

/** A stage's decoding and dead-lettering. */
export interface StageInput {
  /**
   * Fetches the batch's unknown schema ids (retriable when the registry does not answer), then
   * decodes every record as `type`; each record that cannot be decoded is rejected.
   */
  decode<N extends SchemaName>(batch: StageBatch, type: N): Promise<DecodedBatch<RecordTypes[N]>>;
  /** Sends the rejects to the dead-letter topic and counts them; nothing when there are none. */
  deadLetter(rejects: Rejects): Promise<void>;
}

/** The input side of one stage. */
export function createStageInput(options: StageInputOptions): StageInput {
  const { stage, wire, producer, deadLetterTopic, now } = options;
  const send = options.send ?? ((work) => work());
  const dead = options.metrics.counter(
    METRIC.deadLetters,
    "Records sent to the dead-letter topic, by stage and reason.",
  );

  function rejectsOf(batch: StageBatch): Rejects {
    const letters: KeyedDeadLetter[] = [];
    return {
      letters,
      reject(index, reason, reasonCode) {
        letters.push(recordDeadLetter(
          { topic: batch.topic, partition: batch.partition, message: batch.messages[index]! },
          { stage, reason, reasonCode, time: now() },
        ));
      },
    };
  }

  return {
    async decode(batch, type) {
      await wire.resolve(batch.messages.map((m) => m.value));
      const rejects = rejectsOf(batch);
      const records: Decoded<RecordTypes[typeof type]>[] = [];
      batch.messages.forEach((message, index) => {
        if (!message.value) return rejects.reject(index, "Record has no value", "empty_record");
        try {
          records.push({ index, message, value: wire.decode(type, message.value) });
        } catch (error) {
          rejects.reject(index, reasonOf(error), wireErrorCode(error));
        }
      });
      return { records, rejects };
    },
    async deadLetter(rejects) {
      if (rejects.letters.length === 0) return;
      await send(() =>
        publishDeadLetters(rejects.letters, { producer, topic: deadLetterTopic, wire })
      );
      for (const { letter } of rejects.letters) dead.inc({ stage, reason: letter.reasonCode });
    },
  };
}
