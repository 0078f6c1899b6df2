/**
 * Apache Cassandra as a local server: one node from the jars of
 * `org.apache.cassandra:cassandra-all` (local_services/cassandra/pom.xml), config templates next
 * to it (cassandra.yaml, logback.xml, and the JVM flags of the tarball's jvm17-server.options,
 * which the jar does not carry).
 *
 * It listens on the CQL port, storage port 7000 and JMX port 7199 (local only). Ready means a
 * cassandra-driver client answers `SELECT release_version FROM system.local`.
 *
 * @module
 */

import { join } from "node:path";
import { Client as CassandraClient, policies as cassandraPolicies } from "cassandra-driver";
import { withTimeout } from "./_util.ts";
import { findJar } from "./jars.ts";
import { PROBE_TIMEOUT_MS, type ServerSpec } from "./server_spec.ts";

const DEFAULT_CQL_PORT = 9042;
const STORAGE_PORT = 7000;
const JMX_PORT = 7199;

export const CASSANDRA: ServerSpec<"cassandra"> = {
  name: "cassandra",
  title: "Apache Cassandra",
  defaultPort: DEFAULT_CQL_PORT,
  env: {
    variable: "CASSANDRA_CONTACT_POINTS",
    localValues: ["127.0.0.1:9042", "127.0.0.1", "localhost", "localhost:9042"],
  },
  mainLog: "system.log",
  readyTimeoutMs: 300_000,
  java: {
    min: 17,
    reason: "Cassandra 5.0 is set up for it here",
    max: { major: 17, warning: "Cassandra 5.0 supports Java 11 and 17 only" },
  },
  fetch: { goal: "copy-dependencies", versionProperty: "cassandra.version" },
  templates: ["cassandra.yaml", "logback.xml", "jvm17_server.options"],
  jvmOptions: "jvm17_server.options",
  extraDirs: ["commitlog", "saved_caches", "hints", "cdc_raw", "triggers"],
  processMarker: "org.apache.cassandra.service.CassandraDaemon",
  // The template quotes the port (deno fmt would turn an unquoted {{...}} into a YAML mapping).
  portInConfig: { file: "cassandra.yaml", pattern: /^native_transport_port:\s*"?(\d+)/m },
  ports: (port) => [
    { port, purpose: "Cassandra CQL native port" },
    { port: STORAGE_PORT, purpose: "Cassandra storage (gossip) port" },
    { port: JMX_PORT, purpose: "Cassandra JMX port" },
  ],
  templateVars: async (paths, port) => ({
    CQL_PORT: String(port),
    STORAGE_PORT: String(STORAGE_PORT),
    JMX_PORT: String(JMX_PORT),
    CASSANDRA_DIR: paths.dir,
    CASSANDRA_CONF_DIR: paths.confDir,
    JAMM_JAR: await findJar(paths.libDir, /^jamm-.*\.jar$/),
  }),
  // Cassandra's shared thread pool (SEPWorker) keeps a worker spinning for 10 ms after each task,
  // in 10 µs parkNanos naps: at a steady trickle of requests (50-200 a second) that costs a
  // quarter of a core. With 1 ms of slack each nap lasts about 1 ms instead of about 60 µs.
  // Measured on a private node, warm, one-row writes: 24-41% -> 7-8% of a core at 50 requests/s,
  // 30-42% -> 10-12% at 200/s. The slack is also how late work can start: while a worker spins,
  // a new task does not unpark anyone (SharedExecutorPool.maybeStartSpinningWorker), the spinner
  // finds it when its nap ends. 10 ms of slack took Cassandra from 15-18% to 12% of a core at 500
  // trades/s and from 26-27% to 21% at 2,000, but silver's and gold's write p50 from 4-6 ms to
  // 8-9 ms; 3 ms measured like 1 ms (bench:pipeline, private Kafka and Cassandra, load 3-10).
  // What is left is a cost per request, about 420-430 µs of CPU each (418 requests/s at 500
  // trades/s, 627 at 2,000): fewer requests, not settings, lower it further.
  timerSlackNs: 1_000_000,
  javaArgs: (paths) => [
    `@${join(paths.confDir, "jvm17_server.options")}`,
    "-cp",
    join(paths.libDir, "*"),
    "org.apache.cassandra.service.CassandraDaemon",
  ],
  probe: async (address) => {
    const version = await cassandraReleaseVersion([address]);
    return { reachable: version !== null, version };
  },
  diagnoses: (paths) => [{
    pattern: /CommitLogReplayException|Could not read commit log descriptor|CorruptSSTable/i,
    cause: "Cassandra found damaged commit log or sstable files",
    fix: `delete ${paths.dir}/commitlog (recent writes are lost), or all of ${paths.dir} ` +
      "except lib/, and run up again",
  }],
};

/**
 * True when a cassandra-driver client connects to `contactPoints` (`host` or `host:port`,
 * default port 9042) and `SELECT release_version FROM system.local` answers, within a few
 * seconds. Shuts its client down; logs nothing.
 */
export async function cassandraReachable(
  contactPoints: string[],
  options: { timeoutMs?: number } = {},
): Promise<boolean> {
  return (await cassandraReleaseVersion(contactPoints, options)) !== null;
}

/** The `release_version` the node reports, or null when no client works within the timeout. */
async function cassandraReleaseVersion(
  contactPoints: string[],
  options: { timeoutMs?: number } = {},
): Promise<string | null> {
  const client = new CassandraClient({
    contactPoints,
    localDataCenter: "datacenter1",
    protocolOptions: { port: DEFAULT_CQL_PORT },
    socketOptions: { connectTimeout: 2_000, readTimeout: 4_000 },
    policies: {
      reconnection: new cassandraPolicies.reconnection.ConstantReconnectionPolicy(60_000),
    },
  });
  const check = (async () => {
    await client.connect();
    const rs = await client.execute("SELECT release_version FROM system.local");
    const version: unknown = rs.first()?.get("release_version");
    return typeof version === "string" ? version : null;
  })().catch(() => null);
  try {
    return await withTimeout(check, options.timeoutMs ?? PROBE_TIMEOUT_MS, null);
  } finally {
    await client.shutdown().catch(() => {});
  }
}
