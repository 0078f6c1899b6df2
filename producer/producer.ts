/**
 * The producer: Finnhub frames in, one Kafka record per trade out. Wires the WebSocket client
 * (`finnhub_client.ts`), the frame handler (`frame_handler.ts`: what a frame means, which trades
 * go on, what is dead-lettered and counted) and the Kafka sink, and runs them from start to
 * shutdown, logging a summary of the counters now and then. Nothing is dropped silently: every
 * loss has a counter.
 *
 * Only trades of the subscribed symbols (`FINNHUB_SYMBOLS`) go on; any other is dead-lettered
 * (`unsubscribed_symbol`). Without a Finnhub key (a simulator: Finnhub refuses a connection
 * without one) the smoke test's namespace `SMOKE:` is taken too, see {@linkcode acceptedSymbols}.
 * So every per-symbol structure downstream of the parser (the sink's key and partition caches)
 * holds at most the subscribed symbols, and the producer itself keeps no state keyed by anything
 * the feed chooses.
 *
 * The schemas are registered before anything is read (`Trade` and `DeadLetter`, under
 * `<topic>-value`; see shared/wire.ts): encoding happens in the main thread, with the ids kept
 * from then on, so the registry is never asked per record and a registry that goes away later
 * changes nothing.
 *
 * Sending runs in worker threads by default (`worker_sink.ts`: kafkajs costs more CPU per record
 * than everything else here); given a kafkajs client, it runs in this thread instead
 * (`kafka_sink.ts` over a bounded `trade_buffer.ts`).
 *
 * Shutdown: when `signal` aborts the client stops reading, the sink flushes everything that was
 * accepted before the signal (for at most `shutdownTimeoutMs`, then gives up on the rest and
 * counts it), then the Kafka producer disconnects. A sink that fails for good (its worker died)
 * stops the producer the same way, and `run()` rejects.
 *
 * @module
 */
import type { Kafka, Message } from "kafkajs";
import { type Clock, systemClock } from "../shared/clock.ts";
import type { Config } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { openWire, type WireCodec } from "../shared/wire.ts";
import { runFinnhubClient, type WebSocketFactory } from "./finnhub_client.ts";
import { createThrottle, FrameHandler } from "./frame_handler.ts";
import { DEFAULT_MAX_FRAME_BYTES, type SymbolSet } from "./frame_parser.ts";
import { KafkaSink, PRODUCER_CONFIG, type TradeSink } from "./kafka_sink.ts";
import {
  createProducerMetrics,
  type ProducerMetrics,
  type ProducerMetricsSnapshot,
} from "./metrics.ts";
import { TradeBuffer } from "./trade_buffer.ts";
import { type WorkerLike, WorkerSink } from "./worker_sink.ts";

/** Options of {@linkcode createProducer}. */
export interface ProducerOptions {
  /** Uses `finnhub`, `producer`, `kafka`, `registry` and `logLevel`. */
  readonly config: Pick<Config, "finnhub" | "producer" | "kafka" | "registry" | "logLevel">;
  /**
   * Encodes the records, with `Trade` and `DeadLetter` registered for the raw and dead-letter
   * topics. Default: `run()` registers them first with the registry of `config.registry`,
   * waiting for it while it does not answer.
   */
  readonly wire?: WireCodec;
  /**
   * Send from this thread with this kafkajs client (the producer makes and closes its own kafkajs
   * producer on it). Default: send from a worker that builds its client from `config.kafka`.
   */
  readonly kafka?: Pick<Kafka, "producer">;
  /** How many workers send (each owns a share of the partitions). Default 2. */
  readonly kafkaWorkers?: number;
  /** Makes the sending workers, for tests. Default: `kafka_worker.ts`. */
  readonly worker?: (index: number) => WorkerLike;
  readonly log: Logger;
  /** Abort to stop: stop reading, flush, disconnect. */
  readonly signal: AbortSignal;
  /** How long shutdown may spend flushing before it gives up on the rest, ms. Default 30 000. */
  readonly shutdownTimeoutMs?: number;
  /** Largest frame accepted, bytes. Default {@linkcode DEFAULT_MAX_FRAME_BYTES}. */
  readonly maxFrameBytes?: number;
  /** How often a summary line is logged, ms; 0 for never. Default 60 000. */
  readonly statsIntervalMs?: number;
  /** Prefix of connection ids. Default: random. */
  readonly runId?: string;
  /** Default: Deno's `WebSocket`. */
  readonly webSocket?: WebSocketFactory;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
}

