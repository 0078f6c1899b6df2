/**
 * A one-buffer encoder for kafkajs 2.2.4's Produce request (versions 3 to 7, which all encode as
 * version 3 does), byte for byte the same as kafkajs's.
 *
 * kafkajs builds a Produce request out of nested encoders: one per record, three per partition's
 * record batch, one per partition, per topic and for the request, each starting with a zeroed
 * 512-byte `Buffer` and copied into its parent. Under Deno each `Buffer` costs microseconds, so a
 * live producer, which sends a few trades at a time to several partitions, spent more on them
 * than on the bytes (profiled at 500 trades/s: the request's encoding was an eighth of the
 * producer's thread). {@linkcode encodeProduceRequest} writes the same fields in the same order
 * into one encoder with kafkajs's own primitive writers, leaving the batch length and the CRC-32C
 * as placeholders filled in once the batch is written. Requests it does not cover (compressed,
 * or with record headers) keep kafkajs's encoder. `kafkajs_fast_produce_test.ts` checks the
 * output equals kafkajs's.
 *
 * {@linkcode installFastProduceRequest} (called by `speedUpKafkajs`) puts it in place by
 * replacing the version 3 request module in node's module cache: the later versions' modules
 * take it with `require` when they load, at a producer's first send.
 *
 * @module
 */
import { createRequire } from "node:module";
import Encoder from "kafkajs/src/protocol/encoder.js";
import Long from "kafkajs/src/utils/long.js";
import crc32C from "kafkajs/src/protocol/recordBatch/crc32C/index.js";
import compression from "kafkajs/src/protocol/message/compression/index.js";

// deno-lint-ignore no-explicit-any
type Any = any;

/** The arguments of kafkajs's Produce v3 request, as its producer passes them. */
export interface ProduceRequestArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null | undefined;
  producerId?: unknown;
  producerEpoch?: number | undefined;
  compression?: number | undefined;
  topicData: {
    topic: string;
    partitions: {
      partition: number;
      firstSequence?: number | undefined;
      messages: {
        key?: unknown;
        value?: unknown;
        timestamp?: string | number | null | undefined;
        headers?: Record<string, unknown> | undefined;
      }[];
    }[];
  }[];
}

const NONE: number = (compression as Any).Types.None;
/** RecordBatch magic byte, and its attribute bit for a transactional batch. */
const MAGIC_BYTE = 2;
const TRANSACTIONAL_MASK = 16;
const EncoderClass = Encoder as Any;

/**
 * Whether {@linkcode encodeProduceRequest} encodes this request: uncompressed, and no record with
 * headers.
 */
export function coversProduceRequest(args: ProduceRequestArgs): boolean {
  if ((args.compression ?? NONE) !== NONE) return false;
  for (const { partitions } of args.topicData) {
    for (const { messages } of partitions) {
      for (const { headers } of messages) {
        if (headers != null && Object.keys(headers).length > 0) return false;
      }
    }
  }
  return true;
}

/**
 * The Produce v3 request body kafkajs's `encode()` would return, as a kafkajs `Encoder`. Only for
 * requests {@linkcode coversProduceRequest} accepts.
 */
