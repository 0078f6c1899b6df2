import assert from "node:assert/strict";
import type { Consumer } from "kafkajs";
import { PipelineError } from "../shared/errors.ts";
import { silentLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { COMMIT_INTERVAL_MS, lostGroupMembership, runStage, type Stage } from "./stage_runner.ts";

Deno.test("lostGroupMembership() recognises the group refusing a member, also wrapped", () => {
  const unknown = Object.assign(new Error("The coordinator is not aware of this member"), {
    type: "UNKNOWN_MEMBER_ID",
  });
  assert.equal(lostGroupMembership(unknown), true);
  // kafkajs's retrier wraps the protocol error: KafkaJSNonRetriableError { cause }.
  assert.equal(lostGroupMembership(new Error("wrapped", { cause: unknown })), true);
  for (const type of ["ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS", "FENCED_INSTANCE_ID"]) {
    assert.equal(lostGroupMembership(Object.assign(new Error(type), { type })), true, type);
  }
});

Deno.test("lostGroupMembership() is false for every other failure", () => {
  assert.equal(lostGroupMembership(new Error("boom")), false);
  assert.equal(
    lostGroupMembership(Object.assign(new Error("x"), { type: "TOPIC_AUTHORIZATION_FAILED" })),
    false,
  );
  assert.equal(lostGroupMembership(undefined), false);
  assert.equal(lostGroupMembership("UNKNOWN_MEMBER_ID"), false);
});

// ---------------------------------------------------------------------------------------------
// Commits, against a fake kafkajs consumer
// ---------------------------------------------------------------------------------------------

type Offset = { topic: string; partition: number; offset: string };

/** A kafkajs consumer stand-in: the test plays kafkajs's part (batches, events, stop). */
function fakeConsumer() {
  const listeners = new Map<string, ((event: unknown) => void)[]>();
  const committed: Offset[][] = [];
  const committedWhileStopping: Offset[][] = [];
  const inHand = new Set<Promise<void>>();
  let eachBatch: ((payload: unknown) => Promise<void>) | undefined;
  let running = true;
  const events = {
    GROUP_JOIN: "consumer.group_join",
    CRASH: "consumer.crash",
    FETCH_START: "consumer.fetch_start",
    REBALANCING: "consumer.rebalancing",
    END_BATCH_PROCESS: "consumer.end_batch_process",
  };
  const consumer = {
    events,
    on(name: string, listener: (event: unknown) => void) {
      listeners.set(name, [...(listeners.get(name) ?? []), listener]);
    },
    connect: () => Promise.resolve(),
    subscribe: () => Promise.resolve(),
    run(options: { eachBatch: (payload: unknown) => Promise<void> }) {
      eachBatch = options.eachBatch;
      return Promise.resolve();
    },
    // Like kafkajs: commits nothing once the consumer stops.
    commitOffsets(offsets: Offset[]) {
      if (running) committed.push(offsets);
      return Promise.resolve();
    },
    async stop() {
      running = false;
      await Promise.all(inHand);
    },
    disconnect: () => Promise.resolve(),
  };
  const emit = (name: string, payload: unknown = {}) => {
    for (const listener of listeners.get(name) ?? []) listener({ payload });
  };
  /** Hands the runner a batch of `partition` with offsets `first`..`last`, as kafkajs does. */
  const batch = (partition: number, first: number, last: number): Promise<void> => {
    const messages = [];
    for (let o = first; o <= last; o++) messages.push({ offset: String(o) });
    const done = eachBatch!({
      batch: {
        topic: "t",
        partition,
        messages,
        firstOffset: () => String(first),
        lastOffset: () => String(last),
        offsetLag: () => "0",
      },
      resolveOffset: () => {},
      heartbeat: () => Promise.resolve(),
      isRunning: () => running,
      isStale: () => false,
      commitOffsetsIfNecessary: (
        offsets: { topics: { topic: string; partitions: Offset[] }[] },
      ) => {
        committedWhileStopping.push(
          offsets.topics.flatMap((t) => t.partitions.map((p) => ({ ...p, topic: t.topic }))),
        );
        return Promise.resolve();
      },
    });
    inHand.add(done);
    done.finally(() => inHand.delete(done));
    return done;
  };
  return { consumer, emit, batch, committed, committedWhileStopping };
}

/** A stage whose batches wait until the test lets them end. */
function gatedStage() {
  const gates = new Map<number, PromiseWithResolvers<void>>();
  const stage: Stage = {
    name: "bronze",
    concurrentPartitions: true,
    processBatch: ({ partition }) => {
      const gate = Promise.withResolvers<void>();
      gates.set(partition, gate);
      return gate.promise;
    },
  };
  return { stage, gates };
}

async function startRunner(stage: Stage, fake: ReturnType<typeof fakeConsumer>) {
  const controller = new AbortController();
  const done = runStage(stage, {
    consumer: fake.consumer as unknown as Consumer,
    topic: "t",
    log: silentLogger(),
    metrics: new MetricsRegistry(),
    signal: controller.signal,
    retryBaseMs: 1,
    retryMaxMs: 1,
  });
  // runStage registers its listeners and calls run() before it waits.
  await new Promise((resolve) => setTimeout(resolve, 0));
  fake.emit("consumer.group_join", { memberAssignment: { t: [0, 1, 2] }, duration: 1 });
  return { stop: () => controller.abort(), done };
}

/**
 * Runs `steps` on a fake consumer, against a runner whose stage makes every batch durable, and
 * stops the runner.
 */
async function withRunner(steps: (fake: ReturnType<typeof fakeConsumer>) => Promise<void>) {
  const fake = fakeConsumer();
  const runner = await startRunner({ name: "bronze", processBatch: () => Promise.resolve() }, fake);
  try {
    await steps(fake);
  } finally {
    runner.stop();
    await runner.done;
  }
}

Deno.test("runStage() commits the durable offsets of every partition in one request when the fetch round ends", async () => {
  const fake = fakeConsumer();
  const { stage, gates } = gatedStage();
  const runner = await startRunner(stage, fake);
  try {
    const round = [fake.batch(0, 0, 9), fake.batch(1, 5, 7), fake.batch(2, 3, 3)];
    await Promise.resolve();
    for (const p of [0, 1, 2]) gates.get(p)!.resolve();
    await Promise.all(round);
    assert.deepEqual(fake.committed, [], "nothing before the round ends");
    fake.emit("consumer.fetch_start");
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fake.committed, [[
      { topic: "t", partition: 0, offset: "10" },
      { topic: "t", partition: 1, offset: "8" },
      { topic: "t", partition: 2, offset: "4" },
    ]]);
  } finally {
    runner.stop();
    await runner.done;
  }
});

