/**
 * The Kafka side of the producer. Trades wait in a bounded {@linkcode TradeBuffer} and go to the
 * raw topic in batches (one send in flight, so each partition's order is the buffer's order);
 * dead letters wait in a small queue of their own and go in separate sends, so a rejected frame
 * can never hold up or fail a batch of trades. Both are bounded twice: in trades or letters, and
 * in bytes (the encoded bytes lie outside the heap, and a trade or letter can be large: a letter
 * carries up to a whole refused frame), so what waits here never exceeds either bound. Feed gaps
 * (`feed_gaps.ts`) share the dead letters' queue and bounds, and go to the gaps topic.
 *
 * Every send is `acks = all` and uncompressed, through a kafkajs producer built with
 * `idempotent: true` (see {@linkcode PRODUCER_CONFIG}). Gzip (kafkajs's only built-in codec)
 * cost CPU in the producer, the broker and both raw-topic stages for records of about 100
 * bytes: without it the producer spent 38 instead of 49 µs a trade (`bench/stage_drain.ts`).
 * A retriable failure keeps the batch and retries it with backoff; a non-retriable one is
 * logged, counted and the batch given up. While Kafka is away the buffer fills; a full buffer
 * refuses new trades, and every refused trade is counted and logged in aggregate.
 *
 * @module
 */
import "../shared/kafkajs_fixes.ts"; // before kafkajs: its producers must not drop nor give up a commit
import {
  CompressionTypes,
  type ICustomPartitioner,
  type Message,
  type ProducerConfig,
  type ProducerRecord,
} from "kafkajs";
import { Partitioners } from "kafkajs";
import { Buffer } from "node:buffer";
import { type Clock, systemClock } from "../shared/clock.ts";
import { isRetriableKafkaError } from "../shared/errors.ts";
import { describeError, type Logger } from "../shared/log.ts";
import { reconnectDelay } from "./backoff.ts";
import { DropLog } from "./drop_log.ts";
import { bufferMaxBytes } from "./heap_budget.ts";
import type { ProducerMetrics } from "./metrics.ts";
import type { TradeBuffer } from "./trade_buffer.ts";

/**
 * How the producer's kafkajs producer is built: idempotent, with kafkajs retrying retriable
 * errors without limit (the idempotent mode kafkajs documents: a resent batch keeps its sequence
 * numbers, so the broker drops what it already has; a Kafka outage holds the one send in flight
 * while the buffer absorbs, then drops and counts), one request in flight per broker (order per
 * partition), no topic auto-creation, and the Java client's murmur2 partitioner so a symbol lands
 * on the same partition as from any other client (see {@linkcode cachingPartitioner}).
 */
export const PRODUCER_CONFIG: ProducerConfig = {
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  createPartitioner: cachingPartitioner(Partitioners.DefaultPartitioner),
  retry: { retries: Number.MAX_SAFE_INTEGER },
};

/**
 * {@linkcode PRODUCER_CONFIG} with a `transactional.id`, and retries that start at 20 ms: the
 * broker answers `CONCURRENT_TRANSACTIONS` to a transaction begun while the last one's commit
 * markers are still being written (a few ms), and kafkajs's usual 200 ms first retry would add
 * that to every batch.
 */
export function transactionalConfig(transactionalId: string): ProducerConfig {
  return {
    ...PRODUCER_CONFIG,
    transactionalId,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 20, maxRetryTime: 5_000 },
  };
}

/**
 * `log`, except kafkajs's error lines about `CONCURRENT_TRANSACTIONS`: the broker answers that to
 * the next transaction while the last one's commit markers are still being written, and kafkajs
 * logs each retry as an error though it is the normal course of back-to-back transactions.
 */
