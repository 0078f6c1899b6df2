/**
 * Avro encoding of the pipeline's records: the schemas (`schemas/avro/*.avsc`), the Avro binary
 * body, and the two framings a Kafka message value may have.
 *
 * - The Confluent wire format, which every topic is written in: byte 0 (`00`), the schema's
 *   registry id as a 4-byte big-endian integer, then the Avro body. The id means something only
 *   to a schema registry; `wire.ts` registers and resolves ids. Here: the framing, pure.
 * - Avro single-object encoding, which the topics were written in before: the two-byte marker
 *   `C3 01`, the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian), then the body.
 *   Records still in a topic in this framing stay readable ({@linkcode decodeSingleObject});
 *   nothing writes it but tests of that. A fingerprint that is not one of ours is refused, never
 *   decoded by guess.
 *
 * Schemas are read from `schemas/avro/*.avsc` on first use, never at import. A schema that
 * evolved keeps its earlier versions in `schemas/avro/history/`: single-object messages written
 * with one of them still decode, resolved to the current schema by Avro's rules (a field added
 * since takes its default). Confluent-framed messages name their writer schema by id instead, and
 * `wire.ts` resolves it the same way.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import avro from "avsc";
import type {
  CandleUpdate,
  DeadLetter,
  FeedCoverage,
  FeedGap,
  RawTrade,
  SilverTrade,
  WorkerReport,
} from "./types.ts";

/** The schemas this module knows, by record name. */
export type SchemaName =
  | "Trade"
  | "SilverTrade"
  | "DeadLetter"
  | "WorkerReport"
  | "CandleUpdate"
  | "FeedGap"
  | "FeedCoverage";

/** The TypeScript type of each schema's records. */
export interface RecordTypes {
  Trade: RawTrade;
  SilverTrade: SilverTrade;
  DeadLetter: DeadLetter;
  WorkerReport: WorkerReport;
  CandleUpdate: CandleUpdate;
  FeedGap: FeedGap;
  FeedCoverage: FeedCoverage;
}

const SCHEMA_FILES: Readonly<Record<SchemaName, string>> = {
  Trade: "trade.avsc",
  SilverTrade: "silver_trade.avsc",
  DeadLetter: "dead_letter.avsc",
  WorkerReport: "worker_report.avsc",
  CandleUpdate: "candle_update.avsc",
  FeedGap: "feed_gap.avsc",
  FeedCoverage: "feed_coverage.avsc",
};

/**
 * Earlier versions of a schema whose messages may still be in a topic, oldest first. Each must
 * resolve to the current schema (fields added since need defaults).
 */
const HISTORY: Readonly<Partial<Record<SchemaName, readonly string[]>>> = {
  DeadLetter: ["history/dead_letter.v1.avsc"],
};

/** Marker that starts every single-object encoded message. */
export const SINGLE_OBJECT_MARKER: readonly [number, number] = [0xc3, 0x01];
const HEADER_LENGTH = 10;

interface CompiledSchema {
  readonly name: SchemaName;
  readonly type: avro.Type;
  /** `namespace.name` of the record. */
  readonly fullName: string;
  /** The `.avsc` file's schema as JSON text. */
  readonly text: string;
  readonly canonical: string;
  readonly fingerprint: bigint;
  readonly header: Buffer;
  /** Set for an earlier version: reads its bodies as the current `type`. */
  readonly resolver?: avro.Resolver;
}

let compiled: ReadonlyMap<SchemaName, CompiledSchema> | undefined;
let byFingerprint: ReadonlyMap<bigint, CompiledSchema> | undefined;

const EMPTY = 0xc15d213aa4d7a795n;
let crcTable: BigUint64Array | undefined;

function table(): BigUint64Array {
  if (crcTable) return crcTable;
  const t = new BigUint64Array(256);
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n));
    t[i] = BigInt.asUintN(64, fp);
  }
  crcTable = t;
  return t;
}

/**
 * The CRC-64-AVRO (Rabin) fingerprint of a schema's Parsing Canonical Form, as the Avro
 * specification defines it.
 */
