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
 * Sending runs in this thread (`kafka_sink.ts` over a bounded `trade_buffer.ts`), on a kafkajs
 * client of its own. It used to be able to run in Kafka worker threads, but at live rates each
 * worker cost more than it took off this thread: at 500 trades/s the producer used 7, 11 and 16%
 * of a core with 0, 1 and 2 workers, 162-191 µs of CPU a trade with none against 390-410 with
 * two, run back to back (`bench/producer_bench.ts`). The price: under a flood (frames faster
 * than this thread reads them) reading and sending share the thread: it is never idle, a send's
 * answer waits behind the frames read first (a 10,000-trade send took 143-166 ms at the median,
 * 14 ms in a worker), and Kafka acknowledged 5,000-16,000 trades/s where two workers got
 * 31,000-54,000 (`bench/producer_flood_memory.ts`, back to back, load average 9-13; README,
 * Scaling). The buffer fills and what does not fit is dropped and counted, as always.
 *
 * Feed gaps (`feed_gaps.ts`): the client tells a {@linkcode CoverageTracker} when coverage
 * starts and ends, the frame handler tells {@linkcode OverflowGaps} which trades the sink
 * dropped; each gap found is counted (`feedGaps`, `feedGapMs` by cause) and published to the gaps
 * topic through the dead letters' bounded queue, so a gap never holds up a trade. With a
 * {@linkcode CoverageStore} the producer reads its last coverage mark at start (its downtime since
 * is a `producer_down` gap), writes a new one every `markIntervalMs` while it runs, and a last
 * one at shutdown.
 *
 * Shutdown: when `signal` aborts the client stops reading, the sink flushes everything that was
 * accepted before the signal (for at most `shutdownTimeoutMs`, then gives up on the rest and
 * counts it), then the Kafka producer disconnects. A sink that fails for good (fenced) stops the
 * producer the same way, and `run()` rejects.
 *
 * @module
 */
import type { Kafka, Message } from "kafkajs";
import { type Clock, systemClock, type TimerId } from "../shared/clock.ts";
import type { Config } from "../shared/config.ts";
import { createKafka } from "../shared/kafka.ts";
import type { Logger } from "../shared/log.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { openWire, type WireCodec } from "../shared/wire.ts";
import type { CoverageStore } from "./coverage_store.ts";
import { CoverageTracker, type FoundGap, OverflowGaps } from "./feed_gaps.ts";
import {
  type CoverageListener,
  runFinnhubClient,
  type WebSocketFactory,
} from "./finnhub_client.ts";
import { createThrottle, type DropListener, FrameHandler, type Throttle } from "./frame_handler.ts";
import { DEFAULT_MAX_FRAME_BYTES, type SymbolSet } from "./frame_parser.ts";
import {
  KafkaSink,
  PRODUCER_CONFIG,
  type SendingProducer,
  type TradeSink,
  transactionalConfig,
  transactionalSender,
  withoutConcurrentTransactionNoise,
} from "./kafka_sink.ts";
import {
  createProducerMetrics,
  type ProducerMetrics,
  type ProducerMetricsSnapshot,
} from "./metrics.ts";
import { TradeBuffer } from "./trade_buffer.ts";

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
   * The kafkajs client to send with from this thread (the producer makes and closes its own
   * kafkajs producer on it). Default: one built from `config.kafka`.
   */
  readonly kafka?: Pick<Kafka, "producer">;
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
  /** The feed's identity: the first part of every gap id (see `coverage_store.ts`). Default "feed". */
  readonly feedId?: string;
  /** Where coverage marks are kept between runs. Default: none (no `producer_down` gaps). */
  readonly coverageStore?: CoverageStore;
  /** How often a coverage mark is written, ms. Default {@linkcode DEFAULT_MARK_INTERVAL_MS}. */
  readonly markIntervalMs?: number;
  /**
   * Send transactions under this `transactional.id`, initialised before the feed is read, which
   * fences every older producer with that id. Default: idempotent sends without transactions.
   */
  readonly transactionalId?: string;
  /** Count into these (kept across the terms of a standby producer). Default: new ones. */
  readonly metrics?: ProducerMetrics;
}

/**
 * Default of {@linkcode ProducerOptions.markIntervalMs}: 1 s, so a producer killed outright has
 * its downtime recorded from at most a second before it died.
 */
export const DEFAULT_MARK_INTERVAL_MS = 1_000;

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
  /**
   * Connects to Kafka ahead of `run()` (a standby does, so that taking over costs only the
   * transactional id's initialisation). Resolves once connected; a failure is logged and `run()`
   * starts afresh.
   */
  prepare(): Promise<void>;
  /** Stops what `prepare()` started, for a producer that will not run. */
  discard(): void;
}

