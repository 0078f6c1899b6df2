/**
 * The Kafka sink in worker threads. kafkajs spends about four times as much CPU on each record
 * as the producer spends reading and encoding it, and with an idempotent producer only one
 * request per broker is in flight, so one sender is bound by its send latency. The producer
 * therefore reads the feed on the main thread and sends from `kafka_worker.ts` workers, each
 * running the same {@linkcode KafkaSink} with its own kafkajs client and idempotent producer.
 *
 * Order: each worker owns a fixed set of the raw topic's partitions (partition modulo the number
 * of workers); the main thread computes each symbol's partition with kafkajs's own murmur2
 * partitioner, once per symbol, and hands the trade to its partition's worker with the partition
 * pinned. One send in flight per worker, so each partition, and each symbol, keeps the feed's
 * order. The partition count is read once at start; partitions added later are used after a
 * restart.
 *
 * The main side ({@linkcode WorkerSink}) holds the memory bound: it counts trades handed over and
 * not yet acknowledged, and their encoded bytes, and drops (and counts) new ones when either
 * reaches its bound (the buffer's, and {@linkcode bufferMaxBytes} of it). Dead letters, which go
 * to the first worker, and feed gaps with them, are bounded the same way ({@linkcode DEAD_LETTER_MAX_RECORDS} and
 * {@linkcode DEAD_LETTER_MAX_BYTES}): without it a worker slower than the feed let them pile up
 * in its message queue. So a worker that falls behind never holds more than those bounds, queue
 * included. Encoded trades cross in packed, transferred buffers (`trade_packing.ts`), every
 * couple of milliseconds, every 1 000 trades or every 256 KiB; dead letters cross transferred too.
 * Each worker reports its counters after every send.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import "../shared/kafkajs_fixes.ts"; // before kafkajs: its producers must not drop nor give up a commit
import { type PartitionerArgs, Partitioners } from "kafkajs";
import { type Clock, systemClock, type TimerId } from "../shared/clock.ts";
import type { Config, LogLevel } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { DropLog } from "./drop_log.ts";
import { bufferMaxBytes } from "./heap_budget.ts";
import {
  DEAD_LETTER_MAX_BYTES,
  DEAD_LETTER_MAX_RECORDS,
  SinkStoppedError,
  type TradeSink,
} from "./kafka_sink.ts";
import type { ProducerMetrics } from "./metrics.ts";
import { TradePacker } from "./trade_packing.ts";

/** The sink's counters, as a worker reports them (totals since it started). */
export interface SinkCounters {
  readonly tradesProduced: number;
  readonly tradesFailed: number;
  readonly tradesDropped: number;
  readonly deadLettersProduced: number;
  readonly deadLettersDropped: number;
  readonly feedGapsPublished: number;
  readonly feedGapsDropped: number;
  readonly batchesProduced: number;
  readonly kafkaErrors: number;
  readonly lastError: string | null;
  /** Encoded bytes of the trades it was handed and no longer holds (sent, failed or dropped). */
  readonly tradeBytesDone: number;
  /** Bytes of the dead letters and feed gaps it was handed and no longer holds. */
  readonly deadLetterBytesDone: number;
}

/** Messages to a worker. */
export type ToWorker =
  | {
    readonly type: "start";
    readonly kafka: Config["kafka"];
    readonly producer: Config["producer"];
    readonly logLevel: LogLevel;
    /** This worker's number, from 0, for its log lines and client id. */
    readonly index: number;
    /** Send transactions under this `transactional.id` (fencing older producers). */
    readonly transactionalId?: string;
  }
  /** Initialise the transactional id (fencing older producers) and get ready to send. */
  | { readonly type: "activate" }
  | { readonly type: "trades"; readonly buffer: ArrayBuffer }
  | { readonly type: "deadLetter"; readonly key: string | null; readonly value: Uint8Array }
  | { readonly type: "gap"; readonly key: string; readonly value: Uint8Array }
  | { readonly type: "close" };

/** Messages from a worker. */
export type FromWorker =
  /** Connected to Kafka; waiting for `activate` (sent by a transactional worker only). */
  | { readonly type: "connected" }
  | { readonly type: "ready"; readonly partitions: number }
  | {
    readonly type: "failed";
    readonly error: string;
    /** Another producer took over the `transactional.id`. */
    readonly fenced: boolean;
  }
  | {
    readonly type: "progress" | "closed";
    readonly counters: SinkCounters;
    /** Produce latencies of the sends since the last report, ms. */
    readonly latencies: readonly number[];
  };

/** The part of a `Worker` the sink uses, so tests can pass a fake. */
export interface WorkerLike {
  onmessage: ((event: MessageEvent<FromWorker>) => void) | null;
  onerror: ((event: ErrorEvent) => void) | null;
  postMessage(message: ToWorker, transfer?: Transferable[]): void;
  terminate(): void;
}

