import assert from "node:assert/strict";
import ConsumerGroup from "kafkajs/src/consumer/consumerGroup.js";
import createFetchManager from "kafkajs/src/consumer/fetchManager.js";
import loggers from "kafkajs/src/loggers/index.js";
import errors from "kafkajs/src/errors.js";
import {
  type ConsumerGroupInternals,
  failOverConsumerGroups,
  isCoordinatorError,
  ORIGINAL,
} from "./kafkajs_consumer_failover.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const { KafkaJSConnectionError, KafkaJSProtocolError } = errors as Any;
const logger = (loggers as Any).createLogger({
  level: (loggers as Any).LEVELS.NOTHING,
  logCreator: () => () => {},
});

/** kafkajs's error for code 16 (NOT_COORDINATOR), as a broker's answer turns into. */
function notCoordinator(): Error {
  return new KafkaJSProtocolError({
    type: "NOT_COORDINATOR_FOR_GROUP",
    code: 16,
    retriable: true,
    message: "This is not the correct coordinator for this group",
  });
}

const refused = () =>
  new KafkaJSConnectionError("Connection error: connect ECONNREFUSED 127.0.0.1:19092", {
    broker: "127.0.0.1:19092",
    code: "ECONNREFUSED",
  });

/** A kafkajs consumer group on a stub cluster; `calls` counts what the cluster was asked. */
function group(cluster: Record<string, unknown> = {}) {
  const calls = { refreshMetadata: 0, findGroupCoordinator: 0 };
  const newCoordinator = {
    nodeId: 2,
    heartbeats: 0,
    heartbeat() {
      this.heartbeats++;
      return Promise.resolve();
    },
  };
  const stub = {
    refreshMetadata: () => {
      calls.refreshMetadata++;
      return Promise.resolve();
    },
    findGroupCoordinator: () => {
      calls.findGroupCoordinator++;
      return Promise.resolve(newCoordinator);
    },
    ...cluster,
  };
  const Group = ConsumerGroup as unknown as new (options: unknown) => ConsumerGroupInternals & {
    memberId: string;
    generationId: number;
  };
  const g = new Group({
    retry: { retries: 0 },
    cluster: stub,
    groupId: "g",
    topics: ["t"],
    topicConfigurations: {},
    logger,
    instrumentationEmitter: { emit() {} },
    assigners: [],
    sessionTimeout: 6_000,
    rebalanceTimeout: 6_000,
    maxBytesPerPartition: 1,
    minBytes: 1,
    maxBytes: 1,
    maxWaitTimeInMs: 10,
    autoCommit: false,
    isolationLevel: 1,
    metadataMaxAge: 300_000,
  });
  g.memberId = "member-1";
  g.generationId = 1;
  // The coordinator found at the join: broker 1, now dead or no longer the coordinator.
  const oldCoordinator = { nodeId: 1, heartbeat: () => Promise.reject(notCoordinator()) };
  g.coordinator = oldCoordinator;
  g.offsetManager = {
    coordinator: oldCoordinator,
    commitOffsets() {
      return this.coordinator === oldCoordinator
        ? Promise.reject(notCoordinator())
        : Promise.resolve();
    },
  } as Any;
  return { g, calls, oldCoordinator, newCoordinator };
}

Deno.test("kafkajs as shipped: a fetch refused by a dead leader ends the fetch round", async () => {
  const { g, calls } = group();
  await assert.rejects(ORIGINAL.recoverFromFetch.call(g, refused()), /ECONNREFUSED/);
  assert.equal(calls.refreshMetadata, 0, "the metadata naming the dead leader is kept");
});

Deno.test("recoverFromFetch() refreshes the metadata when a leader refuses, and returns", async () => {
  failOverConsumerGroups();
  const { g, calls } = group();
  await g.recoverFromFetch(refused());
  assert.equal(calls.refreshMetadata, 1);
});

Deno.test("recoverFromFetch() leaves every other error to kafkajs", async () => {
  failOverConsumerGroups();
  const { g } = group();
  await assert.rejects(g.recoverFromFetch(new Error("boom")), /boom/);
});

