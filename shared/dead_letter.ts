/**
 * Publishing rejected input to the dead-letter topic, whole, with the reason.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { KafkaMessage, Message, Producer } from "kafkajs";
import { sendInChunks } from "./chunked_send.ts";
import type { DeadLetter, DeadLetterSource } from "./types.ts";
import type { WireCodec } from "./wire.ts";

/** The Kafka message of a dead letter, keyed by `key` (a symbol) when there is one. */
export function deadLetterMessage(
  wire: WireCodec,
  { letter, key }: { readonly letter: DeadLetter; readonly key?: string | null },
): Message {
  return { key: key ? Buffer.from(key) : null, value: wire.encode("DeadLetter", letter) };
}

/** Where {@linkcode publishDeadLetters} sends. */
export interface DeadLetterTarget {
  readonly producer: Producer;
  readonly topic: string;
  /** Encodes the letters (DeadLetter registered under `<topic>-value`). */
  readonly wire: WireCodec;
}

/**
 * Sends dead letters acknowledged (acks = all), in as few requests as the broker's size limit
 * allows (a batch of rejected records can be as large as the batch consumed).
 */
export async function publishDeadLetters(
  letters: readonly { readonly letter: DeadLetter; readonly key?: string | null }[],
  { producer, topic, wire }: DeadLetterTarget,
): Promise<void> {
  await sendInChunks(producer, topic, letters.map((letter) => deadLetterMessage(wire, letter)));
}

/** Shortens an error message for a dead letter's reason. */
export function reasonOf(error: unknown, max = 500): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A dead letter with the key to publish it under. */
export interface KeyedDeadLetter {
  readonly letter: DeadLetter;
  readonly key: string | null;
}

/**
 * The dead letter of one consumed Kafka record: its value whole, the reason, the stage, and its
 * source position; keyed by the record's own key.
 */
export function recordDeadLetter(
  source: { readonly topic: string; readonly partition: number; readonly message: KafkaMessage },
  rejection: {
    readonly stage: DeadLetterSource;
    readonly reason: string;
    readonly reasonCode: string;
    readonly time: number;
  },
): KeyedDeadLetter {
  const { message } = source;
  return {
    key: message.key?.toString() ?? null,
    letter: {
      payload: message.value ?? new Uint8Array(),
      reason: rejection.reason,
      reasonCode: rejection.reasonCode,
      source: rejection.stage,
      time: rejection.time,
      sourceTopic: source.topic,
      sourcePartition: source.partition,
      sourceOffset: Number(message.offset),
    },
  };
}
