import kafkajsGroupMessagesPerPartition from "kafkajs/src/producer/groupMessagesPerPartition.js";
import assert from "node:assert/strict";
import {
  assertProduceRetryFixed,
  createSendMessages,
  groupByPartition,
  ORIGINAL_SEND_MESSAGES,
  type SendArgs,
} from "./kafkajs_produce_retry.ts";
// After the module above, as in shared/kafka.ts: this producer loads with the fixed retry.
import createProducer from "kafkajs/src/producer/index.js";
import createRetry from "kafkajs/src/retry/index.js";
import createEosManager from "kafkajs/src/producer/eosManager/index.js";
import loggers from "kafkajs/src/loggers/index.js";
import errors from "kafkajs/src/errors.js";
import { DefaultPartitioner } from "kafkajs/src/producer/partitioners/index.js";

// deno-lint-ignore no-explicit-any
type Any = any;

const { KafkaJSConnectionError, KafkaJSProtocolError } = errors as Any;
const logger = (loggers as Any).createLogger({
  level: (loggers as Any).LEVELS.NOTHING,
  logCreator: () => () => {},
});
const RETRY = { retries: 3, initialRetryTime: 1, maxRetryTime: 5 };

/** What one stub broker wrote: partition -> the message values, in order. */
type Written = Map<number, string[]>;

/**
 * A two-broker cluster where topic `t` has partitions 0 (leader 1) and 1 (leader 2). Broker 2
 * dies at its first Produce; the metadata refreshed after that names broker 1 leader of both,
 * as when a broker is killed and its partitions' leadership moves to a surviving broker.
 */
function leaderMovesCluster() {
  const leaders = new Map([[0, 1], [1, 2]]);
  const written = new Map<number, Written>([[1, new Map()], [2, new Map()]]);
  let brokerTwoDead = false;
  const broker = (nodeId: number) => ({
    nodeId,
    produce({ topicData }: Any) {
      if (nodeId === 2) {
        brokerTwoDead = true;
        return Promise.reject(new KafkaJSConnectionError("Connection error: ECONNREFUSED"));
      }
      for (const { partitions } of topicData) {
        for (const { partition, messages } of partitions) {
          const log = written.get(nodeId)!;
          log.set(partition, [...(log.get(partition) ?? []), ...messages.map((m: Any) => m.value)]);
        }
      }
      return Promise.resolve({
        topics: topicData.map(({ topic, partitions }: Any) => ({
          topicName: topic,
          partitions: partitions.map(({ partition }: Any) => ({
            partition,
            errorCode: 0,
            baseOffset: "0",
            logAppendTime: "-1",
            logStartOffset: "0",
          })),
        })),
      });
    },
  });
  const brokers = new Map([[1, broker(1)], [2, broker(2)]]);
  const cluster = {
    targetTopics: new Set(["t"]),
    retry: {},
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    isConnected: () => true,
    refreshMetadata: () => {
      if (brokerTwoDead) leaders.set(1, 1);
      return Promise.resolve();
    },
    refreshMetadataIfNecessary: () => Promise.resolve(),
    addMultipleTargetTopics: () => Promise.resolve(),
    removeBroker: () => {},
    findTopicPartitionMetadata: () =>
      [0, 1].map((partitionId) => ({ partitionId, leader: leaders.get(partitionId) })),
    findLeaderForPartitions: (_topic: string, partitions: string[]) => {
      const result: Record<string, number[]> = {};
      for (const id of partitions) {
        const partition = Number(id);
        const leader = leaders.get(partition)!;
        (result[leader] ??= []).push(partition);
      }
      return result;
    },
    findBroker: ({ nodeId }: { nodeId: string }) => Promise.resolve(brokers.get(Number(nodeId))),
  };
  /** Every partition's messages, whichever broker wrote them. */
  const writtenPerPartition = () => {
    const all = new Map<number, string[]>();
    for (const log of written.values()) {
      for (const [partition, values] of log) {
        all.set(partition, [...(all.get(partition) ?? []), ...values]);
      }
    }
    return all;
  };
  return { cluster, writtenPerPartition };
}

const SEND: SendArgs = {
  acks: -1,
  topicMessages: [{
    topic: "t",
    messages: [
      { partition: 0, value: "a" },
      { partition: 1, value: "b" },
      { partition: 0, value: "c" },
      { partition: 1, value: "d" },
    ],
  }],
};

function deps(cluster: unknown) {
  return {
    logger,
    cluster,
    partitioner: DefaultPartitioner(),
    eosManager: createEosManager({ logger, cluster }),
    retrier: createRetry(RETRY),
  };
}

Deno.test("kafkajs's own sendMessages reports success for partitions it never wrote (the bug)", async () => {
  const { cluster, writtenPerPartition } = leaderMovesCluster();
  await ORIGINAL_SEND_MESSAGES(deps(cluster))(SEND);
  assert.deepEqual(writtenPerPartition(), new Map([[0, ["a", "c"]]]), "partition 1 skipped");
});

Deno.test("createSendMessages() writes a dead broker's partitions to their new leader", async () => {
  const { cluster, writtenPerPartition } = leaderMovesCluster();
  const response = await createSendMessages(deps(cluster))(SEND);
  assert.deepEqual(writtenPerPartition(), new Map([[0, ["a", "c"]], [1, ["b", "d"]]]));
  assert.deepEqual(
    (response as Any[]).map(({ topicName, partition }) => `${topicName}/${partition}`).sort(),
    ["t/0", "t/1"],
  );
});