export function crc64Avro(canonicalForm: string): bigint {
  const t = table();
  let fp = EMPTY;
  for (const byte of new TextEncoder().encode(canonicalForm)) {
    fp = (fp >> 8n) ^ t[Number((fp ^ BigInt(byte)) & 0xffn)]!;
  }
  return fp;
}

/** Reads and compiles one `.avsc` file; exported for tests and tools. */
export function readSchemaFile(name: SchemaName): Record<string, unknown> {
  return readAvsc(SCHEMA_FILES[name]);
}

/** The earlier versions of a schema (`schemas/avro/history/`), oldest first; for tests. */
export function readSchemaHistory(name: SchemaName): Record<string, unknown>[] {
  return (HISTORY[name] ?? []).map(readAvsc);
}

function readAvsc(file: string): Record<string, unknown> {
  const url = new URL(`../schemas/avro/${file}`, import.meta.url);
  return JSON.parse(Deno.readTextFileSync(url));
}

function compile(): ReadonlyMap<SchemaName, CompiledSchema> {
  if (compiled) return compiled;
  const map = new Map<SchemaName, CompiledSchema>();
  const byFp = new Map<bigint, CompiledSchema>();
  for (const name of Object.keys(SCHEMA_FILES) as SchemaName[]) {
    const file = readSchemaFile(name);
    const type = parseSchema(file);
    // avsc's schema() without options is the Parsing Canonical Form.
    const canonical = JSON.stringify(type.schema());
    const fingerprint = crc64Avro(canonical);
    const header = Buffer.alloc(HEADER_LENGTH);
    header[0] = SINGLE_OBJECT_MARKER[0];
    header[1] = SINGLE_OBJECT_MARKER[1];
    header.writeBigUInt64LE(fingerprint, 2);
    const entry: CompiledSchema = {
      name,
      type,
      fullName: type.name!,
      text: JSON.stringify(file),
      canonical,
      fingerprint,
      header,
    };
    map.set(name, entry);
    byFp.set(fingerprint, entry);
    for (const old of readSchemaHistory(name)) {
      const oldType = parseSchema(old);
      const oldFingerprint = crc64Avro(JSON.stringify(oldType.schema()));
      byFp.set(oldFingerprint, {
        ...entry,
        fingerprint: oldFingerprint,
        resolver: type.createResolver(oldType),
      });
    }
  }
  compiled = map;
  byFingerprint = byFp;
  return map;
}

function schema(name: SchemaName): CompiledSchema {
  const entry = compile().get(name);
  if (!entry) throw new Error(`Unknown schema '${name}'`);
  return entry;
}

/** The avsc type of a schema, for tests and tools. */
export function avroType(name: SchemaName): avro.Type {
  return schema(name).type;
}

/** The record's full name (`namespace.name`) of one of our schemas, e.g. `market.finnhub.Trade`. */
export function fullNameOf(name: SchemaName): string {
  return schema(name).fullName;
}

/**
 * The schema as its `.avsc` file holds it (docs included), as JSON text: what is registered in
 * the schema registry, so consumers there see the documentation too.
 */
export function schemaText(name: SchemaName): string {
  return schema(name).text;
}

/**
 * Parses an Avro schema the way this module does (unions unwrapped), so types built from a
 * registry's schema text resolve against ours. Throws avsc's error for an invalid schema.
 */
export function parseSchema(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { wrapUnions: false });
}

/** The CRC-64-AVRO fingerprint of one of our schemas. */
export function fingerprintOf(name: SchemaName): bigint {
  return schema(name).fingerprint;
}

/** Formats a fingerprint the way error messages print it. */
export function formatFingerprint(fingerprint: bigint): string {
  return `0x${fingerprint.toString(16).padStart(16, "0")}`;
}

/**
 * The Avro binary body of a record of schema `name` (no framing), written with `type` (default:
 * the schema's; a test may pass an evolved one). Throws a `TypeError` naming the first invalid
 * field when the value does not match.
 */
export function encodeBody<N extends SchemaName>(
  name: N,
  value: RecordTypes[N],
  type: avro.Type = schema(name).type,
): Buffer {
  return encodeFramed(name, value, NO_HEADER, type);
}

