import assert from "node:assert/strict";
import { FakeClock } from "../shared/clock.ts";
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
    lingerMs: 10,
    clock: new FakeClock(),
  });
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => buffer.push(n)), [true, true, true, false, false]);
  assert.equal(buffer.size, 3);
});

Deno.test("TradeBuffer.nextBatch() returns a full batch at once, oldest first, and commit() removes it", async () => {
  const buffer = new TradeBuffer<number>({
    maxItems: 10,
    batchMaxItems: 3,
    lingerMs: 1000,
    clock: new FakeClock(),
  });
  for (let i = 0; i < 5; i++) buffer.push(i);
  assert.deepEqual(await buffer.nextBatch(), [0, 1, 2]);
  assert.deepEqual(await buffer.nextBatch(), [0, 1, 2], "nothing removed before commit");
  buffer.commit(3);
  assert.deepEqual(await buffer.nextBatch(), [3, 4], "the rest waited out a send: no new linger");
});

Deno.test("TradeBuffer.nextBatch() waits the linger time for a partial batch", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<string>({ maxItems: 10, batchMaxItems: 3, lingerMs: 20, clock });
  const batch = buffer.nextBatch();
  buffer.push("a");
  clock.tick(19);
  assert.equal((await settled(batch)).done, false);
  buffer.push("b");
  clock.tick(1);
  assert.deepEqual(await batch, ["a", "b"]);
});

Deno.test("TradeBuffer.nextBatch() wakes as soon as a batch fills, before the linger", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 2, lingerMs: 1000, clock });
  const batch = buffer.nextBatch();
  buffer.push(1);
  buffer.push(2);
  assert.deepEqual(await batch, [1, 2]);
});

Deno.test("TradeBuffer.close() flushes what is left without lingering, then returns []", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 4, lingerMs: 1000, clock });
  buffer.push(1);
  const batch = buffer.nextBatch();
  buffer.close();
  assert.deepEqual(await batch, [1]);
  buffer.commit(1);
  assert.deepEqual(await buffer.nextBatch(), []);
  assert.equal(clock.pending, 0, "no timer left behind");
});

Deno.test("TradeBuffer.nextBatch() returns [] when its signal aborts", async () => {
  const buffer = new TradeBuffer<number>({
    maxItems: 10,
    batchMaxItems: 4,
    lingerMs: 1000,
    clock: new FakeClock(),
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
    lingerMs: 0,
    clock: new FakeClock(),
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