export function withoutConcurrentTransactionNoise(log: Logger): Logger {
  const filtered = (inner: Logger): Logger => {
    const drop = (message: string, fields?: Record<string, unknown>) =>
      /concurrent operation on the same transaction/.test(`${message} ${fields?.error ?? ""}`);
    return {
      debug: (m, f) => inner.debug(m, f),
      info: (m, f) => inner.info(m, f),
      warn: (m, f) => drop(m, f) ? undefined : inner.warn(m, f),
      error: (m, f) => drop(m, f) ? undefined : inner.error(m, f),
      child: (component) => filtered(inner.child(component)),
    };
  };
  return filtered(log);
}

/**
 * Wraps a partitioner so a keyed message's partition is computed once per key object, topic and
 * partition count. kafkajs's murmur2 runs on 64-bit `Long` objects, one of the costlier steps of
 * encoding a record; the sink reuses one key `Buffer` per symbol, so this makes the hash a
 * lookup. Results are the wrapped partitioner's own, which for a keyed message depend only on
 * the key and the partition count; unkeyed messages always go to the wrapped partitioner.
 */
export function cachingPartitioner(inner: ICustomPartitioner): ICustomPartitioner {
  return () => {
    const partition = inner();
    const cache = new WeakMap<object, { topic: string; count: number; partition: number }>();
    return (args) => {
      const { key, partition: explicit } = args.message;
      if (explicit !== undefined && explicit !== null) return explicit;
      if (typeof key !== "object" || key === null) return partition(args);
      const hit = cache.get(key);
      const count = args.partitionMetadata.length;
      if (hit && hit.topic === args.topic && hit.count === count) return hit.partition;
      const computed = partition(args);
      cache.set(key, { topic: args.topic, count, partition: computed });
      return computed;
    };
  };
}

/**
 * Most dead letters waiting, by default. Bytes bound the memory
 * ({@linkcode DEAD_LETTER_MAX_BYTES}); this bounds the per-letter overhead, and must absorb a
 * burst while a send is out: with 1,000 (when letters went through Kafka worker threads), a
 * hostile feed (thousands of bad trades a second) and a flood of unsubscribed symbols (10,000 a
 * second) had most of their letters dropped.
 */
export const DEAD_LETTER_MAX_RECORDS = 50_000;

/**
 * Most bytes of dead letters waiting, by default. A letter can carry a whole refused frame (up to
 * 512 KiB), so a bound in letters alone let a stream of oversized frames queue 1,000 of them:
 * half a gigabyte outside the heap. 32 MiB, not 16: with 16 a hostile feed's large letters were
 * dropped (counted) whenever Kafka acknowledged slowly on a loaded machine.
 */
export const DEAD_LETTER_MAX_BYTES = 32 * 1024 * 1024;

/** Where the producer puts what it has to send: {@linkcode KafkaSink}, or a test double. */
export interface TradeSink {
  /** Trades and dead letters accepted and not yet confirmed by Kafka. */
  readonly pending: number;
  /**
   * Queues one trade for the raw topic, keyed by `symbol` with record time `ingestTime`.
   * `encodeValue` is called only when there is room, so an overloaded producer spends nothing on
   * trades it must drop. Returns `false` when the buffer is full: the drop is counted and logged.
   */
  offerTrade(symbol: string, ingestTime: number, encodeValue: () => Buffer): boolean;
  /**
   * Queues one dead letter (an encoded `DeadLetter`), keyed by a symbol or not at all; drops and
   * counts it when the letters waiting reach their bound. The sink takes `value` over: the caller
   * must not use it afterwards.
   */
  offerDeadLetter(key: string | null, value: Buffer): void;
  /**
   * Queues one feed gap (an encoded `FeedGap`, keyed by its id) for the gaps topic, in the dead
   * letters' queue and bound: counted in `feedGapsPublished`, or dropped and counted in
   * `feedGapsDropped`. Takes `value` over as {@linkcode offerDeadLetter} does.
   */
  offerGap(key: string, value: Buffer): void;
  /** Flush mode: send what is buffered; `run()` resolves once all is sent. */
  close(): void;
  /** Gives up on what is not sent yet (shutdown ran out of time); returns how many trades. */
  abandon(): number;
  /** Sends until closed and drained, or abandoned. */
  run(): Promise<void>;
}

