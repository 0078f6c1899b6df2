import assert from "node:assert/strict";
import { FakeClock } from "../../shared/clock.ts";
import { createThrottle, type ThrottleOptions } from "./throttle.ts";

/**
 * A throttle of at most one event every 250 ms on a fake clock at 0, whose events (each a list
 * of values) land in `sent`; `options` replace any of that.
 */
function setup<T>(options: Partial<ThrottleOptions<T>> = {}) {
  const clock = new FakeClock(0);
  const sent: T[][] = [];
  const throttle = createThrottle<T>({
    minIntervalMs: 250,
    emit: (values) => (sent.push(values), true),
    clock,
    ...options,
  });
  return { clock, sent, throttle };
}

Deno.test("a burst of offers goes out as one event, newest value per key", () => {
  const { clock, sent, throttle } = setup<string>();
  throttle.offer("AAPL/5m", "a1");
  throttle.offer("MSFT/5m", "m1");
  throttle.offer("AAPL/5m", "a2");
  assert.equal(sent.length, 0, "nothing is sent synchronously");
  clock.tick(0);
  assert.deepEqual(sent, [["a2", "m1"]]);
});

Deno.test("a feed of 100 updates a second reaches a client as at most 4 events a second", () => {
  const events: { at: number; values: number[] }[] = [];
  const { clock, throttle } = setup<number>({
    emit: (values): boolean => (events.push({ at: clock.now(), values }), true),
  });
  for (let i = 0; i < 1000; i++) {
    throttle.offer(`S${i % 7}/5m`, i);
    clock.tick(10);
  }
  clock.tick(1000);
  // 10 s of feed: 40 events, and the last one carries the newest value of every key.
  assert.ok(events.length <= 41, `${events.length} events in 10 s`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i]!.at - events[i - 1]!.at >= 250, "at least 250 ms apart");
  }
  const last = new Map<number, number>();
  for (const { values } of events) for (const v of values) last.set(v % 7, v);
  assert.deepEqual([...last.values()].sort((a, b) => a - b), [993, 994, 995, 996, 997, 998, 999]);
  assert.equal(throttle.pending(), 0);
  assert.equal(clock.pending, 0, "no timer left once idle");
});

Deno.test("the first offer after a quiet spell goes out at once, the next waits out the interval", () => {
  const at: number[] = [];
  const { clock, throttle } = setup<number>({ emit: (): boolean => (at.push(clock.now()), true) });
  clock.tick(5000);
  throttle.offer("k", 1);
  clock.tick(0);
  throttle.offer("k", 2);
  clock.tick(100);
  assert.deepEqual(at, [5000]);
  clock.tick(150);
  assert.deepEqual(at, [5000, 5250]);
});

Deno.test("a client that cannot take an event keeps its values, refreshed, until it can", () => {
  let accept = false;
  const sent: string[][] = [];
  const { clock, throttle } = setup<string>({
    emit: (values) => {
      if (!accept) return false;
      sent.push(values);
      return true;
    },
  });
  throttle.offer("a", "a1");
  throttle.offer("b", "b1");
  clock.tick(0);
  throttle.offer("a", "a2");
  clock.tick(1000);
  assert.deepEqual(sent, []);
  assert.equal(throttle.pending(), 2, "bounded: one value per key");
  accept = true;
  clock.tick(250);
  assert.deepEqual(sent, [["a2", "b1"]]);
});

Deno.test("close() drops what is pending and cancels the timer", () => {
  const { clock, sent, throttle } = setup<number>();
  throttle.offer("k", 1);
  throttle.close();
  throttle.offer("k", 2);
  clock.tick(1000);
  assert.deepEqual(sent, []);
  assert.equal(clock.pending, 0);
});

Deno.test("at most maxPending keys wait: a new key drops the oldest pending one and says so", () => {
  const dropped: string[] = [];
  const { clock, sent, throttle } = setup<string>({
    maxPending: 3,
    onDrop: (key) => dropped.push(key),
  });
  for (let i = 0; i < 10_000; i++) throttle.offer(`S${i}`, `v${i}`);
  throttle.offer("S9998", "v9998b");
  assert.equal(throttle.pending(), 3);
  assert.equal(dropped.length, 9_997);
  assert.deepEqual(dropped.slice(0, 2), ["S0", "S1"]);
  clock.tick(0);
  assert.deepEqual(sent, [["v9997", "v9998b", "v9999"]]);
});

Deno.test("an event carries at most maxBatch values, oldest keys first; the rest follow", () => {
  const { clock, sent, throttle } = setup<number>({ maxBatch: 2 });
  for (let i = 0; i < 5; i++) throttle.offer(`k${i}`, i);
  clock.tick(0);
  assert.deepEqual(sent, [[0, 1]]);
  throttle.offer("k2", 22);
  clock.tick(250);
  assert.deepEqual(sent, [[0, 1], [22, 3]], "a refreshed key keeps its place");
  clock.tick(250);
  assert.deepEqual(sent, [[0, 1], [22, 3], [4]]);
  assert.equal(throttle.pending(), 0);
  assert.throws(
    () => createThrottle({ minIntervalMs: 1, emit: () => true, maxBatch: 0 }),
    /maxPending and maxBatch of at least 1/,
  );
});
