import assert from "node:assert/strict";
import { FakeClock } from "../shared/clock.ts";
import { SEND_SPACING_MS, TradeBuffer } from "./trade_buffer.ts";

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
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 3, clock });
  for (let i = 0; i < 5; i++) buffer.push(i);
  assert.deepEqual(await buffer.nextBatch(), [0, 1, 2]);
  assert.deepEqual(await buffer.nextBatch(), [0, 1, 2], "nothing removed before commit");
  buffer.commit(3);
  clock.tick(SEND_SPACING_MS);
  assert.deepEqual(await buffer.nextBatch(), [3, 4], "the rest goes next");
});

Deno.test("TradeBuffer.nextBatch() waits while the buffer is empty and a first push goes at once", async () => {
  const buffer = new TradeBuffer<string>({
    maxItems: 10,
    batchMaxItems: 3,
    clock: new FakeClock(),
  });
  const batch = buffer.nextBatch();
  assert.equal((await settled(batch)).done, false);
  buffer.push("a");
  assert.deepEqual(await batch, ["a"], "after a quiet spell a partial batch goes at once");
});

Deno.test("TradeBuffer takes a partial batch no sooner than SEND_SPACING_MS after the last, on the first push after that", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 5, clock });
  buffer.push(1);
  const first = await buffer.nextBatch();
  buffer.commit(first.length);
  clock.tick(SEND_SPACING_MS - 1);
  const second = buffer.nextBatch();
  buffer.push(2);
  assert.equal((await settled(second)).done, false, "too soon after the last batch");
  clock.tick(1);
  assert.equal((await settled(second)).done, false, "a due batch waits for the next push");
  buffer.push(3);
  assert.deepEqual(await second, [2, 3], "leaves with the push that woke it");
});

Deno.test("TradeBuffer takes a waiting partial batch at once when it is due as the last send ends", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 5, clock });
  buffer.push(1);
  const first = await buffer.nextBatch();
  buffer.push(2); // arrives while the first batch is being sent
  clock.tick(SEND_SPACING_MS);
  buffer.commit(first.length);
  assert.deepEqual(await buffer.nextBatch(), [2]);
});

Deno.test("TradeBuffer sends a partial batch by timer at twice SEND_SPACING_MS when no push comes", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 5, clock });
  buffer.push(1);
  buffer.commit((await buffer.nextBatch()).length);
  clock.tick(1);
  buffer.push(2);
  const second = buffer.nextBatch();
  clock.tick(2 * SEND_SPACING_MS - 2);
  assert.equal((await settled(second)).done, false);
  assert.equal(clock.pending, 1, "one timer, however many pushes");
  clock.tick(1);
  assert.deepEqual(await second, [2]);
  assert.equal(clock.pending, 0);
});

Deno.test("TradeBuffer takes a full batch at once, however soon after the last", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 3, clock });
  buffer.push(1);
  const first = await buffer.nextBatch();
  assert.deepEqual(first, [1]);
  for (const n of [2, 3, 4, 5]) buffer.push(n); // arrive while the first batch is being sent
  buffer.commit(first.length);
  assert.deepEqual(await buffer.nextBatch(), [2, 3, 4]);
  buffer.commit(3);
  const last = buffer.nextBatch();
  assert.equal((await settled(last)).done, false, "[5] is partial and too soon");
  clock.tick(2 * SEND_SPACING_MS);
  assert.deepEqual(await last, [5]);
});

Deno.test("TradeBuffer.nextBatch() takes every push made before it resumes into one batch", async () => {
  const buffer = new TradeBuffer<number>({
    maxItems: 10,
    batchMaxItems: 4,
    clock: new FakeClock(),
  });
  const batch = buffer.nextBatch();
  for (const n of [1, 2, 3]) buffer.push(n);
  assert.deepEqual(await batch, [1, 2, 3]);
});

Deno.test("TradeBuffer.close() wakes a waiting nextBatch() with [] and lets what is left go at once", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 4, clock });
  const waiting = buffer.nextBatch();
  buffer.close();
  assert.deepEqual(await waiting, []);
  const closing = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 4, clock });
  closing.push(1);
  closing.commit((await closing.nextBatch()).length);
  closing.push(2);
  const pending = closing.nextBatch();
  assert.equal((await settled(pending)).done, false);
  closing.close();
  assert.deepEqual(await pending, [2], "no spacing while flushing");
  assert.equal(clock.pending, 0, "and no timer left behind");
  closing.commit(1);
  assert.deepEqual(await closing.nextBatch(), []);
});

Deno.test("TradeBuffer.interrupt() makes a waiting nextBatch() return [] and keeps the spacing", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 10, batchMaxItems: 4, clock });
  const empty = buffer.nextBatch();
  buffer.interrupt();
  assert.deepEqual(await empty, []);
  buffer.interrupt(); // nobody waits: nothing to wake, nothing remembered
  buffer.push(1);
  assert.deepEqual(await buffer.nextBatch(), [1], "a later call is not interrupted");
  buffer.commit(1);
  buffer.push(2);
  const waiting = buffer.nextBatch();
  buffer.push(3);
  buffer.interrupt();
  assert.deepEqual(await waiting, [], "interrupted while spacing, even right after a push");
  assert.equal((await settled(buffer.nextBatch())).done, false, "still too soon after [1]");
  clock.tick(2 * SEND_SPACING_MS);
});

Deno.test("TradeBuffer keeps order across many pushes and commits", async () => {
  const clock = new FakeClock();
  const buffer = new TradeBuffer<number>({ maxItems: 20_000, batchMaxItems: 700, clock });
  const seen: number[] = [];
  let next = 0;
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 500; i++) buffer.push(next++);
    clock.tick(SEND_SPACING_MS);
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
