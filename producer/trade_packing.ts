/**
 * Packs encoded trades into one `ArrayBuffer` to hand to the Kafka worker in one transfer, and
 * unpacks them there. Per trade: `u8` symbol length, the symbol's UTF-8 bytes, `u32` value
 * length, the value bytes, `f64` ingest time, `u16` partition. Little-endian. Pure apart from
 * its own buffers.
 *
 * @module
 */
import { Buffer } from "node:buffer";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MAX_SYMBOL_BYTES = 255;

/** Collects trades and hands them over as one transferable buffer. */
export class TradePacker {
  #bytes = new Uint8Array(64 * 1024);
  #view = new DataView(this.#bytes.buffer);
  #used = 0;
  #count = 0;
  readonly #symbols = new Map<string, Uint8Array>();

  /** Trades packed since the last {@linkcode take}. */
  get count(): number {
    return this.#count;
  }

  /** Bytes packed since the last {@linkcode take}. */
  get bytes(): number {
    return this.#used;
  }

  /** Appends one trade. Throws a `RangeError` for a symbol over 255 UTF-8 bytes. */
  add(symbol: string, ingestTime: number, value: Uint8Array, partition: number): void {
    let key = this.#symbols.get(symbol);
    if (key === undefined) {
      key = encoder.encode(symbol);
      if (key.length > MAX_SYMBOL_BYTES) {
        throw new RangeError(`Cannot pack symbol of ${key.length} bytes (at most 255)`);
      }
      if (this.#symbols.size >= 100_000) this.#symbols.clear();
      this.#symbols.set(symbol, key);
    }
    this.#ensure(1 + key.length + 4 + value.length + 8 + 2);
    const at = this.#used;
    this.#bytes[at] = key.length;
    this.#bytes.set(key, at + 1);
    let offset = at + 1 + key.length;
    this.#view.setUint32(offset, value.length, true);
    this.#bytes.set(value, offset + 4);
    offset += 4 + value.length;
    this.#view.setFloat64(offset, ingestTime, true);
    this.#view.setUint16(offset + 8, partition, true);
    this.#used = offset + 10;
    this.#count++;
  }

  /** The packed trades as a fresh `ArrayBuffer` (to transfer), and starts over. */
  take(): { buffer: ArrayBuffer; count: number } {
    const buffer = this.#bytes.slice(0, this.#used).buffer;
    const count = this.#count;
    this.#used = 0;
    this.#count = 0;
    return { buffer, count };
  }

  #ensure(extra: number): void {
    if (this.#used + extra <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < this.#used + extra) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.#bytes.subarray(0, this.#used));
    this.#bytes = bigger;
    this.#view = new DataView(bigger.buffer);
  }
}

/**
 * Calls `each` for every trade in a packed buffer, in order. The value is a `Buffer` view into
 * `buffer` (no copy).
 */
export function unpackTrades(
  buffer: ArrayBuffer,
  each: (symbol: string, ingestTime: number, value: Buffer, partition: number) => void,
): void {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  let lastKey: Uint8Array | undefined;
  let lastSymbol = "";
  let offset = 0;
  while (offset < bytes.length) {
    const keyLength = bytes[offset]!;
    const key = bytes.subarray(offset + 1, offset + 1 + keyLength);
    // Runs of one symbol are common: skip decoding when the bytes repeat.
    if (!lastKey || !sameBytes(lastKey, key)) {
      lastSymbol = decoder.decode(key);
      lastKey = key;
    }
    offset += 1 + keyLength;
    const valueLength = view.getUint32(offset, true);
    const value = Buffer.from(buffer, offset + 4, valueLength);
    offset += 4 + valueLength;
    const ingestTime = view.getFloat64(offset, true);
    const partition = view.getUint16(offset + 8, true);
    offset += 10;
    each(lastSymbol, ingestTime, value, partition);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
