import assert from "node:assert/strict";
import { createRequire } from "node:module";
import {
  assertEndTxnRetryFixed,
  createEosManager,
  ORIGINAL_CREATE_EOS_MANAGER,
} from "./kafkajs_endtxn_retry.ts";
import "./kafkajs_produce_retry.ts";
// After the modules above, as in shared/kafka.ts: this producer loads with the fixed EndTxn.
import createProducer from "kafkajs/src/producer/index.js";
import loggers from "kafkajs/src/loggers/index.js";
import errors from "kafkajs/src/errors.js";
import protocolErrors from "kafkajs/src/protocol/error.js";

// deno-lint-ignore no-explicit-any
type Any = any;

const { KafkaJSConnectionError, KafkaJSConnectionClosedError, KafkaJSRequestTimeoutError } =
  errors as Any;
/** An error as kafkajs makes it from an error code on the wire. */
const fromCode = (code: number): Error => (protocolErrors as Any).createErrorFromCode(code);
const logger = (loggers as Any).createLogger({
  level: (loggers as Any).LEVELS.NOTHING,
  logCreator: () => () => {},
});
const TRANSACTIONAL_ID = "raw-producer";

/**
 * A cluster of two brokers whose transaction coordinator is broker 1 until the first EndTxn,
 * which fails with `failure()`; from then on broker 2 is the coordinator, and broker 1 answers
 * every transactional request with NOT_COORDINATOR, as a broker that handed its
 * `__transaction_state` partitions over does. Records every request and coordinator lookup.
 */
function movingCoordinatorCluster(failure: () => Error) {
  const requests: string[] = [];
  let coordinator = 1;
  let lookups = 0;
  let failed = false;
  const answer = <T>(nodeId: number, request: string, value: T): Promise<T> => {
    requests.push(`${nodeId} ${request}`);
    return nodeId === coordinator ? Promise.resolve(value) : Promise.reject(fromCode(16));
  };
  const broker = (nodeId: number) => ({
    nodeId,
    initProducerId: () => answer(nodeId, "InitProducerId", { producerId: 7, producerEpoch: 0 }),
    addPartitionsToTxn: () => answer(nodeId, "AddPartitionsToTxn", {}),
    addOffsetsToTxn: () => answer(nodeId, "AddOffsetsToTxn", {}),
    txnOffsetCommit: () => answer(nodeId, "TxnOffsetCommit", {}),
    endTxn({ transactionResult }: { transactionResult: boolean }) {
      const request = `EndTxn(${transactionResult ? "commit" : "abort"})`;
      if (failed) return answer(nodeId, request, {});
      failed = true;
      coordinator = 2;
      requests.push(`${nodeId} ${request}`);
      return Promise.reject(failure());
    },
    produce({ topicData }: Any) {
      requests.push(`${nodeId} Produce`);
      return Promise.resolve({
        topics: topicData.map(({ topic, partitions }: Any) => ({
          topicName: topic,
          partitions: partitions.map(({ partition }: Any) => ({ partition, errorCode: 0 })),
        })),
      });
    },
  });
  const brokers = new Map([[1, broker(1)], [2, broker(2)]]);
  const cluster = {
    retry: { retries: 3, initialRetryTime: 1, maxRetryTime: 5 },
    targetTopics: new Set(["raw"]),
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    isConnected: () => true,
    refreshMetadata: () => Promise.resolve(),
    refreshMetadataIfNecessary: () => Promise.resolve(),
    addMultipleTargetTopics: () => Promise.resolve(),
    markOffsetAsCommitted: () => {},
    findTopicPartitionMetadata: () => [{ partitionId: 0, leader: 1 }],
    findLeaderForPartitions: () => ({ 1: [0] }),
    findBroker: ({ nodeId }: { nodeId: string }) => Promise.resolve(brokers.get(Number(nodeId))),
    findControllerBroker: () => Promise.resolve(brokers.get(1)),
    findGroupCoordinator: () => {
      lookups++;
      return Promise.resolve(brokers.get(coordinator));
    },
  };
  return { cluster, requests, lookups: () => lookups };
}