/** One warning line per kind of dead letter or unknown frame per 10 s. */
const THROTTLE_MS = 10_000;
/** How long shutdown waits for the Kafka producer to disconnect, ms. */
const DISCONNECT_TIMEOUT_MS = 5_000;

/** Builds the producer. Nothing connects until `run()`. */
export function createProducer(options: ProducerOptions): Producer {
  const runner = new ProducerRunner(options);
  return {
    metrics: runner.metrics,
    run: () => runner.run(),
    prepare: () => runner.prepare(),
    discard: () => runner.discard(),
  };
}

/** The sink, connected, and how to disconnect its Kafka producer once it has flushed. */
interface OpenSink {
  readonly sink: TradeSink;
  disconnect(): Promise<void>;
}

/** A sink connected to Kafka that sends nothing yet. */
interface PreparedSink {
  /** Initialises the transactional ids, if any (fencing older producers), and opens the sink. */
  activate(): Promise<OpenSink>;
  /** Closes what was connected, for a sink that will not send. */
  discard(): void;
}

/** How a sink's `run()` ended, as it happens. */
interface SinkWatch {
  /** Aborts when the sink has failed for good. */
  readonly failed: AbortSignal;
  /** Resolves once `run()` has settled: `"done"` or `"failed"`. */
  readonly settled: Promise<"done" | "failed">;
  /** Why it failed; `undefined` until it has. */
  readonly failure: unknown;
}

/**
 * The steps of {@linkcode createProducer}'s `run()`: register the schemas, open the sink, read
 * the feed into a {@linkcode FrameHandler} while a timer logs the counters, then shut down.
 */
class ProducerRunner {
  readonly metrics: ProducerMetrics;
  readonly #options: ProducerOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** One per producer: the warnings of every run share it. */
  readonly #throttle: Throttle;
  readonly #subscribed: SymbolSet;

  constructor(options: ProducerOptions) {
    const { config } = options;
    this.#options = options;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.metrics = options.metrics ?? createProducerMetrics(config.producer.bufferMaxTrades);
    this.#throttle = createThrottle(this.#clock, THROTTLE_MS);
    this.#subscribed = acceptedSymbols(config.finnhub.symbols, config.finnhub.apiKey.isSet);
  }

  /** The sink `prepare()` connected, until `run()` takes it. */
  #prepared: Promise<PreparedSink | undefined> | undefined;

