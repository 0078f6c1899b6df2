/**
 * The wire format of every topic: the Confluent wire format (byte 0, the schema's registry id as
 * a 4-byte big-endian integer, the Avro body), with the schema registry of SCHEMA_REGISTRY_URL,
 * so Kafka Connect, ksqlDB, Spark, Flink or Python's confluent-kafka read the topics as they read
 * any Avro topic. One {@linkcode WireCodec} per process, created at start.
 *
 * Writing: at start a process registers the schema of each topic it writes under the subject
 * `<topic>-value` (Confluent's TopicNameStrategy) and keeps the ids ({@linkcode openWire}).
 * Registering is idempotent (the same schema gets the same id and adds no version), so writers
 * auto-register as Confluent's serializers do by default: a deployment needs no separate step,
 * and a schema the subject's compatibility rule (BACKWARD) refuses stops the process at start,
 * before it writes anything. After that `encode()` is synchronous and never asks the registry:
 * a running writer keeps working while the registry is down.
 *
 * Reading: `decode()` is synchronous for an id this process knows. A consumer calls
 * `resolve(values)` once per batch first: it fetches the writer schema of each id not seen yet,
 * once (ids are immutable, so they are kept for the process's life), and Avro's resolution rules
 * read it into the reader's schema (a field added since takes its default, a field removed is
 * skipped). What cannot be read throws a {@linkcode WireDecodeError} whose `code` a stage puts on
 * the dead letter:
 * - `unknown_schema_id`: the registry answers that it has no such id (404). Such an id is not
 *   asked about again for `unknownIdTtlMs`, so a flood of them costs one request per id, not one
 *   per record;
 * - `undecodable`: neither framing, a truncated header, a schema that is not Avro or is another
 *   record than the reader's, or a body that does not decode.
 * A registry that does not answer while an unknown id is resolved makes `resolve()` throw the
 * retriable {@linkcode SchemaRegistryError}: a stage then retries the batch without committing
 * (processor/stage_runner.ts), and no record is dead-lettered for the registry's outage.
 *
 * Records written before the registry, in Avro single-object encoding (`C3 01` and a fingerprint,
 * see `avro.ts`), still decode: an existing installation's topics stay readable while it moves
 * over.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type avro from "avsc";
import {
  avroType,
  CONFLUENT_HEADER_LENGTH,
  CONFLUENT_MAGIC,
  confluentHeader,
  decodeBody,
  decodeSingleObject,
  encodeFramed,
  framingOf,
  parseSchema,
  type RecordTypes,
  type SchemaName,
  schemaText,
} from "./avro.ts";
import { type Clock, systemClock } from "./clock.ts";
import { isRetriable } from "./errors.ts";
import { describeError, type Logger } from "./log.ts";
import {
  type RegisteredSchema,
  type SchemaRegistryClient,
  SchemaRegistryError,
} from "./schema_registry.ts";

/** Why a record cannot be read; stages use it as the dead letter's `reasonCode`. */
export type WireErrorCode = "unknown_schema_id" | "undecodable";

/** A record that cannot be decoded: `code` says which kind of problem, the message says what. */
export class WireDecodeError extends TypeError {
  readonly code: WireErrorCode;
  constructor(message: string, code: WireErrorCode, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "WireDecodeError";
    this.code = code;
  }
}

/** The dead letter's reason code for a decoding failure: the error's own, else `undecodable`. */
export function wireErrorCode(error: unknown): WireErrorCode {
  return error instanceof WireDecodeError ? error.code : "undecodable";
}

/** The subject a topic's value schema is registered under (TopicNameStrategy). */
export function subjectOf(topic: string): string {
  return `${topic}-value`;
}