/** A transaction manager of `create` on `cluster`, in a transaction with partition raw/0 added. */
async function inTransaction(create: typeof createEosManager, cluster: unknown) {
  const eos = create({ logger, cluster, transactional: true, transactionalId: TRANSACTIONAL_ID });
  await eos.initProducerId();
  eos.beginTransaction();
  await eos.addPartitionsToTransaction([{ topic: "raw", partitions: [{ partition: 0 }] }]);
  return eos;
}

Deno.test("kafkajs's own eosManager gives a commit up at NOT_COORDINATOR, then can neither abort nor begin (the bug)", async () => {
  const { cluster, requests } = movingCoordinatorCluster(() => fromCode(16));
  const eos = await inTransaction(ORIGINAL_CREATE_EOS_MANAGER, cluster);
  await assert.rejects(eos.commit(), { type: "NOT_COORDINATOR_FOR_GROUP" });
  await assert.rejects(eos.abort(), /Cannot call "abort" in state "COMMITTING"/);
  assert.throws(() => eos.beginTransaction(), /Cannot call "beginTransaction"/);
  assert.deepEqual(requests, ["1 InitProducerId", "1 AddPartitionsToTxn", "1 EndTxn(commit)"]);
});

const RETRIED: [string, () => Error][] = [
  ["NOT_COORDINATOR", () => fromCode(16)],
  ["COORDINATOR_NOT_AVAILABLE", () => fromCode(15)],
  ["COORDINATOR_LOAD_IN_PROGRESS", () => fromCode(14)],
  ["CONCURRENT_TRANSACTIONS", () => fromCode(51)],
  [
    "a connection error",
    () =>
      new KafkaJSConnectionError("Connection error: connect ECONNREFUSED 127.0.0.1:9094", {
        code: "ECONNREFUSED",
      }),
  ],
  [
    "a closed connection",
    () => new KafkaJSConnectionClosedError("Closed connection", { host: "127.0.0.1", port: 9094 }),
  ],
  ["a request timeout", () => new KafkaJSRequestTimeoutError("Request EndTxn(key: 26) timed out")],
];

for (const [name, failure] of RETRIED) {
  Deno.test(`createEosManager() commits after ${name}, on the coordinator found again`, async () => {
    const { cluster, requests, lookups } = movingCoordinatorCluster(failure);
    const eos = await inTransaction(createEosManager, cluster);
    const lookupsBefore = lookups();
    await eos.commit();
    assert.deepEqual(requests.slice(2), ["1 EndTxn(commit)", "2 EndTxn(commit)"]);
    assert.equal(lookups() - lookupsBefore, 2, "one coordinator lookup per attempt");
    eos.beginTransaction(); // READY again: the next transaction can begin
    assert.equal(eos.isInTransaction(), true);
  });
}

Deno.test("createEosManager() aborts after a connection error, on the coordinator found again", async () => {
  const { cluster, requests } = movingCoordinatorCluster(() =>
    new KafkaJSConnectionError("Connection error: read ECONNRESET", { code: "ECONNRESET" })
  );
  const eos = await inTransaction(createEosManager, cluster);
  await eos.abort();
  assert.deepEqual(requests.slice(2), ["1 EndTxn(abort)", "2 EndTxn(abort)"]);
  eos.beginTransaction();
  assert.equal(eos.isInTransaction(), true);
});

const NOT_RETRIED: [string, number][] = [
  ["INVALID_PRODUCER_EPOCH", 47],
  ["PRODUCER_FENCED", 90],
  ["INVALID_TXN_STATE", 48],
];

