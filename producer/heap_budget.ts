/**
 * The producer's heap bound and what its buffer may take of it. Every way the producer is run
 * (`deno task producer`, `deno task start`, compose, the fault suite) passes `PRODUCER_V8_FLAGS`
 * (`shared/topology.ts`), the bound the stages have: the heap stays at what the workload needs
 * (a 10-minute run at 8,000 trades/s kept the producer at 164-181 MiB RSS; a flood peaked at
 * 470-499 MiB, `bench/producer_flood_memory.ts`), and a leak ends in an out-of-memory exit
 * instead of a slow swell of the machine.
 *
 * The buffer that holds trades while Kafka is slow or down lives in that heap (the producer reads
 * and sends from its one thread), and its bound is a config value, so the producer refuses at
 * start a buffer that could not fit: {@linkcode checkBufferFitsHeap}. The encoded trades
 * themselves lie outside the heap, so the buffer is bounded in bytes as well as in trades:
 * {@linkcode bufferMaxBytes}.
 *
 * @module
 */
import { PRODUCER_V8_FLAGS } from "../shared/topology.ts";

/**
 * Heap one buffered trade is budgeted at: `bench/producer_buffer_memory.ts` measured 166 bytes
 * (a kafkajs message, its key and timestamp, the `Buffer` of the encoded bytes; 175 when trades
 * went to Kafka worker threads packed), rounded up with margin.
 */
export const BUFFERED_TRADE_HEAP_BYTES = 256;

/**
 * Encoded bytes the buffer may hold per trade of its bound. A trade from Finnhub encodes to about
 * 100 bytes, so a buffer of real trades meets its trade bound first; trades swollen to the
 * parser's limits (a 64-character symbol, 64 conditions of 32 characters: about 6.5 KB) meet this
 * one first, and a full buffer still takes no more than this many bytes a trade.
 */
export const BUFFERED_TRADE_VALUE_BYTES = 256;

/** Encoded bytes a buffer of `bufferMaxTrades` trades may hold: the bytes bound beside it. */
export function bufferMaxBytes(bufferMaxTrades: number): number {
  return bufferMaxTrades * BUFFERED_TRADE_VALUE_BYTES;
}

/** The largest `PRODUCER_BUFFER_MAX_TRADES` whose full buffer fits in half of `heapLimitBytes`. */
export function maxBufferTrades(heapLimitBytes: number): number {
  return Math.floor(heapLimitBytes / 2 / BUFFERED_TRADE_HEAP_BYTES);
}

/**
 * Throws a `RangeError` when a full buffer of `bufferMaxTrades` would take more than half of the
 * heap limit (`heap_size_limit` of `node:v8`), leaving the rest to the Kafka client and the batch
 * in flight; a buffer that fills during a Kafka outage must never run the producer out of memory.
 */
export function checkBufferFitsHeap(bufferMaxTrades: number, heapLimitBytes: number): void {
  if (!Number.isFinite(heapLimitBytes) || heapLimitBytes <= 0) {
    throw new RangeError(`heap limit must be a positive number of bytes, got ${heapLimitBytes}`);
  }
  const max = maxBufferTrades(heapLimitBytes);
  if (bufferMaxTrades <= max) return;
  const mib = (bytes: number) => Math.ceil(bytes / 1024 / 1024);
  throw new RangeError(
    `PRODUCER_BUFFER_MAX_TRADES=${bufferMaxTrades} needs about ${
      mib(bufferMaxTrades * BUFFERED_TRADE_HEAP_BYTES)
    } MiB of heap when full (${BUFFERED_TRADE_HEAP_BYTES} bytes a trade), more than half of ` +
      `this process's heap limit of ${mib(heapLimitBytes)} MiB: set it to at most ${max}, or ` +
      `raise --max-old-space-size in the producer's --v8-flags (default ${PRODUCER_V8_FLAGS})`,
  );
}