Deno.test("runStage() commits nothing of a batch that is still being retried", async () => {
  const fake = fakeConsumer();
  let failures = 0;
  const stage: Stage = {
    name: "bronze",
    processBatch: ({ partition }) =>
      partition === 1 && failures++ < 3
        ? Promise.reject(new PipelineError("Cassandra is down", { retriable: true }))
        : Promise.resolve(),
  };
  const runner = await startRunner(stage, fake);
  try {
    const retried = fake.batch(1, 0, 4);
    await fake.batch(0, 0, 1);
    fake.emit("consumer.fetch_start");
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fake.committed, [[{ topic: "t", partition: 0, offset: "2" }]]);
    await retried;
    assert.equal(failures, 4);
    await new Promise((resolve) => setTimeout(resolve, COMMIT_INTERVAL_MS + 10));
    fake.emit("consumer.fetch_start");
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fake.committed.at(-1), [{ topic: "t", partition: 1, offset: "5" }]);
  } finally {
    runner.stop();
    await runner.done;
  }
});

Deno.test("runStage() commits at most every COMMIT_INTERVAL_MS at round ends, at once on a rebalance", () =>
  withRunner(async (fake) => {
    await fake.batch(0, 0, 0);
    fake.emit("consumer.fetch_start");
    await fake.batch(0, 1, 1);
    fake.emit("consumer.fetch_start"); // within the interval: waits
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fake.committed, [[{ topic: "t", partition: 0, offset: "1" }]]);
    fake.emit("consumer.rebalancing");
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fake.committed.at(-1), [{ topic: "t", partition: 0, offset: "2" }]);
  }));