const NO_HEADER = new Uint8Array(0);

/**
 * Where records are written before their copy of the exact size: avsc's `toBuffer` writes into
 * a space of its own too, then copies into a zero-filled buffer of its own, which the framing
 * copied again: 862 ns a trade record that way, 373 ns this way (`deno bench -A
 * shared/avro_bench.ts`, alone). Grows to the largest record written; one per process (encoding
 * is synchronous).
 */
let scratch = Buffer.allocUnsafe(16 * 1024);

/**
 * `header` followed by the Avro binary body of a record of schema `name`, written with `type`
 * (default: the schema's), in one new buffer: the record is written once and copied once. Throws
 * a `TypeError` naming the first invalid field when the value does not match.
 */
export function encodeFramed<N extends SchemaName>(
  name: N,
  value: RecordTypes[N],
  header: Uint8Array,
  type: avro.Type = schema(name).type,
): Buffer {
  const record = name === "DeadLetter" ? withBufferPayload(value as DeadLetter) : value;
  for (;;) {
    let end: number;
    try {
      // The end of what was written, or minus the bytes that did not fit.
      end = type.encode(record, scratch, header.length);
    } catch {
      const paths: string[] = [];
      type.isValid(value, {
        errorHook: (path: string[]) => paths.push(path.join(".") || "(root)"),
      });
      throw new TypeError(
        `Cannot encode ${name}: invalid field ${paths.length ? `'${paths[0]}'` : "value"}`,
      );
    }
    if (end >= 0) {
      const out = Buffer.allocUnsafe(end);
      out.set(header, 0);
      scratch.copy(out, header.length, header.length, end);
      return out;
    }
    scratch = Buffer.allocUnsafe(Math.max(2 * scratch.length, scratch.length - end));
  }
}

// ---------------------------------------------------------------------------------------------
// The Confluent wire format
// ---------------------------------------------------------------------------------------------

/** The first byte of a Confluent-framed message ("magic byte"). */
export const CONFLUENT_MAGIC = 0x00;
/** Magic byte and 4-byte schema id. */
export const CONFLUENT_HEADER_LENGTH = 5;

/** The 5-byte Confluent header of schema id `id`. Throws a `RangeError` for an invalid id. */
export function confluentHeader(id: number): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0x7fff_ffff) {
    throw new RangeError(`Schema id must be a whole number from 0 to 2^31-1, got ${id}`);
  }
  const header = Buffer.alloc(CONFLUENT_HEADER_LENGTH);
  header[0] = CONFLUENT_MAGIC;
  header.writeInt32BE(id, 1);
  return header;
}

