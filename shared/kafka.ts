/**
 * Kafka client helpers on kafkajs: one place that builds clients from the config, routes
 * kafkajs's own log lines through our logger, and creates the pipeline's topics idempotently.
 *
 * @module
 */
import process from "node:process";
// Before kafkajs: its producers must load with the fixed retries (see the modules).
import { assertProduceRetryFixed } from "./kafkajs_produce_retry.ts";
import { assertEndTxnRetryFixed } from "./kafkajs_endtxn_retry.ts";
import { type Admin, Kafka, type LogEntry, logLevel } from "kafkajs";
import type { Config } from "./config.ts";
import { failOverConsumerGroups } from "./kafkajs_consumer_failover.ts";
import { speedUpKafkajs } from "./kafkajs_fast.ts";
import { stopIdlePolling } from "./kafkajs_idle_fetch.ts";
import { stopIdleRequestQueueLoop } from "./kafkajs_request_queue.ts";
import type { Logger } from "./log.ts";

/** Options of {@linkcode createKafka}. */
export interface CreateKafkaOptions {
  /** Appended to `KAFKA_CLIENT_ID` so brokers can tell workers apart. Default none. */
  readonly clientIdSuffix?: string;
  /** Connection timeout in ms. Default 3000. */
  readonly connectionTimeout?: number;
}

/**
 * Builds a kafkajs client; it connects only when a producer, consumer or admin does. Installs
 * the faster record encoding of `kafkajs_fast.ts`, the idle-loop fix of
 * `kafkajs_request_queue.ts`, the consumers' broker failover of `kafkajs_consumer_failover.ts`
 * and the idle stages' long fetch of `kafkajs_idle_fetch.ts` on first use.
 */
export function createKafka(
  config: Config["kafka"],
  log: Logger,
  options: CreateKafkaOptions = {},
): Kafka {
  assertProduceRetryFixed();
  assertEndTxnRetryFixed();
  speedUpKafkajs();
  stopIdleRequestQueueLoop();
  failOverConsumerGroups();
  stopIdlePolling();
  const kafkaLog = log.child("kafkajs");
  return new Kafka({
    clientId: options.clientIdSuffix
      ? `${config.clientId}-${options.clientIdSuffix}`
      : config.clientId,
    brokers: [...config.brokers],
    connectionTimeout: options.connectionTimeout ?? 3000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5_000 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...fields } = entry.log;
      const line = `${entry.namespace}: ${message}`;
      if (entry.level <= logLevel.ERROR) kafkaLog.error(line, fields);
      else kafkaLog.warn(line, fields);
    },
  });
}

/** The topics of the pipeline, in the order `ensureTopics` reports them. */
export function pipelineTopics(config: Config["kafka"]): string[] {
  return [
    config.topics.raw,
    config.topics.silver,
    config.topics.deadLetter,
    config.topics.metrics,
    config.topics.candles,
    config.topics.gaps,
    config.topics.coverage,
  ];
}

/** Retention of the metrics topic: reports are only read live. */
export const METRICS_RETENTION_MS = 3_600_000;

/** Retention of the candle-updates topic: the market page reads it live, Cassandra keeps candles. */
export const CANDLES_RETENTION_MS = 3_600_000;

/**
 * Partitions, retention and clean-up a topic gets: the configured ones, except for the metrics
 * topic, which needs one partition (reports of all workers in one order) and an hour of
 * retention, the candle-updates topic, which keeps the configured partitions but only an hour,
 * and the feed-coverage topic: one partition, compacted (only each feed's last mark matters, and
 * it must outlive any downtime).
 */
export function topicSettings(
  config: Config["kafka"],
  topic: string,
): { partitions: number; retentionMs: number; cleanupPolicy: "delete" | "compact" } {
  const retentionMs = config.retentionHours * 3_600_000;
  if (topic === config.topics.metrics) {
    return { partitions: 1, retentionMs: METRICS_RETENTION_MS, cleanupPolicy: "delete" };
  }
  if (topic === config.topics.candles) {
    return {
      partitions: config.partitions,
      retentionMs: CANDLES_RETENTION_MS,
      cleanupPolicy: "delete",
    };
  }
  if (topic === config.topics.coverage) {
    return { partitions: 1, retentionMs, cleanupPolicy: "compact" };
  }
  return { partitions: config.partitions, retentionMs, cleanupPolicy: "delete" };
}

/** What {@linkcode ensureTopics} did to each topic. */
export interface TopicOutcome {
  readonly topic: string;
  readonly action: "created" | "unchanged" | "partitions-increased" | "retention-updated";
  readonly partitions: number;
}