/** What a stopped producer reports. */
export interface ProducerReport {
  /** Trades accepted but not confirmed by Kafka when shutdown gave up (0 after a clean flush). */
  readonly unflushed: number;
  readonly metrics: ProducerMetricsSnapshot;
}

/** A producer ready to run. */
export interface Producer {
  /** Live counters; `metrics.snapshot()` for the status endpoint. */
  readonly metrics: ProducerMetrics;
  /** Connects to Kafka, then to the feed; resolves after `signal` aborted and all is flushed. */
  run(): Promise<ProducerReport>;
}

/** One warning line per kind of dead letter or unknown frame per 10 s. */
const THROTTLE_MS = 10_000;

/** Builds the producer. Nothing connects until `run()`. */
export function createProducer(options: ProducerOptions): Producer {
  const { config, log, signal } = options;
  const clock = options.clock ?? systemClock;
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const metrics = createProducerMetrics(config.producer.bufferMaxTrades);
  const topics = config.kafka.topics;
  // One per producer: the warnings of every run share it.
  const throttle = createThrottle(clock, THROTTLE_MS);
  const subscribed = acceptedSymbols(config.finnhub.symbols, config.finnhub.apiKey.isSet);
  async function run(): Promise<ProducerReport> {
    const wire = options.wire ?? await openWire(
      createSchemaRegistryClient(config.registry),
      { Trade: topics.raw, DeadLetter: topics.deadLetter },
      { log: log.child("registry"), signal },
    );
    const { sink, disconnect } = await openSink();
    const sinkDone = sink.run();
    const stopStats = startStatsLog(metrics, log, {
      clock,
      intervalMs: options.statsIntervalMs ?? 60_000,
    });
    const frames = new FrameHandler({
      sink,
      wire,
      subscribed,
      maxFrameBytes,
      deadLetterTopic: topics.deadLetter,
      finnhub: config.finnhub,
      throttle,
      metrics,
      log,
      clock,
    });

    // A sink that fails for good (its worker died) stops the producer: reading on with nowhere
    // to send would only fill the buffer and drop.
    const sinkFailed = new AbortController();
    let sinkFailure: unknown;
    const sinkSettled = sinkDone.then(() => "done" as const, (error) => {
      sinkFailure = error;
      sinkFailed.abort();
      return "failed" as const;
    });
    let unflushed = 0;
    try {
      await runFinnhubClient({
        url: config.finnhub.url,
        apiKey: config.finnhub.apiKey,
        symbols: config.finnhub.symbols,
        watchdogMs: config.finnhub.watchdogMs,
        reconnectBaseMs: config.finnhub.reconnectBaseMs,
        reconnectMaxMs: config.finnhub.reconnectMaxMs,
        authBackoffMs: config.finnhub.authBackoffMs,
        log: log.child("feed"),
        metrics,
        onFrame: (data, meta) => frames.onFrame(data, meta),
        onUnreadableFrame: (error, meta) => frames.onUnreadableFrame(error, meta),
        signal: AbortSignal.any([signal, sinkFailed.signal]),
        clock,
        ...(options.runId === undefined ? {} : { runId: options.runId }),
        ...(options.webSocket === undefined ? {} : { webSocket: options.webSocket }),
      });
    } finally {
      stopStats();
      log.info("stopped reading the feed; flushing", { buffered: sink.pending });
      sink.close();
      const timeoutMs = options.shutdownTimeoutMs ?? 30_000;
      let timer: unknown;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = clock.setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const outcome = await Promise.race([sinkSettled, timedOut]);
      clock.clearTimeout(timer);
      if (outcome !== "done") {
        unflushed = sink.abandon();
        log.error(
          outcome === "timeout"
            ? "shutdown gave up flushing: trades not confirmed by Kafka"
            : "the Kafka sink failed: trades not confirmed by Kafka",
          { unflushed, timeoutMs, error: sinkFailure },
        );
      }
      await Promise.race([
        disconnect().catch((error) =>
          log.warn("Kafka producer did not disconnect cleanly", { error })
        ),
        new Promise((resolve) => {
          timer = clock.setTimeout(() => resolve(undefined), 5_000);
        }),
      ]);
      clock.clearTimeout(timer);
    }
    if (sinkFailure !== undefined) {
      throw new Error("the producer stopped: its Kafka sink failed", { cause: sinkFailure });
    }
    return { unflushed, metrics: metrics.snapshot() };
  }

  /** The sink, connected: in a worker, or in this thread on `options.kafka`. */
  async function openSink(): Promise<{ sink: TradeSink; disconnect(): Promise<void> }> {
    const sinkLog = log.child("kafka");
    if (options.kafka === undefined) {
      const sink = new WorkerSink({
        config,
        metrics,
        log: sinkLog,
        clock,
        ...(options.kafkaWorkers === undefined ? {} : { workers: options.kafkaWorkers }),
        ...(options.worker === undefined ? {} : { worker: options.worker }),
      });
      await sink.start();
      // The worker disconnects its own producer once it has flushed.
      return { sink, disconnect: () => Promise.resolve() };
    }
    const kafkaProducer = options.kafka.producer(PRODUCER_CONFIG);
    await kafkaProducer.connect();
    const buffer = new TradeBuffer<Message>({
      maxItems: config.producer.bufferMaxTrades,
      batchMaxItems: config.producer.batchMaxTrades,
      lingerMs: config.producer.lingerMs,
      clock,
    });
    const sink = new KafkaSink({
      producer: kafkaProducer,
      rawTopic: topics.raw,
      deadLetterTopic: topics.deadLetter,
      buffer,
      metrics,
      log: sinkLog,
      clock,
    });
    return { sink, disconnect: () => kafkaProducer.disconnect() };
  }

  return { metrics, run };
}

