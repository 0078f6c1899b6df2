/**
 * The consume loop every stage shares: at-least-once consumption with manual commits. A batch
 * is handed to the stage, which makes it durable (Cassandra writes, Kafka produces); only then
 * is the batch's offset recorded for a commit, and the offsets of all partitions are committed
 * together, in one request, once the fetch round's batches are all done (`offset_commits.ts`).
 * A retriable failure (Cassandra down, a timeout) pauses the partition: nothing is committed,
 * the same batch is retried with capped exponential backoff while the consumer keeps
 * heartbeating, and consumption resumes by itself once it succeeds. Idempotent writes turn the
 * redeliveries this allows into exactly-once results.
 *
 * @module
 */
import type { Consumer, EachBatchPayload, KafkaMessage, TopicOffsets } from "kafkajs";
import { exponentialDelay } from "../shared/backoff.ts";
import { delay } from "../shared/delay.ts";
import { isRetriable } from "../shared/errors.ts";
import { describeError, type Logger } from "../shared/log.ts";
import type { Counter, MetricsRegistry } from "../shared/metrics.ts";
import type { StageName } from "../shared/topology.ts";
import { METRIC } from "../shared/metric_names.ts";
import { createSerialQueue } from "../shared/serial_queue.ts";
import { type CommitRequest, OffsetCommits, type PartitionOffset } from "./offset_commits.ts";

/** One batch of one partition, in offset order. */
export interface StageBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly KafkaMessage[];
}

/** What a stage implements; the runner does the consuming and committing. */
export interface Stage {
  readonly name: StageName;
  /**
   * Makes every message of the batch durable. Bad messages are the stage's to dead-letter;
   * throw only for failures of the stage's own dependencies (retriable or not).
   */
  processBatch(batch: StageBatch): Promise<void>;
  /**
   * Batches of different partitions may be in `processBatch` at once, and ticks may overlap
   * them (the stage keeps no state shared across partitions, or orders its own steps). Default
   * false: batches and ticks never overlap.
   */
  readonly concurrentPartitions?: boolean;
  /**
   * Called when the group reassigns partitions, before any batch of the new assignment, with
   * the partitions of the input topic now assigned to this worker.
   */
  onRebalance?(partitions: readonly number[]): void;
  /** Called every `tickMs` while running, serialised with batches. */
  tick?(): Promise<void>;
  /** Flushes and releases the stage's own resources (not the clients it was given). */
  close?(): Promise<void>;
}

/** Options of {@linkcode runStage}. */
export interface RunStageOptions {
  readonly consumer: Consumer;
  readonly topic: string;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly signal: AbortSignal;
  /** Partitions processed at once. Default 1. */
  readonly partitionsConsumedConcurrently?: number;
  /** First retry delay in ms. Default 250. */
  readonly retryBaseMs?: number;
  /** Longest retry delay in ms. Default 10000. */
  readonly retryMaxMs?: number;
  /**
   * The `stage` label of the runner's metrics. Default the stage's name; a second consumer in a
   * stage's process (the gold worker's feed-gap consumer) counts under its own.
   */
  readonly metricsStage?: string;
  /** Period of `stage.tick()` in ms. Default 500. */
  readonly tickMs?: number;
  /**
   * How often the consumer heartbeats while batches are being made durable (a slow or hanging
   * Cassandra request must not cost the member its place in the group). Default 1000.
   */
  readonly batchHeartbeatMs?: number;
}

/**
 * Consumes `topic` into `stage` until `signal` aborts, then stops consuming, lets the batch in
 * hand finish, and returns. Throws when the consumer fails for good (a non-retriable error).
 */
