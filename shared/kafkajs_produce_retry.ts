/**
 * A produce retry that cannot report success for messages never written, for kafkajs 2.2.4.
 *
 * kafkajs sends one `send()` as one Produce request per partition leader and retries failed
 * ones; its `sendMessages` remembers across retries which *brokers* have answered and skips
 * them. When a broker dies during a send, its partitions move to other brokers, and if such a
 * broker had already answered, the retry skips it: the moved partitions' messages are never
 * written and the send resolves as a success (tulios/kafkajs#1798, #1303). Measured with the
 * cluster suite (`tests/cluster/cluster_test.ts`): `kill -9` of the active controller at 1,000
 * trades/s lost 217 of 114,740 trades the producer counted as produced; a rolling restart lost
 * 13 of 426,927.
 *
 * @linkcode createSendMessages} is kafkajs's `sendMessages` with one change: it remembers which
 * *partitions* have been acknowledged, and each attempt sends every partition not yet acknowledged
 * to its current leader, whichever brokers answered before. A broker's request is still
 * acknowledged or failed as a whole, as in kafkajs, so a retry resends at most what kafkajs would
 * have resent, plus what it would have dropped, in as many requests. Three more changes keep that
 * exact: the messages are assigned to partitions once per send (kafkajs re-ran the partitioner on
 * each attempt, which for keyless messages can move a message to a partition already acknowledged);
 * a partition with no leader in the metadata fails the attempt (kafkajs silently left it out); and
 * an idempotent producer's request that waited for its broker's lock leaves out the partitions
 * acknowledged meanwhile (kafkajs resent them, with new sequence numbers: written twice).
 *
 * kafkajs's producer takes `sendMessages` with `require` when its module loads, so the
 * replacement must be in node's module cache before kafkajs's main module loads: importing this
 * module does that, and `shared/kafka.ts` imports it before kafkajs. If kafkajs was loaded
 * first, {@linkcode assertProduceRetryFixed} (called by `createKafka`) throws, naming this module.
 *
 * @module
 */
import { swapKafkajsModule } from "./kafkajs_module_swap.ts";
import errors from "kafkajs/src/errors.js";
import protocolErrors from "kafkajs/src/protocol/error.js";
import createTopicData from "kafkajs/src/producer/createTopicData.js";
import responseSerializer from "kafkajs/src/producer/responseSerializer.js";
import originalSendMessages from "kafkajs/src/producer/sendMessages.js";

// deno-lint-ignore no-explicit-any
type Any = any;

/** One topic's messages of a send, as kafkajs's message producer passes them. */
interface TopicMessages {
  topic: string;
  messages: unknown[];
}

/** What kafkajs's message producer hands `sendMessages` (kafkajs's own internal objects). */
export interface SendMessagesDeps {
  logger: Any;
  cluster: Any;
  partitioner: Any;
  eosManager: Any;
  retrier: Any;
}

/** One send, as kafkajs's message producer makes it. */
export interface SendArgs {
  acks: number;
  timeout?: number;
  compression?: number;
  topicMessages: TopicMessages[];
}

/** kafkajs's `sendMessages` factory, as shipped (for tests showing what it does). */
export const ORIGINAL_SEND_MESSAGES = originalSendMessages as unknown as (
  deps: SendMessagesDeps,
) => (args: SendArgs) => Promise<unknown[]>;

const { KafkaJSMetadataNotLoaded } = errors as Any;
const { staleMetadata } = protocolErrors as Any;

function partitionKey(topic: string, partition: number | string): string {
  return `${topic}\u0000${partition}`;
}

