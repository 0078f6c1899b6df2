import assert from "node:assert/strict";
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
import {
  ORIGINAL_SCHEDULE,
  type RequestQueueInternals,
  stopIdleRequestQueueLoop,
} from "./kafkajs_request_queue.ts";

type Queue = RequestQueueInternals & { destroy(): void };

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function newQueue(): Queue {
  const Queue = RequestQueue as unknown as new (options: unknown) => Queue;
  return new Queue({
    maxInFlightRequests: 1,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: "test",
    broker: "127.0.0.1:9092",
    logger: silent,
  });
}

Deno.test("kafkajs as shipped re-arms a timer on an idle queue (what the fix removes)", () => {
  const queue = newQueue();
  try {
    ORIGINAL_SCHEDULE.call(queue);
    assert.notEqual(queue.throttleCheckTimeoutId, null);
  } finally {
    queue.destroy();
  }
});

Deno.test("stopIdleRequestQueueLoop() sets no timer when nothing is pending or throttled", () => {
  stopIdleRequestQueueLoop();
  const queue = newQueue();
  try {
    queue.checkPendingRequests();
    assert.equal(queue.throttleCheckTimeoutId, null);
  } finally {
    queue.destroy();
  }
});

Deno.test("stopIdleRequestQueueLoop() still checks a throttled queue when the throttle ends", async () => {
  stopIdleRequestQueueLoop();
  const queue = newQueue();
  let checks = 0;
  const check = queue.checkPendingRequests.bind(queue);
  queue.checkPendingRequests = () => {
    checks++;
    check();
  };
  try {
    queue.throttledUntil = Date.now() + 20;
    queue.scheduleCheckPendingRequests();
    assert.notEqual(queue.throttleCheckTimeoutId, null);
    const deadline = Date.now() + 2_000;
    while (checks === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(checks, 1);
    // The throttle is over and nothing is pending: no further timer.
    assert.equal(queue.throttleCheckTimeoutId, null);
  } finally {
    queue.destroy();
  }
});

Deno.test("stopIdleRequestQueueLoop() checks a queue with pending requests every 10 ms", () => {
  stopIdleRequestQueueLoop();
  const queue = newQueue();
  try {
    queue.pending.push({});
    queue.scheduleCheckPendingRequests();
    assert.notEqual(queue.throttleCheckTimeoutId, null);
  } finally {
    queue.pending.length = 0;
    queue.destroy();
  }
});
