/**
 * Avro encoding of every Kafka message value, using Avro single-object encoding: the two-byte
 * marker `C3 01`, the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian), then the
 * Avro binary body. A message whose fingerprint is not one of ours is refused with an error that
 * says so, never decoded by guess.
 *
 * Schemas are read from `schemas/avro/*.avsc` on first use, never at import. A schema that
 * evolved keeps its earlier versions in `schemas/avro/history/`: messages written with one of
 * them still decode, resolved to the current schema by Avro's rules (a field added since takes
 * its default), and are never written.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import avro from "avsc";
import type { CandleUpdate, DeadLetter, RawTrade, SilverTrade, WorkerReport } from "./types.ts";

/** The schemas this module knows, by record name. */
export type SchemaName = "Trade" | "SilverTrade" | "DeadLetter" | "WorkerReport" | "CandleUpdate";

/** The TypeScript type of each schema's records. */
export interface RecordTypes {
  Trade: RawTrade;
  SilverTrade: SilverTrade;
  DeadLetter: DeadLetter;
  WorkerReport: WorkerReport;
  CandleUpdate: CandleUpdate;
}

const SCHEMA_FILES: Readonly<Record<SchemaName, string>> = {
  Trade: "trade.avsc",
  SilverTrade: "silver_trade.avsc",
  DeadLetter: "dead_letter.avsc",
  WorkerReport: "worker_report.avsc",
  CandleUpdate: "candle_update.avsc",
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
    const type = avro.Type.forSchema(readSchemaFile(name) as avro.Schema, { wrapUnions: false });
    // avsc's schema() without options is the Parsing Canonical Form.
    const canonical = JSON.stringify(type.schema());
    const fingerprint = crc64Avro(canonical);
    const header = Buffer.alloc(HEADER_LENGTH);
    header[0] = SINGLE_OBJECT_MARKER[0];
    header[1] = SINGLE_OBJECT_MARKER[1];
    header.writeBigUInt64LE(fingerprint, 2);
    const entry: CompiledSchema = { name, type, canonical, fingerprint, header };
    map.set(name, entry);
    byFp.set(fingerprint, entry);
    for (const old of readSchemaHistory(name)) {
      const oldType = avro.Type.forSchema(old as avro.Schema, { wrapUnions: false });
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

/** The CRC-64-AVRO fingerprint of one of our schemas. */
export function fingerprintOf(name: SchemaName): bigint {
  return schema(name).fingerprint;
}

/** Formats a fingerprint the way error messages print it. */
export function formatFingerprint(fingerprint: bigint): string {
  return `0x${fingerprint.toString(16).padStart(16, "0")}`;
}

/**
 * Encodes a record as an Avro single-object message. Throws a `TypeError` naming the first
 * invalid field when the value does not match the schema.
 */
export function encode<N extends SchemaName>(name: N, value: RecordTypes[N]): Buffer {
  const { type, header } = schema(name);
  let body: Buffer;
  try {
    body = type.toBuffer(name === "DeadLetter" ? withBufferPayload(value as DeadLetter) : value);
  } catch {
    const paths: string[] = [];
    type.isValid(value, { errorHook: (path: string[]) => paths.push(path.join(".") || "(root)") });
    throw new TypeError(
      `Cannot encode ${name}: invalid field ${paths.length ? `'${paths[0]}'` : "value"}`,
    );
  }
  const out = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  header.copy(out, 0);
  body.copy(out, HEADER_LENGTH);
  return out;
}

/** Reads the schema name a message was written with, without decoding its body. */
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
export function decode<N extends SchemaName>(name: N, message: Uint8Array): RecordTypes[N] {
  const writer = writerSchema(message);
  if (writer.name !== name) {
    throw new TypeError(
      `Cannot decode ${name}: the message was written with schema ${writer.name}`,
    );
  }
  const buf = Buffer.from(message.buffer, message.byteOffset, message.length);
  try {
    return writer.type.fromBuffer(buf.subarray(HEADER_LENGTH), writer.resolver) as RecordTypes[N];
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