export async function runStage(stage: Stage, options: RunStageOptions): Promise<void> {
  const { consumer, topic, log, metrics, signal } = options;
  const retryBaseMs = options.retryBaseMs ?? 250;
  const retryMaxMs = options.retryMaxMs ?? 10_000;
  const labels = { stage: options.metricsStage ?? stage.name };
  const batches = metrics.counter("pipeline_stage_batches_total", "Batches made durable.");
  const messagesIn = metrics.counter(
    METRIC.stageMessagesIn,
    "Kafka records consumed and made durable by the stage.",
  );
  const retries = metrics.counter(
    METRIC.stageRetries,
    "Batch attempts that failed with a retriable error and were retried.",
  );
  const paused = metrics.gauge(
    "pipeline_stage_paused",
    "1 while the stage retries a batch because a dependency is unavailable.",
  );
  const batchSeconds = metrics.histogram(
    "pipeline_stage_batch_duration_seconds",
    "Time to make one batch durable.",
  );
  const commitLag = metrics.gauge(
    "pipeline_stage_partition_lag_records",
    "Records behind the log end after the last batch, as the consumer saw it.",
  );
  const lostCommits = metrics.counter(
    "pipeline_stage_commits_lost_to_rebalance_total",
    "Partition offsets made durable whose commit the group refused because the partition had " +
      "moved on (their batches are redelivered and rewritten idempotently).",
  );
  const batchHeartbeatMs = options.batchHeartbeatMs ?? 1_000;

  // Batches and ticks of one stage never overlap.
  const serial = createSerialQueue();

  let failure: unknown;
  const failed = Promise.withResolvers<void>();

  const committing = commitOnRoundEnds(consumer, { topic, log, labels, lostCommits });
  // Heartbeats while batches are being made durable (a slow or hanging Cassandra request must
  // not cost the member its place in the group): one timer for the run, not one per batch.
  let inFlight = 0;
  let heartbeat: (() => Promise<void>) | undefined;
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    const assigned = event.payload.memberAssignment[topic] ?? [];
    log.info("joined group", {
      memberAssignment: event.payload.memberAssignment,
      joinMs: event.payload.duration,
    });
    committing.joined(assigned);
    stage.onRebalance?.(assigned);
  });
  // A fetch whose records are all control records or aborted ones (a transaction's commit
  // marker ends the partition: the producer writes in transactions under PRODUCER_LEASE=kafka)
  // never reaches eachBatch, and kafkajs resolves its offset only for its own auto-commit: the
  // group stayed one behind the log end for good. Nothing in it is a record to make durable, and
  // kafkajs fetches past a partition's offset only once every earlier batch of it was resolved
  // (made durable), so its last offset is committed like a batch's.
  consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
    const { topic: batchTopic, partition, batchSize, lastOffset } = event.payload;
    if (batchSize !== 0 || batchTopic !== topic) return;
    committing.commits.durable(batchTopic, partition, BigInt(lastOffset) + 1n);
  });
  consumer.on(consumer.events.CRASH, (event) => {
    const error = event.payload.error;
    log.error("consumer crashed", { error, restart: event.payload.restart });
    if (!event.payload.restart) {
      failure = error;
      failed.resolve();
    }
  });

  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
    eachBatch: async (payload) => {
      const { batch, resolveOffset, isRunning, isStale } = payload;
      if (batch.messages.length === 0) return;
      committing.use(payload);
      heartbeat = payload.heartbeat;
      const last = batch.messages[batch.messages.length - 1]!;
      const started = performance.now();
      inFlight++;
      try {
        for (let attempt = 0;; attempt++) {
          if (!isRunning() || isStale() || signal.aborted) return;
          try {
            const work = () =>
              stage.processBatch({
                topic: batch.topic,
                partition: batch.partition,
                messages: batch.messages,
              });
            // kafkajs never hands over two batches of one partition at once.
            await (stage.concurrentPartitions ? work() : serial(work));
            break;
          } catch (error) {
            if (!isRetriable(error)) throw error;
            retries.inc(labels);
            paused.set(1, labels);
            const jittered = exponentialDelay(attempt, {
              baseMs: retryBaseMs,
              maxMs: retryMaxMs,
              jitter: "equal",
            });
            const log_ = attempt === 0 || attempt % 10 === 0 ? log.warn : log.debug;
            log_("batch failed, retrying; nothing committed", {
              partition: batch.partition,
              firstOffset: batch.firstOffset(),
              attempt: attempt + 1,
              retryInMs: jittered,
              error: describeError(error),
            });
            await delay(jittered, signal);
          }
        }
      } finally {
        inFlight--;
      }
      paused.set(0, labels);
      // Past the batch's last record, not its last message: a transaction's commit marker (the
      // producer writes in transactions) and aborted records take offsets but are no messages;
      // committing only up to the last message left the group one behind the log end for good.
      const through = BigInt(batch.lastOffset()) > BigInt(last.offset)
        ? batch.lastOffset()
        : last.offset;
      resolveOffset(through);
      committing.commits.durable(batch.topic, batch.partition, BigInt(through) + 1n);
      batches.inc(labels);
      messagesIn.inc(labels, batch.messages.length);
      batchSeconds.observe((performance.now() - started) / 1000, labels);
      commitLag.set(Number(batch.offsetLag()), { ...labels, partition: String(batch.partition) });
      // Stopping: no fetch follows to flush, so the batches in hand commit before kafkajs leaves
      // the group. (kafkajs heartbeats after every batch by itself.)
      if (!isRunning()) await committing.flush();
    },
  });
  log.info("consuming", { topic });
  // kafkajs sends at most one heartbeat per heartbeatInterval however often this is called.
  const heartbeats = setInterval(() => {
    if (inFlight > 0) heartbeat?.().catch(() => {});
  }, batchHeartbeatMs);

  const tickMs = options.tickMs ?? 500;
  let tickFailures = 0;
  const timer = stage.tick
    ? setInterval(() => {
      serial(() => stage.tick!()).then(() => {
        if (tickFailures > 0) log.info("tick recovered", { afterFailures: tickFailures });
        tickFailures = 0;
      }, (error) => {
        // Once, then every 60th (about every 30 s): an outage must not flood the log.
        if (tickFailures++ % 60 === 0) {
          log.warn("tick failed", { failures: tickFailures, error: describeError(error) });
        }
      });
    }, tickMs)
    : undefined;

  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  try {
    await Promise.race([aborted, failed.promise]);
  } finally {
    if (timer !== undefined) clearInterval(timer);
    log.info("stopping: finishing the batch in hand, then committing");
    // What finished rounds made durable; the batches in hand commit their own as they end.
    await committing.flush();
    await consumer.stop().catch((error) => log.warn("stop failed", { error }));
    committing.stop();
    clearInterval(heartbeats);
    await serial(() => stage.close?.() ?? Promise.resolve()).catch((error) =>
      log.warn("close failed", { error: describeError(error) })
    );
    await consumer.disconnect().catch((error) => log.warn("disconnect failed", { error }));
  }
  if (failure !== undefined) throw failure;
}

