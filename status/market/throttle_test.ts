import assert from "node:assert/strict";
import { createThrottle, type Timers } from "./throttle.ts";

/** A fake clock: timers run only when the test advances time. */
function fakeTimers() {
  let now = 0;
  let nextId = 1;
  const due = new Map<number, { at: number; callback: () => void }>();
  const timers: Timers = {
    now: () => now,
    setTimeout(callback, ms) {
      const id = nextId++;
      due.set(id, { at: now + ms, callback });
      return id;
    },
    clearTimeout(handle) {
      due.delete(handle as number);
    },
  };
  return {
    timers,
    pendingTimers: () => due.size,
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const next = [...due.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > end) break;
        due.delete(next[0]);
        now = next[1].at;
        next[1].callback();
      }
      now = end;
    },
  };
}

Deno.test("a burst of offers goes out as one event, newest value per key", () => {
  const clock = fakeTimers();
  const events: string[][] = [];
  const throttle = createThrottle<string>({
    minIntervalMs: 250,
    emit: (values) => (events.push(values), true),
    timers: clock.timers,
  });
  throttle.offer("AAPL/5m", "a1");
  throttle.offer("MSFT/5m", "m1");
  throttle.offer("AAPL/5m", "a2");
  assert.equal(events.length, 0, "nothing is sent synchronously");
  clock.advance(0);
  assert.deepEqual(events, [["a2", "m1"]]);
});

Deno.test("a feed of 100 updates a second reaches a client as at most 4 events a second", () => {
  const clock = fakeTimers();
  const events: { at: number; values: number[] }[] = [];
  const throttle = createThrottle<number>({
    minIntervalMs: 250,
    emit: (values) => (events.push({ at: clock.timers.now(), values }), true),
    timers: clock.timers,
  });
  for (let i = 0; i < 1000; i++) {
    throttle.offer(`S${i % 7}/5m`, i);
    clock.advance(10);
  }
  clock.advance(1000);
  // 10 s of feed: 40 events, and the last one carries the newest value of every key.
  assert.ok(events.length <= 41, `${events.length} events in 10 s`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i]!.at - events[i - 1]!.at >= 250, "at least 250 ms apart");
  }
  const last = new Map<number, number>();
  for (const { values } of events) for (const v of values) last.set(v % 7, v);
  assert.deepEqual([...last.values()].sort((a, b) => a - b), [993, 994, 995, 996, 997, 998, 999]);
  assert.equal(throttle.pending(), 0);
  assert.equal(clock.pendingTimers(), 0, "no timer left once idle");
});

Deno.test("the first offer after a quiet spell goes out at once, the next waits out the interval", () => {
  const clock = fakeTimers();
  const at: number[] = [];
  const throttle = createThrottle<number>({
    minIntervalMs: 250,
    emit: () => (at.push(clock.timers.now()), true),
    timers: clock.timers,
  });
  clock.advance(5000);
  throttle.offer("k", 1);
  clock.advance(0);
  throttle.offer("k", 2);
  clock.advance(100);
  assert.deepEqual(at, [5000]);
  clock.advance(150);
  assert.deepEqual(at, [5000, 5250]);
});

Deno.test("a client that cannot take an event keeps its values, refreshed, until it can", () => {
  const clock = fakeTimers();
  let accept = false;
  const sent: string[][] = [];
  const throttle = createThrottle<string>({
    minIntervalMs: 250,
    emit: (values) => {
      if (!accept) return false;
      sent.push(values);
      return true;
    },
    timers: clock.timers,
  });
  throttle.offer("a", "a1");
  throttle.offer("b", "b1");
  clock.advance(0);
  throttle.offer("a", "a2");
  clock.advance(1000);
  assert.deepEqual(sent, []);
  assert.equal(throttle.pending(), 2, "bounded: one value per key");
  accept = true;
  clock.advance(250);
  assert.deepEqual(sent, [["a2", "b1"]]);
});

Deno.test("close() drops what is pending and cancels the timer", () => {
  const clock = fakeTimers();
  const sent: number[][] = [];
  const throttle = createThrottle<number>({
    minIntervalMs: 250,
    emit: (values) => (sent.push(values), true),
    timers: clock.timers,
  });
  throttle.offer("k", 1);
  throttle.close();
  throttle.offer("k", 2);
  clock.advance(1000);
  assert.deepEqual(sent, []);
  assert.equal(clock.pendingTimers(), 0);
});