/** Options of {@linkcode createWireCodec}. */
export interface WireCodecOptions {
  /**
   * This process's own version of some schemas (an Avro schema object each), instead of
   * `schemas/avro/`: registered, written with and read into. For tests of schema evolution.
   */
  readonly schemas?: Partial<Record<SchemaName, object>>;
  /** How long an id the registry said it does not know is not asked about again, ms. Default 30 000. */
  readonly unknownIdTtlMs?: number;
  /** Most schema ids fetched at once by one `resolve()`. Default 8. */
  readonly fetchConcurrency?: number;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
}

/** The wire format of one process; see the module doc. */
export interface WireCodec {
  readonly registry: SchemaRegistryClient;
  /**
   * Registers the schema of each record type under `<topic>-value` of the topic it is written
   * to (`{ Trade: "market.trades.raw" }`) and keeps the ids for `encode()`. Idempotent. Throws
   * the registry's error: retriable when it does not answer, kind `incompatible` when the
   * subject's compatibility rule refuses the schema (nothing is registered then).
   */
  register(topics: Partial<Record<SchemaName, string>>): Promise<void>;
  /** The id `name` is written with. Throws when it was not registered. */
  idOf(name: SchemaName): number;
  /**
   * A record in the Confluent wire format, with the id registered for its type. Synchronous.
   * Throws a `TypeError` naming the invalid field, or an `Error` when the type was not
   * registered.
   */
  encode<N extends SchemaName>(name: N, value: RecordTypes[N]): Buffer;
  /**
   * Fetches, once, the schemas of the ids in `values` this process does not know yet. Never
   * throws for bad bytes (decode says why); throws the registry's error when it cannot answer
   * (retriable when it is down).
   */
  resolve(values: Iterable<Uint8Array | null | undefined>): Promise<void>;
  /**
   * Decodes a record of type `name` (Confluent wire format with an id resolved before, or
   * single-object). Synchronous. Throws a {@linkcode WireDecodeError}.
   */
  decode<N extends SchemaName>(name: N, message: Uint8Array): RecordTypes[N];
  /** `resolve([message])`, then `decode()`: for tools and tests that read a record at a time. */
  decodeAsync<N extends SchemaName>(name: N, message: Uint8Array): Promise<RecordTypes[N]>;
}

/** How records of one writer schema are read as one reader type. */
type Reading =
  | { readonly type: avro.Type; readonly resolver: avro.Resolver | undefined }
  | { readonly problem: string };

/** A schema id this process resolved. */
interface Writer {
  /** The writer's type, or undefined when `problem` says why it cannot be read. */
  readonly type: avro.Type | undefined;
  readonly problem: string | undefined;
  readonly readings: Map<SchemaName, Reading>;
}

/** What `encode()` writes a type with. */
interface Writing {
  readonly id: number;
  readonly header: Buffer;
}

const MAX_UNKNOWN_IDS = 10_000;