/**
 * Logs a `stats` line of the main counters every `intervalMs` (never when it is 0 or less).
 * Returns the function that stops it.
 */
function startStatsLog(
  metrics: ProducerMetrics,
  log: Logger,
  options: { clock: Clock; intervalMs: number },
): () => void {
  const { clock, intervalMs } = options;
  if (intervalMs <= 0) return () => {};
  let timer = clock.setTimeout(function tick() {
    const s = metrics.snapshot();
    log.info("stats", {
      state: s.connectionState,
      frames: s.framesReceived,
      trades: s.tradesReceived,
      produced: s.tradesProduced,
      dropped: s.tradesDropped,
      failed: s.tradesFailed,
      rejected: s.tradesRejected,
      deadLetters: s.deadLettersProduced,
      reconnects: s.reconnects,
      bufferDepth: s.bufferDepth,
      produceP99Ms: s.produceLatencyMs.p99,
    });
    timer = clock.setTimeout(tick, intervalMs);
  }, intervalMs);
  return () => clock.clearTimeout(timer);
}

/** The namespace of `deno task smoke`'s trades: `SMOKE:R<run>`, an exchange Finnhub has not. */
export const SMOKE_NAMESPACE = "SMOKE:";

/**
 * The symbols the producer takes: the subscribed ones and, when it reads a feed without a key
 * (the bundled simulator; Finnhub refuses a connection without one), any symbol of
 * {@linkcode SMOKE_NAMESPACE}. `deno task smoke` pushes trades of a symbol unique to its run
 * through the simulator, so its rows never mix with another run's or with the feed's.
 */
export function acceptedSymbols(symbols: readonly string[], keyed: boolean): SymbolSet {
  const set = new Set(symbols);
  if (keyed) return set;
  return { has: (s: string) => set.has(s) || s.startsWith(SMOKE_NAMESPACE), size: set.size };
}