/** `header` (from {@linkcode confluentHeader}) followed by `body`, in one new buffer. */
export function frame(header: Uint8Array, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

/** What the first bytes of a message value say about its framing. */
export type Framing =
  /** Confluent wire format: the body starts at byte 5. */
  | { readonly kind: "confluent"; readonly id: number }
  /** Avro single-object encoding (the framing before the registry). */
  | { readonly kind: "single-object" }
  /** Neither: `reason` says what the bytes are not. */
  | { readonly kind: "unknown"; readonly reason: string };

/**
 * The framing of a message value, from its first bytes only. A Confluent header whose id is
 * negative (its top bit set) or that is shorter than 5 bytes is `unknown`. Pure.
 */
export function framingOf(message: Uint8Array): Framing {
  if (message.length > 0 && message[0] === CONFLUENT_MAGIC) {
    if (message.length < CONFLUENT_HEADER_LENGTH) {
      return {
        kind: "unknown",
        reason:
          `${message.length} bytes is shorter than the 5-byte Confluent header (magic byte 0, schema id)`,
      };
    }
    const id = (message[1]! << 24) | (message[2]! << 16) | (message[3]! << 8) | message[4]!;
    if (id < 0) {
      return { kind: "unknown", reason: `the Confluent header's schema id ${id} is negative` };
    }
    return { kind: "confluent", id };
  }
  if (
    message.length >= 2 && message[0] === SINGLE_OBJECT_MARKER[0] &&
    message[1] === SINGLE_OBJECT_MARKER[1]
  ) {
    return { kind: "single-object" };
  }
  return {
    kind: "unknown",
    reason: message.length === 0
      ? "the value is empty"
      : `neither the Confluent wire format (magic byte 00) nor Avro single-object encoding (C3 01): it starts with ${
        hex(message.subarray(0, 2))
      }`,
  };
}

// ---------------------------------------------------------------------------------------------
// Avro single-object encoding (the framing before the registry)
// ---------------------------------------------------------------------------------------------

/**
 * Encodes a record as an Avro single-object message, the framing the topics had before the
 * schema registry: only tests write it now (records of an existing installation stay readable).
 * Throws a `TypeError` naming the first invalid field when the value does not match the schema.
 */
export function encodeSingleObject<N extends SchemaName>(name: N, value: RecordTypes[N]): Buffer {
  return encodeFramed(name, value, schema(name).header);
}

/** Reads the schema name a single-object message was written with, without decoding its body. */
export function schemaOf(message: Uint8Array): SchemaName {
  return writerSchema(message).name;
}

/**
 * The schema (current or earlier version) a message was written with, by its header. Throws a
 * `TypeError` for a short message, a missing marker or an unknown fingerprint.
 */
function writerSchema(message: Uint8Array): CompiledSchema {
  if (message.length < HEADER_LENGTH) {
    throw new TypeError(
      `Cannot decode message: ${message.length} bytes is shorter than the ${HEADER_LENGTH}-byte single-object header`,
    );
  }
  if (message[0] !== SINGLE_OBJECT_MARKER[0] || message[1] !== SINGLE_OBJECT_MARKER[1]) {
    throw new TypeError(
      `Cannot decode message: missing the Avro single-object marker C3 01 (starts with ${
        hex(message.subarray(0, 2))
      })`,
    );
  }
  compile();
  const fp = Buffer.from(message.buffer, message.byteOffset, message.length).readBigUInt64LE(2);
  const entry = byFingerprint!.get(fp);
  if (!entry) {
    const known = [...byFingerprint!.values()].map((e) =>
      `${e.name}${e.resolver ? " (earlier version)" : ""} ${formatFingerprint(e.fingerprint)}`
    );
    throw new TypeError(
      `Cannot decode message: unknown schema fingerprint ${formatFingerprint(fp)} (known: ${
        known.join(", ")
      })`,
    );
  }
  return entry;
}

/**
 * Decodes an Avro single-object message that must have been written with schema `name`.
 * Throws a `TypeError` that says what is wrong: no marker, an unknown fingerprint, another
 * schema's fingerprint, or a body that does not decode.
 */
export function decodeSingleObject<N extends SchemaName>(
  name: N,
  message: Uint8Array,
): RecordTypes[N] {
  const writer = writerSchema(message);
  if (writer.name !== name) {
    throw new TypeError(
      `Cannot decode ${name}: the message was written with schema ${writer.name}`,
    );
  }
  return decodeBody(
    name,
    writer.type,
    Buffer.from(message.buffer, message.byteOffset + HEADER_LENGTH, message.length - HEADER_LENGTH),
    writer.resolver,
  );
}

/**
 * Decodes an Avro body with `type` (the reader's), through `resolver` when the writer's schema
 * differs. Throws a `TypeError` when the body does not decode (truncated, padded, garbage).
 */
export function decodeBody<N extends SchemaName>(
  name: N,
  type: avro.Type,
  body: Buffer,
  resolver?: avro.Resolver,
): RecordTypes[N] {
  try {
    return type.fromBuffer(body, resolver) as RecordTypes[N];
  } catch (error) {
    throw new TypeError(
      `Cannot decode ${name}: body is not valid Avro (${(error as Error).message})`,
      { cause: error },
    );
  }
}

// avsc writes `bytes` only from a Buffer.
function withBufferPayload(letter: DeadLetter): DeadLetter {
  const { payload } = letter;
  if (Buffer.isBuffer(payload)) return letter;
  return { ...letter, payload: Buffer.from(payload.buffer, payload.byteOffset, payload.length) };
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");
}