  prepare(): Promise<void> {
    this.#prepared ??= this.#prepareSink().catch((error) => {
      this.#log.warn("cannot connect to Kafka ahead; will try again when active", { error });
      return undefined;
    });
    return this.#prepared.then(() => {});
  }

  discard(): void {
    this.#prepared?.then((sink) => sink?.discard());
    this.#prepared = undefined;
  }

  /** Connects to Kafka, then to the feed; resolves after `signal` aborted and all is flushed. */
  async run(): Promise<ProducerReport> {
    const { config, signal } = this.#options;
    const wire = this.#options.wire ?? await this.#openWire();
    const opened = await this.#openSink();
    if (opened === undefined) {
      // Stopped before the sink was activated: nothing read, nothing to flush, and no
      // transactional id initialised (that would fence whoever took over meanwhile).
      this.#log.info("stopped before reading the feed");
      return { unflushed: 0, metrics: this.metrics.snapshot() };
    }
    const { sink, disconnect } = opened;
    const watch = watchSink(sink.run());
    const stopStats = startStatsLog(this.metrics, this.#log, {
      clock: this.#clock,
      intervalMs: this.#options.statsIntervalMs ?? 60_000,
    });
    const gaps = await this.#startGaps(sink, wire);
    const frames = new FrameHandler({
      sink,
      wire,
      subscribed: this.#subscribed,
      maxFrameBytes: this.#options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      deadLetterTopic: config.kafka.topics.deadLetter,
      finnhub: config.finnhub,
      throttle: this.#throttle,
      metrics: this.metrics,
      log: this.#log,
      clock: this.#clock,
      drops: gaps.drops,
    });
    let unflushed = 0;
    try {
      // A sink that fails for good (fenced) stops the producer: reading on with
      // nowhere to send would only fill the buffer and drop.
      await this.#readFeed(frames, gaps.coverage, AbortSignal.any([signal, watch.failed]));
    } finally {
      stopStats();
      await gaps.stop();
      unflushed = await this.#shutDown(sink, watch);
      await this.#disconnect(disconnect);
    }
    if (watch.failure !== undefined) {
      throw new Error("the producer stopped: its Kafka sink failed", { cause: watch.failure });
    }
    return { unflushed, metrics: this.metrics.snapshot() };
  }

  /** Registers `Trade`, `DeadLetter` and `FeedGap` with the registry of `config.registry`. */
  #openWire(): Promise<WireCodec> {
    const { config, signal } = this.#options;
    return openWire(
      createSchemaRegistryClient(config.registry),
      {
        Trade: config.kafka.topics.raw,
        DeadLetter: config.kafka.topics.deadLetter,
        FeedGap: config.kafka.topics.gaps,
      },
      { log: this.#log.child("registry"), signal },
    );
  }

  /**
   * The sink, connected (by `prepare()`, or now) and activated; `undefined` when `signal`
   * aborted before it was activated.
   */
  async #openSink(): Promise<OpenSink | undefined> {
    const prepared = this.#prepared;
    this.#prepared = undefined;
    const sink = (await prepared) ?? await this.#prepareSink();
    if (this.#options.signal.aborted) {
      sink.discard();
      return undefined;
    }
    return sink.activate();
  }

  /** Connects the sink's kafkajs producer. */
  async #prepareSink(): Promise<PreparedSink> {
    const { config, transactionalId } = this.#options;
    const kafka = this.#options.kafka ??
      createKafka(config.kafka, withoutConcurrentTransactionNoise(this.#log), {
        clientIdSuffix: "producer-0",
      });
    const kafkaProducer = kafka.producer(
      transactionalId === undefined ? PRODUCER_CONFIG : transactionalConfig(transactionalId),
    );
    await kafkaProducer.connect();
    const disconnect = () => kafkaProducer.disconnect();
    return {
      activate: async () => {
        let sender: SendingProducer = kafkaProducer;
        if (transactionalId !== undefined) {
          await (await kafkaProducer.transaction()).commit(); // fences older producers of the id
          this.#log.info("transactional id initialised: fenced any older producer of this key", {
            transactionalId,
          });
          sender = transactionalSender(kafkaProducer);
        }
        return { sink: this.#newSink(sender), disconnect };
      },
      discard: () => void disconnect().catch(() => {}),
    };
  }

  #newSink(producer: SendingProducer): KafkaSink {
    const { producer: settings, kafka: { topics } } = this.#options.config;
    return new KafkaSink({
      producer,
      rawTopic: topics.raw,
      deadLetterTopic: topics.deadLetter,
      gapsTopic: topics.gaps,
      buffer: new TradeBuffer<Message>({
        maxItems: settings.bufferMaxTrades,
        batchMaxItems: settings.batchMaxTrades,
        clock: this.#clock,
      }),
      metrics: this.metrics,
      log: this.#log.child("kafka"),
      clock: this.#clock,
    });
  }

  /**
   * The feed-gap bookkeeping of this run: reads the last coverage mark, publishes every gap
   * found, writes marks every `markIntervalMs`. `stop()` (once the feed is no longer read) ends
   * an episode of drops and writes the last mark.
   */
  async #startGaps(sink: TradeSink, wire: WireCodec): Promise<RunGaps> {
    const { coverageStore: store, signal } = this.#options;
    const feedId = this.#options.feedId ?? "feed";
    const clock = this.#clock;
    const log = this.#log.child("gaps");
    const previous = store ? await store.read() : null;
    if (previous) {
      log.info("the last coverage mark: this run's first subscription ends a producer_down gap", {
        coveredUntil: new Date(previous.coveredUntilMs).toISOString(),
        symbols: previous.symbols.length,
      });
    }
    const tracker = new CoverageTracker({ feedId, previous });
    const overflow = new OverflowGaps(feedId);
    let lastConnectionId = "";
    const publish = (gap: FoundGap | null) => {
      if (gap === null) return;
      const detectedAtMs = clock.now();
      this.metrics.feedGaps[gap.cause]++;
      this.metrics.feedGapMs[gap.cause] += gap.toMs - gap.fromMs;
      log.warn("feed gap: trades of this span may be missing", {
        gapId: gap.gapId,
        cause: gap.cause,
        from: new Date(gap.fromMs).toISOString(),
        to: new Date(gap.toMs).toISOString(),
        ms: gap.toMs - gap.fromMs,
        symbols: gap.symbols.length,
      });
      sink.offerGap(gap.gapId, wire.encode("FeedGap", { ...gap, detectedAtMs }));
    };
    const onAbort = () => tracker.stopped(clock.now());
    signal.addEventListener("abort", onAbort, { once: true });
    let writing: Promise<void> | undefined;
    let markFailures = 0;
    const writeMark = () => {
      const mark = tracker.mark(clock.now());
      if (!store || !mark || writing) return writing ?? Promise.resolve();
      writing = store.write(mark, clock.now()).then(() => {
        markFailures = 0;
      }, (error) => {
        if (markFailures++ % 60 === 0) {
          log.warn("cannot write the coverage mark", { failures: markFailures, error });
        }
      }).finally(() => writing = undefined);
      return writing;
    };
    const intervalMs = this.#options.markIntervalMs ?? DEFAULT_MARK_INTERVAL_MS;
    let timer: TimerId | undefined;
    if (store) {
      timer = clock.setTimeout(function tick() {
        writeMark();
        timer = clock.setTimeout(tick, intervalMs);
      }, intervalMs);
    }
    return {
      coverage: {
        subscribed(connectionId, symbols, atMs) {
          lastConnectionId = connectionId;
          publish(tracker.subscribed(connectionId, symbols, atMs));
          writeMark();
        },
        lost: (cause, lastGoodMs) => {
          tracker.lost(cause, lastGoodMs);
          writeMark();
        },
        refused: () => tracker.refused(),
      },
      drops: {
        dropped: (symbol, receivedAt) => overflow.recordDrop(symbol, receivedAt),
        accepted(connectionId) {
          if (overflow.droppedInEpisode > 0) publish(overflow.accepted(connectionId));
        },
      },
      async stop() {
        signal.removeEventListener("abort", onAbort);
        if (tracker.stoppedAt === null) tracker.stopped(clock.now());
        if (timer !== undefined) clock.clearTimeout(timer);
        publish(overflow.flush(lastConnectionId));
        await writing;
        await writeMark();
      },
    };
  }

  /** Reads the feed into `frames` until `signal` aborts and the last socket has closed. */
  #readFeed(
    frames: FrameHandler,
    coverage: CoverageListener,
    signal: AbortSignal,
  ): Promise<void> {
    const { config: { finnhub }, runId, webSocket } = this.#options;
    return runFinnhubClient({
      url: finnhub.url,
      apiKey: finnhub.apiKey,
      symbols: finnhub.symbols,
      watchdogMs: finnhub.watchdogMs,
      reconnectBaseMs: finnhub.reconnectBaseMs,
      reconnectMaxMs: finnhub.reconnectMaxMs,
      authBackoffMs: finnhub.authBackoffMs,
      log: this.#log.child("feed"),
      metrics: this.metrics,
      onFrame: (data, meta) => frames.onFrame(data, meta),
      onUnreadableFrame: (error, meta) => frames.onUnreadableFrame(error, meta),
      coverage,
      signal,
      clock: this.#clock,
      ...(runId === undefined ? {} : { runId }),
      ...(webSocket === undefined ? {} : { webSocket }),
    });
  }

  /**
   * Flushes what the sink accepted, for at most `shutdownTimeoutMs`; past that, or when the sink
   * failed, abandons the rest. Returns how many trades were abandoned.
   */
  async #shutDown(sink: TradeSink, watch: SinkWatch): Promise<number> {
    const timeoutMs = this.#options.shutdownTimeoutMs ?? 30_000;
    this.#log.info("stopped reading the feed; flushing", { buffered: sink.pending });
    sink.close();
    const outcome = await within(this.#clock, timeoutMs, watch.settled);
    if (outcome === "done") return 0;
    const unflushed = sink.abandon();
    this.#log.error(
      outcome === "timeout"
        ? "shutdown gave up flushing: trades not confirmed by Kafka"
        : "the Kafka sink failed: trades not confirmed by Kafka",
      { unflushed, timeoutMs, error: watch.failure },
    );
    return unflushed;
  }

  /** Disconnects the Kafka producer, waiting at most {@linkcode DISCONNECT_TIMEOUT_MS}. */
  async #disconnect(disconnect: () => Promise<void>): Promise<void> {
    await within(
      this.#clock,
      DISCONNECT_TIMEOUT_MS,
      disconnect().catch((error) =>
        this.#log.warn("Kafka producer did not disconnect cleanly", { error })
      ),
    );
  }
}