/** Options of {@linkcode WorkerSink}. */
export interface WorkerSinkOptions {
  readonly config: Pick<Config, "kafka" | "producer" | "logLevel">;
  readonly metrics: ProducerMetrics;
  readonly log: Logger;
  /** Sending workers. Default 2. */
  readonly workers?: number;
  /** Hand packed trades over after this long, ms. Default 2. */
  readonly flushMs?: number;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
  /** Makes worker number `index`. Default: a module worker running `kafka_worker.ts`. */
  readonly worker?: (index: number) => WorkerLike;
  /**
   * Worker `index` sends transactions under `transactionalId(index)`; default: idempotent sends
   * without transactions.
   */
  readonly transactionalId?: (index: number) => string;
}

const FLUSH_TRADES = 1_000;
/** A pack goes once it holds this many bytes, so a burst of large trades crosses in pieces. */
const FLUSH_BYTES = 256 * 1024;

/** A worker's counters before it sent anything. */
export const ZERO_COUNTERS: SinkCounters = Object.freeze({
  tradesProduced: 0,
  tradesFailed: 0,
  tradesDropped: 0,
  deadLettersProduced: 0,
  deadLettersDropped: 0,
  feedGapsPublished: 0,
  feedGapsDropped: 0,
  batchesProduced: 0,
  kafkaErrors: 0,
  lastError: null,
  tradeBytesDone: 0,
  deadLetterBytesDone: 0,
});

interface Sender {
  readonly worker: WorkerLike;
  readonly packer: TradePacker;
  counters: SinkCounters;
  closed: boolean;
}

/** A {@linkcode TradeSink} whose sending runs in workers; see the module doc. */
export class WorkerSink implements TradeSink {
  readonly #config: WorkerSinkOptions["config"];
  readonly #metrics: ProducerMetrics;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #flushMs: number;
  readonly #workerCount: number;
  readonly #createWorker: (index: number) => WorkerLike;
  readonly #transactionalId: ((index: number) => string) | undefined;
  readonly #drops: DropLog;
  readonly #capacity: number;
  readonly #capacityBytes: number;
  readonly #partitionOf = new Map<string, number>();
  #senders: Sender[] = [];
  #workers: { connected: Promise<void>; ready: Promise<number> }[] | undefined;
  #partitions = 1;
  #flushTimer: TimerId | undefined;
  /** Trades handed to a packer since start, and their encoded bytes. */
  #accepted = 0;
  #acceptedBytes = 0;
  #deadLettersSent = 0;
  #deadLetterBytesSent = 0;
  #abandoned = 0;
  #settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  readonly #done: Promise<void>;