/** The part of a kafkajs producer the sink uses. */
export interface SendingProducer {
  send(record: ProducerRecord): Promise<unknown>;
}

/**
 * A send that must not be retried nor given up quietly: the sink stops (`run()` rejects) and the
 * producer with it. `fenced`: another producer initialised the same `transactional.id` (it took
 * the lease), or the broker aborted the transaction and bumped the epoch; this producer can no
 * longer write.
 */
export class SinkStoppedError extends Error {
  readonly fenced: boolean;
  constructor(message: string, options: { fenced: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "SinkStoppedError";
    this.fenced = options.fenced;
  }
}

/**
 * Whether `error` says the producer's epoch is stale: `INVALID_PRODUCER_EPOCH` (47, what Kafka
 * answers kafkajs's request versions) or `PRODUCER_FENCED` (90), here or in a cause. kafkajs
 * 2.2.4 does not know code 90: it reports it as `KAFKAJS_UNKNOWN_ERROR_CODE` (code -99) with the
 * message "Unknown error code 90".
 */
export function isFencedError(error: unknown): boolean {
  for (let e = error, depth = 0; e !== null && typeof e === "object" && depth < 5; depth++) {
    const { type, code, message } = e as { type?: unknown; code?: unknown; message?: unknown };
    if (
      type === "INVALID_PRODUCER_EPOCH" || type === "PRODUCER_FENCED" || code === 47 ||
      code === 90 ||
      (type === "KAFKAJS_UNKNOWN_ERROR_CODE" && message === "Unknown error code 90")
    ) return true;
    e = (e as { cause?: unknown; originalError?: unknown }).cause ??
      (e as { originalError?: unknown }).originalError;
  }
  return false;
}

/** The part of a kafkajs transactional producer {@linkcode transactionalSender} uses. */
export interface TransactionalProducer {
  transaction(): Promise<{
    send(record: ProducerRecord): Promise<unknown>;
    commit(): Promise<void>;
    abort(): Promise<void>;
  }>;
}

/**
 * Sends each batch as one transaction (begin, send, commit), so a producer fenced by a newer one
 * with the same `transactional.id` can write nothing more: its send or commit fails with
 * {@linkcode SinkStoppedError} (`fenced`). A failed transaction is aborted and the error thrown
 * for the sink to retry the batch in a new one (what was sent in the aborted one is never read:
 * the stages read committed); when the abort fails too, the producer's transaction state is
 * unknown and the sink stops.
 */
export function transactionalSender(producer: TransactionalProducer): SendingProducer {
  return {
    async send(record) {
      let transaction;
      try {
        transaction = await producer.transaction();
      } catch (error) {
        throw stopped(error, "cannot begin a Kafka transaction");
      }
      try {
        await transaction.send(record);
        await transaction.commit();
      } catch (error) {
        if (isFencedError(error)) throw stopped(error, "Kafka refused the transaction");
        try {
          await transaction.abort();
        } catch (abortError) {
          throw stopped(
            abortError,
            `a Kafka transaction failed (${describeError(error)}) and could not be aborted`,
          );
        }
        throw error;
      }
    },
  };
}

function stopped(error: unknown, what: string): SinkStoppedError {
  const fenced = isFencedError(error);
  return new SinkStoppedError(
    fenced
      ? `${what}: this producer was fenced (another producer took over its transactional id, or the broker aborted a transaction that ran too long)`
      : `${what}: ${describeError(error)}`,
    { fenced, cause: error },
  );
}

/** Options of {@linkcode KafkaSink}. */
export interface KafkaSinkOptions {
  readonly producer: SendingProducer;
  readonly rawTopic: string;
  readonly deadLetterTopic: string;
  /** Where feed gaps go (`offerGap`). */
  readonly gapsTopic: string;
  /** Holds the raw-topic messages; its bound is the producer's memory bound. */
  readonly buffer: TradeBuffer<Message>;
  /**
   * Most encoded bytes of trades waiting; past it new trades are dropped and counted as when the
   * buffer is full. Default {@linkcode bufferMaxBytes} of the buffer's bound.
   */
  readonly bufferMaxBytes?: number;
  readonly metrics: ProducerMetrics;
  readonly log: Logger;
  /** Most dead letters waiting. Default {@linkcode DEAD_LETTER_MAX_RECORDS}. */
  readonly deadLetterMaxRecords?: number;
  /**
   * Most bytes of dead letters waiting (one letter is always let in when none waits). Default
   * {@linkcode DEAD_LETTER_MAX_BYTES}.
   */
  readonly deadLetterMaxBytes?: number;
  /** Most payload bytes in one dead-letter send. Default 768 KiB (under Kafka's 1 MiB batch). */
  readonly deadLetterMaxBatchBytes?: number;
  /** First and largest delay between retries of a failed send, ms. Default 200 and 5 000. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Time between aggregate "dropped" log lines while the buffer stays full, ms. Default 5 000. */
  readonly dropLogIntervalMs?: number;
  /** Called after every send that ended (acknowledged or given up). */
  readonly onSent?: () => void;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
}

/** Batches trades and dead letters to Kafka; see the module doc. */
export class KafkaSink implements TradeSink {
  readonly #producer: SendingProducer;
  readonly #rawTopic: string;
  readonly #deadLetterTopic: string;
  readonly #gapsTopic: string;
  readonly #buffer: TradeBuffer<Message>;
  readonly #metrics: ProducerMetrics;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #deadLetterMaxRecords: number;
  readonly #deadLetterMaxBytes: number;
  readonly #deadLetterMaxBatchBytes: number;
  readonly #bufferMaxBytes: number;
  #bufferedBytes = 0;
  #deadLetterBytes = 0;
  readonly #retry: { baseMs: number; maxMs: number };
  /** Dead letters and feed gaps waiting, each with its topic. */
  #deadLetters: { readonly topic: string; readonly message: Message }[] = [];
  #abandoned = false;
  #onAbandon: (() => void) | undefined;
  readonly #drops: DropLog;
  readonly #onSent: () => void;
  /** One key Buffer per symbol, reused: the partitioner then hashes each symbol once. */
  readonly #keys = new Map<string, Buffer>();
  #lastTime = NaN;
  #lastTimestamp = "";