/** kafkajs's `sendMessages` factory, retrying by partition rather than by broker. */
export function createSendMessages(
  { logger, cluster, partitioner, eosManager, retrier }: SendMessagesDeps,
): (args: SendArgs) => Promise<unknown[]> {
  return ({ acks, timeout, compression, topicMessages }) => {
    /** topic -> partition -> its messages, fixed at the first attempt that had metadata. */
    const messagesPerTopic = new Map<string, Record<string, unknown[]>>();
    /** Partitions acknowledged so far in this send. */
    const acknowledged = new Set<string>();
    /** Each acknowledged partition's entry of the Produce response (none with acks 0). */
    const responsePerPartition = new Map<string, unknown>();

    const createProducerRequests = async () => {
      const topicMetadata = new Map<string, { partitionsPerLeader: Record<string, number[]> }>();
      const brokers = new Set<Any>();

      await cluster.refreshMetadataIfNecessary();

      for (const { topic, messages } of topicMessages) {
        const partitionMetadata = cluster.findTopicPartitionMetadata(topic);

        if (partitionMetadata.length === 0) {
          logger.debug("Producing to topic without metadata", {
            topic,
            targetTopics: Array.from(cluster.targetTopics),
          });

          throw new KafkaJSMetadataNotLoaded("Producing to topic without metadata");
        }

        let messagesPerPartition = messagesPerTopic.get(topic);
        if (messagesPerPartition === undefined) {
          messagesPerPartition = groupByPartition({
            topic,
            partitionMetadata,
            messages,
            partitioner,
          });
          messagesPerTopic.set(topic, messagesPerPartition);
        }

        const pending = Object.keys(messagesPerPartition)
          .filter((partition) => !acknowledged.has(partitionKey(topic, partition)));
        const partitionsPerLeader: Record<string, number[]> = cluster.findLeaderForPartitions(
          topic,
          pending,
        );
        const placed = Object.values(partitionsPerLeader).flat().length;
        if (placed !== pending.length) {
          throw new KafkaJSMetadataNotLoaded(
            `Producing to partitions of topic ${topic} missing from the metadata`,
          );
        }
        topicMetadata.set(topic, { partitionsPerLeader });

        for (const nodeId of Object.keys(partitionsPerLeader)) {
          brokers.add(await cluster.findBroker({ nodeId }));
        }
      }

      return Array.from(brokers).map(async (broker) => {
        await eosManager.acquireBrokerLock(broker);
        try {
          // An idempotent producer's lock serializes its requests to a broker: a request of an
          // earlier attempt may have been acknowledged while this one waited, so its partitions
          // are left out here rather than written twice.
          const topicDataForBroker = Array.from(topicMetadata.entries())
            .map(([topic, { partitionsPerLeader }]) => ({
              topic,
              partitions: (partitionsPerLeader[broker.nodeId] ?? [])
                .filter((partition) => !acknowledged.has(partitionKey(topic, partition))),
              messagesPerPartition: messagesPerTopic.get(topic),
            }))
            .filter(({ partitions }) => partitions.length > 0);
          if (topicDataForBroker.length === 0) return;

          const topicData: Any[] = createTopicData(topicDataForBroker);

          if (eosManager.isTransactional()) {
            await eosManager.addPartitionsToTransaction(topicData);
          }

          topicData.forEach(({ topic, partitions }) => {
            partitions.forEach((entry: Any) => {
              entry["firstSequence"] = eosManager.getSequence(topic, entry.partition);
              eosManager.updateSequence(topic, entry.partition, entry.messages.length);
            });
          });

          let response;
          try {
            response = await broker.produce({
              transactionalId: eosManager.isTransactional()
                ? eosManager.getTransactionalId()
                : undefined,
              producerId: eosManager.getProducerId(),
              producerEpoch: eosManager.getProducerEpoch(),
              acks,
              timeout,
              compression,
              topicData,
            });
          } catch (e) {
            topicData.forEach(({ topic, partitions }) => {
              partitions.forEach((entry: Any) => {
                eosManager.updateSequence(topic, entry.partition, -entry.messages.length);
              });
            });
            throw e;
          }

          const expectResponse = acks !== 0;
          const formattedResponse: Any[] = expectResponse ? responseSerializer(response) : [];
          for (const entry of formattedResponse) {
            responsePerPartition.set(partitionKey(entry.topicName, entry.partition), entry);
          }
          topicData.forEach(({ topic, partitions }) => {
            partitions.forEach((entry: Any) =>
              acknowledged.add(partitionKey(topic, entry.partition))
            );
          });
        } finally {
          await eosManager.releaseBrokerLock(broker);
        }
      });
    };

    return retrier(async (bail: (e: unknown) => void, retryCount: number, retryTime: number) => {
      const topics = topicMessages.map(({ topic }) => topic);
      await cluster.addMultipleTargetTopics(topics);

      try {
        const requests = await createProducerRequests();
        await Promise.all(requests);
        return Array.from(responsePerPartition.values());
      } catch (error) {
        const e = error as Any;
        if (e.name === "KafkaJSConnectionClosedError") {
          cluster.removeBroker({ host: e.host, port: e.port });
        }

        if (!cluster.isConnected()) {
          logger.debug(`Cluster has disconnected, reconnecting: ${e.message}`, {
            retryCount,
            retryTime,
          });
          await cluster.connect();
          await cluster.refreshMetadata();
          throw e;
        }

        // This is necessary in case the metadata is stale and the number of partitions
        // for this topic has increased in the meantime
        if (
          staleMetadata(e) ||
          e.name === "KafkaJSMetadataNotLoaded" ||
          e.name === "KafkaJSConnectionError" ||
          e.name === "KafkaJSConnectionClosedError" ||
          (e.name === "KafkaJSProtocolError" && e.retriable)
        ) {
          logger.error(`Failed to send messages: ${e.message}`, { retryCount, retryTime });
          await cluster.refreshMetadata();
          throw e;
        }

        logger.error(`${e.message}`, { retryCount, retryTime });
        if (e.retriable) throw e;
        bail(e);
      }
    });
  };
}

/**
 * kafkajs's `groupMessagesPerPartition`, in one pass: the messages of `topic` by the partition
 * `partitioner` gives each, in their order; none when the topic has no partitions. kafkajs copies a
 * partition's list for every message it adds, which made a 10,000-message send spend 29 ms here.
 */
export function groupByPartition(
  { topic, partitionMetadata, messages, partitioner }: {
    topic: string;
    partitionMetadata: readonly unknown[];
    messages: readonly unknown[];
    partitioner: Any;
  },
): Record<string, unknown[]> {
  const groups: Record<string, unknown[]> = {};
  if (partitionMetadata.length === 0) return groups;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (groups[partition] ??= []).push(message);
  }
  return groups;
}

/** Whether kafkajs's producer module loaded before the replacement could be put in place. */
const loadedTooLate = !swapKafkajsModule({
  module: "kafkajs/src/producer/sendMessages.js",
  takenBy: "kafkajs/src/producer/messageProducer.js",
  replacement: createSendMessages,
});

/**
 * Throws unless kafkajs's producers use {@linkcode createSendMessages}: that is, unless this
 * module was imported before kafkajs's main module loaded.
 */
export function assertProduceRetryFixed(): void {
  if (loadedTooLate) {
    throw new Error(
      "kafkajs was loaded before shared/kafkajs_produce_retry.ts, so its producers keep the " +
        "retry that can drop messages: import that module before anything imports kafkajs",
    );
  }
}
