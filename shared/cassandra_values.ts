/**
 * Bound values serialised once and reused. cassandra-driver serialises every parameter of every
 * row anew, allocating a Buffer each time; most columns of a trade row repeat from row to row
 * (the symbol, the hour bucket, the topic, the conditions, the batch's `stored_at`...). The
 * driver sends a Buffer parameter as the value's serialised form as it is, so a stage can hand
 * it the bytes of a repeated value from a small cache instead. The bytes come from the driver's
 * own encoder, so they are exactly what it would have sent.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import cassandra from "cassandra-driver";
import type { Decimal } from "./decimal.ts";

interface DriverEncoder {
  encode(value: unknown, typeInfo: unknown): Buffer | null;
}

const { dataTypes } = cassandra.types;

// The encodings used here (text, int, boolean, timestamp, date, list<text>) are the same in every
// protocol version since 3; the options are those of `createCassandraClient`.
const encoder: DriverEncoder = new (cassandra as unknown as {
  Encoder: new (protocolVersion: number, options: object) => DriverEncoder;
}).Encoder(4, { encoding: { useBigIntAsLong: true, useBigIntAsVarint: true, map: Map } });

/** The CQL types {@linkcode encodedValues} serialises. */
export type CachedType = "text" | "int" | "boolean" | "timestamp" | "date" | "list<text>";

const TYPE_INFO: Record<CachedType, unknown> = {
  text: { code: dataTypes.text },
  int: { code: dataTypes.int },
  boolean: { code: dataTypes.boolean },
  timestamp: { code: dataTypes.timestamp },
  date: { code: dataTypes.date },
  "list<text>": { code: dataTypes.list, info: { code: dataTypes.text } },
};

/**
 * The element count of each list serialised here. A list's serialised form gives each element a
 * 4-byte length, while Cassandra counts each element as a cell of its own (with its path) against
 * its batch size thresholds, so a batch's size is estimated from the count
 * (`shared/cassandra_writer.ts`, `estimatedBytes`).
 */
const listElements = new WeakMap<Buffer, number>();

/** How many elements `bytes` holds, when it is a list {@linkcode encodedValues} serialised. */
export function encodedListLength(bytes: Uint8Array): number | undefined {
  return listElements.get(bytes as Buffer);
}

/**
 * A value of a {@linkcode CachedType}: `timestamp` takes a Date or milliseconds, `date` the day
 * as `YYYY-MM-DD`.
 */
export type CachedValue = string | number | boolean | Date | readonly string[] | null;

/** Options of {@linkcode encodedValues}. */
export interface EncodedValuesOptions {
  /** Called each time the cache was full and starts over (to count it). Default none. */
  readonly onReset?: () => void;
}

/**
 * Returns a function that gives the serialised bytes of a `type` value (null for null), from a
 * cache of at most `maxEntries` values (emptied when full, so many distinct values, such as
 * symbols, cost re-encoding and never memory).
 */
export function encodedValues(
  type: CachedType,
  maxEntries = 10_000,
  options: EncodedValuesOptions = {},
): (value: CachedValue) => Buffer | null {
  const typeInfo = TYPE_INFO[type];
  const cache = new Map<string | number | boolean, Buffer | null>();
  return (value) => {
    if (value === null) return null;
    const key = keyOf(value);
    let bytes = cache.get(key);
    if (bytes === undefined) {
      if (cache.size >= maxEntries) {
        cache.clear();
        options.onReset?.();
      }
      // The driver's own bytes; null for an empty list, as the driver sends it.
      bytes = encoder.encode(driverValue(type, value), typeInfo);
      if (bytes !== null && Array.isArray(value)) listElements.set(bytes, value.length);
      cache.set(key, bytes);
    }
    return bytes;
  };
}

/** `value` as the driver takes it for `type`: a Date, a LocalDate, a list of its own. */
function driverValue(type: CachedType, value: Exclude<CachedValue, null>): unknown {
  if (Array.isArray(value)) return [...value];
  if (type === "timestamp" && typeof value === "number") return new Date(value);
  if (type === "date" && typeof value === "string") {
    return cassandra.types.LocalDate.fromString(value);
  }
  return value;
}

function keyOf(value: Exclude<CachedValue, null>): string | number | boolean {
  if (value instanceof Date) return value.getTime();
  if (Array.isArray(value)) return JSON.stringify(value);
  return value as string | number | boolean;
}

/**
 * The serialised form of a CQL `decimal`: the scale as a 4-byte big-endian int, then the unscaled
 * value as a `varint` (two's complement, big-endian, in the fewest bytes). Byte for byte what the
 * driver sends for the `BigDecimal` of the same value (`cassandra_values_test.ts`), without the
 * way there: printing the decimal, parsing the text into the driver's `Integer` and joining its
 * parts (gold's candles carry three decimals; that way cost gold about 4% of its CPU, profiled
 * at 2,000 trades/s). 3.1 µs a price x volume sum that way, 0.43 this way (`deno bench -A
 * shared/cassandra_values_bench.ts`, alone); gold writes about 1,600 rows a second at 2,000
 * trades/s.
 */
export function decimalBytes(d: Decimal): Buffer {
  // The unscaled value's bytes, least significant first, until what is left is only sign.
  const bytes: number[] = [];
  let rest = d.units;
  for (;;) {
    const byte = Number(rest & 0xffn);
    bytes.push(byte);
    rest >>= 8n;
    if ((rest === 0n && byte < 0x80) || (rest === -1n && byte >= 0x80)) break;
  }
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeInt32BE(d.scale, 0);
  for (let i = 0; i < bytes.length; i++) out[4 + i] = bytes[bytes.length - 1 - i]!;
  return out;
}
