/**
 * A bounded FIFO between the WebSocket and Kafka. It holds at most `maxItems`; a push into a
 * full buffer is refused so the caller counts the drop and memory stays bounded. The sink reads
 * it in batches: {@linkcode TradeBuffer.nextBatch} waits until a batch is due (or the buffer is
 * closed) and returns up to `batchMaxItems` of it without removing it;
 * {@linkcode TradeBuffer.commit} removes it once Kafka acknowledged it. Order is kept.
 *
 * When a batch is due adapts to the load without a setting. The sink has one send in flight, and
 * a batch that is not full goes out only when the producer is awake anyway (trades were just
 * pushed, or the last send was just acknowledged) and {@linkcode SEND_SPACING_MS} have passed
 * since the last batch was taken; a timer sends it at twice that at the latest. So a trade after
 * a quiet spell goes at once; a steady stream goes in one send per frame or two of the feed, each
 * leaving with the frame that woke the producer, at most about 66 sends a second however many
 * frames arrive; and under load batches grow with the rate times the send's latency, up to
 * `batchMaxItems`, which goes at once.
 *
 * Why: at live rates the producer's cost is per wake-up and per send more than per trade (a
 * kafkajs send of a few records cost about 200 µs of CPU here, an idle Deno timer tick 87 µs).
 * At 500 trades/s the simulator's frames come about every 10 ms; sending each at once made
 * about 100 sends a second and cost 150-164 µs of CPU per trade; this makes 47 and costs
 * 121-122 (`bench/producer_bench.ts --rates 500 --duration-s 30`, the two run alternately, load
 * average 4-6). A trade waits about 5 ms more on average, 30 at most: ingest->silver p50/p99
 * 18.6/69.7 ms against 15.0/117.1 before (`bench/pipeline_bench.ts --rates 500`, one run each
 * on a busy machine, load average 5 and 12). A fixed 20 ms linger (`PRODUCER_LINGER_MS`,
 * removed) held every trade that long, a quiet feed's too.
 *
 * @module
 */
import { type Clock, systemClock, type TimerId } from "../shared/clock.ts";

/**
 * A batch that is not full is taken no sooner than this many ms after the previous one, unless
 * the buffer is closing; and no later than twice this after it (see the module doc).
 */
export const SEND_SPACING_MS = 15;

/** Options of {@linkcode TradeBuffer}. */
export interface TradeBufferOptions {
  /** Most items held. */
  readonly maxItems: number;
  /** Most items in one batch. */
  readonly batchMaxItems: number;
  /** Times the batches. Default {@linkcode systemClock}. */
  readonly clock?: Clock;
}

/** Bounded FIFO with batching; see the module doc. */
export class TradeBuffer<T> {
  readonly maxItems: number;
  readonly batchMaxItems: number;
  readonly #clock: Clock;
  #items: T[] = [];
  #head = 0;
  #closed = false;
  /** When the last batch was taken, ms on the clock. */
  #lastBatchAt = -Infinity;
  /** Sends a waiting batch at the latest time allowed. */
  #deadline: TimerId | undefined;
  #deadlinePassed = false;
  /** Wakes a waiting `nextBatch`. */
  #wake: (() => void) | undefined;
  /** Set by `interrupt()` for the waiting `nextBatch`, which clears it. */
  #interrupted = false;

  constructor(options: TradeBufferOptions) {
    if (options.batchMaxItems < 1 || options.maxItems < options.batchMaxItems) {
      throw new RangeError(
        `TradeBuffer needs 1 <= batchMaxItems <= maxItems, got ${options.batchMaxItems} and ${options.maxItems}`,
      );
    }
    this.maxItems = options.maxItems;
    this.batchMaxItems = options.batchMaxItems;
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
    this.#wake?.();
    return true;
  }

  /**
   * Waits until a batch is due (see the module doc) and returns up to `batchMaxItems` items,
   * oldest first, without removing them. Returns an empty array once the buffer is closed and
   * empty, or when {@linkcode interrupt} is called while it waits and no batch is due.
   */
  async nextBatch(): Promise<T[]> {
    let interrupted = false;
    for (;;) {
      const size = this.size;
      if (size > 0) {
        const now = this.#clock.now();
        if (
          this.#closed || size >= this.batchMaxItems || this.#deadlinePassed ||
          now - this.#lastBatchAt >= SEND_SPACING_MS
        ) {
          this.#clearDeadline();
          this.#lastBatchAt = now;
          return this.#items.slice(this.#head, this.#head + this.batchMaxItems);
        }
        if (interrupted) return [];
        this.#deadline ??= this.#clock.setTimeout(() => {
          this.#deadline = undefined;
          this.#deadlinePassed = true;
          this.#wake?.();
        }, this.#lastBatchAt + 2 * SEND_SPACING_MS - now);
      } else if (this.#closed || interrupted) {
        return [];
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
      interrupted = this.#interrupted;
      this.#interrupted = false;
    }
  }

  /** Makes a waiting {@linkcode nextBatch} return `[]` (the sink has something else to send). */
  interrupt(): void {
    if (this.#wake === undefined) return;
    this.#interrupted = true;
    this.#wake();
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

  /** Flush mode: `nextBatch` returns what is left at once, then `[]`. */
  close(): void {
    this.#closed = true;
    this.#clearDeadline();
    this.#wake?.();
  }

  #clearDeadline(): void {
    this.#deadlinePassed = false;
    if (this.#deadline === undefined) return;
    this.#clock.clearTimeout(this.#deadline);
    this.#deadline = undefined;
  }
}