Deno.test("a kafkajs producer loaded after the module sends with the fixed retry", async () => {
  assertProduceRetryFixed();
  const { cluster, writtenPerPartition } = leaderMovesCluster();
  const producer = createProducer({ cluster, logger, retry: RETRY });
  await producer.connect();
  try {
    await producer.send({ topic: "t", messages: SEND.topicMessages[0]!.messages as Any });
  } finally {
    await producer.disconnect();
  }
  assert.deepEqual(writtenPerPartition(), new Map([[0, ["a", "c"]], [1, ["b", "d"]]]));
});

Deno.test("createSendMessages() resends only unacknowledged partitions, by their current leader", async () => {
  // Broker 1 fails once with a retriable partition error; broker 2 answers at once.
  const leaders = new Map([[0, 1], [1, 2]]);
  const produced: string[] = [];
  let failed = false;
  const broker = (nodeId: number) => ({
    nodeId,
    produce({ topicData }: Any) {
      if (nodeId === 1 && !failed) {
        failed = true;
        return Promise.reject(
          new KafkaJSProtocolError({ type: "NOT_LEADER_FOR_PARTITION", code: 6, retriable: true }),
        );
      }
      for (const { partitions } of topicData) {
        for (const { partition, messages } of partitions) {
          produced.push(`${nodeId}:${partition}:${messages.map((m: Any) => m.value).join("")}`);
        }
      }
      return Promise.resolve({
        topics: topicData.map(({ topic, partitions }: Any) => ({
          topicName: topic,
          partitions: partitions.map(({ partition }: Any) => ({ partition, errorCode: 0 })),
        })),
      });
    },
  });
  const brokers = new Map([[1, broker(1)], [2, broker(2)]]);
  const { cluster } = leaderMovesCluster();
  Object.assign(cluster, {
    refreshMetadata: () => Promise.resolve(),
    findTopicPartitionMetadata: () =>
      [0, 1].map((partitionId) => ({ partitionId, leader: leaders.get(partitionId) })),
    findLeaderForPartitions: (_topic: string, partitions: string[]) => {
      const result: Record<string, number[]> = {};
      for (const id of partitions) (result[leaders.get(Number(id))!] ??= []).push(Number(id));
      return result;
    },
    findBroker: ({ nodeId }: { nodeId: string }) => Promise.resolve(brokers.get(Number(nodeId))),
  });
  await createSendMessages(deps(cluster))(SEND);
  assert.deepEqual(produced.sort(), ["1:0:ac", "2:1:bd"], "partition 1 is not sent twice");
});

Deno.test("createSendMessages() fails a send whose partition has no leader in the metadata", async () => {
  const { cluster } = leaderMovesCluster();
  Object.assign(cluster, {
    findLeaderForPartitions: (_topic: string, _partitions: string[]) => ({ 1: [0] }),
  });
  await assert.rejects(
    createSendMessages(deps(cluster))(SEND),
    /missing from the metadata/,
  );
});

Deno.test("createSendMessages() does not resend what an idempotent producer's earlier request wrote meanwhile", async () => {
  // Broker 2 fails at once; broker 1 answers after the retry has begun. kafkajs's idempotent
  // producer holds a lock per broker, so the retry's request to broker 1 waits for the first.
  const produced: string[] = [];
  let brokerTwoFailed = false;
  const broker = (nodeId: number) => ({
    nodeId,
    async produce({ topicData }: Any) {
      if (nodeId === 2 && !brokerTwoFailed) {
        brokerTwoFailed = true;
        throw new KafkaJSConnectionError("Connection error: ECONNRESET");
      }
      if (nodeId === 1) await new Promise((resolve) => setTimeout(resolve, 50));
      for (const { partitions } of topicData) {
        for (const { partition, firstSequence } of partitions) {
          produced.push(`${nodeId}:${partition}:seq ${firstSequence}`);
        }
      }
      return {
        topics: topicData.map(({ topic, partitions }: Any) => ({
          topicName: topic,
          partitions: partitions.map(({ partition }: Any) => ({ partition, errorCode: 0 })),
        })),
      };
    },
  });
  const brokers = new Map([[1, broker(1)], [2, broker(2)]]);
  const { cluster } = leaderMovesCluster();
  Object.assign(cluster, {
    refreshMetadata: () => Promise.resolve(),
    findBroker: ({ nodeId }: { nodeId: string }) => Promise.resolve(brokers.get(Number(nodeId))),
    findControllerBroker: () =>
      Promise.resolve({
        initProducerId: () => Promise.resolve({ producerId: 7, producerEpoch: 0 }),
      }),
  });
  const eosManager = createEosManager({ logger, cluster });
  await eosManager.initProducerId();
  await createSendMessages({ ...deps(cluster), eosManager })(SEND);
  assert.deepEqual(produced.sort(), ["1:0:seq 0", "2:1:seq 0"], "each partition written once");
});

Deno.test("groupByPartition() groups as kafkajs's groupMessagesPerPartition does", () => {
  const partitionMetadata = [0, 1, 2, 3, 4, 5].map((partitionId) => ({ partitionId }));
  const messages = Array.from({ length: 500 }, (_, i) => ({ key: `k${(i * 7919) % 13}`, i }));
  const partitioner = ({ message }: { message: { key: string } }) =>
    Number(message.key.slice(1)) % partitionMetadata.length;
  const args = { topic: "raw", partitionMetadata, messages, partitioner };
  assert.deepEqual(groupByPartition(args), kafkajsGroupMessagesPerPartition(args));
  assert.deepEqual(groupByPartition({ ...args, partitionMetadata: [] }), {});
});
