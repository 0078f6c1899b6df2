/**
 * A fake clock for the market page's unit tests: timers run only when the test advances time.
 *
 * @module
 */
import type { Timers } from "./throttle.ts";

/** Fake {@linkcode Timers} and the controls a test drives them with. */
export interface FakeTimers {
  readonly timers: Timers;
  /** Timers not yet run. */
  pendingTimers(): number;
  /** Moves time on by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void;
}

/** A fake clock starting at `start` (default 0). */
export function fakeTimers(start = 0): FakeTimers {
  let now = start;
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
