/**
 * The producer's metrics in the shape every worker reports (`shared/metrics.ts`), with
 * Prometheus names: counters end in `_total`, times are seconds.
 *
 * @module
 */
import { MetricsRegistry, type MetricsSnapshot } from "../shared/metrics.ts";
import type { ConnectionState, ProducerMetricsSnapshot } from "./metrics.ts";
import { METRIC } from "../shared/metric_names.ts";
import { FEED_GAP_CAUSES } from "../shared/types.ts";

const COUNTERS: readonly [keyof ProducerMetricsSnapshot, string, string][] = [
  ["framesReceived", "pipeline_producer_frames_total", "WebSocket frames received, of every type."],
  ["tradesReceived", METRIC.producerTradesReceived, "Trades parsed from trade frames."],
  ["tradesProduced", METRIC.producerTradesAcked, "Trades acknowledged by Kafka."],
  [
    "tradesDropped",
    METRIC.producerTradesDropped,
    "Trades dropped: the buffer was full.",
  ],
  [
    "tradesFailed",
    "pipeline_producer_trades_failed_total",
    "Trades lost to a non-retriable Kafka error.",
  ],
  [
    "tradesRejected",
    "pipeline_producer_trades_rejected_total",
    "Single trades refused, any reason (dead-lettered).",
  ],
  [
    "tradesUnsubscribed",
    "pipeline_producer_trades_unsubscribed_total",
    "Trades of a symbol the connection did not subscribe to (dead-lettered).",
  ],
  ["pings", "pipeline_producer_pings_total", "Ping frames."],
  ["errorFrames", "pipeline_producer_error_frames_total", "Error frames from the feed."],
  [
    "tooManySymbolsErrors",
    "pipeline_producer_too_many_symbols_errors_total",
    "'Subscribing to too many symbols' errors.",
  ],
  ["unknownFrames", "pipeline_producer_unknown_frames_total", "Frames of an unknown type."],
  [
    "invalidFrames",
    "pipeline_producer_invalid_frames_total",
    "Whole frames dead-lettered (not JSON, bad shape, too large).",
  ],
  [
    "framesUnreadable",
    "pipeline_producer_frames_unreadable_total",
    "Frames the WebSocket layer refused (text not UTF-8, over 64 MiB): dead-lettered empty.",
  ],
  [
    "feedDuplicateFramesSuspected",
    "pipeline_producer_feed_duplicate_frames_total",
    "Trade frames byte-identical to the previous one (kept).",
  ],
  [
    "deadLettersProduced",
    METRIC.producerDeadLetters,
    "Dead letters the producer published.",
  ],
  [
    "deadLettersDropped",
    "pipeline_producer_dead_letters_dropped_total",
    "Dead letters the producer could not publish.",
  ],
  [
    "deadLettersTruncated",
    "pipeline_producer_dead_letters_truncated_total",
    "Dead letters holding only the first 512 KiB of their input, with its size and SHA-256.",
  ],
  [
    "connectionsOpened",
    "pipeline_producer_connections_opened_total",
    "WebSocket connections opened.",
  ],
  ["reconnects", "pipeline_producer_reconnects_total", "Connection attempts after the first."],
  [
    "watchdogTimeouts",
    "pipeline_producer_watchdog_timeouts_total",
    "Connections replaced because the feed went silent.",
  ],
  [
    "handshakeRefusals",
    "pipeline_producer_handshake_refusals_total",
    "Handshakes refused with 401 or 429.",
  ],
  [
    "feedGapsPublished",
    "pipeline_producer_feed_gaps_published_total",
    "Feed gaps the producer published on the gaps topic.",
  ],
  [
    "feedGapsDropped",
    "pipeline_producer_feed_gaps_dropped_total",
    "Feed gaps the producer could not publish (queue full, or refused by Kafka).",
  ],
  ["batchesProduced", "pipeline_producer_batches_total", "Kafka sends acknowledged."],
  ["kafkaErrors", METRIC.producerKafkaErrors, "Failed Kafka sends."],
];

const STATES: readonly ConnectionState[] = ["idle", "connecting", "open", "backoff", "stopped"];

/**
 * Converts the producer's snapshot to the reported shape; `lease`, when the producer takes part
 * in a lease (`PRODUCER_LEASE=kafka`), is reported as `pipeline_producer_lease_active`.
 */
export function producerMetricsSnapshot(
  s: ProducerMetricsSnapshot,
  lease?: "active" | "standby",
): MetricsSnapshot {
  const registry = new MetricsRegistry();
  if (lease !== undefined) {
    registry.gauge(
      "pipeline_producer_lease_active",
      "1 while this producer holds its API key's lease and reads the feed, 0 while it stands by.",
    ).set(lease === "active" ? 1 : 0);
  }
  for (const [field, name, help] of COUNTERS) {
    registry.counter(name, help).inc({}, Number(s[field]) || 0);
  }
  const gaps = registry.counter(
    METRIC.producerFeedGaps,
    "Feed gaps found: spans the feed was not received for some symbols, by cause.",
  );
  const gapSeconds = registry.counter(
    METRIC.producerFeedGapSeconds,
    "Seconds of the feed gaps found, by cause (a gap counts once, when it ends).",
  );
  for (const cause of FEED_GAP_CAUSES) {
    gaps.inc({ cause }, s.feedGaps[cause]);
    gapSeconds.inc({ cause }, s.feedGapMs[cause] / 1000);
  }
  const state = registry.gauge(
    "pipeline_producer_connection_state",
    "1 for the WebSocket connection's current state.",
  );
  for (const name of STATES) state.set(s.connectionState === name ? 1 : 0, { state: name });
  registry.gauge(METRIC.producerConnected, "1 while the feed connection is open.")
    .set(s.connectionState === "open" ? 1 : 0);
  registry.gauge(
    "pipeline_producer_last_frame_timestamp_seconds",
    "When the last frame (ping included) arrived, Unix seconds.",
  ).set(s.lastFrameTime === null ? 0 : s.lastFrameTime / 1000);
  registry.gauge("pipeline_producer_buffer_depth_trades", "Trades waiting in the buffer.")
    .set(s.bufferDepth);
  registry.gauge("pipeline_producer_buffer_capacity_trades", "The buffer's bound, in trades.")
    .set(s.bufferCapacity);
  const latency = registry.gauge(
    "pipeline_producer_produce_latency_seconds",
    "Produce latency (send to acknowledgement) of recent batches, by quantile.",
  );
  const l = s.produceLatencyMs;
  if (l.p50 !== null) latency.set(l.p50 / 1000, { quantile: "0.5" });
  if (l.p99 !== null) latency.set(l.p99 / 1000, { quantile: "0.99" });
  if (l.max !== null) latency.set(l.max / 1000, { quantile: "1" });
  return registry.snapshot();
}