/** What {@linkcode commitOnRoundEnds} gives the consume loop. */
interface RoundCommits {
  /** Where batches record what they made durable. */
  readonly commits: OffsetCommits;
  /** Takes the commit and running state of kafkajs's latest batch. */
  use(payload: Pick<EachBatchPayload, "commitOffsetsIfNecessary" | "isRunning">): void;
  /** Commits what is durable now (stopping, or the batches in hand while stopping). */
  flush(): Promise<void>;
  /** Drops the commit waiting for the end of the interval (stopping: `flush` follows). */
  stop(): void;
  /** The group assigned `partitions` of the topic to this member. */
  joined(partitions: readonly number[]): void;
}

/**
 * Commits what batches of `consumer` made durable, for every partition in one request: when a
 * fetch round ends (at most every {@linkcode COMMIT_INTERVAL_MS}: a round ending sooner commits
 * when the interval is up), when the group rebalances, and when asked (stopping).
 */
function commitOnRoundEnds(
  consumer: Consumer,
  deps: {
    readonly topic: string;
    readonly log: Logger;
    readonly labels: Record<string, string>;
    readonly lostCommits: Counter;
  },
): RoundCommits {
  const { topic, log, labels, lostCommits } = deps;
  // Since when this process holds its partitions without having committed on them: the first
  // commit after a join is logged with the time it took (a takeover's stall, as seen here).
  let joinedAt: number | undefined;
  let failures = 0;
  const commits = new OffsetCommits({
    lostMembership: lostGroupMembership,
    onCommitted: (offsets) => {
      failures = 0;
      if (joinedAt === undefined) return;
      log.info("first batch since joining the group committed", {
        partitions: offsets.map((o) => o.partition),
        sinceJoinMs: Math.round(performance.now() - joinedAt),
      });
      joinedAt = undefined;
    },
    onRefused: (offsets, error) => {
      // The group moved on (this member timed out or a rebalance began) while the batches were
      // made durable. Their writes stand; whoever owns the partitions now gets the batches again
      // and rewrites the same rows. kafkajs rejoins on its next fetch.
      lostCommits.inc(labels, offsets.length);
      log.warn("commit refused by the group: the batches will be redelivered", {
        offsets,
        error: describeError(error),
      });
    },
    onFailed: (offsets, error) => {
      // Even after kafkajs's retries. The offsets stay recorded for the next flush; a crash
      // meanwhile only redelivers more. Once, then every 10th failure in a row.
      if (failures++ % 10 === 0) {
        log.warn("commit failed, retried with the next one", {
          offsets,
          failures,
          error: describeError(error),
        });
      }
    },
  });
  // While running, kafkajs's `consumer.commitOffsets`, with its retries, as the group is now
  // (its current generation); it commits nothing once the consumer stops, so the batches still
  // in hand then commit with the commit kafkajs hands each batch, which still works (no retries).
  let latest: Pick<EachBatchPayload, "commitOffsetsIfNecessary" | "isRunning"> | undefined;
  const send: CommitRequest = (offsets) =>
    latest !== undefined && !latest.isRunning()
      ? latest.commitOffsetsIfNecessary({ topics: byTopic(offsets) })
      : consumer.commitOffsets([...offsets]);
  const flush = () => commits.flush(send);
  // kafkajs sends the next fetch only once every batch of the previous one has returned, and
  // announces it: the rounds' durable offsets go out in one request, just before that fetch, at
  // most once every COMMIT_INTERVAL_MS. A round that ends sooner leaves its offsets to a timer
  // for the rest of the interval: an idle consumer's next fetch may wait half a second for a
  // record (`kafkajs_idle_fetch.ts`), and what is durable is committed within the interval.
  let lastCommitAt = -Infinity;
  let later: ReturnType<typeof setTimeout> | undefined;
  const commitRound = () => {
    later = undefined;
    if (commits.pending === 0) return;
    lastCommitAt = performance.now();
    void flush();
  };
  consumer.on(consumer.events.FETCH_START, () => {
    if (commits.pending === 0 || later !== undefined) return;
    const wait = lastCommitAt + COMMIT_INTERVAL_MS - performance.now();
    if (wait <= 0) commitRound();
    else later = setTimeout(commitRound, wait);
  });
  // The group is rebalancing: commit what is durable while the partitions are still ours. The
  // commit a timer was waiting to send goes now too: sent later, during the rebalance, the group
  // would refuse it, and its batches would be read and written again even by this member.
  consumer.on(consumer.events.REBALANCING, () => {
    clearTimeout(later);
    later = undefined;
    void flush();
  });
  return {
    commits,
    use: (payload) => latest = payload,
    flush,
    stop: () => {
      clearTimeout(later);
      later = undefined;
    },
    joined: (partitions) => {
      joinedAt = performance.now();
      // Offsets of partitions another member now owns are its to commit.
      commits.retain(topic, partitions);
    },
  };
}

