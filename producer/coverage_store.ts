/**
 * Where the producer keeps its coverage mark between runs (see `feed_gaps.ts`): the compacted
 * feed-coverage topic (`KAFKA_TOPIC_FEED_COVERAGE`, one partition), one `FeedCoverage` record per
 * mark keyed by the feed's identity, so compaction keeps each feed's last one for as long as the
 * topic lives. Kafka, not a local file: the producer already needs it, and a producer moved to
 * another machine or container still finds its mark. A fresh installation (or another feed)
 * finds none: its first start has no gap.
 *
 * Reading happens once at start: a consumer of a throw-away group reads the topic from the
 * beginning to the end offsets it had when the read began (no offsets committed) and keeps the
 * feed's last mark. A read that fails or takes longer than `timeoutMs` is logged and taken as no
 * mark: the producer starts anyway, that one downtime goes unrecorded.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import { describeError, type Logger } from "../shared/log.ts";
import type { Secret } from "../shared/secret.ts";
import type { WireCodec } from "../shared/wire.ts";
import type { CoverageMark } from "./feed_gaps.ts";
import type { SendingProducer } from "./kafka_sink.ts";

/** Reads the last coverage mark of a feed, and writes new ones. */
export interface CoverageStore {
  /** The feed's last mark, or `null` when it has none (never throws: a failure is `null`). */
  read(): Promise<CoverageMark | null>;
  /** Writes a mark made at `writtenAtMs`. Rejects when Kafka did not take it. */
  write(mark: CoverageMark, writtenAtMs: number): Promise<void>;
}

/**
 * The identity of a feed the marks and gap ids are kept by: the first 16 hex digits of the
 * SHA-256 of the feed URL (without the token) and the API key. One producer runs per key (Finnhub
 * allows one connection), so this is the producer's identity; the key itself cannot be read back
 * from it.
 */
export async function feedIdOf(displayUrl: string, apiKey: Secret): Promise<string> {
  const text = `${displayUrl}\n${apiKey.isSet ? apiKey.reveal() : ""}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest).subarray(0, 8)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@linkcode createKafkaCoverageStore}. */
export interface KafkaCoverageStoreOptions {
  readonly kafka: Pick<Kafka, "consumer" | "admin">;
  /** Writes the marks; connected by the caller. */
  readonly producer: SendingProducer;
  readonly topic: string;
  readonly feedId: string;
  /** Encodes and decodes `FeedCoverage` (registered for `topic`). */
  readonly wire: WireCodec;
  /** The group prefix the throw-away reading group starts with. */
  readonly groupPrefix: string;
  readonly log: Logger;
  /** Give up reading after this long, ms. Default 30 000. */
  readonly timeoutMs?: number;
}

/** The coverage store on the feed-coverage topic; see the module doc. */
export function createKafkaCoverageStore(options: KafkaCoverageStoreOptions): CoverageStore {
  const { producer, topic, feedId, wire, log } = options;
  return {
    async read() {
      try {
        return await readLastMark(options);
      } catch (error) {
        log.warn("cannot read the last coverage mark; this start records no producer_down gap", {
          topic,
          error: describeError(error),
        });
        return null;
      }
    },
    async write(mark, writtenAtMs) {
      await producer.send({
        topic,
        acks: -1,
        messages: [{
          key: feedId,
          value: wire.encode("FeedCoverage", {
            feedId,
            coveredUntilMs: mark.coveredUntilMs,
            symbols: mark.symbols,
            writtenAtMs,
          }),
        }],
      });
    },
  };
}

/** Reads the topic up to its current end and returns the feed's last mark. */
async function readLastMark(options: KafkaCoverageStoreOptions): Promise<CoverageMark | null> {
  const { kafka, topic, feedId, wire } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(
      offsets.filter((o) => BigInt(o.high) > BigInt(o.low))
        .map((o) => [o.partition, BigInt(o.high)]),
    );
  } finally {
    await admin.disconnect().catch(() => {});
  }
  if (ends.size === 0) return null;
  const groupId = `${options.groupPrefix}.producer-coverage-${crypto.randomUUID().slice(0, 8)}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  let last: CoverageMark | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`reading ${topic} took over ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          await wire.resolve(batch.messages.map((m) => m.value));
          for (const message of batch.messages) {
            if (message.key?.toString("utf8") === feedId && message.value) {
              const mark = wire.decode("FeedCoverage", message.value);
              last = { coveredUntilMs: mark.coveredUntilMs, symbols: mark.symbols };
            }
            const end = ends.get(batch.partition);
            if (end !== undefined && BigInt(message.offset) + 1n >= end) {
              ends.delete(batch.partition);
            }
          }
          if (ends.size === 0) resolve();
        },
      }).catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => {});
    const cleanup = kafka.admin();
    await cleanup.connect()
      .then(() => cleanup.deleteGroups([groupId]))
      .catch(() => {})
      .finally(() => cleanup.disconnect().catch(() => {}));
  }
  return last;
}
