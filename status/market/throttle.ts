/**
 * A per-client throttle for server-sent events: values are offered under a key (a symbol and
 * interval, or `health`), the newest value of each key replaces the older one, and everything
 * pending goes out as one event at most once every `minIntervalMs`. A client is therefore sent
 * a bounded number of events whatever the feed's rate, and always the latest state.
 *
 * Bounded whatever the number of keys: at most `maxPending` keys wait (a new key beyond that
 * drops the oldest pending one, reported to `onDrop`), and one event carries at most `maxBatch`
 * values, the oldest keys first; the rest go in the next events.
 *
 * Pure but for the clock it is given, so tests drive it with a `FakeClock`.
 *
 * @module
 */
import { type Clock, systemClock } from "../../shared/clock.ts";

/** Options of {@linkcode createThrottle}. */
export interface ThrottleOptions<T> {
  /** Least time between two emits. */
  readonly minIntervalMs: number;
  /**
   * Sends the pending values as one event, oldest key first. Returns false when the client
   * cannot take it now (its buffer is full): the values stay pending (unless a newer value of
   * the same key arrived meanwhile) and are tried again after `minIntervalMs`.
   */
  readonly emit: (values: T[]) => boolean;
  /** Most keys pending at once; a new key beyond drops the oldest pending one. Default no bound. */
  readonly maxPending?: number;
  /** Called with the key of each value dropped to stay within `maxPending`. */
  readonly onDrop?: (key: string) => void;
  /** Most values in one event. Default no bound. */
  readonly maxBatch?: number;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
}

/** A running throttle. */
export interface Throttle<T> {
  /**
   * Queues `value` under `key`, replacing a pending value of the same key (which keeps its place
   * in the order).
   */
  offer(key: string, value: T): void;
  /** How many keys are pending. */
  pending(): number;
  /** Drops everything pending and stops the timer. */
  close(): void;
}

/** Creates a throttle; nothing is scheduled until the first offer. */
export function createThrottle<T>(options: ThrottleOptions<T>): Throttle<T> {
  const clock = options.clock ?? systemClock;
  const maxPending = options.maxPending ?? Number.POSITIVE_INFINITY;
  const maxBatch = options.maxBatch ?? Number.POSITIVE_INFINITY;
  if (!(maxPending >= 1) || !(maxBatch >= 1)) {
    throw new RangeError(
      `createThrottle() needs maxPending and maxBatch of at least 1, got ${maxPending} and ${maxBatch}`,
    );
  }
  /** Insertion order is the order values go out in: oldest key first. */
  const pending = new Map<string, T>();
  let lastEmit = Number.NEGATIVE_INFINITY;
  let timer: unknown;
  let closed = false;

  function schedule(): void {
    if (closed || timer !== undefined || pending.size === 0) return;
    const wait = Math.max(0, lastEmit + options.minIntervalMs - clock.now());
    // Even with no wait, a timer: offers made in the same turn go out as one event.
    timer = clock.setTimeout(flush, wait);
  }

  function flush(): void {
    timer = undefined;
    if (closed || pending.size === 0) return;
    const batch: [string, T][] = [];
    for (const entry of pending) {
      if (batch.length >= maxBatch) break;
      batch.push(entry);
    }
    lastEmit = clock.now();
    // `emit` is synchronous: nothing is offered between it and the deletes.
    if (options.emit(batch.map(([, value]) => value))) {
      for (const [key] of batch) pending.delete(key);
    }
    schedule();
  }

  return {
    offer(key, value) {
      if (closed) return;
      if (!pending.has(key) && pending.size >= maxPending) {
        const oldest = pending.keys().next().value as string;
        pending.delete(oldest);
        options.onDrop?.(oldest);
      }
      pending.set(key, value);
      schedule();
    },
    pending: () => pending.size,
    close() {
      closed = true;
      pending.clear();
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
