/**
 * A kafkajs 2.2.4 consumer carries on when a broker dies, as soon as the cluster has elected new
 * leaders and a new group coordinator, instead of stalling until its retries run out.
 *
 * Measured with the cluster suite (`tests/cluster/cluster_test.ts`, kill -9 of the broker leading
 * most partitions for 60 s): the producer's deliveries resumed 7-21 s after the kill, silver's
 * committed progress only after 81 s, all partitions, not only the dead broker's. Two gaps in
 * kafkajs's consumer group (`src/consumer/consumerGroup.js`) make it so:
 *
 * 1. A fetch from a dead leader fails to connect (`KafkaJSConnectionError`, ECONNREFUSED: the
 *    broker pool bails on connection errors "to refresh metadata on a higher level"), and
 *    `recoverFromFetch` does not handle that error: it handles a connection *closed* mid-request
 *    and a broker missing from the metadata, not one that refuses. The error ends that fetcher,
 *    the fetch manager stops every other fetcher, and the runner retries the whole fetch manager
 *    with backoff (the stages' 10 retries, 300 ms to 10 s: about a minute) against the same
 *    cached metadata, which is refreshed only every `metadataMaxAge` (5 minutes): every
 *    partition stops until the retries run out and the consumer crashes and restarts.
 *    {@linkcode recoverFromFetch} handles it as kafkajs handles a missing broker: refresh the
 *    metadata and fetch again, after {@linkcode DEAD_BROKER_BACKOFF_MS}, from that one fetcher;
 *    the others go on. Once the controller has fenced the broker (`broker.session.timeout.ms`),
 *    the metadata names the new leaders, the broker leaves the broker pool, and kafkajs's fetch
 *    manager recreates its fetchers for the brokers that remain.
 * 2. The group coordinator is looked up only when the consumer joins. Heartbeats go to that
 *    broker for good; commits too (the offset manager reconnects to the same node id). When it
 *    dies or stops, every heartbeat fails (the error ends the fetchers as above) and every commit
 *    fails, and after it restarts it answers NOT_COORDINATOR (measured: about 48 s of "This is
 *    not the correct coordinator" after a clean broker stop), until a crash makes the consumer
 *    join again. {@linkcode heartbeat} and {@linkcode commitOffsets} find the coordinator anew
 *    when it is unreachable or says it is not the coordinator, as the Java client does
 *    (`markCoordinatorUnknown`): the member, its generation and its partitions stay what they
 *    are (the new coordinator loads the group from `__consumer_offsets`); a heartbeat is sent
 *    again at once to the new coordinator, a commit is thrown so that its caller's retry sends
 *    it there.
 *
 * Everything else is kafkajs's: other errors go where they went before, unchanged. The methods
 * are replaced on kafkajs's `ConsumerGroup` prototype, which every consumer of the process
 * builds its group from, so the order of imports does not matter; `createKafka` installs them.
 *
 * @module
 */
import ConsumerGroup from "kafkajs/src/consumer/consumerGroup.js";

// deno-lint-ignore no-explicit-any
type Any = any;

/** The parts of kafkajs's `ConsumerGroup` this module reads and replaces. */
export interface ConsumerGroupInternals {
  groupId: string;
  cluster: Any;
  coordinator: Any;
  offsetManager: { coordinator: Any } | null;
  logger: Any;
  recoverFromFetch(error: unknown): Promise<void>;
  heartbeat(options: { interval: number }): Promise<void>;
  commitOffsets(offsets?: unknown): Promise<void>;
}

const prototype = (ConsumerGroup as unknown as { prototype: ConsumerGroupInternals }).prototype;

/** kafkajs's methods, as shipped (for tests showing what they do). */
export const ORIGINAL = {
  recoverFromFetch: prototype.recoverFromFetch,
  heartbeat: prototype.heartbeat,
  commitOffsets: prototype.commitOffsets,
} as const;

/**
 * How long a fetcher waits before fetching again from a broker that refused the connection: the
 * metadata is refreshed before each attempt, and until the controller fences the dead broker
 * (`broker.session.timeout.ms`, 6-9 s) it still names it leader.
 */
export const DEAD_BROKER_BACKOFF_MS = 250;

/** A broker could not be reached (refused, reset, timed out connecting), not a protocol error. */
function isConnectionError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === "KafkaJSConnectionError" || name === "KafkaJSConnectionClosedError";
}

/**
 * The coordinator the request went to is gone or is no longer the group's: unreachable, missing
 * from the metadata, or answering NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE (kafkajs names
 * codes 14-16 after groups).
 */
export function isCoordinatorError(error: unknown): boolean {
  const e = error as { type?: unknown; name?: unknown } | null;
  return isConnectionError(error) || e?.name === "KafkaJSBrokerNotFound" ||
    e?.type === "NOT_COORDINATOR_FOR_GROUP" || e?.type === "GROUP_COORDINATOR_NOT_AVAILABLE";
}

async function recoverFromFetch(this: ConsumerGroupInternals, error: unknown): Promise<void> {
  // A connection closed mid-request stays kafkajs's: it drops the broker from the pool, which
  // refreshes the metadata at the next fetch. A refused one is a dead leader (see the module).
  if ((error as { name?: unknown } | null)?.name !== "KafkaJSConnectionError") {
    return await ORIGINAL.recoverFromFetch.call(this, error);
  }
  this.logger.warn("Cannot reach the partitions' leader, refreshing metadata", {
    groupId: this.groupId,
    error: (error as Error).message,
  });
  await new Promise((resolve) => setTimeout(resolve, DEAD_BROKER_BACKOFF_MS));
  // Kafka wholly unreachable: the refused fetch's own error goes on to kafkajs, which retries
  // and restarts the consumer on it as before.
  await this.cluster.refreshMetadata().catch(() => {
    throw error;
  });
}

/** Finds the group's coordinator again and makes heartbeats and commits go to it. */
async function findCoordinatorAgain(this: ConsumerGroupInternals, error: unknown): Promise<void> {
  this.logger.warn("Group coordinator unreachable or moved, finding it again", {
    groupId: this.groupId,
    error: (error as Error).message,
  });
  const coordinator = await this.cluster.findGroupCoordinator({ groupId: this.groupId });
  this.coordinator = coordinator;
  if (this.offsetManager) this.offsetManager.coordinator = coordinator;
}

async function heartbeat(
  this: ConsumerGroupInternals,
  options: { interval: number },
): Promise<void> {
  try {
    return await ORIGINAL.heartbeat.call(this, options);
  } catch (error) {
    if (!isCoordinatorError(error)) throw error;
    // No coordinator to be found (Kafka wholly unreachable): kafkajs's lookup error is not
    // retriable and would end the consumer for good, so the heartbeat's own (retriable) error
    // goes on, as kafkajs would have thrown it.
    await findCoordinatorAgain.call(this, error).catch(() => {
      throw error;
    });
    return await ORIGINAL.heartbeat.call(this, options);
  }
}

async function commitOffsets(this: ConsumerGroupInternals, offsets?: unknown): Promise<void> {
  try {
    return await ORIGINAL.commitOffsets.call(this, offsets);
  } catch (error) {
    if (isCoordinatorError(error)) {
      await findCoordinatorAgain.call(this, error).catch(() => {});
    }
    throw error;
  }
}

/** Installs the replacements on kafkajs's `ConsumerGroup` (see the module doc); idempotent. */
export function failOverConsumerGroups(): void {
  prototype.recoverFromFetch = recoverFromFetch;
  prototype.heartbeat = heartbeat;
  prototype.commitOffsets = commitOffsets;
}
