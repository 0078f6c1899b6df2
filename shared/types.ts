/**
 * The typed records every worker exchanges. Each interface mirrors one Avro schema in
 * `schemas/avro/`; `avro_drift_test.ts` fails when the two drift apart.
 *
 * @module
 */
import type { CandleRow } from "./gold_table.ts";

/** Trade conditions as Finnhub sends them: a list (maybe empty), `null`, or no key at all. */
export type Conditions = readonly string[] | null | "ABSENT";

/** One trade as received from Finnhub (`schemas/avro/trade.avsc`), one raw-topic record each. */
export interface RawTrade {
  /** Symbol, e.g. `AAPL` or `BINANCE:BTCUSDT`. */
  readonly s: string;
  /** Price as received. */
  readonly p: number;
  /** Event time, Unix epoch milliseconds UTC. */
  readonly t: number;
  /** Volume; fractional for crypto, 0 for price-only updates. */
  readonly v: number;
  /** Trade conditions; `"ABSENT"` when the key was missing. */
  readonly c: Conditions;
  /** When the producer received the frame, epoch milliseconds. */
  readonly ingestTime: number;
  /** The producer's connection the frame arrived on. */
  readonly connectionId: string;
  /** Frame number on that connection, from 1. */
  readonly frameSeq: number;
  /** Index of the trade inside the frame's `data` array. */
  readonly tradeIndex: number;
}

/** US equity trading sessions, New York time. */
export type TradingSession = "PRE_MARKET" | "REGULAR" | "AFTER_HOURS" | "CLOSED";

/** A validated, normalised trade on the silver topic (`schemas/avro/silver_trade.avsc`). */
export interface SilverTrade {
  readonly symbol: string;
  readonly price: number;
  /** Event time, epoch milliseconds UTC. */
  readonly eventTime: number;
  /** 0 for price-only updates. */
  readonly volume: number;
  /** True when the feed sent `v = 0`: used for OHLC, not for volume or VWAP. */
  readonly priceOnly: boolean;
  readonly conditions: readonly string[];
  /** US equity session; `null` for crypto and FX. */
  readonly session: TradingSession | null;
  readonly ingestTime: number;
  readonly rawTopic: string;
  readonly rawPartition: number;
  readonly rawOffset: number;
}

/** The stage that rejected something. */
export type DeadLetterSource = "producer" | "bronze" | "silver" | "gold";

/** Something the pipeline could not accept (`schemas/avro/dead_letter.avsc`). */
export interface DeadLetter {
  /** The rejected input exactly as received, or its first bytes when `originalSize` is set. */
  readonly payload: Uint8Array;
  /** Why, naming the field and the value. */
  readonly reason: string;
  /** Short stable code for metrics, e.g. `invalid_json`, `bad_price`. */
  readonly reasonCode: string;
  readonly source: DeadLetterSource;
  /** When it was rejected, epoch milliseconds. */
  readonly time: number;
  readonly sourceTopic: string | null;
  readonly sourcePartition: number | null;
  readonly sourceOffset: number | null;
  /**
   * Set only when `payload` holds just the first bytes of an input too large for a Kafka record:
   * the input's whole size, bytes. Absent or `null` otherwise (the payload is whole).
   */
  readonly originalSize?: number | null;
  /** Set with `originalSize`: the SHA-256 of the whole input, lower-case hex. */
  readonly originalSha256?: string | null;
}

/** The roles of the pipeline's workers. */
export type WorkerRole = "producer" | "bronze" | "silver" | "gold";

/** A worker's periodic report on the metrics topic (`schemas/avro/worker_report.avsc`). */
export interface WorkerReport {
  /** Unique per process run. */
  readonly workerId: string;
  readonly role: WorkerRole;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  /** When the report was made, epoch milliseconds. */
  readonly time: number;
  /** `running`, or `stopped` in the last report of a clean shutdown. */
  readonly state: "running" | "stopped";
  /** The metrics snapshot as JSON. */
  readonly metrics: string;
}

/** Why the feed was not received for a while (`FeedGap.cause`). */
export type FeedGapCause =
  | "reconnect"
  | "watchdog"
  | "auth_backoff"
  | "buffer_overflow"
  | "producer_down";

/** Every {@linkcode FeedGapCause}, in the order metrics and docs list them. */
export const FEED_GAP_CAUSES: readonly FeedGapCause[] = [
  "reconnect",
  "watchdog",
  "auth_backoff",
  "buffer_overflow",
  "producer_down",
];

/**
 * A span during which the producer did not receive the feed for some symbols, so trades of that
 * span may be missing (`schemas/avro/feed_gap.avsc`), on the feed-gaps topic keyed by `gapId`.
 */
export interface FeedGap {
  /** Stable and unique: the same gap published again (after a crash) has the same id. */
  readonly gapId: string;
  /** The last moment the feed was known good for these symbols, epoch milliseconds. */
  readonly fromMs: number;
  /** The first moment it was good again (connected and subscribed), epoch milliseconds. */
  readonly toMs: number;
  readonly symbols: readonly string[];
  readonly cause: FeedGapCause;
  /** The connection that ended the gap; `""` if none. */
  readonly connectionId: string;
  /** When the producer published it, epoch milliseconds. */
  readonly detectedAtMs: number;
}

/**
 * The producer's mark of how far its feed was covered (`schemas/avro/feed_coverage.avsc`), on the
 * compacted feed-coverage topic keyed by `feedId`: the next start's `producer_down` gap begins at
 * `coveredUntilMs`.
 */
export interface FeedCoverage {
  readonly feedId: string;
  readonly coveredUntilMs: number;
  readonly symbols: readonly string[];
  readonly writtenAtMs: number;
}

/** The candle intervals gold folds and stores. */
export type CandleInterval = "1m" | "5m" | "1h" | "1d";

/**
 * A gold candle just written to Cassandra, on the candle-updates topic
 * (`schemas/avro/candle_update.avsc`), for the live market page: the row's candle
 * ({@linkcode CandleRow}) and when it was written. Without the feed-gap coverage: the fold
 * never reads or writes it (only the gap consumer does, `processor/gold/gap_stage.ts`).
 */
export interface CandleUpdate extends Omit<CandleRow, "gapMs" | "gapCount" | "coverage"> {
  /** When gold wrote the row, epoch milliseconds. */
  readonly updatedAt: number;
}
