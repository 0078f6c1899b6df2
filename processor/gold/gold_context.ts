/**
 * What the parts of the gold stage share: the candles in memory, the partition states, the
 * Cassandra statements and the clock. The stage builds one per worker (`gold_stage.ts`); the
 * batch fold (`batch_fold.ts`), finalization (`finalization.ts`) and the flush (`flush.ts`) are
 * functions over it, run one at a time (batches and ticks never overlap).
 *
 * @module
 */
import type { RowWrite } from "../../shared/cassandra_writer.ts";
import type { Candle } from "./candle.ts";
import type { CandleCache } from "./candle_cache.ts";
import type { CandlePublisher } from "./candle_publisher.ts";
import type { CandleRows } from "./candle_rows.ts";
import type { FinalityStore } from "./finality_store.ts";
import type { GoldMetrics } from "./gold_metrics.ts";
import type { PartitionState, PartitionStates } from "./partition_states.ts";
import { watermarkAt } from "./watermark.ts";

/** One gold worker's state and clients. */
export interface GoldContext {
  readonly cache: CandleCache;
  readonly states: PartitionStates;
  readonly store: FinalityStore;
  readonly rows: CandleRows;
  readonly metrics: GoldMetrics;
  readonly allowedLatenessMs: number;
  readonly now: () => number;
  /** Writes `rows`; throws the first failure. */
  readonly write: (rows: readonly RowWrite<number>[]) => Promise<void>;
  /** Called with every candle after it was written. */
  readonly onCandle: ((candle: Candle) => void) | undefined;
  /** Publishes every candle written, best effort. */
  readonly publisher: CandlePublisher | undefined;
}

/** The watermark of a partition at wall time `at`. */
export function watermark(gold: GoldContext, state: PartitionState, at: number): number {
  return watermarkAt(state.clock, at, gold.allowedLatenessMs);
}
