/**
 * A faster varint writer for kafkajs 2.2.4's protocol encoder, byte for byte the same output.
 *
 * kafkajs encodes every record's varints (length, timestamp delta, offset delta, key and value
 * lengths, header count) by collecting the bytes in an array and copying them in through
 * `Buffer.from(array)`, and its 64-bit varints through a `Long` object per operation. Under
 * Deno each of those small Buffers costs far more than the bytes it holds: in the silver stage,
 * which publishes every trade, they were the largest single CPU cost (profiled: 17 % of the
 * stage in Buffer construction, most of it here). {@linkcode speedUpKafkajs} replaces
 * `writeUVarInt` with one that writes straight into the encoder's buffer, and gives
 * `writeVarLong`/`sizeOfVarLong` a fast path for numbers of up to 30 bits (timestamp and offset
 * deltas within a batch), leaving every other value to the original code.
 * `kafkajs_fast_test.ts` checks the output equals the original's.
 *
 * @module
 */
import Encoder from "kafkajs/src/protocol/encoder.js";

/** The encoder's methods this module replaces, as kafkajs defines them. */
interface EncoderInternals {
  buf: Uint8Array;
  offset: number;
  ensureAvailable(length: number): void;
  writeUVarInt(value: number): EncoderInternals;
  writeVarLong(value: unknown): EncoderInternals;
}

interface EncoderClass {
  prototype: EncoderInternals;
  sizeOfVarLong(value: unknown): number;
}

const encoderClass = Encoder as unknown as EncoderClass;

/** The original implementations, for the fallback and for tests. */
export const ORIGINAL = {
  writeUVarInt: encoderClass.prototype.writeUVarInt,
  writeVarLong: encoderClass.prototype.writeVarLong,
  sizeOfVarLong: encoderClass.sizeOfVarLong,
} as const;

/** Largest magnitude the 64-bit fast path takes: zig-zag of it still fits 31 bits. */
const SMALL = 2 ** 30;

function writeUVarInt(this: EncoderInternals, value: number): EncoderInternals {
  // At most 5 bytes: after the first 7-bit shift, what is left is below 2^25.
  this.ensureAvailable(5);
  const buf = this.buf;
  let offset = this.offset;
  // The very same operations as kafkajs's, so every input (even a non-integer) gives its bytes.
  while ((value & 0xffffff80) !== 0) {
    buf[offset++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[offset++] = value & 0x7f;
  this.offset = offset;
  return this;
}

function isSmall(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value > -SMALL &&
    value < SMALL;
}

function writeVarLong(this: EncoderInternals, value: unknown): EncoderInternals {
  if (!isSmall(value)) return ORIGINAL.writeVarLong.call(this, value);
  // Zig-zag: 0, -1, 1, -2... -> 0, 1, 2, 3...; below 2^31, so 32-bit operations are exact.
  return writeUVarInt.call(this, value >= 0 ? value * 2 : -value * 2 - 1);
}

function sizeOfVarLong(value: unknown): number {
  if (!isSmall(value)) return ORIGINAL.sizeOfVarLong.call(Encoder, value);
  let zigZag = value >= 0 ? value * 2 : -value * 2 - 1;
  let bytes = 1;
  while ((zigZag & 0xffffff80) !== 0) {
    bytes++;
    zigZag >>>= 7;
  }
  return bytes;
}

let applied = false;

/** Installs the faster varint writers into kafkajs's encoder (once; later calls do nothing). */
export function speedUpKafkajs(): void {
  if (applied) return;
  applied = true;
  encoderClass.prototype.writeUVarInt = writeUVarInt;
  encoderClass.prototype.writeVarLong = writeVarLong;
  encoderClass.sizeOfVarLong = sizeOfVarLong;
}
