/**
 * The value caches of the columns a bronze and a silver row share (see
 * `shared/cassandra_values.ts`): text (symbols, topics, connection ids), int (partitions,
 * indexes), timestamps (the hour bucket, event and ingest times, `stored_at`) and text lists
 * (conditions), with the counter of cache resets, `pipeline_stage_cache_resets_total{stage,
 * cache}`. Only the text cache can fill up (one entry per distinct symbol); a reset costs
 * re-encoding, never memory.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { type CachedValue, encodedValues } from "../shared/cassandra_values.ts";
import type { Counter, MetricsRegistry } from "../shared/metrics.ts";
import type { StageName } from "../shared/topology.ts";

/** One cache: the serialised bytes of a value (null for null). */
export type ValueCache = (value: CachedValue) => Buffer | null;

/** The caches of {@linkcode tradeRowValues} and their reset counter. */
export interface TradeRowValues {
  readonly text: ValueCache;
  readonly int: ValueCache;
  readonly hour: ValueCache;
  readonly time: ValueCache;
  readonly list: ValueCache;
  /** Counts a cache of `stage` emptied because it was full, labelled with the cache's name. */
  readonly resets: Counter;
}

/** The shared caches of one stage's rows; its text cache counts its resets as `cache="text"`. */
export function tradeRowValues(stage: StageName, metrics: MetricsRegistry): TradeRowValues {
  const resets = metrics.counter(
    "pipeline_stage_cache_resets_total",
    "Value caches emptied because they reached their bound (more distinct symbols than it " +
      "holds): costs re-encoding, never memory.",
  );
  return {
    text: encodedValues("text", 10_000, { onReset: () => resets.inc({ stage, cache: "text" }) }),
    int: encodedValues("int", 1000),
    hour: encodedValues("timestamp", 1000),
    time: encodedValues("timestamp", 1000),
    list: encodedValues("list<text>", 1000),
    resets,
  };
}
