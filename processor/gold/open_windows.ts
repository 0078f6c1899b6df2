/**
 * Decisions about gold's open windows, pure: when a partition taken over may finalize, which
 * window ends must be read back from the open-windows index, which ends are done with, and which
 * candles leave memory when gold holds more than its bound.
 *
 * @module
 */

/**
 * How long a partition taken over (restart, rebalance) waits for its first batch before its
 * restored watermark finalizes anything. Its clock was written by the previous owner, and the
 * time since counts as idle, as it would have for an uninterrupted worker whose input stopped;
 * but trades that arrived meanwhile are waiting in Kafka, and an uninterrupted worker would have
 * folded them in before their windows closed. Kafka hands a waiting backlog over within a fetch
 * (at most 100 ms here, `maxWaitTimeInMs`; at once after an empty fetch, which waits only for a
 * first record); its first batch ends the wait and moves the clock on from what it holds.
 */
export const TAKEOVER_GRACE_MS = 1000;

/** Whether a partition held since a takeover may not finalize yet at `now`. */
export function finalizationHeld(heldUntil: number | undefined, now: number): boolean {
  return heldUntil !== undefined && now < heldUntil;
}

/** The ends of `unread` that the watermark has passed, oldest first. */
export function dueEnds(unread: Iterable<number>, watermark: number): number[] {
  return [...unread].filter((end) => end <= watermark).sort((a, b) => a - b);
}

/** What {@linkcode releasableEnds} decides on. */
export interface ReleaseState {
  /** Ends in the partition's `open_window_ends`. */
  readonly ends: Iterable<number>;
  readonly watermark: number;
  /** Ends of the partition's windows in memory that are not final. */
  readonly openInMemory: ReadonlySet<number>;
  /** Ends whose index entries may hold windows not in memory. */
  readonly unread: ReadonlySet<number>;
}

/**
 * The ends that can leave `open_window_ends`: passed by the watermark, with no open window in
 * memory and none possibly left in the index.
 */
export function releasableEnds(state: ReleaseState): number[] {
  return [...state.ends].filter((end) =>
    end <= state.watermark && !state.openInMemory.has(end) && !state.unread.has(end)
  ).sort((a, b) => a - b);
}

/**
 * The keys to drop from memory, least recently used first (`entries` in that order), until at
 * most `target` remain, when there are more than `max`: none otherwise. Only entries `canLeave`
 * accepts (written, and findable again) are dropped.
 */
export function evictionVictims<K, E>(
  entries: Iterable<readonly [K, E]>,
  size: number,
  options: { readonly max: number; readonly target: number; readonly canLeave: (e: E) => boolean },
): K[] {
  if (size <= options.max) return [];
  const out: K[] = [];
  for (const [key, entry] of entries) {
    if (size - out.length <= options.target) break;
    if (options.canLeave(entry)) out.push(key);
  }
  return out;
}
