/**
 * The producer's counters and gauges, in one mutable object its parts update and one
 * `snapshot()` the status endpoint (and the shutdown log line) reads.
 *
 * @module
 */

import { FEED_GAP_CAUSES, type FeedGapCause } from "../shared/types.ts";

/** Where the WebSocket connection stands. */
export type ConnectionState = "idle" | "connecting" | "open" | "backoff" | "stopped";

/** Produce latency of recent batches (send to broker ack), milliseconds. */
export interface LatencySummary {
  /** Batches in the summary (the most recent, up to the window). */
  readonly count: number;
  readonly last: number | null;
  readonly mean: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/** A frozen copy of every counter and gauge at one instant. */
export interface ProducerMetricsSnapshot {
  /** Frames received, of every type. */
  readonly framesReceived: number;
  /** Trades parsed from trade frames and handed to the buffer (accepted or dropped). */
  readonly tradesReceived: number;
  /** Trades acknowledged by Kafka on the raw topic. */
  readonly tradesProduced: number;
  /** Trades dropped because the buffer was full. */
  readonly tradesDropped: number;
  /** Trades lost to a non-retriable Kafka error, or still buffered when shutdown gave up. */
  readonly tradesFailed: number;
  /** Single trades refused, any reason (each sent to the dead-letter topic). */
  readonly tradesRejected: number;
  /** Of those, trades of a symbol the connection did not subscribe to. */
  readonly tradesUnsubscribed: number;
  readonly pings: number;
  /** `{"type":"error"}` frames. */
  readonly errorFrames: number;
  /** Error frames saying "Subscribing to too many symbols". */
  readonly tooManySymbolsErrors: number;
  /** Frames whose `type` the producer does not know. */
  readonly unknownFrames: number;
  /** Whole frames sent to the dead-letter topic (not JSON, bad shape, too large). */
  readonly invalidFrames: number;
  /**
   * Frames the WebSocket layer refused before the producer could read them (a text frame that is
   * not UTF-8, one over 64 MiB): dead-lettered with no payload, their bytes lost.
   */
  readonly framesUnreadable: number;
  /** Trade frames byte-identical to the previous frame on the same connection (kept). */
  readonly feedDuplicateFramesSuspected: number;
  readonly deadLettersProduced: number;
  /** Dead letters lost: their queue was full, or Kafka refused them for good. */
  readonly deadLettersDropped: number;
  /** Dead letters whose input was too large to keep whole: its first bytes, size and SHA-256. */
  readonly deadLettersTruncated: number;
  /** Feed gaps found, by cause (`feed_gaps.ts`). */
  readonly feedGaps: Readonly<Record<FeedGapCause, number>>;
  /** Milliseconds of the feed gaps found, by cause. */
  readonly feedGapMs: Readonly<Record<FeedGapCause, number>>;
  /** Feed gaps Kafka acknowledged on the gaps topic. */
  readonly feedGapsPublished: number;
  /** Feed gaps lost: the dead letters' queue was full, or Kafka refused them for good. */
  readonly feedGapsDropped: number;
  /** Connections that opened. */
  readonly connectionsOpened: number;
  /** Connection attempts after the first. */
  readonly reconnects: number;
  readonly watchdogTimeouts: number;
  /** Handshakes refused with 401 or 429. */
  readonly handshakeRefusals: number;
  readonly connectionState: ConnectionState;
  readonly connectionId: string | null;
  /** When the last frame (ping included) arrived, epoch ms. */
  readonly lastFrameTime: number | null;
  /** The last error frame, handshake refusal or Kafka error, secret-free. */
  readonly lastError: string | null;
  /** Trades waiting in the buffer. */
  readonly bufferDepth: number;
  readonly bufferCapacity: number;
  readonly batchesProduced: number;
  /** Failed Kafka sends (each retried if retriable). */
  readonly kafkaErrors: number;
  readonly produceLatencyMs: LatencySummary;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The live counters; parts of the producer write to them directly. */
export type ProducerMetrics =
  & Mutable<Omit<ProducerMetricsSnapshot, "produceLatencyMs" | "feedGaps" | "feedGapMs">>
  & {
    feedGaps: Record<FeedGapCause, number>;
    feedGapMs: Record<FeedGapCause, number>;
    /** Records one batch's produce latency. */
    recordProduceLatency(ms: number): void;
    /** A frozen copy of every value now. */
    snapshot(): ProducerMetricsSnapshot;
  };

function perCause(): Record<FeedGapCause, number> {
  return Object.fromEntries(FEED_GAP_CAUSES.map((cause) => [cause, 0])) as Record<
    FeedGapCause,
    number
  >;
}

const LATENCY_WINDOW = 1024;

/** New metrics, all zero. `bufferCapacity` is the buffer's bound. */
export function createProducerMetrics(bufferCapacity = 0): ProducerMetrics {
  const latencies = new Float64Array(LATENCY_WINDOW);
  let latencyCount = 0;
  let lastLatency: number | null = null;
  const metrics: ProducerMetrics = {
    framesReceived: 0,
    tradesReceived: 0,
    tradesProduced: 0,
    tradesDropped: 0,
    tradesFailed: 0,
    tradesRejected: 0,
    tradesUnsubscribed: 0,
    pings: 0,
    errorFrames: 0,
    tooManySymbolsErrors: 0,
    unknownFrames: 0,
    invalidFrames: 0,
    framesUnreadable: 0,
    feedDuplicateFramesSuspected: 0,
    deadLettersProduced: 0,
    deadLettersDropped: 0,
    deadLettersTruncated: 0,
    feedGaps: perCause(),
    feedGapMs: perCause(),
    feedGapsPublished: 0,
    feedGapsDropped: 0,
    connectionsOpened: 0,
    reconnects: 0,
    watchdogTimeouts: 0,
    handshakeRefusals: 0,
    connectionState: "idle",
    connectionId: null,
    lastFrameTime: null,
    lastError: null,
    bufferDepth: 0,
    bufferCapacity,
    batchesProduced: 0,
    kafkaErrors: 0,
    recordProduceLatency(ms) {
      latencies[latencyCount % LATENCY_WINDOW] = ms;
      latencyCount++;
      lastLatency = ms;
    },
    snapshot() {
      const { recordProduceLatency: _r, snapshot: _s, ...values } = metrics;
      return Object.freeze({
        ...values,
        feedGaps: Object.freeze({ ...values.feedGaps }),
        feedGapMs: Object.freeze({ ...values.feedGapMs }),
        produceLatencyMs: summarise(
          latencies.slice(0, Math.min(latencyCount, LATENCY_WINDOW)),
          lastLatency,
        ),
      });
    },
  };
  return metrics;
}

function summarise(samples: Float64Array, last: number | null): LatencySummary {
  if (samples.length === 0) {
    return { count: 0, last: null, mean: null, p50: null, p99: null, max: null };
  }
  const sorted = samples.sort();
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let sum = 0;
  for (const value of sorted) sum += value;
  return Object.freeze({
    count: sorted.length,
    last,
    mean: Math.round((sum / sorted.length) * 10) / 10,
    p50: pick(0.5),
    p99: pick(0.99),
    max: sorted[sorted.length - 1]!,
  });
}
