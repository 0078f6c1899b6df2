/**
 * Apache Kafka as a local server: one KRaft node that is broker and controller, from the jars of
 * `org.apache.kafka:kafka_2.13` (local_services/kafka/pom.xml), config templates next to it.
 *
 * It listens on the client port and the next one (KRaft controller). Its storage is formatted
 * once, when the data dir has no meta.properties yet. Ready means a kafkajs admin connects,
 * describes a cluster with a broker and lists topics.
 *
 * @module
 */

import { join } from "node:path";
import "../shared/kafkajs_fixes.ts"; // before kafkajs: its producers must not drop nor give up a commit
import { Kafka, logLevel } from "kafkajs";
import { existsSync, type Log, withTimeout } from "./_util.ts";
import { runJava } from "./java.ts";
import type { ServicePaths } from "./layout.ts";
import { PROBE_TIMEOUT_MS, type ServerSpec } from "./server_spec.ts";

export const KAFKA: ServerSpec<"kafka"> = {
  name: "kafka",
  title: "Apache Kafka",
  defaultPort: 9092,
  env: { variable: "KAFKA_BROKERS", localValues: ["127.0.0.1:9092", "localhost:9092"] },
  mainLog: "server.log",
  readyTimeoutMs: 90_000,
  java: { min: 17, reason: "the local servers are set up and measured on it" },
  fetch: { goal: "copy-dependencies", versionProperty: "kafka.version" },
  templates: ["server.properties", "log4j.properties", "tools_log4j.properties", "jvm.options"],
  jvmOptions: "jvm.options",
  extraDirs: [],
  processMarker: "kafka.Kafka",
  portInConfig: {
    file: "server.properties",
    pattern: /^listeners=PLAINTEXT:\/\/127\.0\.0\.1:(\d+)/m,
  },
  ports: (port) => [
    { port, purpose: "Kafka client listener" },
    { port: port + 1, purpose: "Kafka KRaft controller listener" },
  ],
  templateVars: (paths, port) =>
    Promise.resolve({
      KAFKA_PORT: String(port),
      CONTROLLER_PORT: String(port + 1),
      KAFKA_DATA_DIR: paths.dataDir,
      KAFKA_LOG_DIR: paths.logDir,
      KAFKA_CONF_DIR: paths.confDir,
      KAFKA_TMP_DIR: paths.tmpDir,
    }),
  javaArgs: (paths) => [
    `@${join(paths.confDir, "jvm.options")}`,
    "-cp",
    join(paths.libDir, "*"),
    "kafka.Kafka",
    join(paths.confDir, "server.properties"),
  ],
  prepare: formatKafkaStorage,
  probe: async (address) => ({ reachable: await kafkaReachable([address]), version: null }),
  diagnoses: (paths) => [{
    pattern: /Invalid cluster\.id|Mismatched cluster|meta\.properties|is not formatted/i,
    cause: "Kafka's storage is missing, unformatted or from another cluster",
    fix: `delete ${paths.dataDir} (this loses local topics) and run up again`,
  }],
};

/**
 * True when a kafkajs admin connects to `brokers` (`host:port`), describes a cluster with at
 * least one broker and lists topics, within a few seconds. Closes its client; logs nothing.
 */
export async function kafkaReachable(
  brokers: string[],
  options: { timeoutMs?: number } = {},
): Promise<boolean> {
  const kafka = new Kafka({
    clientId: "local-services-probe",
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_500,
    requestTimeout: 3_000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  const check = (async () => {
    await admin.connect();
    const cluster = await admin.describeCluster();
    await admin.listTopics();
    return cluster.brokers.length > 0;
  })().catch(() => false);
  try {
    return await withTimeout(check, options.timeoutMs ?? PROBE_TIMEOUT_MS, false);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Formats Kafka's KRaft storage once (when log.dirs has no meta.properties yet). */
async function formatKafkaStorage(paths: ServicePaths, log: Log, java: string): Promise<void> {
  if (existsSync(join(paths.dataDir, "meta.properties"))) return;
  const base = [
    "-Xmx256m",
    `-Dlog4j.configuration=file:${join(paths.confDir, "tools_log4j.properties")}`,
    "-cp",
    join(paths.libDir, "*"),
    "kafka.tools.StorageTool",
  ];
  const uuid = await runJava(java, base.concat("random-uuid"), "generate a Kafka cluster id");
  const clusterId = uuid.trim().split(/\s+/).pop() ?? "";
  if (!/^[A-Za-z0-9_-]{22}$/.test(clusterId)) {
    throw new Error(`kafka: StorageTool random-uuid printed no cluster id: ${uuid.trim()}`);
  }
  await runJava(
    java,
    base.concat(
      "format",
      "-t",
      clusterId,
      "-c",
      join(paths.confDir, "server.properties"),
      "--ignore-formatted",
    ),
    "format Kafka storage",
  );
  log(`kafka: formatted storage in ${paths.dataDir} (cluster id ${clusterId})`);
}