Deno.test("with a refused leader, the fetchers of the other brokers go on fetching", async () => {
  failOverConsumerGroups();
  // Broker 1 is dead; the metadata names it until the controller fences it (third refresh).
  let refreshes = 0;
  const { g } = group({
    refreshMetadata: () => {
      refreshes++;
      return Promise.resolve();
    },
  });
  const fetched = new Map<number, number>([[1, 0], [2, 0]]);
  const nodeIds = () => refreshes >= 3 ? [2] : [1, 2];
  const manager = createFetchManager({
    logger,
    getNodeIds: nodeIds,
    fetch: async (nodeId: number) => {
      fetched.set(nodeId, fetched.get(nodeId)! + 1);
      if (nodeId === 1) {
        // consumerGroup.fetch: the failure goes to recoverFromFetch, which returns no batches.
        await g.recoverFromFetch(refused());
        return [];
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
      return [];
    },
    handler: () => Promise.resolve(),
  });
  const running = manager.start();
  const deadline = Date.now() + 5_000;
  while (refreshes < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const atFence = fetched.get(2)!;
  while (fetched.get(2)! < atFence + 5 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await manager.stop();
  await running.catch(() => {});
  assert.ok(refreshes >= 3, `metadata refreshed ${refreshes} times`);
  assert.ok(atFence >= 10, `broker 2 fetched ${atFence} times while broker 1 was refused`);
  assert.ok(fetched.get(2)! >= atFence + 5, "broker 2 still fetched after broker 1 was fenced");
});

Deno.test("kafkajs as shipped: heartbeats stay with a coordinator that moved", async () => {
  const { g, calls, oldCoordinator } = group();
  await assert.rejects(ORIGINAL.heartbeat.call(g, { interval: 0 }), /not the correct coordinator/);
  assert.equal(calls.findGroupCoordinator, 0);
  assert.equal(g.coordinator, oldCoordinator);
});

Deno.test("heartbeat() finds the moved coordinator and heartbeats it at once", async () => {
  failOverConsumerGroups();
  const { g, calls, newCoordinator } = group();
  await g.heartbeat({ interval: 0 });
  assert.equal(calls.findGroupCoordinator, 1);
  assert.equal(newCoordinator.heartbeats, 1);
  assert.equal(g.coordinator, newCoordinator);
  assert.equal(g.offsetManager!.coordinator, newCoordinator, "commits go there too");
});

Deno.test("heartbeat() finds the coordinator again when it refuses connections", async () => {
  failOverConsumerGroups();
  const { g, newCoordinator } = group();
  g.coordinator = { nodeId: 1, heartbeat: () => Promise.reject(refused()) };
  await g.heartbeat({ interval: 0 });
  assert.equal(g.coordinator, newCoordinator);
});

Deno.test("with Kafka wholly unreachable, heartbeat() and recoverFromFetch() throw the retriable error kafkajs would have", async () => {
  failOverConsumerGroups();
  const notFound = () =>
    Promise.reject(
      Object.assign(new Error("Failed to find group coordinator"), { retriable: false }),
    );
  const { g } = group({
    findGroupCoordinator: notFound,
    refreshMetadata: () => Promise.reject(refused()),
  });
  const heartbeatRefused = refused();
  g.coordinator = { nodeId: 1, heartbeat: () => Promise.reject(heartbeatRefused) };
  await assert.rejects(g.heartbeat({ interval: 0 }), (e) => e === heartbeatRefused);
  const fetchRefused = refused();
  await assert.rejects(g.recoverFromFetch(fetchRefused), (e) => e === fetchRefused);
  assert.equal((heartbeatRefused as Any).retriable, true, "kafkajs retries and restarts on it");
});

Deno.test("heartbeat() leaves a rebalance to kafkajs (no coordinator lookup)", async () => {
  failOverConsumerGroups();
  const { g, calls } = group();
  const rebalancing = new KafkaJSProtocolError({
    type: "REBALANCE_IN_PROGRESS",
    code: 27,
    retriable: false,
    message: "The group is rebalancing, so a rejoin is needed",
  });
  g.coordinator = { nodeId: 1, heartbeat: () => Promise.reject(rebalancing) };
  await assert.rejects(g.heartbeat({ interval: 0 }), /rebalancing/);
  assert.equal(calls.findGroupCoordinator, 0);
});

Deno.test("commitOffsets() fails once at a moved coordinator, and its retry goes to the new one", async () => {
  failOverConsumerGroups();
  const { g, newCoordinator } = group();
  await assert.rejects(g.commitOffsets(), /not the correct coordinator/);
  assert.equal(g.offsetManager!.coordinator, newCoordinator);
  await g.commitOffsets();
});

Deno.test("kafkajs as shipped: commits stay with a coordinator that moved", async () => {
  const { g, oldCoordinator } = group();
  await assert.rejects(ORIGINAL.commitOffsets.call(g), /not the correct coordinator/);
  await assert.rejects(ORIGINAL.commitOffsets.call(g), /not the correct coordinator/);
  assert.equal(g.offsetManager!.coordinator, oldCoordinator);
});

Deno.test("isCoordinatorError() names a lost or moved coordinator, nothing else", () => {
  assert.ok(isCoordinatorError(notCoordinator()));
  assert.ok(isCoordinatorError(refused()));
  assert.ok(!isCoordinatorError(new Error("boom")));
  assert.ok(!isCoordinatorError(undefined));
});

Deno.test("kafkajs as shipped: a refused leader stops the fetchers of every broker", async () => {
  const { g } = group();
  const manager = createFetchManager({
    logger,
    getNodeIds: () => [1, 2],
    fetch: async (nodeId: number) => {
      if (nodeId === 1) await ORIGINAL.recoverFromFetch.call(g, refused());
      await new Promise((resolve) => setTimeout(resolve, 10));
      return [];
    },
    handler: () => Promise.resolve(),
  });
  // The runner then retries the whole round with backoff, against the same metadata.
  await assert.rejects(manager.start(), /ECONNREFUSED/);
});