  constructor(options: KafkaSinkOptions) {
    this.#producer = options.producer;
    this.#rawTopic = options.rawTopic;
    this.#deadLetterTopic = options.deadLetterTopic;
    this.#gapsTopic = options.gapsTopic;
    this.#buffer = options.buffer;
    this.#metrics = options.metrics;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#deadLetterMaxRecords = options.deadLetterMaxRecords ?? DEAD_LETTER_MAX_RECORDS;
    this.#deadLetterMaxBytes = options.deadLetterMaxBytes ?? DEAD_LETTER_MAX_BYTES;
    this.#bufferMaxBytes = options.bufferMaxBytes ?? bufferMaxBytes(this.#buffer.maxItems);
    this.#deadLetterMaxBatchBytes = options.deadLetterMaxBatchBytes ?? 768 * 1024;
    this.#retry = { baseMs: options.retryBaseMs ?? 200, maxMs: options.retryMaxMs ?? 5_000 };
    this.#onSent = options.onSent ?? (() => {});
    this.#drops = new DropLog(this.#metrics, this.#log, {
      clock: this.#clock,
      intervalMs: options.dropLogIntervalMs ?? 5_000,
      capacity: this.#buffer.maxItems,
    });
  }

  /** Trades waiting for Kafka, plus dead letters. */
  get pending(): number {
    return this.#buffer.size + this.#deadLetters.length;
  }

  /** Encoded bytes of the trades waiting. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Bytes of the dead letters waiting. */
  get deadLetterBytes(): number {
    return this.#deadLetterBytes;
  }

  /** As {@linkcode TradeSink.offerTrade}; `partition` pins the record's partition. */
  offerTrade(
    symbol: string,
    ingestTime: number,
    encodeValue: () => Buffer,
    _partition?: number,
  ): boolean {
    // Checked before encoding, so the bytes bound can be passed by at most one trade.
    if (
      this.#buffer.size >= this.#buffer.maxItems || this.#bufferedBytes >= this.#bufferMaxBytes
    ) {
      this.#drops.dropped();
      return false;
    }
    if (ingestTime !== this.#lastTime) {
      this.#lastTime = ingestTime;
      this.#lastTimestamp = String(ingestTime);
    }
    const value = encodeValue();
    this.#buffer.push({ key: this.#key(symbol), value, timestamp: this.#lastTimestamp });
    this.#bufferedBytes += value.length;
    this.#metrics.bufferDepth = this.#buffer.size;
    this.#drops.accepted();
    return true;
  }

  #key(symbol: string): Buffer {
    let key = this.#keys.get(symbol);
    if (key === undefined) {
      if (this.#keys.size >= 100_000) this.#keys.clear();
      key = Buffer.from(symbol, "utf8");
      this.#keys.set(symbol, key);
    }
    return key;
  }

  /**
   * Queues one dead letter; when its queue is full (in letters or in bytes) the letter is counted
   * and dropped.
   */
  offerDeadLetter(key: string | null, value: Buffer): void {
    if (this.#queueLetter(this.#deadLetterTopic, key, value)) return;
    this.#metrics.deadLettersDropped++;
    if (this.#metrics.deadLettersDropped === 1 || this.#metrics.deadLettersDropped % 1000 === 0) {
      this.#log.error("dead-letter queue full: dead letters dropped", {
        droppedTotal: this.#metrics.deadLettersDropped,
      });
    }
  }

  /** Queues one feed gap in the dead letters' queue; counted and dropped when it is full. */
  offerGap(key: string, value: Buffer): void {
    if (this.#queueLetter(this.#gapsTopic, key, value)) return;
    this.#metrics.feedGapsDropped++;
    this.#log.error("dead-letter queue full: a feed gap was dropped", {
      droppedTotal: this.#metrics.feedGapsDropped,
    });
  }

  /** Queues a letter for `topic`; `false` when the queue is full (in letters or in bytes). */
  #queueLetter(topic: string, key: string | null, value: Buffer): boolean {
    const waiting = this.#deadLetters.length;
    if (
      waiting >= this.#deadLetterMaxRecords ||
      (waiting > 0 && this.#deadLetterBytes + value.length > this.#deadLetterMaxBytes)
    ) {
      return false;
    }
    const message = { key: key === null ? null : Buffer.from(key, "utf8"), value };
    this.#deadLetters.push({ topic, message });
    this.#deadLetterBytes += value.length;
    this.#buffer.interrupt();
    return true;
  }

  /** Flush mode: send what is buffered; `run()` resolves once all is sent. */
  close(): void {
    this.#buffer.close();
  }

  /**
   * Gives up on what is still buffered (shutdown took too long): counts it as failed, and makes
   * `run()` resolve at once even if a send is still waiting on Kafka. Returns how many trades
   * were given up.
   */
  abandon(): number {
    if (this.#abandoned) return 0;
    this.#abandoned = true;
    const lost = this.#buffer.size;
    this.#metrics.tradesFailed += lost;
    for (const { topic } of this.#deadLetters) {
      if (topic === this.#gapsTopic) this.#metrics.feedGapsDropped++;
      else this.#metrics.deadLettersDropped++;
    }
    this.#buffer.commit(lost);
    this.#deadLetters = [];
    this.#bufferedBytes = 0;
    this.#deadLetterBytes = 0;
    this.#metrics.bufferDepth = 0;
    this.#buffer.close();
    this.#onAbandon?.();
    return lost;
  }

  /** Sends until {@linkcode close} was called and everything is sent, or until abandoned. */
  async run(): Promise<void> {
    while (!this.#abandoned) {
      if (this.#deadLetters.length > 0) {
        await this.#untilAbandoned(this.#sendDeadLetters());
        continue;
      }
      const batch = await this.#buffer.nextBatch();
      if (batch.length === 0) {
        if (this.#buffer.closed && this.#buffer.size === 0 && this.#deadLetters.length === 0) {
          break;
        }
        continue;
      }
      await this.#untilAbandoned(this.#sendTrades(batch));
    }
    this.#drops.end();
  }

  /**
   * Settles with `send`, or at once when {@linkcode abandon} is called first. Not
   * `Promise.race` with one promise that settles on abandon: every race would add a reaction to
   * that promise, which stays pending for the life of the process: the heaps of the Kafka
   * worker threads the producer had then grew with every batch sent (RSS about 2 MiB a minute
   * at 8,000 trades/s).
   */
  #untilAbandoned(send: Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#onAbandon = resolve;
      send.then(resolve, reject).finally(() => {
        if (this.#onAbandon === resolve) this.#onAbandon = undefined;
      });
    });
  }

  async #sendTrades(batch: Message[]): Promise<void> {
    const ok = await this.#send(this.#rawTopic, batch);
    if (this.#abandoned) return;
    if (ok) {
      this.#metrics.tradesProduced += batch.length;
    } else {
      this.#metrics.tradesFailed += batch.length;
    }
    this.#buffer.commit(batch.length);
    for (const message of batch) this.#bufferedBytes -= (message.value as Buffer).length;
    this.#metrics.bufferDepth = this.#buffer.size;
    this.#onSent();
  }

  /** Sends the first letters waiting, those of the first one's topic, up to the batch bound. */
  async #sendDeadLetters(): Promise<void> {
    let bytes = 0;
    let count = 0;
    const topic = this.#deadLetters[0]!.topic;
    for (const letter of this.#deadLetters) {
      if (letter.topic !== topic) break;
      const size = (letter.message.value as Uint8Array | null)?.length ?? 0;
      if (count > 0 && bytes + size > this.#deadLetterMaxBatchBytes) break;
      bytes += size;
      count++;
    }
    const batch = this.#deadLetters.slice(0, count).map((letter) => letter.message);
    const ok = await this.#send(topic, batch);
    if (this.#abandoned) return;
    this.#deadLetters.splice(0, count);
    this.#deadLetterBytes -= bytes;
    if (topic === this.#gapsTopic) {
      if (ok) this.#metrics.feedGapsPublished += count;
      else this.#metrics.feedGapsDropped += count;
    } else if (ok) this.#metrics.deadLettersProduced += count;
    else this.#metrics.deadLettersDropped += count;
    this.#onSent();
  }

  /** Sends one batch, retrying retriable failures; `false` when Kafka refused it for good. */
  async #send(topic: string, messages: Message[]): Promise<boolean> {
    for (let attempt = 0;; attempt++) {
      const started = performance.now();
      try {
        await this.#producer.send({
          topic,
          messages,
          acks: -1,
          compression: CompressionTypes.None,
        });
        this.#metrics.recordProduceLatency(Math.round((performance.now() - started) * 10) / 10);
        this.#metrics.batchesProduced++;
        return true;
      } catch (error) {
        this.#metrics.kafkaErrors++;
        this.#metrics.lastError = `kafka: ${describeError(error)}`;
        if (error instanceof SinkStoppedError) throw error;
        if (this.#abandoned) return false;
        if (!isRetriableKafkaError(error)) {
          this.#log.error("Kafka refused a batch for good; it is lost", {
            topic,
            records: messages.length,
            error,
          });
          return false;
        }
        const delay = reconnectDelay(attempt, { ...this.#retry });
        this.#log.warn("Kafka send failed; retrying the batch", {
          topic,
          records: messages.length,
          attempt: attempt + 1,
          retryInMs: delay,
          error,
        });
        await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, delay));
        if (this.#abandoned) return false;
      }
    }
  }
}