  constructor(options: WorkerSinkOptions) {
    this.#config = options.config;
    this.#metrics = options.metrics;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#flushMs = options.flushMs ?? 2;
    this.#workerCount = Math.max(1, options.workers ?? 2);
    this.#createWorker = options.worker ??
      (() =>
        new Worker(new URL("./kafka_worker.ts", import.meta.url).href, {
          type: "module",
        }) as unknown as WorkerLike);
    this.#transactionalId = options.transactionalId;
    this.#capacity = options.config.producer.bufferMaxTrades;
    this.#capacityBytes = bufferMaxBytes(this.#capacity);
    this.#drops = new DropLog(this.#metrics, options.log, {
      clock: this.#clock,
      intervalMs: 5_000,
      capacity: this.#capacity,
    });
    this.#done = new Promise((resolve, reject) => this.#settle = { resolve, reject });
    // run() hands the outcome on; nobody may be listening before it is called.
    this.#done.catch(() => {});
  }

  /** Trades handed over and not yet acknowledged or given up. */
  get #outstanding(): number {
    let done = this.#abandoned;
    for (const { counters: c } of this.#senders) {
      done += c.tradesProduced + c.tradesFailed + c.tradesDropped;
    }
    return this.#accepted - done;
  }

  /** Encoded bytes of the trades handed over and not yet acknowledged or given up. */
  get #outstandingBytes(): number {
    let done = 0;
    for (const { counters: c } of this.#senders) done += c.tradeBytesDone;
    return this.#acceptedBytes - done;
  }

  /** Dead letters and feed gaps handed over and not yet sent or dropped. */
  get #lettersOutstanding(): number {
    let letters = this.#deadLettersSent;
    for (const { counters: c } of this.#senders) {
      letters -= c.deadLettersProduced + c.deadLettersDropped + c.feedGapsPublished +
        c.feedGapsDropped;
    }
    return letters;
  }

  get pending(): number {
    return this.#outstanding + this.#lettersOutstanding;
  }

  /**
   * Starts the workers and connects their Kafka producers, but does not initialise their
   * transactional ids (that would fence the producer that holds the lease): what a standby does
   * ahead, so that taking over costs only the initialisation. Rejects when one cannot connect.
   */
  async prepare(): Promise<void> {
    this.#workers ??= Array.from({ length: this.#workerCount }, (_, i) => this.#startWorker(i));
    try {
      await Promise.all(this.#workers.map((w) => w.connected));
    } catch (error) {
      for (const { worker } of this.#senders) worker.terminate();
      throw error;
    }
  }

  /**
   * Starts the workers and their Kafka producers (after {@linkcode prepare}, if it was called),
   * initialising their transactional ids when they have some; rejects when one cannot connect.
   */
  async start(): Promise<void> {
    await this.prepare();
    for (const { worker } of this.#senders) worker.postMessage({ type: "activate" });
    try {
      const partitions = await Promise.all(this.#workers!.map((w) => w.ready));
      this.#partitions = partitions[0]!;
    } catch (error) {
      for (const { worker } of this.#senders) worker.terminate();
      throw error;
    }
  }

  /** Worker `index`: connected (partition count read), then ready to send. */
  #startWorker(index: number): { connected: Promise<void>; ready: Promise<number> } {
    let connected!: { resolve: () => void; reject: (error: Error) => void };
    let ready!: { resolve: (partitions: number) => void; reject: (error: Error) => void };
    const started = {
      connected: new Promise<void>((resolve, reject) => connected = { resolve, reject }),
      ready: new Promise<number>((resolve, reject) => ready = { resolve, reject }),
    };
    // Whoever awaits them sees the failure; a standby may never await `ready`.
    started.connected.catch(() => {});
    started.ready.catch(() => {});
    const fail = (error: Error) => {
      connected.reject(error);
      ready.reject(error);
      this.#settle?.reject(error);
    };
    const worker = this.#createWorker(index);
    const sender: Sender = {
      worker,
      packer: new TradePacker(),
      counters: ZERO_COUNTERS,
      closed: false,
    };
    this.#senders.push(sender);
    worker.onerror = (event) => {
      event.preventDefault?.();
      fail(new Error(`Kafka worker ${index} failed: ${event.message}`));
    };
    worker.onmessage = ({ data }) => {
      switch (data.type) {
        case "connected":
          connected.resolve();
          return;
        case "ready":
          connected.resolve();
          ready.resolve(data.partitions);
          return;
        case "failed":
          fail(
            new SinkStoppedError(`Kafka worker ${index}: ${data.error}`, { fenced: data.fenced }),
          );
          return;
        case "progress":
        case "closed":
          this.#progress(sender, data.counters, data.latencies);
          if (data.type === "closed") {
            sender.closed = true;
            worker.terminate();
            if (this.#senders.every((s) => s.closed)) {
              this.#drops.end();
              this.#settle?.resolve();
            }
          }
          return;
      }
    };
    const { kafka, producer, logLevel } = this.#config;
    const transactionalId = this.#transactionalId?.(index);
    worker.postMessage({
      type: "start",
      kafka,
      producer,
      logLevel,
      index,
      ...(transactionalId === undefined ? {} : { transactionalId }),
    });
    return started;
  }

  offerTrade(symbol: string, ingestTime: number, encodeValue: () => Buffer): boolean {
    const outstanding = this.#outstanding;
    // Checked before encoding, so the bytes bound can be passed by at most one trade.
    if (outstanding >= this.#capacity || this.#outstandingBytes >= this.#capacityBytes) {
      this.#drops.dropped();
      return false;
    }
    const partition = this.#partition(symbol);
    const { packer } = this.#senders[partition % this.#senders.length]!;
    const value = encodeValue();
    packer.add(symbol, ingestTime, value, partition);
    this.#accepted++;
    this.#acceptedBytes += value.length;
    this.#metrics.bufferDepth = outstanding + 1;
    this.#drops.accepted();
    if (packer.count >= FLUSH_TRADES || packer.bytes >= FLUSH_BYTES) {
      this.#flush();
    } else if (this.#flushTimer === undefined) {
      this.#flushTimer = this.#clock.setTimeout(() => this.#flush(), this.#flushMs);
    }
    return true;
  }

  /**
   * Hands a dead letter to the first worker, or drops and counts it when the letters handed over
   * and not yet sent reach {@linkcode DEAD_LETTER_MAX_RECORDS} or {@linkcode DEAD_LETTER_MAX_BYTES}
   * (one letter always goes when none is outstanding). Takes `value` over: its bytes are
   * transferred when it owns its whole buffer, else copied once.
   */
  offerDeadLetter(key: string | null, value: Buffer): void {
    if (this.#handLetter("deadLetter", key, value)) return;
    const dropped = ++this.#metrics.deadLettersDropped;
    if (dropped === 1 || dropped % 1000 === 0) {
      this.#log.error("dead-letter queue full: dead letters dropped", { droppedTotal: dropped });
    }
  }

  /** Hands a feed gap over as a dead letter is, within the same bounds; else counts the drop. */
  offerGap(key: string, value: Buffer): void {
    if (this.#handLetter("gap", key, value)) return;
    const dropped = ++this.#metrics.feedGapsDropped;
    this.#log.error("dead-letter queue full: a feed gap was dropped", { droppedTotal: dropped });
  }

  /** Hands a letter to the first worker; `false` when the letters' bounds are reached. */
  #handLetter(type: "deadLetter" | "gap", key: string | null, value: Buffer): boolean {
    const sender = this.#senders[0];
    if (!sender) return true;
    const waiting = this.#lettersOutstanding;
    let bytes = this.#deadLetterBytesSent;
    for (const { counters: c } of this.#senders) bytes -= c.deadLetterBytesDone;
    if (
      waiting >= DEAD_LETTER_MAX_RECORDS ||
      (waiting > 0 && bytes + value.length > DEAD_LETTER_MAX_BYTES)
    ) {
      return false;
    }
    this.#deadLettersSent++;
    this.#deadLetterBytesSent += value.length;
    const owned = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength &&
        value.buffer instanceof ArrayBuffer
      ? new Uint8Array(value.buffer)
      : new Uint8Array(value);
    const message: ToWorker = type === "gap"
      ? { type, key: key ?? "", value: owned }
      : { type, key, value: owned };
    sender.worker.postMessage(message, [owned.buffer]);
    return true;
  }

  close(): void {
    this.#flush();
    for (const { worker } of this.#senders) worker.postMessage({ type: "close" });
  }

  abandon(): number {
    const lost = this.#outstanding;
    this.#abandoned += lost;
    this.#metrics.tradesFailed += lost;
    this.#metrics.bufferDepth = 0;
    for (const { worker } of this.#senders) worker.terminate();
    this.#drops.end();
    this.#settle?.resolve();
    return lost;
  }

  /** Resolves when every worker flushed and closed, or on abandon; rejects if one died. */
  run(): Promise<void> {
    return this.#done;
  }

  /** The symbol's partition, as kafkajs's murmur2 partitioner computes it, once per symbol. */
  #partition(symbol: string): number {
    let partition = this.#partitionOf.get(symbol);
    if (partition === undefined) {
      partition = partitionFor(symbol, this.#partitions);
      if (this.#partitionOf.size >= 100_000) this.#partitionOf.clear();
      this.#partitionOf.set(symbol, partition);
    }
    return partition;
  }

  #flush(): void {
    if (this.#flushTimer !== undefined) this.#clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const { worker, packer } of this.#senders) {
      if (packer.count === 0) continue;
      const { buffer } = packer.take();
      worker.postMessage({ type: "trades", buffer }, [buffer]);
    }
  }

  #progress(sender: Sender, counters: SinkCounters, latencies: readonly number[]): void {
    const before = sender.counters;
    sender.counters = counters;
    const m = this.#metrics;
    m.tradesProduced += counters.tradesProduced - before.tradesProduced;
    m.tradesFailed += counters.tradesFailed - before.tradesFailed;
    m.tradesDropped += counters.tradesDropped - before.tradesDropped;
    m.deadLettersProduced += counters.deadLettersProduced - before.deadLettersProduced;
    m.deadLettersDropped += counters.deadLettersDropped - before.deadLettersDropped;
    m.feedGapsPublished += counters.feedGapsPublished - before.feedGapsPublished;
    m.feedGapsDropped += counters.feedGapsDropped - before.feedGapsDropped;
    m.batchesProduced += counters.batchesProduced - before.batchesProduced;
    m.kafkaErrors += counters.kafkaErrors - before.kafkaErrors;
    if (counters.lastError !== null && counters.lastError !== before.lastError) {
      m.lastError = counters.lastError;
    }
    for (const ms of latencies) m.recordProduceLatency(ms);
    m.bufferDepth = Math.max(0, this.#outstanding);
  }
}

const defaultPartitioner = Partitioners.DefaultPartitioner();

/** The partition kafkajs's default (Java-compatible murmur2) partitioner gives a key. */
export function partitionFor(symbol: string, partitions: number): number {
  const partitionMetadata = Array.from(
    { length: partitions },
    (_, partitionId) => ({ partitionId, leader: 0 }),
  ) as PartitionerArgs["partitionMetadata"];
  return defaultPartitioner({
    topic: "",
    partitionMetadata,
    message: { key: Buffer.from(symbol, "utf8"), value: null },
  });
}
