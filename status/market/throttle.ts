/**
 * A per-client throttle for server-sent events: values are offered under a key (a symbol and
 * interval, or `health`), the newest value of each key replaces the older one, and everything
 * pending goes out as one event at most once every `minIntervalMs`. A client is therefore sent
 * a bounded number of events whatever the feed's rate, and always the latest state.
 *
 * Pure but for the timer it is given, so tests drive it with a fake clock.
 *
 * @module
 */

/** The clock and timer a throttle uses; tests pass a fake one. */
export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock and timers. */
export const REAL_TIMERS: Timers = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

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
  /** Default {@linkcode REAL_TIMERS}. */
  readonly timers?: Timers;
}

/** A running throttle. */
export interface Throttle<T> {
  /** Queues `value` under `key`, replacing a pending value of the same key. */
  offer(key: string, value: T): void;
  /** How many keys are pending. */
  pending(): number;
  /** Drops everything pending and stops the timer. */
  close(): void;
}

/** Creates a throttle; nothing is scheduled until the first offer. */
export function createThrottle<T>(options: ThrottleOptions<T>): Throttle<T> {
  const timers = options.timers ?? REAL_TIMERS;
  const pending = new Map<string, T>();
  let lastEmit = Number.NEGATIVE_INFINITY;
  let timer: unknown;
  let closed = false;

  function schedule(): void {
    if (closed || timer !== undefined || pending.size === 0) return;
    const wait = Math.max(0, lastEmit + options.minIntervalMs - timers.now());
    // Even with no wait, a timer: offers made in the same turn go out as one event.
    timer = timers.setTimeout(flush, wait);
  }

  function flush(): void {
    timer = undefined;
    if (closed || pending.size === 0) return;
    const batch = new Map(pending);
    pending.clear();
    lastEmit = timers.now();
    if (!options.emit([...batch.values()])) {
      for (const [key, value] of batch) if (!pending.has(key)) pending.set(key, value);
    }
    schedule();
  }

  return {
    offer(key, value) {
      if (closed) return;
      pending.set(key, value);
      schedule();
    },
    pending: () => pending.size,
    close() {
      closed = true;
      pending.clear();
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
    },
  };
}
