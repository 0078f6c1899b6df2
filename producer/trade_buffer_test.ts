import assert from "node:assert/strict";
import { TradeBuffer } from "./trade_buffer.ts";

function settled<T>(promise: Promise<T>): Promise<{ done: boolean; value?: T }> {
  const marker = { done: false };
  return Promise.race([
    promise.then((value) => ({ done: true, value })),
    new Promise<typeof marker>((resolve) =>
      queueMicrotask(() => queueMicrotask(() => resolve(marker)))
    ),
  ]);
}

Deno.test("TradeBuffer refuses pushes beyond its bound and keeps what it holds", () => {
  const buffer = new TradeBuffer<number>({
    maxItems: 3,
    batchMaxItems: 2,
  });
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => buffer.push(n)), [true, true, true, false, false]);
  assert.equal(buffer.size, 3);
});

Deno.test("TradeBuffer.nextBatch() returns a full batch at once, oldest first, and commit() removes it", async () => {
  const buffer = new TradeBuffer<number>({
    maxItems: 10,
    batchMaxItems: 3,
  });
  for (let i = 0; i < 5; i++) buffer.push(i);
  assert.deepEqual(await buffer.nextBatch(), [0, 1, 2]);
  assert.deepEqual(await buffer.nextBatch(), [0, 1, 2], "nothing removed before commit");
  buffer.commit(3);
  assert.deepEqual(await buffer.nextBatch(), [3, 4], "the rest goes next");
});

Deno.test("TradeBuffer.nextBatch() waits while the buffer is empty and wakes on the first push", async () => {
  const buffer = new TradeBuffer<string>({ maxItems: 10, batchMaxItems: 3 });
  const batch = buffer.nextBatch();
  assert.equal((await settled(batch)).done, false);
  buffer.push("a");
  assert.deepEqual(await batch, ["a"], "a partial batch goes at once: no linger");
});

Deno.test("TradeBuffer batches what is pushed while the last batch is out, up to batchMaxItems", async () => {
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 3 });
  buffer.push(1);
  const first = await buffer.nextBatch();
  assert.deepEqual(first, [1]);
  for (const n of [2, 3, 4, 5]) buffer.push(n); // arrive while the first batch is being sent
  buffer.commit(first.length);
  assert.deepEqual(await buffer.nextBatch(), [2, 3, 4]);
  buffer.commit(3);
  assert.deepEqual(await buffer.nextBatch(), [5]);
});

Deno.test("TradeBuffer.nextBatch() takes every push made before it resumes into one batch", async () => {
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 4 });
  const batch = buffer.nextBatch();
  for (const n of [1, 2, 3]) buffer.push(n);
  assert.deepEqual(await batch, [1, 2, 3]);
});

Deno.test("TradeBuffer.close() wakes a waiting nextBatch() with [] and lets what is left go first", async () => {
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 4 });
  const waiting = buffer.nextBatch();
  buffer.close();
  assert.deepEqual(await waiting, []);
  const closed = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 4 });
  closed.push(1);
  closed.close();
  assert.deepEqual(await closed.nextBatch(), [1]);
  closed.commit(1);
  assert.deepEqual(await closed.nextBatch(), []);
});

Deno.test("TradeBuffer.nextBatch() returns [] when its signal aborts", async () => {
  const buffer = new TradeBuffer<number>({
    maxItems: 10,
    batchMaxItems: 4,
  });
  const controller = new AbortController();
  const batch = buffer.nextBatch(controller.signal);
  controller.abort();
  assert.deepEqual(await batch, []);
});

Deno.test("TradeBuffer keeps order across many pushes and commits", async () => {
  const buffer = new TradeBuffer<number>({
    maxItems: 20_000,
    batchMaxItems: 700,
  });
  const seen: number[] = [];
  let next = 0;
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 500; i++) buffer.push(next++);
    const batch = await buffer.nextBatch();
    seen.push(...batch);
    buffer.commit(batch.length);
  }
  buffer.close();
  for (let batch = await buffer.nextBatch(); batch.length > 0; batch = await buffer.nextBatch()) {
    seen.push(...batch);
    buffer.commit(batch.length);
  }
  assert.equal(seen.length, next);
  assert.ok(seen.every((n, i) => n === i));
});
