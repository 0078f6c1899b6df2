/**
 * Gold's candles in memory: one entry per window, least recently used first, bounded.
 *
 * Invariants:
 * - an entry leaves memory by eviction only when it is written (not dirty) and, when open,
 *   findable again through the open-windows index (its entry written): the caller marks the
 *   end of an evicted open window unread, so finalization reads it back when it falls due, and a
 *   trade that touches it reads its row back first;
 * - eviction runs past `max` entries and stops at 90% of it, so it does not run on every batch.
 *
 * @module
 */
import type { Interval } from "../../shared/gold_table.ts";
import type { Candle } from "./candle.ts";
import { evictionVictims } from "./open_windows.ts";

/** A candle in memory, with what gold knows of its rows. */
export interface CacheEntry {
  candle: Candle;
  /** Changed since it was last written. */
  dirty: boolean;
  /** The silver partition whose watermark decides when the window is final. */
  readonly partition: number;
  /** Wall time the watermark passed the window's end, once it has. */
  crossedAt?: number;
  /**
   * The window's entry in the open-windows index: written by this worker (or found there),
   * none (the window was created here, or read back final), or unknown (read back open).
   */
  index: "written" | "none" | "unknown";
}

/** The cache key of a window. */
export function entryKey(interval: Interval, symbol: string, start: number): string {
  return `${interval}\u0000${symbol}\u0000${start}`;
}

/** Candles in memory, least recently used first. */
export class CandleCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #max: number;

  /** A cache that {@linkcode evict} brings back under `max` entries. */
  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  get(key: string): CacheEntry | undefined {
    return this.#entries.get(key);
  }

  /** Sets the entry; a new key is the most recently used. */
  set(key: string, entry: CacheEntry): void {
    this.#entries.set(key, entry);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Every entry, least recently used first. Deleting the current one while iterating is safe. */
  entries(): IterableIterator<[string, CacheEntry]> {
    return this.#entries.entries();
  }

  /**
   * The entries of `partition`, least recently used first. Deleting the current one while
   * iterating is safe.
   */
  *ofPartition(partition: number): IterableIterator<[string, CacheEntry]> {
    for (const item of this.#entries) {
      if (item[1].partition === partition) yield item;
    }
  }

  /** Makes the entries of `keys` (where present) the most recently used, in that order. */
  touch(keys: Iterable<string>): void {
    for (const key of keys) {
      const entry = this.#entries.get(key);
      if (entry) {
        this.#entries.delete(key);
        this.#entries.set(key, entry);
      }
    }
  }

  /**
   * Drops least recently used entries that may leave (written, and when open findable through
   * the index) while more than the bound are in memory, and returns them.
   */
  evict(): CacheEntry[] {
    const victims = evictionVictims(this.#entries, this.#entries.size, {
      max: this.#max,
      target: Math.floor(this.#max * 0.9),
      canLeave: (e) => !e.dirty && (e.candle.isFinal || e.index === "written"),
    });
    return victims.map((key) => {
      const entry = this.#entries.get(key)!;
      this.#entries.delete(key);
      return entry;
    });
  }
}