/** `offsets` as kafkajs's commit takes them: grouped by topic. */
function byTopic(offsets: readonly PartitionOffset[]): TopicOffsets[] {
  const topics = new Map<string, TopicOffsets>();
  for (const { topic, partition, offset } of offsets) {
    let entry = topics.get(topic);
    if (entry === undefined) topics.set(topic, entry = { topic, partitions: [] });
    entry.partitions.push({ partition, offset });
  }
  return [...topics.values()];
}

/**
 * Shortest time between two commits sent at the end of fetch rounds. Caught up, rounds follow
 * the upstream's flushes (every 20-50 ms at live rates); a commit each would be a request and
 * a log append in Kafka per round for no reader's benefit: a commit only bounds what a
 * restarted worker reads again. Stopping and rebalancing commit at once, whatever the time.
 */
export const COMMIT_INTERVAL_MS = 100;

const MEMBERSHIP_ERRORS: ReadonlySet<string> = new Set([
  "UNKNOWN_MEMBER_ID",
  "ILLEGAL_GENERATION",
  "REBALANCE_IN_PROGRESS",
  "FENCED_INSTANCE_ID",
]);

/**
 * True when `error` (or an error it wraps, as kafkajs's retrier does) says this consumer is no
 * longer the group member the partition belongs to.
 */
export function lostGroupMembership(error: unknown): boolean {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === "string" && MEMBERSHIP_ERRORS.has(type)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