export function encodeProduceRequest(args: ProduceRequestArgs): Any {
  const {
    acks,
    timeout,
    transactionalId = null,
    producerId = Long.fromInt(-1),
    producerEpoch = 0,
    topicData,
  } = args;
  const attributes = transactionalId ? TRANSACTIONAL_MASK : 0;
  const out = new EncoderClass(4095);
  out.writeString(transactionalId).writeInt16(acks).writeInt32(timeout);
  out.writeInt32(topicData.length);
  for (const { topic, partitions } of topicData) {
    out.writeString(topic).writeInt32(partitions.length);
    for (const { partition, messages, firstSequence = 0 } of partitions) {
      // As kafkajs's partition encoder: timestamps sorted as it sorts them (as strings).
      const dateNow = Date.now();
      const stamps = messages.map((m) => m.timestamp).filter((t) => t != null).sort();
      const timestamps = stamps.length === 0 ? [dateNow] : stamps;
      const firstTimestamp = timestamps[0]!;
      const maxTimestamp = timestamps[timestamps.length - 1]!;

      out.writeInt32(partition);
      const sizeAt = out.offset; // the record batch's size, filled in below
      out.writeInt32(0);
      out.writeInt64(Long.fromInt(0)); // first offset
      const lengthAt = out.offset; // the batch's length, filled in below
      out.writeInt32(0);
      const batchAt = out.offset;
      out.writeInt32(0).writeInt8(MAGIC_BYTE); // partition leader epoch
      const crcAt = out.offset; // CRC-32C of the body, filled in below
      out.writeUInt32(0);
      const bodyAt = out.offset;
      out
        .writeInt16(attributes)
        .writeInt32(messages.length - 1)
        .writeInt64(int64(firstTimestamp))
        .writeInt64(int64(maxTimestamp))
        .writeInt64(producerId)
        .writeInt16(producerEpoch)
        .writeInt32(firstSequence)
        .writeInt32(messages.length);
      for (let i = 0; i < messages.length; i++) {
        const { key, value, timestamp } = messages[i]!;
        const timestampDelta = ((timestamp || dateNow) as number) - (firstTimestamp as number);
        const sizeOfBody = 1 + EncoderClass.sizeOfVarLong(timestampDelta) +
          EncoderClass.sizeOfVarInt(i) + EncoderClass.sizeOfVarIntBytes(key) +
          EncoderClass.sizeOfVarIntBytes(value) + EncoderClass.sizeOfVarInt(0);
        out
          .writeVarInt(sizeOfBody)
          .writeInt8(0)
          .writeVarLong(timestampDelta)
          .writeVarInt(i)
          .writeVarIntBytes(key)
          .writeVarIntBytes(value)
          .writeVarInt(0); // no headers
      }
      const end = out.offset;
      const buf = out.buf;
      buf.writeUInt32BE(crc32C(buf.subarray(bodyAt, end)), crcAt);
      buf.writeInt32BE(end - batchAt, lengthAt);
      buf.writeInt32BE(end - sizeAt - 4, sizeAt);
    }
  }
  return out;
}

const require = createRequire(import.meta.url);
const V3_REQUEST = require.resolve("kafkajs/src/protocol/requests/produce/v3/request.js");

/** kafkajs's Produce v3 request, as shipped (for tests comparing the two). */
export const ORIGINAL_PRODUCE_REQUEST = require(V3_REQUEST) as (
  args: ProduceRequestArgs,
) => { encode(): Promise<Any> };

/** Decimal digits of a safe integer: a timestamp as the sink writes it, `String(ms)`. */
const SAFE_DIGITS = /^\d{1,15}$/;

/**
 * `value` as `writeInt64` takes it, with the same bits: a string of up to 15 digits as the number
 * it spells (kafkajs's `Long.fromString` reads it digit group by digit group, far slower than
 * `Long.fromNumber`, and both are exact below 2^53).
 */
function int64(value: unknown): unknown {
  return typeof value === "string" && SAFE_DIGITS.test(value) ? Number(value) : value;
}

let installed = false;

/**
 * Makes kafkajs's Produce v3 request (and so v4 to v7, which wrap it) encode with
 * {@linkcode encodeProduceRequest} when it covers the request. Takes effect for the later
 * versions only if their modules are not loaded yet (before any producer's first send); a
 * no-op after the first call.
 */
export function installFastProduceRequest(): void {
  if (installed) return;
  installed = true;
  const fast = (args: ProduceRequestArgs) => {
    const request = ORIGINAL_PRODUCE_REQUEST(args);
    if (coversProduceRequest(args)) {
      // kafkajs awaits `encode()`; an async function keeps a throw a rejection, as kafkajs's.
      request.encode = async () => await encodeProduceRequest(args);
    }
    return request;
  };
  require.cache[V3_REQUEST]!.exports = fast;
}
