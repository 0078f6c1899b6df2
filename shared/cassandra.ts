/**
 * Cassandra client helpers on cassandra-driver: building a client from the config, and applying
 * `schemas/cassandra/*.cql` idempotently with the configured keyspace and replication.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import type { Config, Replication } from "./config.ts";

/** Options of {@linkcode createCassandraClient}. */
export interface CreateCassandraOptions {
  /** Connect into this keyspace. Default: none (use fully qualified table names). */
  readonly keyspace?: string;
  /** Application name reported to Cassandra. Default `market-pipeline`. */
  readonly applicationName?: string;
}

/** Builds a Cassandra client; it connects on `connect()` or on the first query. */
export function createCassandraClient(
  config: Config["cassandra"],
  options: CreateCassandraOptions = {},
): cassandra.Client {
  const clientOptions: cassandra.DseClientOptions = {
    contactPoints: [...config.contactPoints],
    // The driver reaches the nodes it discovers (system.peers) on this one port, not on the
    // contact points' ports: left at 9042, a cluster on another port would be joined by
    // whatever listens on 9042 of a peer's address.
    protocolOptions: { port: nativePort(config.contactPoints) },
    localDataCenter: config.localDataCenter,
    applicationName: options.applicationName ?? "market-pipeline",
    socketOptions: { connectTimeout: 5_000, readTimeout: 12_000 },
    pooling: { heartBeatInterval: 10_000 },
    // bigint columns are JavaScript BigInts both ways, and map columns are JavaScript Maps both
    // ways. Without `map`, the driver encodes a Map parameter by iterating its own enumerable
    // properties, of which it has none: an empty map, stored as null, without an error.
    encoding: { useBigIntAsLong: true, useBigIntAsVarint: true, map: Map },
    queryOptions: { prepare: true, consistency: cassandra.types.consistencies.localQuorum },
    // Cassandra down must not make the driver give up on a host for minutes.
    policies: {
      reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(
        200,
        5_000,
        false,
      ),
    },
  };
  if (options.keyspace) clientOptions.keyspace = options.keyspace;
  if (config.username) {
    clientOptions.authProvider = new cassandra.auth.PlainTextAuthProvider(
      config.username,
      config.password.reveal(),
    );
  }
  return new cassandra.Client(clientOptions);
}

/**
 * The one native port of `contactPoints` (`host:port`). @throws RangeError when they name
 * several: the driver uses one port for every node, including those it discovers.
 */
export function nativePort(contactPoints: readonly string[]): number {
  const ports = new Set(contactPoints.map((point) => Number(/:(\d+)$/.exec(point)?.[1] ?? 9042)));
  if (ports.size !== 1) {
    throw new RangeError(
      `CASSANDRA_CONTACT_POINTS names ${ports.size === 0 ? "no" : "several"} ports (${
        [...ports].join(", ")
      }): every node must serve CQL on the same port, since the driver reaches the nodes it ` +
        "discovers on one port",
    );
  }
  return [...ports][0]!;
}

/** The CQL replication map for a keyspace. */
export function replicationCql(replication: Replication): string {
  if (replication.class === "SimpleStrategy") {
    return `{'class': 'SimpleStrategy', 'replication_factor': ${replication.replicationFactor}}`;
  }
  const dcs = Object.entries(replication.dataCenters).map(([dc, n]) => `'${dc}': ${n}`);
  return `{'class': 'NetworkTopologyStrategy', ${dcs.join(", ")}}`;
}

/**
 * Splits a CQL file into statements, dropping `--` comments, and fills in `{{keyspace}}` and
 * `{{replication}}`.
 */
export function renderCql(
  text: string,
  values: { readonly keyspace: string; readonly replication: string },
): string[] {
  const withoutComments = text.split("\n").map((line) => line.replace(/--.*$/, "")).join("\n");
  return withoutComments
    .replaceAll("{{keyspace}}", values.keyspace)
    .replaceAll("{{replication}}", values.replication)
    .split(";")
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter((s) => s !== "");
}

/** Reads every `schemas/cassandra/*.cql` file in name order, rendered for `keyspace`. */
export async function schemaStatements(
  keyspace: string,
  replication: Replication,
): Promise<string[]> {
  const dir = new URL("../schemas/cassandra/", import.meta.url);
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".cql")) names.push(entry.name);
  }
  names.sort();
  const statements: string[] = [];
  for (const name of names) {
    const text = await Deno.readTextFile(new URL(name, dir));
    statements.push(...renderCql(text, { keyspace, replication: replicationCql(replication) }));
  }
  return statements;
}

/**
 * Applies the schema: creates the keyspace and every table that is missing. Every statement is
 * `IF NOT EXISTS`, so running it again changes nothing. Returns the statements it ran.
 */
export async function applySchema(
  client: cassandra.Client,
  config: Pick<Config["cassandra"], "keyspace" | "replication">,
): Promise<string[]> {
  const statements = await schemaStatements(config.keyspace, config.replication);
  for (const statement of statements) {
    // DDL is not prepared; schema agreement is awaited by the driver after each change.
    await client.execute(statement, [], { prepare: false });
  }
  return statements;
}
