/**
 * Pieces of the producer's integration tests: fresh raw, dead-letter and feed-gap topics on the real
 * Kafka, the simulator as the feed (its ground-truth log kept), the producer running in-process
 * against it, and reading a topic back whole.
 *
 * @module
 */
import type { Config } from "../shared/config.ts";
import { createKafka, ensureTopics } from "../shared/kafka.ts";
import { type Logger, silentLogger } from "../shared/log.ts";
import type { DeadLetter, RawTrade } from "../shared/types.ts";
import { createProducer, type Producer, type ProducerReport } from "../producer/producer.ts";
import { deleteSubjects, services, testConfig, testLogger, testWire, waitFor } from "./helpers.ts";
import { randomId } from "../shared/random.ts";
import { delay } from "../shared/delay.ts";
import { type Simulator, type SimulatorOptions, startSimulator } from "../simulator/server.ts";

/** kafkajs keeps timers and sockets past `disconnect()`. */
export const kafkaTestOptions = { sanitizeOps: false, sanitizeResources: false };

/**
 * A config for the producer against `wsUrl`, on fresh topics that exist on the real Kafka.
 * Reconnect delays are short so tests run fast.
 */
export async function producerTestConfig(
  wsUrl: string,
  overrides: Record<string, string> = {},
): Promise<Config> {
  await services();
  const config = testConfig({
    FINNHUB_WS_URL: wsUrl,
    FINNHUB_API_KEY: `test-key-${randomId()}`,
    FINNHUB_RECONNECT_BASE_MS: "50",
    FINNHUB_RECONNECT_MAX_MS: "1000",
    FINNHUB_AUTH_BACKOFF_MS: "200",
    ...overrides,
  });
  const admin = createKafka(config.kafka, silentLogger()).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, config.kafka, producerTopics(config));
  } finally {
    await admin.disconnect();
  }
  return config;
}

/** The topics an in-process producer writes: raw trades, dead letters and feed gaps. */
function producerTopics(config: Config): string[] {
  const { raw, deadLetter, gaps } = config.kafka.topics;
  return [raw, deadLetter, gaps];
}

/** Deletes the producer's topics and their registry subjects (best effort). */
export async function deleteTopics(config: Config): Promise<void> {
  await deleteSubjects(producerTopics(config));
  const admin = createKafka(config.kafka, silentLogger()).admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: producerTopics(config) });
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect();
  }
}

/** A producer running in-process; `stop()` aborts it and waits for the flush. */
export interface RunningProducer {
  readonly producer: Producer;
  stop(): Promise<ProducerReport>;
}

/**
 * Starts the producer as `deno task producer` runs it, sending from its own thread (it connects
 * to Kafka, then to the feed).
 */
export function runProducer(config: Config, log: Logger = testLogger("producer")): RunningProducer {
  const controller = new AbortController();
  const producer = createProducer({ config, log, signal: controller.signal, statsIntervalMs: 0 });
  const running = producer.run();
  // A failure before stop() must not go unhandled while the test waits on something else.
  running.catch(() => {});
  return {
    producer,
    stop() {
      controller.abort();
      return running;
    },
  };
}

/** A simulator and a producer config against it, on fresh topics. */
export interface FeedRun {
  readonly sim: Simulator;
  readonly config: Config;
  /** The simulator's ground-truth log: every trade it sent. */
  readonly truthPath: string;
}

/**
 * Runs `body` with a simulator started with `options.simulator` (its ground-truth log in a
 * temporary directory) and a config against it on fresh topics (`producerTestConfig` with
 * `options.env`); then closes the simulator and deletes the topics and the directory, whatever
 * happened.
 */
export async function withFeed(
  options: { readonly simulator: SimulatorOptions; readonly env?: Record<string, string> },
  body: (run: FeedRun) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "producer-test-" });
  const truthPath = `${dir}/truth.ndjson`;
  let sim: Simulator | undefined;
  let config: Config | undefined;
  try {
    sim = await startSimulator({ ...options.simulator, groundTruthPath: truthPath });
    config = await producerTestConfig(sim.url, options.env);
    await body({ sim, config, truthPath });
  } finally {
    await sim?.close();
    if (config) await deleteTopics(config);
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * {@linkcode withFeed} with the producer running in-process against the simulator
 * ({@linkcode runProducer}, logging to `options.log`); it is stopped before the rest is closed.
 */
export function withProducer(
  options: {
    readonly simulator: SimulatorOptions;
    readonly env?: Record<string, string>;
    readonly log?: Logger;
  },
  body: (run: FeedRun & { readonly running: RunningProducer }) => Promise<void>,
): Promise<void> {
  return withFeed(options, async (feed) => {
    const running = runProducer(feed.config, options.log);
    try {
      await body({ ...feed, running });
    } finally {
      await running.stop().catch(() => {});
    }
  });
}

/** One record read back from a topic. */
export interface ReadRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly timestamp: number;
  readonly value: Uint8Array;
}

/**
 * Reads `topic` from the beginning (committed records only) until `expected` records arrived,
 * reads on for 1.5 s and checks no more came, so extra records fail the test.
 * Records come back in partition, then offset, order, with the schema ids they carry resolved
 * (so {@linkcode rawTrades} and {@linkcode deadLetters} decode them).
 */
export async function readTopic(
  config: Config,
  topic: string,
  expected: number,
  timeoutMs = 120_000,
): Promise<ReadRecord[]> {
  const kafka = createKafka(config.kafka, silentLogger(), { clientIdSuffix: "reader" });
  const consumer = kafka.consumer({ groupId: `${config.kafka.groupPrefix}.reader-${randomId()}` });
  const admin = kafka.admin();
  const records: ReadRecord[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: ({ batch }) => {
        for (const message of batch.messages) {
          records.push({
            partition: batch.partition,
            offset: Number(message.offset),
            key: message.key === null ? null : message.key.toString("utf8"),
            timestamp: Number(message.timestamp),
            value: new Uint8Array(message.value ?? []),
          });
        }
        return Promise.resolve();
      },
    });
    await waitFor(
      `${expected} records on ${topic} (have ${records.length})`,
      () => records.length >= expected,
      {
        timeoutMs,
      },
    );
    // The producer writes in transactions by default: each commit leaves a marker that takes an
    // offset, so the offsets bound the records from above only. Records past `expected` are
    // caught by reading on a while: the reader is at the end by then.
    await delay(1_500);
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    const total = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    if (total < expected || records.length !== expected) {
      throw new Error(
        `${topic} holds ${total} offsets and ${records.length} records were read, expected ${expected}`,
      );
    }
  } finally {
    await consumer.disconnect();
    await admin.disconnect();
  }
  await testWire().resolve(records.map((r) => r.value));
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** Decodes raw-topic records (read with {@linkcode readTopic}). */
export function rawTrades(
  records: readonly ReadRecord[],
): (RawTrade & { readonly record: ReadRecord })[] {
  return records.map((record) => ({ ...testWire().decode("Trade", record.value), record }));
}

/** Decodes dead-letter records (read with {@linkcode readTopic}). */
export function deadLetters(
  records: readonly ReadRecord[],
): (DeadLetter & { readonly key: string | null })[] {
  return records.map((record) => ({
    ...testWire().decode("DeadLetter", record.value),
    key: record.key,
  }));
}

/** The trade object a raw record came from, as the feed sent it (`c` left out when absent). */
export function asSent(trade: RawTrade): Record<string, unknown> {
  const { s, p, t, v, c } = trade;
  return c === "ABSENT" ? { s, p, t, v } : { s, p, t, v, c };
}