/** The feed-gap side of one run (see `#startGaps`). */
interface RunGaps {
  readonly coverage: CoverageListener;
  readonly drops: DropListener;
  /** Ends the bookkeeping once the feed is no longer read: the last gap and the last mark. */
  stop(): Promise<void>;
}

/** Follows a sink's `run()`: see {@linkcode SinkWatch}. */
function watchSink(done: Promise<void>): SinkWatch {
  const failed = new AbortController();
  const watch = {
    failed: failed.signal,
    failure: undefined as unknown,
    settled: done.then(() => "done" as const, (error) => {
      watch.failure = error;
      failed.abort();
      return "failed" as const;
    }),
  };
  return watch;
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
      feedGaps: s.feedGapsPublished,
      reconnects: s.reconnects,
      bufferDepth: s.bufferDepth,
      produceP99Ms: s.produceLatencyMs.p99,
    });
    timer = clock.setTimeout(tick, intervalMs);
  }, intervalMs);
  return () => clock.clearTimeout(timer);
}

/** `promise`'s value, or `"timeout"` if it has not settled after `ms`; clears its timer. */
async function within<T>(clock: Clock, ms: number, promise: Promise<T>): Promise<T | "timeout"> {
  let timer: TimerId;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = clock.setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clock.clearTimeout(timer);
  }
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
