/**
 * A bounded FIFO between the WebSocket and Kafka. It holds at most `maxItems`; a push into a
 * full buffer is refused so the caller counts the drop and memory stays bounded. The sink reads
 * it in batches: {@linkcode TradeBuffer.nextBatch} waits until something is waiting (or the
 * buffer is closed) and returns up to `batchMaxItems` of it without removing it;
 * {@linkcode TradeBuffer.commit} removes it once Kafka acknowledged it. Order is kept.
 *
 * Batching adapts to the load without a setting: the sink has one send in flight, so a trade
 * that arrives while nothing is sent goes at once, and what arrives during a send forms the next
 * batch. Idle, a trade waits for no timer; loaded, batches grow with the rate times the send's
 * latency. A fixed linger (20 ms, `PRODUCER_LINGER_MS`) used to hold every trade that long at low
 * rates; sending at once makes more, smaller sends there, which cost little: 12% against 11% of a
 * core at 500 trades/s (`bench/producer_bench.ts --rates 500`, both run side by side).
 *
 * @module
 */

/** Options of {@linkcode TradeBuffer}. */
export interface TradeBufferOptions {
  /** Most items held. */
  readonly maxItems: number;
  /** Most items in one batch. */
  readonly batchMaxItems: number;
}

/** Bounded FIFO with batching; see the module doc. */
export class TradeBuffer<T> {
  readonly maxItems: number;
  readonly batchMaxItems: number;
  #items: T[] = [];
  #head = 0;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(options: TradeBufferOptions) {
    if (options.batchMaxItems < 1 || options.maxItems < options.batchMaxItems) {
      throw new RangeError(
        `TradeBuffer needs 1 <= batchMaxItems <= maxItems, got ${options.batchMaxItems} and ${options.maxItems}`,
      );
    }
    this.maxItems = options.maxItems;
    this.batchMaxItems = options.batchMaxItems;
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
    this.#signal();
    return true;
  }

  /**
   * Waits until something is waiting and returns up to `batchMaxItems` of it, oldest first,
   * without removing it. Returns an empty array once the buffer is closed and empty, or when
   * `signal` aborts.
   */
  async nextBatch(signal?: AbortSignal): Promise<T[]> {
    while (this.size === 0) {
      if (signal?.aborted || this.#closed) return [];
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
      return;
    }
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Flush mode: `nextBatch` returns what is left, then `[]`. */
  close(): void {
    this.#closed = true;
    this.#signal();
  }

  #signal(): void {
    this.#wake?.();
  }
}
