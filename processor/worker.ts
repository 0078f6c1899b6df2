/**
 * Runs one stage in this process: registers the schemas it writes with the schema registry
 * (waiting for a registry that does not answer yet, see shared/wire.ts), builds its Kafka and
 * Cassandra clients from the config, consumes until the signal aborts, then flushes, commits and
 * closes everything.
 *
 * @module
 */
import type { Kafka, Producer } from "kafkajs";
import type cassandra from "cassandra-driver";
import { createCassandraClient } from "../shared/cassandra.ts";
import type { Config } from "../shared/config.ts";
import { createKafka } from "../shared/kafka.ts";
import { joinAsStaticMember } from "../shared/kafkajs_static_membership.ts";
import { startReporter } from "../shared/reporter.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { openWire, type WireCodec } from "../shared/wire.ts";
import type { Logger } from "../shared/log.ts";
import type { MetricsRegistry } from "../shared/metrics.ts";
import { createBronzeStage } from "./bronze/bronze_stage.ts";
import type { Candle } from "./gold/candle.ts";
import { createGapStage } from "./gold/gap_stage.ts";
import { createGoldStage } from "./gold/gold_stage.ts";
import { createSilverStage } from "./silver/silver_stage.ts";
import {
  gapsGroupIdOf,
  groupIdOf,
  inputTopicOf,
  type StageName,
  writtenSchemas,
} from "../shared/topology.ts";
import type { StageOptions } from "./stage_options.ts";
import { runStage, type Stage } from "./stage_runner.ts";
import { STANDBY_READY } from "./stage_standby.ts";

/** Options of {@linkcode runStageWorker}. */
export interface StageWorkerOptions {
  readonly config: Config;
  readonly stage: StageName;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly signal: AbortSignal;
  /** Consumer group; default `<KAFKA_GROUP_PREFIX>.<stage>`. */
  readonly groupId?: string;
  /** Called with every gold candle written (gold only). */
  readonly onCandle?: (candle: Candle) => void;
  /**
   * Joins the group as this static member (`group_instance.ts`): a restart under the same id
   * takes the partitions back at once. Default: a dynamic member.
   */
  readonly groupInstanceId?: string;
  /**
   * Run as a warm standby (`stage_standby.ts`): connect to Cassandra and Kafka and build the
   * stage, log {@linkcode STANDBY_READY}, and only once this resolves join the group and
   * consume (until then it reports nothing and holds no partition). Default: consume at once.
   */
  readonly promoted?: Promise<void>;
}

/** The clients and settings every stage of a worker is built over. */
interface StageClients {
  readonly config: Config;
  readonly session: cassandra.Client;
  readonly producer: Producer;
  /** With the stage's schemas registered (`writtenSchemas(config, stage)`). */
  readonly wire: WireCodec;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
}

/** What every stage's constructor takes, from its worker's clients and config. */
function commonStageOptions(
  { config, session, producer, wire, log, metrics }: StageClients,
): StageOptions {
  return {
    session,
    keyspace: config.cassandra.keyspace,
    producer,
    deadLetterTopic: config.kafka.topics.deadLetter,
    wire,
    log,
    metrics,
    concurrency: config.cassandra.maxConcurrency,
  };
}

/** Builds the stage object over the given clients. */
export function buildStage(
  stage: StageName,
  deps: StageClients & { readonly onCandle?: (candle: Candle) => void },
): Stage {
  const { config } = deps;
  const common = commonStageOptions(deps);
  switch (stage) {
    case "bronze":
      return createBronzeStage(common);
    case "silver":
      return createSilverStage({
        ...common,
        silverTopic: config.kafka.topics.silver,
        rules: config.silver,
      });
    case "gold":
      return createGoldStage({
        ...common,
        allowedLatenessMs: config.gold.allowedLatenessMs,
        candleTopic: config.kafka.topics.candles,
        ...(deps.onCandle ? { onCandle: deps.onCandle } : {}),
      });
  }
}

/** Creates the idempotent, acks=all producer a stage publishes with. */
export function createStageProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
}