for (const [name, code] of NOT_RETRIED) {
  Deno.test(`createEosManager() throws ${name} from EndTxn unchanged, without a retry`, async () => {
    const error = fromCode(code);
    const { cluster, requests, lookups } = movingCoordinatorCluster(() => error);
    const eos = await inTransaction(createEosManager, cluster);
    const lookupsBefore = lookups();
    await assert.rejects(eos.commit(), (thrown) => thrown === error);
    assert.deepEqual(requests.slice(2), ["1 EndTxn(commit)"]);
    assert.equal(lookups() - lookupsBefore, 1);
  });
}

Deno.test("createEosManager() gives up when the retries run out, in the state kafkajs leaves", async () => {
  const { cluster } = movingCoordinatorCluster(() => fromCode(16));
  const eos = await inTransaction(createEosManager, cluster);
  let attempts = 0;
  // From now on every coordinator found says it is not the coordinator.
  (cluster as Any).findGroupCoordinator = () =>
    Promise.resolve({
      endTxn: () => {
        attempts++;
        return Promise.reject(fromCode(16));
      },
    });
  await assert.rejects(
    eos.commit(),
    (error: Any) =>
      error.name === "KafkaJSNumberOfRetriesExceeded" &&
      error.cause.type === "NOT_COORDINATOR_FOR_GROUP",
  );
  assert.equal(attempts, 4, "the first attempt and the cluster's 3 retries");
  await assert.rejects(eos.abort(), /Cannot call "abort" in state "COMMITTING"/);
});

Deno.test("createEosManager() leaves every other coordinator request as kafkajs sends it", async () => {
  const { cluster, requests } = movingCoordinatorCluster(() => fromCode(16));
  const eos = await inTransaction(createEosManager, cluster);
  await eos.sendOffsets({
    consumerGroupId: "group",
    topics: [{ topic: "raw", partitions: [{ partition: 0, offset: "1" }] }],
  });
  assert.deepEqual(requests, [
    "1 InitProducerId",
    "1 AddPartitionsToTxn",
    "1 AddOffsetsToTxn",
    "1 TxnOffsetCommit",
  ]);
});

Deno.test("kafkajs's eosManager reaches its cluster only through what createEosManager() passes on", async () => {
  const source = await Deno.readTextFile(
    createRequire(import.meta.url).resolve("kafkajs/src/producer/eosManager/index.js"),
  );
  const used = new Set(source.match(/cluster\.\w+/g));
  assert.deepEqual(
    [...used].sort(),
    [
      "cluster.findControllerBroker",
      "cluster.findGroupCoordinator",
      "cluster.refreshMetadataIfNecessary",
      "cluster.retry",
    ],
  );
  const coordinatorRequests = new Set(
    source.match(/(?:broker|transactionCoordinator)\.(?!nodeId)\w+\(/g),
  );
  assert.deepEqual([...coordinatorRequests].sort(), [
    "broker.addPartitionsToTxn(",
    "broker.endTxn(",
    "broker.initProducerId(",
    "transactionCoordinator.addOffsetsToTxn(",
  ]);
});

Deno.test("a kafkajs producer loaded after the module commits a transaction across a coordinator move", async () => {
  assertEndTxnRetryFixed();
  const { cluster, requests } = movingCoordinatorCluster(() => fromCode(16));
  const producer = createProducer({
    cluster,
    logger,
    idempotent: true,
    transactionalId: TRANSACTIONAL_ID,
    retry: { retries: 3, initialRetryTime: 1, maxRetryTime: 5 },
  });
  await producer.connect();
  try {
    const transaction = await producer.transaction();
    await transaction.send({ topic: "raw", messages: [{ key: "AAPL", value: "trade" }] });
    await transaction.commit();
    assert.equal(transaction.isActive(), false);
    const next = await producer.transaction(); // READY again
    await next.abort();
  } finally {
    await producer.disconnect();
  }
  assert.deepEqual(requests.filter((r) => !r.endsWith("InitProducerId")), [
    "1 AddPartitionsToTxn",
    "1 Produce",
    "1 EndTxn(commit)",
    "2 EndTxn(commit)",
  ]);
});