/**
 * `admin.createTopics` with `waitForLeaders`, tolerating kafkajs' wait on a cluster of several
 * brokers: it asks one broker for the new topics' metadata, and a broker that has not yet applied
 * the controller's update answers UNKNOWN_TOPIC_OR_PARTITION, which kafkajs does not retry. The
 * topics exist by then; this waits (up to 30 s) until every partition has a leader.
 */
async function createTopicsWaitingForLeaders(
  admin: Admin,
  options: Omit<Parameters<Admin["createTopics"]>[0], "waitForLeaders">,
): Promise<void> {
  try {
    await admin.createTopics({ ...options, waitForLeaders: true });
    return;
  } catch (error) {
    if ((error as { type?: unknown })?.type !== "UNKNOWN_TOPIC_OR_PARTITION") throw error;
  }
  const topics = options.topics.map((t) => t.topic);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      if (meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) {
        return;
      }
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) {
      throw new Error(`topics ${topics.join(", ")} were created but have no leader after 30 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Brings `topic` to `partitions`. Another process provisioning the same topics at the same time
 * (two producers starting together) may have just created it, so the metadata read a moment ago
 * can show fewer partitions than it has: Kafka then refuses the increase (INVALID_PARTITIONS), and
 * a fresh read that shows enough means there was nothing to do.
 */
async function increasePartitions(
  admin: Admin,
  topic: string,
  partitions: number,
): Promise<TopicOutcome["action"]> {
  try {
    await admin.createPartitions({ topicPartitions: [{ topic, count: partitions }] });
    return "partitions-increased";
  } catch (error) {
    if ((error as { type?: string }).type !== "INVALID_PARTITIONS") throw error;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      const count = metadata.topics.find((t) => t.name === topic)?.partitions.length ?? 0;
      if (count >= partitions) return "unchanged";
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/**
 * Creates every pipeline topic that is missing and brings existing ones to the configured
 * partition count (never fewer: Kafka cannot shrink a topic) and retention. Safe to run again.
 */
export async function ensureTopics(
  admin: Admin,
  config: Config["kafka"],
  topics: readonly string[] = pipelineTopics(config),
): Promise<TopicOutcome[]> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0) {
    await createTopicsWaitingForLeaders(admin, {
      topics: missing.map((topic) => ({
        topic,
        numPartitions: topicSettings(config, topic).partitions,
        replicationFactor: config.replicationFactor,
        configEntries: [
          { name: "retention.ms", value: String(topicSettings(config, topic).retentionMs) },
          { name: "cleanup.policy", value: topicSettings(config, topic).cleanupPolicy },
          { name: "min.insync.replicas", value: String(Math.min(2, config.replicationFactor)) },
        ],
      })),
    });
  }
  const outcomes: TopicOutcome[] = missing.map((topic) => ({
    topic,
    action: "created",
    partitions: topicSettings(config, topic).partitions,
  }));
  const present = topics.filter((t) => existing.has(t));
  if (present.length === 0) return outcomes;
  const metadata = await admin.fetchTopicMetadata({ topics: present });
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: present.map((name) => ({ type: 2, name, configNames: ["retention.ms"] })),
  });
  for (const topic of present) {
    const settings = topicSettings(config, topic);
    const retentionMs = String(settings.retentionMs);
    const count = metadata.topics.find((t) => t.name === topic)?.partitions.length ?? 0;
    let action: TopicOutcome["action"] = "unchanged";
    if (count < settings.partitions) {
      action = await increasePartitions(admin, topic, settings.partitions);
    }
    const retention = described.resources.find((r) => r.resourceName === topic)?.configEntries
      .find((e) => e.configName === "retention.ms")?.configValue;
    if (retention !== retentionMs) {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{
          type: 2,
          name: topic,
          // AlterConfigs replaces a topic's settings: the clean-up policy goes with it.
          configEntries: [
            { name: "retention.ms", value: retentionMs },
            { name: "cleanup.policy", value: settings.cleanupPolicy },
          ],
        }],
      });
      if (action === "unchanged") action = "retention-updated";
    }
    outcomes.push({ topic, action, partitions: Math.max(count, settings.partitions) });
  }
  return outcomes;
}

/**
 * kafkajs 2.2.4 schedules a timer with a negative delay, which Deno's Node layer reports as a
 * `TimeoutNegativeWarning` (tulios/kafkajs#1751, harmless). Call once from a `main.ts` to hide
 * that one warning; every other process warning is still printed.
 */
export function hideKafkajsTimeoutWarning(): void {
  process.removeAllListeners("warning");
  process.on("warning", (warning: Error) => {
    if (warning.name !== "TimeoutNegativeWarning") {
      console.error(`warning: ${warning.name}: ${warning.message}`);
    }
  });
}
