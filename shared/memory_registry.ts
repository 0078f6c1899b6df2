/**
 * A schema registry in memory, for unit tests of what uses one (`wire.ts`, the stages, the
 * producer): the {@linkcode SchemaRegistryClient} interface with ids given from 1, the same schema
 * text the same id whatever the subject (as Confluent's and Apicurio's content ids), no
 * compatibility rule, and a switch that makes every request fail as a registry that does not
 * answer fails. Integration tests use the real registry instead.
 *
 * @module
 */
import type { SchemaName } from "./avro.ts";
import type { RegisteredSchema, SchemaRegistryClient, SchemaType } from "./schema_registry.ts";
import { SchemaRegistryError } from "./schema_registry.ts";
import { createWireCodec, type WireCodec, type WireCodecOptions } from "./wire.ts";

/** The in-memory registry, with what tests look at. */
export interface MemoryRegistry extends SchemaRegistryClient {
  /** While true, every request throws a retriable `unavailable` error. */
  down: boolean;
  /** Requests answered or refused so far, by kind (`register`, `schemaById`, ...). */
  readonly requests: Record<string, number>;
  /** Adds a schema under an id of the test's choosing (say, one a real registry would give). */
  put(id: number, schema: string, schemaType?: SchemaType): void;
}

/** A fresh, empty in-memory registry. */
export function createMemoryRegistry(url = "memory://registry"): MemoryRegistry {
  const byId = new Map<number, RegisteredSchema>();
  const idOf = new Map<string, number>();
  const subjects = new Map<string, number[]>();
  const requests: Record<string, number> = {};
  let nextId = 1;

  function ask(kind: string): void {
    requests[kind] = (requests[kind] ?? 0) + 1;
    if (registry.down) {
      throw new SchemaRegistryError(
        `schema registry at ${url} (SCHEMA_REGISTRY_URL): cannot ${kind}: cannot connect (down)`,
        { kind: "unavailable" },
      );
    }
  }

  const registry: MemoryRegistry = {
    url,
    down: false,
    requests,
    put(id, schema, schemaType = "AVRO") {
      byId.set(id, { schema, schemaType });
      idOf.set(`${schemaType}\u0000${schema}`, id);
      nextId = Math.max(nextId, id + 1);
    },
    register(subject, schema, options = {}) {
      ask("register");
      const text = typeof schema === "string" ? schema : JSON.stringify(schema);
      const schemaType = options.schemaType ?? "AVRO";
      const key = `${schemaType}\u0000${text}`;
      let id = idOf.get(key);
      if (id === undefined) {
        id = nextId++;
        idOf.set(key, id);
        byId.set(id, { schema: text, schemaType });
      }
      const versions = subjects.get(subject) ?? [];
      if (!versions.includes(id)) versions.push(id);
      subjects.set(subject, versions);
      return Promise.resolve(id);
    },
    schemaById(id) {
      ask("schemaById");
      const found = byId.get(id);
      if (!found) {
        return Promise.reject(
          new SchemaRegistryError(
            `schema registry at ${url} (SCHEMA_REGISTRY_URL): cannot fetch schema id ${id}: HTTP 404 error_code 40403: Schema ${id} not found.`,
            { kind: "not_found", status: 404, errorCode: 40403 },
          ),
        );
      }
      return Promise.resolve(found);
    },
    isCompatible() {
      ask("isCompatible");
      return Promise.resolve(true);
    },
    versions(subject) {
      ask("versions");
      return Promise.resolve((subjects.get(subject) ?? []).map((_, i) => i + 1));
    },
    deleteSubject(subject) {
      ask("deleteSubject");
      const versions = (subjects.get(subject) ?? []).map((_, i) => i + 1);
      subjects.delete(subject);
      return Promise.resolve(versions);
    },
  };
  return registry;
}

/** Topics a {@linkcode memoryWire} registers each schema under (`test.<name>`). */
export const MEMORY_TOPICS: Readonly<Record<SchemaName, string>> = {
  Trade: "test.Trade",
  SilverTrade: "test.SilverTrade",
  DeadLetter: "test.DeadLetter",
  WorkerReport: "test.WorkerReport",
  CandleUpdate: "test.CandleUpdate",
  FeedGap: "test.FeedGap",
  FeedCoverage: "test.FeedCoverage",
};

/**
 * A codec with every schema registered in `registry` (default: a fresh in-memory one), for unit
 * tests that encode and decode records.
 */
export async function memoryWire(
  registry: SchemaRegistryClient = createMemoryRegistry(),
  options: WireCodecOptions = {},
): Promise<WireCodec> {
  const wire = createWireCodec(registry, options);
  await wire.register(MEMORY_TOPICS);
  return wire;
}
