/**
 * Reads the candle-updates topic (what gold publishes after each write) for the live market
 * page: a consumer group of its own per status instance, starting at the end of the topic, so
 * every instance sees every update and none replays history. Starting never blocks the status
 * endpoint: a topic or broker that is not there yet is retried in the background.
 *
 * It commits no offsets. Nothing would read them: the group's name is new on every start.
 * kafkajs's auto-commit also commits after every partition's batch before it hands over the
 * next, so each fetch round waited on one commit round trip (a log append in Kafka) per
 * partition before the updates of the last partition reached the page. A rejoin within
 * one run (a broker lost) starts again at the end of the topic: the updates missed are
 * replaced by the next of the same candles, which gold publishes on its next flush.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import { describeError, type Logger } from "../../shared/log.ts";
import type { CandleUpdate } from "../../shared/types.ts";
import type { WireCodec } from "../../shared/wire.ts";

/** Options of {@linkcode createCandleFeed}. */
export interface CandleFeedOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** Unique per status instance, e.g. `<prefix>.status-market-<random>`. */
  readonly groupId: string;
  /**
   * Decodes the updates (fetching each writer schema id once from the registry). A batch that
   * arrives while the registry cannot say what its ids mean is skipped (the page is best effort;
   * gold publishes newer states).
   */
  readonly wire: WireCodec;
  readonly log: Logger;
  readonly onUpdate: (update: CandleUpdate) => void;
  /** Delay before trying again after a failed start. Default 5000 ms. */
  readonly retryMs?: number;
}

/** The running feed. */
export interface CandleFeed {
  /** Starts consuming in the background; returns at once. */
  start(): void;
  /** Whether the consumer has joined its group (updates flow). */
  live(): boolean;
  stop(): Promise<void>;
}

/** Creates the feed; nothing connects until `start()`. */
export function createCandleFeed(options: CandleFeedOptions): CandleFeed {
  const { kafka, topic, groupId, wire, log } = options;
  const retryMs = options.retryMs ?? 5000;
  let consumer: Consumer | undefined;
  let joined = false;
  let stopped = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let undecodable = 0;

  async function run(): Promise<void> {
    const c = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
    consumer = c;
    c.on(c.events.GROUP_JOIN, () => joined = true);
    c.on(c.events.CRASH, (event) => {
      joined = false;
      if (!event.payload.restart) retry(event.payload.error);
    });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: false });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        try {
          await wire.resolve(batch.messages.map((m) => m.value));
        } catch (error) {
          if (undecodable++ % 1000 === 0) {
            log.warn("skipping candle updates: their schema ids cannot be resolved", {
              undecodable,
              error: describeError(error),
            });
          }
          return;
        }
        for (const message of batch.messages) {
          if (!message.value) continue;
          try {
            options.onUpdate(wire.decode("CandleUpdate", message.value));
          } catch (error) {
            if (undecodable++ % 1000 === 0) {
              log.warn("ignoring an undecodable candle update", {
                undecodable,
                error: describeError(error),
              });
            }
          }
        }
      },
    });
  }

  function retry(error: unknown): void {
    joined = false;
    if (stopped) return;
    log.warn("live candle updates unavailable, retrying", {
      topic,
      retryInMs: retryMs,
      error: describeError(error),
    });
    const old = consumer;
    consumer = undefined;
    old?.disconnect().catch(() => {});
    retryTimer = setTimeout(start, retryMs);
  }

  function start(): void {
    retryTimer = undefined;
    if (stopped || consumer) return;
    run().catch(retry);
  }

  return {
    start,
    live: () => joined,
    async stop() {
      stopped = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      joined = false;
      await consumer?.disconnect().catch(() => {});
      consumer = undefined;
    },
  };
}
