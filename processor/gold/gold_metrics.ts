/**
 * The metrics of the gold stage, declared once: what it folded late or skipped as redelivered,
 * what it wrote and how soon after the watermark passed, and what memory holds.
 *
 * @module
 */
import {
  type Counter,
  END_TO_END_LATENCY_BUCKETS,
  type Gauge,
  type Histogram,
  type MetricsRegistry,
} from "../../shared/metrics.ts";
import { METRIC } from "../../shared/metric_names.ts";

/** The gold stage's series. */
export interface GoldMetrics {
  readonly late: Counter;
  readonly redelivered: Counter;
  readonly written: Counter;
  readonly finalDelay: Histogram;
  readonly openWindows: Gauge;
  readonly evicted: Counter;
  readonly readBack: Counter;
  readonly watermark: Gauge;
}

/** Declares the gold stage's series in `metrics`. */
export function createGoldMetrics(metrics: MetricsRegistry): GoldMetrics {
  return {
    late: metrics.counter(
      "pipeline_gold_late_trades_total",
      "Trades that arrived after their window was final; folded in as an amendment.",
    ),
    redelivered: metrics.counter(
      "pipeline_gold_redelivered_trades_total",
      "Trades gold had already folded in (pipeline retries and replays), skipped.",
    ),
    written: metrics.counter(
      METRIC.stageRowsWritten,
      "Rows written to Cassandra.",
    ),
    finalDelay: metrics.histogram(
      "pipeline_gold_watermark_to_final_seconds",
      "Time from the watermark passing a window's end to its final gold row being written.",
      END_TO_END_LATENCY_BUCKETS,
    ),
    openWindows: metrics.gauge(
      "pipeline_gold_open_windows",
      "Candles held in memory, not final yet.",
    ),
    evicted: metrics.counter(
      "pipeline_gold_windows_evicted_total",
      "Open windows dropped from memory because gold held more than its bound; they are read " +
        "back from Cassandra when a trade touches them or when they fall due.",
    ),
    readBack: metrics.counter(
      "pipeline_gold_windows_read_back_total",
      "Open windows read back from the open-windows index to be made final (taken over after a " +
        "restart or rebalance, or dropped from memory).",
    ),
    watermark: metrics.gauge(
      "pipeline_gold_watermark_seconds",
      "Event-time watermark per silver partition, Unix seconds.",
    ),
  };
}