Deno.test("runStage() commits a round that ended within COMMIT_INTERVAL_MS once it is up, with no fetch after it", () =>
  withRunner(async (fake) => {
    await fake.batch(0, 0, 0);
    fake.emit("consumer.fetch_start");
    await fake.batch(1, 0, 3);
    // An idle consumer's next fetch may wait 500 ms for a record: this one is the last for now.
    fake.emit("consumer.fetch_start");
    fake.emit("consumer.fetch_start"); // one commit waits, however many rounds end meanwhile
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fake.committed, [[{ topic: "t", partition: 0, offset: "1" }]]);
    await new Promise((resolve) => setTimeout(resolve, COMMIT_INTERVAL_MS + 10));
    assert.deepEqual(fake.committed, [
      [{ topic: "t", partition: 0, offset: "1" }],
      [{ topic: "t", partition: 1, offset: "4" }],
    ]);
  }));

Deno.test("runStage() sends no waiting commit during a rebalance: the rebalance's own flush takes it", () =>
  withRunner(async (fake) => {
    await fake.batch(0, 0, 0);
    fake.emit("consumer.fetch_start");
    await fake.batch(1, 0, 3);
    fake.emit("consumer.fetch_start"); // within the interval: a timer waits
    fake.emit("consumer.rebalancing");
    await new Promise((resolve) => setTimeout(resolve, 0));
    await fake.batch(2, 0, 1); // a batch in hand ends during the rebalance
    await new Promise((resolve) => setTimeout(resolve, COMMIT_INTERVAL_MS + 10));
    assert.deepEqual(fake.committed, [
      [{ topic: "t", partition: 0, offset: "1" }],
      [{ topic: "t", partition: 1, offset: "4" }],
    ], "partition 2 waits for the first fetch after the rebalance");
  }));

Deno.test("runStage() commits the batches in hand when it stops, and forgets partitions given away", async () => {
  const fake = fakeConsumer();
  const { stage, gates } = gatedStage();
  const runner = await startRunner(stage, fake);
  const a = fake.batch(0, 0, 2);
  const b = fake.batch(2, 0, 0);
  await Promise.resolve();
  gates.get(2)!.resolve();
  await b;
  // Partition 2 went to another member: its offset is that member's to commit.
  fake.emit("consumer.group_join", { memberAssignment: { t: [0, 1] }, duration: 1 });
  runner.stop();
  await new Promise((resolve) => setTimeout(resolve, 0));
  gates.get(0)!.resolve();
  await Promise.all([a, runner.done]);
  assert.deepEqual(fake.committed, []);
  assert.deepEqual(fake.committedWhileStopping, [[{ topic: "t", partition: 0, offset: "3" }]]);
});

Deno.test("runStage() commits past a fetch of only control records (a transaction's commit marker)", () =>
  withRunner(async (fake) => {
    await fake.batch(0, 0, 4);
    // kafkajs: records 0-4 then the commit marker at 5; the marker alone comes as a batch with
    // no messages, which kafkajs does not hand to eachBatch but announces.
    fake.emit("consumer.end_batch_process", {
      topic: "t",
      partition: 0,
      batchSize: 0,
      lastOffset: "5",
    });
    // A batch with messages is the runner's own to commit, whatever kafkajs announces.
    fake.emit("consumer.end_batch_process", {
      topic: "t",
      partition: 1,
      batchSize: 3,
      lastOffset: "9",
    });
    fake.emit("consumer.fetch_start");
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fake.committed, [[{ topic: "t", partition: 0, offset: "6" }]]);
  }));