/** Runs `stage` until `signal` aborts. */
export async function runStageWorker(options: StageWorkerOptions): Promise<void> {
  const { config, stage, log, metrics, signal } = options;
  let wire: WireCodec;
  try {
    wire = await openWire(
      createSchemaRegistryClient(config.registry),
      writtenSchemas(config, stage),
      { log, signal },
    );
  } catch (error) {
    if (signal.aborted) return; // stopped while waiting for the registry: nothing to close
    throw error;
  }
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: stage });
  const session = createCassandraClient(config.cassandra, { applicationName: `market-${stage}` });
  const producer = createStageProducer(kafka);
  const groupId = options.groupId ?? groupIdOf(config, stage);
  if (options.groupInstanceId !== undefined) {
    joinAsStaticMember(groupId, options.groupInstanceId);
    // Gold's feed-gap consumer too: its group is another, so the same id is unique in it.
    if (stage === "gold") joinAsStaticMember(gapsGroupIdOf(config), options.groupInstanceId);
    log.info("joining the group as a static member", {
      groupId,
      groupInstanceId: options.groupInstanceId,
    });
  }
  const consumer = createStageConsumer(kafka, config, groupId, FETCH_HOLD_MS[stage]);
  try {
    // Both at once: a restarted stage's partitions wait for the slower of the two, not the sum.
    await Promise.all([session.connect(), producer.connect()]);
    const built = buildStage(stage, {
      config,
      session,
      producer,
      wire,
      log,
      metrics,
      ...(options.onCandle ? { onCandle: options.onCandle } : {}),
    });
    if (options.promoted) {
      log.info(STANDBY_READY);
      const aborted = new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await Promise.race([options.promoted, aborted]);
      if (signal.aborted) return;
      log.info("taking over from the stage process that ended");
    }
    const reporter = startReporter({
      producer,
      topic: config.kafka.topics.metrics,
      wire,
      role: stage,
      snapshot: () => metrics.snapshot(),
      log,
    });
    try {
      // Either consumer failing for good stops the other: the worker exits and is restarted whole.
      const failed = new AbortController();
      const stop = AbortSignal.any([signal, failed.signal]);
      const stopOthersOnFailure = (error: unknown) => {
        failed.abort();
        throw error;
      };
      const runs = [
        runStage(built, {
          consumer,
          topic: inputTopicOf(config, stage),
          log,
          metrics,
          signal: stop,
          // Every assigned partition at once: bronze's and silver's batches mostly wait on
          // Cassandra and Kafka round trips, which then overlap instead of adding up; gold folds
          // a fetch round's batches one after another and writes them in one flush.
          partitionsConsumedConcurrently: config.kafka.partitions,
          tickMs: Math.min(config.gold.flushIntervalMs, 1000),
        }).catch(stopOthersOnFailure),
      ];
      if (stage === "gold") {
        runs.push(
          runGapConsumer(kafka, { config, session, producer, wire, log, metrics, signal: stop })
            .catch(stopOthersOnFailure),
        );
      }
      const ends = await Promise.allSettled(runs);
      const failure = ends.find((end) => end.status === "rejected");
      if (failure) throw failure.reason;
    } finally {
      await reporter.stop();
    }
  } finally {
    await producer.disconnect().catch((error) => log.warn("producer disconnect failed", { error }));
    await session.shutdown().catch((error) => log.warn("cassandra shutdown failed", { error }));
  }
}

/**
 * The gold worker's second consumer: feed gaps into `feed_gaps` and gold coverage
 * (`gold/gap_stage.ts`), in a group of its own, until `signal` aborts.
 */
async function runGapConsumer(
  kafka: Kafka,
  deps: StageClients & { readonly signal: AbortSignal },
): Promise<void> {
  const { config, metrics, signal } = deps;
  const log = deps.log.child("gaps");
  const stage = createGapStage(commonStageOptions({ ...deps, log }));
  await runStage(stage, {
    consumer: createStageConsumer(kafka, config, gapsGroupIdOf(config), FETCH_HOLD_MS.gold),
    topic: config.kafka.topics.gaps,
    log,
    metrics,
    signal,
    metricsStage: "gold_gaps",
  });
}