/** A codec over `registry`. Asks the registry nothing until `register()` or `resolve()`. */
export function createWireCodec(
  registry: SchemaRegistryClient,
  options: WireCodecOptions = {},
): WireCodec {
  const clock = options.clock ?? systemClock;
  const unknownIdTtlMs = options.unknownIdTtlMs ?? 30_000;
  const fetchConcurrency = options.fetchConcurrency ?? 8;
  const readers = new Map<SchemaName, { type: avro.Type; text: string; canonical: string }>();
  const writing = new Map<SchemaName, Writing>();
  const writers = new Map<number, Writer>();
  /** Ids the registry said it does not know, with when it said so. */
  const unknown = new Map<number, number>();
  const inFlight = new Map<number, Promise<void>>();

  function reader(name: SchemaName): { type: avro.Type; text: string; canonical: string } {
    let entry = readers.get(name);
    if (entry === undefined) {
      const own = options.schemas?.[name];
      const type = own === undefined ? avroType(name) : parseSchema(own);
      const text = own === undefined ? schemaText(name) : JSON.stringify(own);
      entry = { type, text, canonical: JSON.stringify(type.schema()) };
      readers.set(name, entry);
    }
    return entry;
  }

  function readingOf(writer: Writer, id: number, name: SchemaName): Reading {
    let reading = writer.readings.get(name);
    if (reading !== undefined) return reading;
    const own = reader(name);
    if (writer.type === undefined) {
      reading = { problem: writer.problem ?? "unreadable schema" };
    } else if (writer.type.name !== own.type.name) {
      reading = {
        problem: `schema id ${id} is ${
          writer.type.name ?? `an Avro ${writer.type.typeName}`
        }, not ${own.type.name}`,
      };
    } else if (JSON.stringify(writer.type.schema()) === own.canonical) {
      reading = { type: own.type, resolver: undefined };
    } else {
      try {
        reading = { type: own.type, resolver: own.type.createResolver(writer.type) };
      } catch (error) {
        reading = {
          problem: `schema id ${id} cannot be read as ${own.type.name} (${describeError(error)})`,
        };
      }
    }
    writer.readings.set(name, reading);
    return reading;
  }

  function writerOf(found: RegisteredSchema, id: number): Writer {
    const readings = new Map<SchemaName, Reading>();
    if (found.schemaType !== "AVRO") {
      return {
        type: undefined,
        problem: `schema id ${id} is a ${found.schemaType} schema, not Avro`,
        readings,
      };
    }
    try {
      return { type: parseSchema(JSON.parse(found.schema)), problem: undefined, readings };
    } catch (error) {
      return {
        type: undefined,
        problem: `schema id ${id} is not a valid Avro schema (${describeError(error)})`,
        readings,
      };
    }
  }

  async function fetchWriter(id: number): Promise<void> {
    try {
      const found = await registry.schemaById(id);
      writers.set(id, writerOf(found, id));
      unknown.delete(id);
    } catch (error) {
      if (!(error instanceof SchemaRegistryError) || error.kind !== "not_found") throw error;
      if (unknown.size >= MAX_UNKNOWN_IDS) unknown.clear();
      unknown.set(id, clock.now());
    }
  }

  function fetchOnce(id: number): Promise<void> {
    let pending = inFlight.get(id);
    if (pending === undefined) {
      pending = fetchWriter(id).finally(() => inFlight.delete(id));
      inFlight.set(id, pending);
    }
    return pending;
  }

  function decode<N extends SchemaName>(name: N, message: Uint8Array): RecordTypes[N] {
    if (message.length >= CONFLUENT_HEADER_LENGTH && message[0] === CONFLUENT_MAGIC) {
      const id = (message[1]! << 24) | (message[2]! << 16) | (message[3]! << 8) | message[4]!;
      const writer = writers.get(id);
      if (writer !== undefined) {
        const reading = readingOf(writer, id, name);
        if ("problem" in reading) {
          throw new WireDecodeError(`Cannot decode ${name}: ${reading.problem}`, "undecodable");
        }
        const body = Buffer.from(
          message.buffer,
          message.byteOffset + CONFLUENT_HEADER_LENGTH,
          message.length - CONFLUENT_HEADER_LENGTH,
        );
        try {
          return decodeBody(name, reading.type, body, reading.resolver);
        } catch (error) {
          throw new WireDecodeError((error as Error).message, "undecodable", { cause: error });
        }
      }
    }
    const framing = framingOf(message);
    switch (framing.kind) {
      case "confluent":
        throw new WireDecodeError(
          `Cannot decode ${name}: schema id ${framing.id} is not in the schema registry at ${registry.url} (SCHEMA_REGISTRY_URL)`,
          "unknown_schema_id",
        );
      case "single-object":
        try {
          return decodeSingleObject(name, message);
        } catch (error) {
          throw new WireDecodeError((error as Error).message, "undecodable", { cause: error });
        }
      case "unknown":
        throw new WireDecodeError(`Cannot decode ${name}: ${framing.reason}`, "undecodable");
    }
  }

  const codec: WireCodec = {
    registry,

    async register(topics) {
      for (const [name, topic] of Object.entries(topics) as [SchemaName, string][]) {
        const own = reader(name);
        const id = await registry.register(subjectOf(topic), own.text);
        writing.set(name, { id, header: confluentHeader(id) });
        // The id names our own schema: reading our own records needs no fetch.
        if (!writers.has(id)) {
          writers.set(id, { type: own.type, problem: undefined, readings: new Map() });
        }
      }
    },

    idOf(name) {
      const known = writing.get(name);
      if (known === undefined) {
        throw new Error(
          `Cannot encode ${name}: its schema was not registered at start (register() first)`,
        );
      }
      return known.id;
    },

    encode(name, value) {
      const known = writing.get(name);
      if (known === undefined) codec.idOf(name); // throws, saying why
      return encodeFramed(name, value, known!.header, reader(name).type);
    },

    async resolve(values) {
      const at = clock.now();
      const wanted = new Set<number>();
      for (const value of values) {
        if (!value || value.length < CONFLUENT_HEADER_LENGTH || value[0] !== CONFLUENT_MAGIC) {
          continue;
        }
        const id = (value[1]! << 24) | (value[2]! << 16) | (value[3]! << 8) | value[4]!;
        if (id < 0 || writers.has(id)) continue;
        const missedAt = unknown.get(id);
        if (missedAt !== undefined && at - missedAt < unknownIdTtlMs) continue;
        wanted.add(id);
      }
      if (wanted.size === 0) return;
      const ids = [...wanted];
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(fetchConcurrency, ids.length) }, async () => {
          while (next < ids.length) await fetchOnce(ids[next++]!);
        }),
      );
    },

    decode,

    async decodeAsync(name, message) {
      await codec.resolve([message]);
      return decode(name, message);
    },
  };
  return codec;
}

