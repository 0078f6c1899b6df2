import assert from "node:assert/strict";
import ConsumerGroup from "kafkajs/src/consumer/consumerGroup.js";
import {
  type FetchingGroup,
  IDLE_FETCH_WAIT_MS,
  idleAwareFetch,
  nextFetchWait,
  ORIGINAL_FETCH,
  stopIdlePolling,
} from "./kafkajs_idle_fetch.ts";

const HOLD = { minBytes: 256 * 1024, maxWaitTime: 10 };

Deno.test("nextFetchWait() keeps the consumer's hold while records come", () => {
  assert.deepEqual(nextFetchWait(HOLD, false), HOLD);
});

Deno.test("nextFetchWait() after an empty fetch waits for the first record, up to the idle wait", () => {
  assert.deepEqual(nextFetchWait(HOLD, true), { minBytes: 1, maxWaitTime: IDLE_FETCH_WAIT_MS });
  assert.equal(IDLE_FETCH_WAIT_MS, 500, "Kafka's own fetch.max.wait.ms");
  // A hold longer than the idle wait is not shortened.
  assert.deepEqual(nextFetchWait({ minBytes: 1024, maxWaitTime: 5_000 }, true), {
    minBytes: 1,
    maxWaitTime: 5_000,
  });
});

Deno.test("nextFetchWait() leaves a consumer that holds nothing as it is, idle or not", () => {
  const eager = { minBytes: 1, maxWaitTime: 250 };
  assert.deepEqual(nextFetchWait(eager, true), eager);
  assert.deepEqual(nextFetchWait(eager, false), eager);
});

/** A consumer group whose fetches return `results` in turn and record what they waited for. */
function fakeGroup(hold: { minBytes: number; maxWaitTime: number }, results: number[]) {
  const asked: { minBytes: number; maxWaitTime: number; nodeId: number }[] = [];
  const group: FetchingGroup = {
    ...hold,
    fetch: idleAwareFetch(function (this: FetchingGroup, nodeId: number) {
      asked.push({ minBytes: this.minBytes, maxWaitTime: this.maxWaitTime, nodeId });
      const records = results.shift() ?? 0;
      return Promise.resolve([
        { messages: [] },
        { messages: Array.from({ length: records }, (_, i) => i) },
      ]);
    }),
  };
  return { group, asked };
}

Deno.test("idleAwareFetch(): an empty fetch makes the next wait for a record; a fetch with one brings the hold back", async () => {
  const { group, asked } = fakeGroup(HOLD, [5, 0, 0, 1, 3, 0]);
  for (let i = 0; i < 7; i++) await group.fetch(1);
  const idle = { minBytes: 1, maxWaitTime: IDLE_FETCH_WAIT_MS, nodeId: 1 };
  const held = { ...HOLD, nodeId: 1 };
  assert.deepEqual(asked, [held, held, idle, idle, held, held, idle]);
});

Deno.test("idleAwareFetch() leaves a consumer that holds nothing as created", async () => {
  const eager = { minBytes: 1, maxWaitTime: 250 };
  const { group, asked } = fakeGroup(eager, [0, 0, 2]);
  for (let i = 0; i < 3; i++) await group.fetch(1);
  assert.deepEqual(asked.map(({ minBytes, maxWaitTime }) => ({ minBytes, maxWaitTime })), [
    eager,
    eager,
    eager,
  ]);
});

Deno.test("idleAwareFetch(): a failed fetch changes nothing; the next one waits as before", async () => {
  let fail = true;
  const asked: number[] = [];
  const group: FetchingGroup = {
    ...HOLD,
    fetch: idleAwareFetch(function (this: FetchingGroup) {
      asked.push(this.minBytes);
      if (fail) return Promise.reject(new Error("broker gone"));
      return Promise.resolve([]);
    }),
  };
  await assert.rejects(group.fetch(1), /broker gone/);
  fail = false;
  await group.fetch(1);
  await group.fetch(1);
  assert.deepEqual(asked, [HOLD.minBytes, HOLD.minBytes, 1]);
});

Deno.test("stopIdlePolling() replaces kafkajs's ConsumerGroup.fetch, once", () => {
  const prototype = (ConsumerGroup as unknown as { prototype: FetchingGroup }).prototype;
  stopIdlePolling();
  const installed = prototype.fetch;
  assert.notEqual(installed, ORIGINAL_FETCH);
  stopIdlePolling();
  assert.equal(prototype.fetch, installed, "idempotent: not wrapped twice");
});