/**
 * How long the broker may hold a stage's fetch while few records are waiting, so that they form
 * a larger batch: derived from what waits on the stage, not a setting.
 *
 * Every batch has costs that do not grow with its size (a Cassandra request per symbol and
 * table, a produce request, a fetch), and live they dominate: letting a batch form from what
 * arrived while the previous one was written (no hold) gave 4-8 records a batch at 500 trades/s
 * instead of 13-31 with a 100 ms hold, and 1.5 to 2.5 times the stages' CPU (bench:pipeline at
 * 500 and 2,000/s on the shared 2-core machine, load 11-16). So the stage a person waits on
 * through a tight budget holds for a fraction of it, the others for 100 ms:
 * - silver: 10 ms, half the hop's budget. It is the hop the ingest->silver latency target
 *   measures (p50 20 ms, p99 100 ms at 500 trades/s). Without a hold (a fetch answered at the
 *   first record) silver took 22% of a core at 500/s and 27% at 2,000, Cassandra 34% and 41%,
 *   for 8.3/30.4 ms; with 10 ms, 15% and 20%, Cassandra 25% and 35%, for 15.3/34.4 ms
 *   (bench:pipeline --rates 500,2000 --latency-rate 2000 --duration-s 45, alone, load 3-4.5).
 * - bronze: 100 ms. Its rows are the raw archive, which nothing reads live.
 * - gold: 100 ms, as before. Its readers (the live page) have a budget of a second from trade
 *   to candle, and its batches are the costliest per record; so does its feed-gap consumer. A
 *   round's batches are written together (`gold/gold_stage.ts`), a row per window the round
 *   touched (up to four per symbol) however many trades it holds: a shorter hold writes the same
 *   rows more often. At 5,000 trades/s a round is the 100 ms hold and then 36-59 ms (p50) of
 *   folding and writing, 80-161 ms (p90), where the partitions written one after another took
 *   105-132 and 209-270 (two runs each, gold's own timing, bench:pipeline --live-page, load 4-8).
 * With a hold, a fetch still returns at once when 256 KiB are waiting (a stage behind), so
 * batches grow with the backlog either way.
 *
 * Tried and not taken: silver without a hold, once an empty fetch made the next one wait for the
 * first record (`shared/kafkajs_idle_fetch.ts`). The producer paces its sends (at least 15 ms
 * apart, `producer/trade_buffer.ts`), so each send became a round of its own, with no hold ending
 * empty between two sends: silver 9% and 11% of a core at 500 trades/s against 12% and 14%; 15%
 * and 15% at 2,000/s against 15% and 18%; ingest->silver the same (p50 10.4-10.6 ms at 500/s
 * against 10.7-10.9); two pairs, alternating, `deno task bench:pipeline --rates 500,2000 --latency-rate
 * 2000 --duration-s 45 --warmup-s 20`, alone, load 0.9-1.8. Not taken: two or three points at
 * 500/s are inside the noise of these runs, and near the machine's limit (15,000/s) the hold is
 * what sizes silver's rounds, where it was not measured.
 * Tried and not taken: silver at 20 ms, with that idle fetch. Ingest->silver p50 at 500 trades/s
 * went from 10.5-10.6 ms to 22.7-22.8, over the 20 ms target, for no CPU saved at 2,000/s (stages,
 * Kafka and Cassandra 67% and 75% against 72% and 69%; same bench and conditions).
 * Tried and not taken: gold at 250 ms. At 2,000 trades/s it took gold from 16-17% to 11% of a
 * core, but the stages, Kafka and Cassandra together stayed at 76-79% (two pairs, alternating,
 * `deno task bench:pipeline --rates 2000 --latency-rate 2000 --duration-s 45 --warmup-s 20`,
 * alone, load 1.7-2.4), for 150 ms more on the way to the live page.
 */
export const FETCH_HOLD_MS: Readonly<Record<StageName, number>> = {
  bronze: 100,
  silver: 10,
  gold: 100,
};

/**
 * A stage's consumer in `groupId`: manual commits, batches sized by the load (see
 * {@linkcode FETCH_HOLD_MS} for `holdMs`), bounded in bytes.
 */
export function createStageConsumer(kafka: Kafka, config: Config, groupId: string, holdMs: number) {
  return kafka.consumer({
    groupId,
    sessionTimeout: config.kafka.sessionTimeoutMs,
    heartbeatInterval: config.kafka.heartbeatIntervalMs,
    // The broker answers once 256 KiB are there or `holdMs` has passed (no hold: as soon as it
    // has one record), and kafkajs sends the next fetch only once the previous one's batches are
    // durable, so what arrives while a batch is being written joins the next batch: small when
    // caught up, growing as long as the stage is behind. A fetch that came back empty makes the
    // next one wait for the first record instead, up to 500 ms (`shared/kafkajs_idle_fetch.ts`):
    // an idle stage asks twice a second, not at the end of every hold.
    // The fetch's bytes bound a worker's memory: kafkajs turns a whole fetch into messages, the
    // stage turns them into trades and rows, and all of it lives until the round is written, so
    // it outlives the young generation and dies in the old space. Each raw byte fetched cost
    // about 45 bytes of V8 heap that way (a 1 MiB round, about 11,000 trades, swung the heap by
    // ~45 MiB between collections), and the heap is most of what grows with the load. 128 KiB a
    // partition (about 1,400 trades) and 512 KiB a fetch: draining a full topic (the largest
    // batches), bronze peaked at 153-165 MiB RSS instead of 177-191 and silver at 150 instead of
    // 158 (three side-by-side drains of the same topic in separate groups, load 9-20), at 4-11%
    // more CPU per record and the same drain time. Caught up, a round holds what arrived during
    // the hold (bronze: about 130 KiB at 15,000 trades/s), under either bound.
    minBytes: holdMs === 0 ? 1 : 256 * 1024,
    maxWaitTimeInMs: holdMs === 0 ? 100 : holdMs,
    maxBytesPerPartition: 128 * 1024,
    maxBytes: 512 * 1024,
    allowAutoTopicCreation: false,
    retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
  });
}
