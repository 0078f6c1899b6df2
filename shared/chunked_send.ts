/**
 * Sending a large set of records without breaking the broker's size limit. kafkajs puts all of
 * one send's messages for a partition into a single record batch, and the broker refuses a
 * batch over `message.max.bytes` (1 MiB by default) with MESSAGE_TOO_LARGE, which is not
 * retriable. A stage that forwards a whole consumed batch (a fetch returns up to 1 MiB per
 * partition, and more once a compressed batch is unpacked; a silver record is larger than its
 * raw one) must split what it sends, or the same batch fails on every attempt and the stage
 * crash-loops on it.
 *
 * @module
 */
import type { Message, Producer } from "kafkajs";
import { createSerialQueue } from "./serial_queue.ts";

/** Most bytes (keys, values and per-record overhead) one send carries by default. */
export const MAX_SEND_BYTES = 512 * 1024;

/** A generous estimate of what a record adds to its batch besides key and value. */
const RECORD_OVERHEAD_BYTES = 64;

const encoder = new TextEncoder();

function sizeOf(part: Message["key"] | Message["value"]): number {
  if (part === null || part === undefined) return 0;
  return typeof part === "string" ? encoder.encode(part).length : part.length;
}

/** The bytes `message` adds to a record batch, estimated from above. */
export function messageBytes(message: Message): number {
  let headers = 0;
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    headers += encoder.encode(name).length;
    for (const v of [value].flat()) headers += v === undefined ? 0 : sizeOf(v);
  }
  return RECORD_OVERHEAD_BYTES + sizeOf(message.key) + sizeOf(message.value) + headers;
}

/**
 * Most records one send carries by default. kafkajs 2.2.4 groups a send's records by partition
 * in time quadratic in the records per partition (it copies the partition's array for every
 * record), which made 3,000-record sends cost more than encoding them.
 */
export const MAX_SEND_MESSAGES = 500;

/**
 * Splits `messages`, in order, into runs of at most `maxBytes` (estimated) and `maxMessages`
 * records. A message larger than `maxBytes` on its own is a run of its own; no run is empty.
 */
export function chunkMessages(
  messages: readonly Message[],
  maxBytes: number = MAX_SEND_BYTES,
  maxMessages: number = MAX_SEND_MESSAGES,
): Message[][] {
  const chunks: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = messageBytes(message);
    if (current.length > 0 && (bytes + size > maxBytes || current.length >= maxMessages)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Options of {@linkcode sendInChunks}. */
export interface SendInChunksOptions {
  /** Most bytes per send. Default {@linkcode MAX_SEND_BYTES}. */
  readonly maxBytes?: number;
  /** Most records per send. Default {@linkcode MAX_SEND_MESSAGES}. */
  readonly maxMessages?: number;
}

/**
 * Sends `messages` to `topic` with `acks = all`, one chunk after another so their order within
 * each partition is kept. Throws the first failure; chunks sent before it stay sent (the caller
 * retries the whole set, so consumers must tolerate the repeat, as every stage here does).
 */
export async function sendInChunks(
  producer: Pick<Producer, "send">,
  topic: string,
  messages: readonly Message[],
  options: SendInChunksOptions = {},
): Promise<void> {
  for (const chunk of chunkMessages(messages, options.maxBytes, options.maxMessages)) {
    await producer.send({ topic, acks: -1, messages: chunk });
  }
}

/**
 * Runs the given sends one at a time, in call order. kafkajs's idempotent producer numbers a
 * partition's records when it builds a request, so two sends racing to one partition can be
 * refused as out of order: a stage that processes partitions concurrently sends through this.
 */
export function createSendQueue(): <T>(send: () => Promise<T>) => Promise<T> {
  return createSerialQueue();
}

/**
 * Publishes to `topic` through `queue`, coalescing: the messages of every call made while the
 * queue is busy (a send in flight, another waiting) go out together in the next send, and each
 * call resolves once the send holding its messages is acknowledged, or rejects with its failure.
 * A stage that works on several partitions at once publishes each partition's small batch in one
 * produce request instead of one request each, one after another: what waits is what arrives
 * while a send is under way, so no linger time is needed. Messages keep their call order, so
 * each partition's order is kept.
 */
export function createCoalescingPublisher(
  producer: Pick<Producer, "send">,
  topic: string,
  queue: <T>(send: () => Promise<T>) => Promise<T>,
): (messages: readonly Message[]) => Promise<void> {
  interface Group {
    readonly messages: Message[];
    readonly waiters: PromiseWithResolvers<void>[];
  }
  let open: Group | undefined;
  return (messages) => {
    if (messages.length === 0) return Promise.resolve();
    const waiter = Promise.withResolvers<void>();
    if (open === undefined) {
      const group: Group = { messages: [], waiters: [] };
      open = group;
      queue(() => {
        // From here the group is closed: later calls start the next one.
        if (open === group) open = undefined;
        return sendInChunks(producer, topic, group.messages);
      }).then(
        () => group.waiters.forEach((w) => w.resolve()),
        (error) => group.waiters.forEach((w) => w.reject(error)),
      );
    }
    for (const message of messages) open.messages.push(message);
    open.waiters.push(waiter);
    return waiter.promise;
  };
}