/** Options of {@linkcode openWire}. */
export interface OpenWireOptions extends WireCodecOptions {
  readonly log: Logger;
  /** Stops waiting for the registry (then throws an `aborted` SchemaRegistryError). */
  readonly signal?: AbortSignal;
  /** First wait after a failed attempt, ms. Default 1000. */
  readonly retryBaseMs?: number;
  /** Longest wait between attempts, ms. Default 30 000. */
  readonly retryMaxMs?: number;
}

/**
 * The process's codec, with the schema of each topic it writes registered
 * (`{ DeadLetter: topics.deadLetter, ... }`). A registry that does not answer is waited for,
 * with capped exponential backoff and a warning naming SCHEMA_REGISTRY_URL at each attempt, as
 * long as it takes (or until `signal` aborts): nothing is consumed or produced meanwhile. A
 * refusal that waiting cannot mend (an incompatible schema, refused credentials, a URL that is
 * not a registry) throws at once.
 */
export async function openWire(
  registry: SchemaRegistryClient,
  topics: Partial<Record<SchemaName, string>>,
  options: OpenWireOptions,
): Promise<WireCodec> {
  const { log, signal } = options;
  const baseMs = options.retryBaseMs ?? 1000;
  const maxMs = options.retryMaxMs ?? 30_000;
  const codec = createWireCodec(registry, options);
  for (let attempt = 0;; attempt++) {
    try {
      await codec.register(topics);
      if (attempt > 0) {
        log.info("schema registry answers: schemas registered", { attempts: attempt + 1 });
      }
      return codec;
    } catch (error) {
      if (!isRetriable(error) || signal?.aborted) throw error;
      const step = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
      const retryInMs = Math.round(step / 2 + Math.random() * step / 2);
      log.warn(
        `schema registry at ${registry.url} (SCHEMA_REGISTRY_URL) does not answer: waiting for it before starting`,
        { attempt: attempt + 1, retryInMs, error: describeError(error) },
      );
      await delay(options.clock ?? systemClock, retryInMs, signal);
      if (signal?.aborted) {
        throw new SchemaRegistryError(
          `schema registry at ${registry.url} (SCHEMA_REGISTRY_URL): stopped while waiting for it`,
          { kind: "aborted", cause: error },
        );
      }
    }
  }
}

function delay(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
