/**
 * The pipeline's shape, as every part of it and every tool around it sees it: the stages in
 * order, the consumer group and input topic of each, and the heap bound each kind of worker runs
 * with. The workers, `start`, the admin tasks, the status endpoint, the benchmarks and the tests
 * read it from here, so a stage or a topic changes in one place. So does the Avro record each
 * topic carries, and which topics each kind of worker writes (the schemas it registers at start).
 *
 * @module
 */
import type { SchemaName } from "./avro.ts";
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

/**
 * The consumer group of the gold worker's feed-gap consumer (`processor/gold/gap_stage.ts`),
 * which reads the gaps topic beside gold's own consumer of silver.
 */
export function gapsGroupIdOf(config: Config): string {
  return `${config.kafka.groupPrefix}.gold-gaps`;
}

/** The topic a stage consumes. */
export function inputTopicOf(config: Config, stage: StageName): string {
  return stage === "gold" ? config.kafka.topics.silver : config.kafka.topics.raw;
}

/**
 * Each consumer group of the processor with the topic it reads: what consumer lag is measured on.
 * The stages' first, in {@linkcode STAGES} order, then the gold worker's feed-gap consumer.
 */
export function stageSubscriptions(
  config: Config,
): { readonly group: string; readonly topic: string }[] {
  return [
    ...STAGES.map((stage) => ({
      group: groupIdOf(config, stage),
      topic: inputTopicOf(config, stage),
    })),
    { group: gapsGroupIdOf(config), topic: config.kafka.topics.gaps },
  ];
}

/** The topics of the config, by their key. */
export type TopicKey = keyof Config["kafka"]["topics"];

/** The Avro record every topic carries: one schema a topic, under the subject `<topic>-value`. */
export const TOPIC_SCHEMAS: Readonly<Record<TopicKey, SchemaName>> = {
  raw: "Trade",
  silver: "SilverTrade",
  deadLetter: "DeadLetter",
  metrics: "WorkerReport",
  candles: "CandleUpdate",
  gaps: "FeedGap",
  coverage: "FeedCoverage",
};

/** The topics each kind of worker writes to. */
export const WRITES: Readonly<Record<"producer" | StageName, readonly TopicKey[]>> = {
  producer: ["raw", "deadLetter", "metrics", "gaps", "coverage"],
  bronze: ["deadLetter", "metrics"],
  silver: ["silver", "deadLetter", "metrics"],
  gold: ["candles", "deadLetter", "metrics"],
};

/**
 * The schemas a worker registers at start, each with the topic it is written to
 * (`{ Trade: "market.trades.raw", ... }`), as `WireCodec.register()` takes them.
 */
export function writtenSchemas(
  config: Config,
  worker: "producer" | StageName,
): Partial<Record<SchemaName, string>> {
  return Object.fromEntries(
    WRITES[worker].map((key) => [TOPIC_SCHEMAS[key], config.kafka.topics[key]]),
  );
}
