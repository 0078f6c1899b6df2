/**
 * A bounded FIFO between the WebSocket and Kafka. It holds at most `maxItems`; a push into a
 * full buffer is refused so the caller counts the drop and memory stays bounded. The sink reads
 * it in batches: {@linkcode TradeBuffer.nextBatch} waits until a batch is full, the oldest item
 * has lingered `lingerMs`, or the buffer is closed, and returns the batch without removing it;
 * {@linkcode TradeBuffer.commit} removes it once Kafka acknowledged it. Order is kept.
 *
 * @module
 */
import { type Clock, systemClock, type TimerId } from "../shared/clock.ts";

/** Options of {@linkcode TradeBuffer}. */
export interface TradeBufferOptions {
  /** Most items held. */
  readonly maxItems: number;
  /** Most items in one batch. */
  readonly batchMaxItems: number;
  /** How long the first item of a batch may wait for more, ms. */
  readonly lingerMs: number;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
}

/** Bounded FIFO with batching; see the module doc. */
export class TradeBuffer<T> {
  readonly maxItems: number;
  readonly batchMaxItems: number;
  readonly #lingerMs: number;
  readonly #clock: Clock;
  #items: T[] = [];
  #head = 0;
  /** The oldest waiting item may be sent now (its linger ran out, or it waited out a send). */
  #due = false;
  #closed = false;
  #lingerTimer: TimerId | undefined;
  #wake: (() => void) | undefined;

  constructor(options: TradeBufferOptions) {
    if (options.batchMaxItems < 1 || options.maxItems < options.batchMaxItems) {
      throw new RangeError(
        `TradeBuffer needs 1 <= batchMaxItems <= maxItems, got ${options.batchMaxItems} and ${options.maxItems}`,
      );
    }
    this.maxItems = options.maxItems;
    this.batchMaxItems = options.batchMaxItems;
    this.#lingerMs = options.lingerMs;
    this.#clock = options.clock ?? systemClock;
  }

  /** Items waiting. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Appends `item`; returns `false`, keeping nothing, when the buffer is full. */
  push(item: T): boolean {
    if (this.size >= this.maxItems) return false;
    this.#items.push(item);
    if (this.size === 1 && !this.#due) this.#startLinger();
    if (this.size >= this.batchMaxItems) this.#signal();
    return true;
  }

  /**
   * Waits for a batch and returns it, oldest first, without removing it. Returns an empty
   * array once the buffer is closed and empty, or when `signal` aborts.
   */
  async nextBatch(signal?: AbortSignal): Promise<T[]> {
    while (!this.#ready()) {
      if (signal?.aborted || (this.#closed && this.size === 0)) return [];
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal?.addEventListener("abort", onAbort, { once: true });
        this.#wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.#items.slice(this.#head, this.#head + this.batchMaxItems);
  }

  /** Removes the `count` oldest items (a batch Kafka acknowledged, or gave up on). */
  commit(count: number): void {
    this.#head += Math.min(count, this.size);
    if (this.size === 0) {
      this.#items = [];
      this.#head = 0;
      this.#due = false;
      this.#cancelLinger();
      return;
    }
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    // What is left waited out the send: it goes next, without a new linger.
    this.#due = true;
  }

  /** Flush mode: no more lingering; `nextBatch` returns what is left, then `[]`. */
  close(): void {
    this.#closed = true;
    this.#cancelLinger();
    this.#signal();
  }

  #ready(): boolean {
    return this.size > 0 && (this.#due || this.#closed || this.size >= this.batchMaxItems);
  }

  #startLinger(): void {
    this.#cancelLinger();
    if (this.#lingerMs <= 0) {
      this.#due = true;
      this.#signal();
      return;
    }
    this.#lingerTimer = this.#clock.setTimeout(() => {
      this.#lingerTimer = undefined;
      this.#due = true;
      this.#signal();
    }, this.#lingerMs);
  }

  #cancelLinger(): void {
    if (this.#lingerTimer !== undefined) this.#clock.clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
  }

  #signal(): void {
    this.#wake?.();
  }
}
