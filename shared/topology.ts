/**
 * The pipeline's shape, as every part of it and every tool around it sees it: the stages in
 * order, the consumer group and input topic of each, and the heap bound each kind of worker runs
 * with. The workers, `start`, the admin tasks, the status endpoint, the benchmarks and the tests
 * read it from here, so a stage or a topic changes in one place.
 *
 * @module
 */
import type { Config } from "./config.ts";

/** The stages of the processor. */
export type StageName = "bronze" | "silver" | "gold";

/** The stages, in pipeline order. */
export const STAGES: readonly StageName[] = ["bronze", "silver", "gold"];

/**
 * V8 flags a stage process runs with (`deno task processor` passes them to each stage): a
 * bounded old generation keeps a worker's memory under 200 MB; a stage's live data is a batch
 * or two and, in gold, the open candles.
 */
export const STAGE_V8_FLAGS = "--max-old-space-size=128,--max-semi-space-size=8";

/**
 * V8 flags of a producer process: the bound the stages have. Each isolate (the main thread and
 * the Kafka workers) gets this heap limit; see `producer/heap_budget.ts` for what the buffer may
 * take of it.
 */
export const PRODUCER_V8_FLAGS = STAGE_V8_FLAGS;

/** The consumer group of a stage. */
export function groupIdOf(config: Config, stage: StageName): string {
  return `${config.kafka.groupPrefix}.${stage}`;
}

/** The topic a stage consumes. */
export function inputTopicOf(config: Config, stage: StageName): string {
  return stage === "gold" ? config.kafka.topics.silver : config.kafka.topics.raw;
}

/** Each stage's consumer group with the topic it reads: what consumer lag is measured on. */
export function stageSubscriptions(
  config: Config,
): { readonly group: string; readonly topic: string }[] {
  return STAGES.map((stage) => ({
    group: groupIdOf(config, stage),
    topic: inputTopicOf(config, stage),
  }));
}
