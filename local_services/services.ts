/**
 * Local Kafka and Cassandra, run from Maven Central jars without Docker.
 *
 * Jars, rendered config, data, logs and pid files live under `<repo>/.local/<service>/`, where
 * `<repo>` is the folder holding deno.json found upwards from this module. Servers are started as
 * detached processes (`setsid`) so they outlive the Deno process that started them, and a server
 * counts as up only when a real client works against it (kafkajs admin, cassandra-driver query).
 *
 * Importing this module does nothing: every function connects, spawns or reads files only when
 * called. See local_services/README.md for versions, timings and the surprises met on the way.
 *
 * @module
 */

import { Kafka, logLevel } from "kafkajs";
import { Client as CassandraClient, policies as cassandraPolicies } from "cassandra-driver";
import { join } from "node:path";
import { portFree, portHolder } from "../shared/ports.ts";
import {
  decode,
  defaultLog,
  delay,
  existsSync,
  ignoreNotFound,
  indent,
  lastLines,
  removeIfExists,
  seconds,
  throwIfAnyRejected,
  withTimeout,
} from "./_util.ts";
import { lockFile, type ServicePaths, servicePaths as pathsOf } from "./layout.ts";
import { withLock } from "./lock.ts";
import {
  commandExists,
  isOurProcess as isProcessOf,
  ourRunningPid as runningPidIn,
  signalProcess,
  spawnDetached,
  waitExit,
} from "./processes.ts";

/** The two servers this module runs. */
export type ServiceName = "kafka" | "cassandra";

/** Both servers, in the order they are reported. */
export const SERVICE_NAMES: readonly ServiceName[] = Object.freeze(["kafka", "cassandra"]);

/** Options shared by every function that starts, stops or inspects the servers. */
export interface ServicesOptions {
  /** Receives one human-readable progress line at a time. Default: write to stderr. */
  log?: (line: string) => void;
  /** Aborts waiting (for a lock, a start, a stop). Servers already started keep running. */
  signal?: AbortSignal;
  /** Kafka client port on 127.0.0.1; the KRaft controller uses the next port. Default 9092. */
  kafkaPort?: number;
  /** Cassandra CQL (native protocol) port on 127.0.0.1. Default 9042. */
  cassandraPort?: number;
}

/** What {@link servicesStatus} finds for one server. */
export interface ServiceStatus {
  name: ServiceName;
  /** A process started from this checkout is alive. */
  running: boolean;
  /** Pid of that process, or null. */
  pid: number | null;
  /** A real client works against `address` (whoever serves it). */
  reachable: boolean;
  /** `127.0.0.1:<port>` that was probed. */
  address: string;
  /** Server version: Cassandra's `release_version` when reachable, else the fetched jars'. */
  version: string | null;
  /** Where the server keeps its data. */
  dataDir: string;
  /** The server's main log file. */
  logFile: string;
}

export const DEFAULT_KAFKA_PORT = 9092;
export const DEFAULT_CASSANDRA_PORT = 9042;
const CASSANDRA_STORAGE_PORT = 7000;
const CASSANDRA_JMX_PORT = 7199;

const KAFKA_READY_TIMEOUT_MS = 90_000;
const CASSANDRA_READY_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 60_000;
const KILL_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 5_000;
const LOG_TAIL_LINES = 20;

const LOCAL_KAFKA_BROKERS: ReadonlySet<string> = new Set(["127.0.0.1:9092", "localhost:9092"]);
const LOCAL_CASSANDRA_CONTACT_POINTS: ReadonlySet<string> = new Set([
  "127.0.0.1:9042",
  "127.0.0.1",
  "localhost",
  "localhost:9042",
]);

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Makes sure Kafka and Cassandra accept clients on 127.0.0.1, starting what is missing.
 *
 * Idempotent: when both already work it says so and returns. Otherwise, under an exclusive lock
 * shared by every process of this checkout, it fetches the jars with Maven (first time only),
 * formats Kafka's storage (first time only), starts each missing server detached and waits until
 * a real client works (Kafka 90 s, Cassandra 300 s, in parallel).
 *
 * @throws Error naming the server, the cause, the last log lines and the fix.
 */
export async function servicesUp(options: ServicesOptions = {}): Promise<void> {
  await upServices(SERVICE_NAMES, options);
}

/** Stops both servers (SIGTERM, then SIGKILL after 60 s) and removes their pid files. */
export async function servicesDown(options: ServicesOptions = {}): Promise<void> {
  const log = options.log ?? defaultLog;
  await withLock({ file: lockFile(), purpose: "down", log, signal: options.signal }, async () => {
    const results = await Promise.allSettled(
      SERVICE_NAMES.map((name) => stopOne(name, log, options)),
    );
    throwIfAnyRejected(results);
  });
}

/** Reports, and logs one line per server: running (pid), reachable, version, data dir. */
export async function servicesStatus(
  options: ServicesOptions = {},
): Promise<Record<ServiceName, ServiceStatus>> {
  const log = options.log ?? defaultLog;
  const [kafka, cassandra] = await Promise.all([
    statusOf("kafka", options),
    statusOf("cassandra", options),
  ]);
  log(formatStatus(kafka));
  log(formatStatus(cassandra));
  return { kafka, cassandra };
}

/** Starts one server (reusing its data) and waits until it accepts clients. */
export async function startService(
  name: ServiceName,
  options: ServicesOptions = {},
): Promise<void> {
  assertServiceName(name);
  await upServices([name], options);
}

/** Stops one server: SIGTERM, up to 60 s for a clean shutdown, then SIGKILL. */
export async function stopService(name: ServiceName, options: ServicesOptions = {}): Promise<void> {
  assertServiceName(name);
  const log = options.log ?? defaultLog;
  await withLock(
    { file: lockFile(), purpose: `stop ${name}`, log, signal: options.signal },
    () => stopOne(name, log, options),
  );
}

/**
 * Starts the local servers that `env` points at, for integration tests and `deno task` runs.
 *
 * A server is local when its variable is unset or empty or lists only the local default
 * (`KAFKA_BROKERS`: 127.0.0.1:9092 / localhost:9092; `CASSANDRA_CONTACT_POINTS`: 127.0.0.1:9042,
 * 127.0.0.1, localhost). A server configured elsewhere is left alone. Safe to call from several
 * processes at once: starting happens under an exclusive lock file, so only one server starts.
 */
export async function ensureServices(
  env: Record<string, string | undefined>,
  options: Omit<ServicesOptions, "kafkaPort" | "cassandraPort"> = {},
): Promise<void> {
  const names = localServices(env);
  if (names.length === 0) return;
  const reachable = await Promise.all(names.map((name) => probe(name, {})));
  if (reachable.every(Boolean)) return;
  await upServices(names, options);
}

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

// ---------------------------------------------------------------------------------------------
// Starting
// ---------------------------------------------------------------------------------------------

interface ResolvedOptions {
  log: (line: string) => void;
  signal: AbortSignal | undefined;
  kafkaPort: number;
  cassandraPort: number;
}

function resolveOptions(options: ServicesOptions): ResolvedOptions {
  const kafkaPort = checkPort("kafkaPort", options.kafkaPort ?? DEFAULT_KAFKA_PORT);
  const cassandraPort = checkPort("cassandraPort", options.cassandraPort ?? DEFAULT_CASSANDRA_PORT);
  return { log: options.log ?? defaultLog, signal: options.signal, kafkaPort, cassandraPort };
}

function checkPort(label: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65534) {
    throw new RangeError(`Invalid ${label}: expected an integer 1..65534, got ${port}`);
  }
  return port;
}

async function upServices(names: readonly ServiceName[], options: ServicesOptions): Promise<void> {
  const opts = resolveOptions(options);
  const { log } = opts;
  const started = performance.now();

  // Fast path without the lock: everything already answers.
  const reachable = await Promise.all(names.map((name) => probe(name, opts)));
  if (reachable.every(Boolean)) {
    for (const name of names) {
      const pid = await ourRunningPid(name);
      const who = pid === null ? "not started from this checkout" : `pid ${pid}`;
      log(`${name}: already running at ${address(name, opts)} (${who})`);
    }
    return;
  }

  await withLock({ file: lockFile(), purpose: "up", log, signal: opts.signal }, async () => {
    await checkPrerequisites(names, log);
    const serialMaven = createSerialQueue();
    const results = await Promise.allSettled(
      names.map((name) => upOne(name, opts, serialMaven)),
    );
    throwIfAnyRejected(results);
  });
  log(`services up in ${seconds(performance.now() - started)}`);
}

async function upOne(
  name: ServiceName,
  opts: ResolvedOptions,
  serialMaven: SerialQueue,
): Promise<void> {
  const { log } = opts;
  const paths = servicePaths(name);
  const spec = serviceSpec(name, opts);

  const pid = await ourRunningPid(name);
  if (pid !== null) {
    assertSamePort(name, opts);
    if (await probe(name, opts)) {
      log(`${name}: already running (pid ${pid}) at ${spec.address}`);
      return;
    }
    log(`${name}: pid ${pid} is running but not ready yet; waiting until it accepts clients`);
    const since = performance.now();
    await waitReady(name, pid, since, opts, { mainLog: 0, stdoutLog: 0 });
    log(`${name}: ready at ${spec.address} after waiting ${seconds(performance.now() - since)}`);
    return;
  }
  if (await probe(name, opts)) {
    log(`${name}: already reachable at ${spec.address} (not started from this checkout)`);
    return;
  }

  const t0 = performance.now();
  await assertPortsFree(name, spec.ports);
  const version = await serialMaven(() => ensureJars(name, log));
  await renderConfig(name, opts);
  if (name === "kafka") await formatKafkaStorage(log);
  const { pid: pidStarted, mark } = await spawnServer(name, spec.javaArgs);
  const spawnedAt = performance.now();
  log(
    `${name}: started ${spec.title} ${version} (pid ${pidStarted}); waiting up to ` +
      `${spec.readyTimeoutMs / 1000} s for ${spec.address} (log: ${paths.mainLog})`,
  );
  await waitReady(name, pidStarted, spawnedAt, opts, mark);
  log(
    `${name}: ready at ${spec.address} in ${seconds(performance.now() - spawnedAt)} ` +
      `(${seconds(performance.now() - t0)} including preparation)`,
  );
}

async function waitReady(
  name: ServiceName,
  pid: number,
  since: number,
  opts: ResolvedOptions,
  mark: LogMark,
): Promise<void> {
  const spec = serviceSpec(name, opts);
  const deadline = since + spec.readyTimeoutMs;
  let nextNote = performance.now() + 20_000;
  while (true) {
    opts.signal?.throwIfAborted();
    if (!(await isOurProcess(name, pid))) {
      await delay(500, opts.signal); // let the last log lines reach the disk
      throw await startFailure(
        name,
        `the process (pid ${pid}) exited before it was ready`,
        mark,
      );
    }
    if (await probe(name, opts)) return;
    const now = performance.now();
    if (now > deadline) {
      throw await startFailure(
        name,
        `it did not accept clients at ${spec.address} within ${spec.readyTimeoutMs / 1000} s ` +
          `(pid ${pid} is still running; stop it with "deno run -A local_services/cli.ts down")`,
        mark,
      );
    }
    if (now > nextNote) {
      opts.log(`${name}: still starting (${seconds(now - since)})...`);
      nextNote = now + 20_000;
    }
    await delay(1_000, opts.signal);
  }
}

/** java 17 and setsid always; mvn only while some jars still have to be fetched. */
async function checkPrerequisites(
  names: readonly ServiceName[],
  log: (line: string) => void,
): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("java", {
      args: ["-version"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "java not found: install OpenJDK 17 (apt-get install openjdk-17-jre-headless) " +
          "or put its bin folder on PATH",
      );
    }
    throw error;
  }
  const text = decode(output.stderr) + decode(output.stdout);
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  const major = match ? Number(match[1] === "1" ? match[2] : match[1]) : NaN;
  if (!output.success || Number.isNaN(major)) {
    throw new Error(`"java -version" failed: ${text.trim() || `exit code ${output.code}`}`);
  }
  if (major < 17) {
    throw new Error(
      `java ${major} found on PATH, but the local servers need Java 17 (Cassandra 5.0 is set up ` +
        "for it here): install OpenJDK 17 (apt-get install openjdk-17-jre-headless)",
    );
  }
  if (major > 17) {
    log(`warning: java ${major} found; Cassandra 5.0 supports Java 11 and 17 only`);
  }
  if (!(await commandExists("setsid"))) {
    throw new Error("setsid not found: install util-linux (apt-get install util-linux)");
  }
  for (const name of names) {
    const { pomSha256, marker } = await jarState(name);
    if (marker?.pomSha256 !== pomSha256) await requireMaven(name);
  }
}

// ---------------------------------------------------------------------------------------------
// Stopping and status
// ---------------------------------------------------------------------------------------------

async function stopOne(
  name: ServiceName,
  log: (line: string) => void,
  options: ServicesOptions,
): Promise<void> {
  const paths = servicePaths(name);
  const pid = await ourRunningPid(name);
  if (pid === null) {
    const opts = resolveOptions(options);
    const note = (await probe(name, opts))
      ? ` (but something else answers at ${address(name, opts)}; not touching it)`
      : "";
    log(`${name}: not running${note}`);
    return;
  }
  const t0 = performance.now();
  log(`${name}: stopping pid ${pid} (SIGTERM)`);
  signalProcess(pid, "SIGTERM");
  if (
    !(await waitExit(pid, {
      signature: signature(name),
      timeoutMs: STOP_TIMEOUT_MS,
      signal: options.signal,
    }))
  ) {
    log(`${name}: pid ${pid} still running after ${STOP_TIMEOUT_MS / 1000} s; sending SIGKILL`);
    signalProcess(pid, "SIGKILL");
    if (
      !(await waitExit(pid, {
        signature: signature(name),
        timeoutMs: KILL_TIMEOUT_MS,
        signal: options.signal,
      }))
    ) {
      throw new Error(`${name}: pid ${pid} did not exit even after SIGKILL`);
    }
  }
  await removeIfExists(paths.pidFile);
  log(`${name}: stopped in ${seconds(performance.now() - t0)}`);
}

async function statusOf(name: ServiceName, options: ServicesOptions): Promise<ServiceStatus> {
  const opts = resolveOptions(options);
  const paths = servicePaths(name);
  const pid = await ourRunningPid(name);
  const addr = address(name, opts);
  let reachable: boolean;
  let version: string | null = null;
  if (name === "cassandra") {
    version = await cassandraReleaseVersion([addr]);
    reachable = version !== null;
  } else {
    reachable = await kafkaReachable([addr]);
  }
  version ??= (await readMarker(paths.markerFile))?.version ?? null;
  return {
    name,
    running: pid !== null,
    pid,
    reachable,
    address: addr,
    version,
    dataDir: paths.dataDir,
    logFile: paths.mainLog,
  };
}

function formatStatus(s: ServiceStatus): string {
  const running = s.running ? `running (pid ${s.pid})` : "not running from this checkout";
  const reachable = s.reachable ? `reachable at ${s.address}` : `not reachable at ${s.address}`;
  const version = s.version ?? "unknown (jars not fetched)";
  return `${s.name}: ${running}, ${reachable}, version ${version}, data ${s.dataDir}`;
}

// ---------------------------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------------------------

function address(name: ServiceName, opts: { kafkaPort?: number; cassandraPort?: number }) {
  return name === "kafka"
    ? `127.0.0.1:${opts.kafkaPort ?? DEFAULT_KAFKA_PORT}`
    : `127.0.0.1:${opts.cassandraPort ?? DEFAULT_CASSANDRA_PORT}`;
}

function probe(
  name: ServiceName,
  opts: { kafkaPort?: number; cassandraPort?: number },
): Promise<boolean> {
  const addr = address(name, opts);
  return name === "kafka" ? kafkaReachable([addr]) : cassandraReachable([addr]);
}

async function cassandraReleaseVersion(
  contactPoints: string[],
  options: { timeoutMs?: number } = {},
): Promise<string | null> {
  const client = new CassandraClient({
    contactPoints,
    localDataCenter: "datacenter1",
    protocolOptions: { port: DEFAULT_CASSANDRA_PORT },
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

/** Which servers `env` leaves on the local default (the ones `ensureServices` manages). */
export function localServices(env: Record<string, string | undefined>): ServiceName[] {
  const names: ServiceName[] = [];
  if (isLocalList(env["KAFKA_BROKERS"], LOCAL_KAFKA_BROKERS)) names.push("kafka");
  if (isLocalList(env["CASSANDRA_CONTACT_POINTS"], LOCAL_CASSANDRA_CONTACT_POINTS)) {
    names.push("cassandra");
  }
  return names;
}

function isLocalList(value: string | undefined, local: ReadonlySet<string>): boolean {
  const entries = (value ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  return entries.every((entry) => local.has(entry));
}

// ---------------------------------------------------------------------------------------------
// Layout, jars and config
// ---------------------------------------------------------------------------------------------

function servicePaths(name: ServiceName): ServicePaths {
  return pathsOf(name, name === "kafka" ? "server.log" : "system.log");
}

interface ServiceSpec {
  title: string;
  mainClass: string;
  address: string;
  readyTimeoutMs: number;
  ports: { port: number; purpose: string }[];
  templates: string[];
  javaArgs: string[];
}

function serviceSpec(name: ServiceName, opts: ResolvedOptions): ServiceSpec {
  const paths = servicePaths(name);
  const classpath = join(paths.libDir, "*");
  if (name === "kafka") {
    return {
      title: "Apache Kafka",
      mainClass: "kafka.Kafka",
      address: address(name, opts),
      readyTimeoutMs: KAFKA_READY_TIMEOUT_MS,
      ports: [
        { port: opts.kafkaPort, purpose: "Kafka client listener" },
        { port: opts.kafkaPort + 1, purpose: "Kafka KRaft controller listener" },
      ],
      templates: ["server.properties", "log4j.properties", "tools_log4j.properties", "jvm.options"],
      javaArgs: [
        `@${join(paths.confDir, "jvm.options")}`,
        "-cp",
        classpath,
        "kafka.Kafka",
        join(paths.confDir, "server.properties"),
      ],
    };
  }
  return {
    title: "Apache Cassandra",
    mainClass: "org.apache.cassandra.service.CassandraDaemon",
    address: address(name, opts),
    readyTimeoutMs: CASSANDRA_READY_TIMEOUT_MS,
    ports: [
      { port: opts.cassandraPort, purpose: "Cassandra CQL native port" },
      { port: CASSANDRA_STORAGE_PORT, purpose: "Cassandra storage (gossip) port" },
      { port: CASSANDRA_JMX_PORT, purpose: "Cassandra JMX port" },
    ],
    templates: ["cassandra.yaml", "logback.xml", "jvm17_server.options"],
    javaArgs: [
      `@${join(paths.confDir, "jvm17_server.options")}`,
      "-cp",
      classpath,
      "org.apache.cassandra.service.CassandraDaemon",
    ],
  };
}

interface JarMarker {
  version: string;
  pomSha256: string;
  fetchedAt: string;
}

/** Fetches the runtime jars with Maven unless the marker says this exact pom was fetched. */
async function ensureJars(name: ServiceName, log: (line: string) => void): Promise<string> {
  const paths = servicePaths(name);
  const { pomFile, version, pomSha256, marker } = await jarState(name);
  if (marker?.pomSha256 === pomSha256) return version;
  await requireMaven(name);
  const partial = `${paths.libDir}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(ignoreNotFound);
  const why = marker ? `pom changed (was ${marker.version})` : "first run";
  log(`${name}: fetching ${name} ${version} jars with Maven (${why}) into ${paths.libDir}`);
  const t0 = performance.now();
  const output = await new Deno.Command("mvn", {
    args: [
      "-q",
      "-B",
      "-Dstyle.color=never",
      "-f",
      pomFile,
      "dependency:copy-dependencies",
      "-DincludeScope=runtime",
      `-DoutputDirectory=${partial}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const tail = lastLines(decode(output.stdout) + decode(output.stderr), LOG_TAIL_LINES);
    throw new Error(
      `${name}: Maven could not fetch the jars (exit code ${output.code}). Fix: check that ` +
        `Maven Central is reachable (proxy settings in ~/.m2/settings.xml) and that ${pomFile} ` +
        `names versions that exist.\nLast lines of mvn output:\n${indent(tail)}`,
    );
  }
  const next: JarMarker = { version, pomSha256, fetchedAt: new Date().toISOString() };
  await Deno.writeTextFile(join(partial, ".fetched.json"), JSON.stringify(next, null, 2) + "\n");
  await Deno.remove(paths.libDir, { recursive: true }).catch(ignoreNotFound);
  await Deno.rename(partial, paths.libDir);
  let count = 0;
  for await (const entry of Deno.readDir(paths.libDir)) if (entry.name.endsWith(".jar")) count++;
  log(`${name}: fetched ${count} jars in ${seconds(performance.now() - t0)}`);
  return version;
}

/** The pom's version and hash, and the marker of the jars fetched last (null: none). */
async function jarState(name: ServiceName) {
  const paths = servicePaths(name);
  const pomFile = join(paths.sourceDir, "pom.xml");
  const pom = await Deno.readTextFile(pomFile);
  const property = name === "kafka" ? "kafka.version" : "cassandra.version";
  const version = new RegExp(`<${property}>([^<]+)</${property}>`).exec(pom)?.[1]?.trim();
  if (!version) throw new Error(`Cannot read <${property}> from ${pomFile}`);
  return {
    pomFile,
    version,
    pomSha256: await sha256Hex(pom),
    marker: await readMarker(paths.markerFile),
  };
}

async function requireMaven(name: ServiceName): Promise<void> {
  if (!(await commandExists("mvn"))) {
    throw new Error(
      `mvn not found, and the ${name} jars are not fetched yet: install Maven 3.8+ ` +
        "(apt-get install maven) or put it on PATH",
    );
  }
}

async function readMarker(file: string): Promise<JarMarker | null> {
  try {
    const value: unknown = JSON.parse(await Deno.readTextFile(file));
    if (
      typeof value === "object" && value !== null &&
      typeof (value as JarMarker).version === "string" &&
      typeof (value as JarMarker).pomSha256 === "string"
    ) {
      return value as JarMarker;
    }
    return null;
  } catch {
    return null;
  }
}

/** Renders local_services/<name>/<template> into .local/<name>/conf/, filling {{NAME}}s. */
async function renderConfig(name: ServiceName, opts: ResolvedOptions): Promise<void> {
  const paths = servicePaths(name);
  const spec = serviceSpec(name, opts);
  for (const dir of [paths.confDir, paths.logDir, paths.dataDir, paths.tmpDir]) {
    await Deno.mkdir(dir, { recursive: true });
  }
  const vars: Record<string, string> = {};
  if (name === "kafka") {
    Object.assign(vars, {
      KAFKA_PORT: String(opts.kafkaPort),
      CONTROLLER_PORT: String(opts.kafkaPort + 1),
      KAFKA_DATA_DIR: paths.dataDir,
      KAFKA_LOG_DIR: paths.logDir,
      KAFKA_CONF_DIR: paths.confDir,
      KAFKA_TMP_DIR: paths.tmpDir,
    });
  } else {
    for (const sub of ["commitlog", "saved_caches", "hints", "cdc_raw", "triggers"]) {
      await Deno.mkdir(join(paths.dir, sub), { recursive: true });
    }
    Object.assign(vars, {
      CQL_PORT: String(opts.cassandraPort),
      STORAGE_PORT: String(CASSANDRA_STORAGE_PORT),
      JMX_PORT: String(CASSANDRA_JMX_PORT),
      CASSANDRA_DIR: paths.dir,
      CASSANDRA_CONF_DIR: paths.confDir,
      JAMM_JAR: await findJar(paths.libDir, /^jamm-.*\.jar$/),
    });
  }
  for (const template of spec.templates) {
    const source = join(paths.sourceDir, template);
    const text = await Deno.readTextFile(source);
    const rendered = text.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, key: string) => {
      const value = vars[key];
      if (value === undefined) throw new Error(`Unknown placeholder {{${key}}} in ${source}`);
      return value;
    });
    await Deno.writeTextFile(join(paths.confDir, template), rendered);
  }
}

async function findJar(libDir: string, pattern: RegExp): Promise<string> {
  for await (const entry of Deno.readDir(libDir)) {
    if (pattern.test(entry.name)) return join(libDir, entry.name);
  }
  throw new Error(
    `No jar matching ${pattern} in ${libDir}: the jars look incomplete; delete ${libDir} and ` +
      "run up again",
  );
}

/** Formats Kafka's KRaft storage once (when log.dirs has no meta.properties yet). */
async function formatKafkaStorage(log: (line: string) => void): Promise<void> {
  const paths = servicePaths("kafka");
  if (existsSync(join(paths.dataDir, "meta.properties"))) return;
  const base = [
    "-Xmx256m",
    `-Dlog4j.configuration=file:${join(paths.confDir, "tools_log4j.properties")}`,
    "-cp",
    join(paths.libDir, "*"),
    "kafka.tools.StorageTool",
  ];
  const uuid = await runJava(base.concat("random-uuid"), "generate a Kafka cluster id");
  const clusterId = uuid.trim().split(/\s+/).pop() ?? "";
  if (!/^[A-Za-z0-9_-]{22}$/.test(clusterId)) {
    throw new Error(`kafka: StorageTool random-uuid printed no cluster id: ${uuid.trim()}`);
  }
  await runJava(
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

async function runJava(args: string[], what: string): Promise<string> {
  const output = await new Deno.Command("java", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    const tail = lastLines(decode(output.stderr) + decode(output.stdout), LOG_TAIL_LINES);
    throw new Error(`Cannot ${what} (java exit code ${output.code}):\n${indent(tail)}`);
  }
  return decode(output.stdout);
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/** Starts a server detached (processes.ts); its log ends before the start are the mark. */
async function spawnServer(
  name: ServiceName,
  javaArgs: string[],
): Promise<{ pid: number; mark: LogMark }> {
  const paths = servicePaths(name);
  const mark = {
    mainLog: await fileSize(paths.mainLog),
    stdoutLog: await fileSize(paths.stdoutLog),
  };
  const pid = await spawnDetached(name, paths, ["java", ...javaArgs]);
  if (pid !== null) return { pid, mark };
  throw await startFailure(name, `no pid file appeared at ${paths.pidFile} within 10 s`, mark);
}

/** What marks a process as this checkout's server: its main class and its conf dir. */
function signature(name: ServiceName): string[] {
  const mainClass = name === "kafka"
    ? "kafka.Kafka"
    : "org.apache.cassandra.service.CassandraDaemon";
  return [mainClass, servicePaths(name).confDir];
}

function ourRunningPid(name: ServiceName): Promise<number | null> {
  return runningPidIn(servicePaths(name).pidFile, signature(name));
}

function isOurProcess(name: ServiceName, pid: number): Promise<boolean> {
  return isProcessOf(pid, signature(name));
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

async function assertPortsFree(
  name: ServiceName,
  ports: { port: number; purpose: string }[],
): Promise<void> {
  for (const { port, purpose } of ports) {
    if (portFree("127.0.0.1", port)) continue;
    const holder = await portHolder(port);
    throw new Error(
      `${name} cannot start: port ${port} (${purpose}) on 127.0.0.1 is already taken by ` +
        `another process${holder ? ` (pid ${holder.pid}: ${holder.command})` : ""}. Fix: stop ` +
        'that process, or run "deno run -A local_services/cli.ts status" to see whether it is ' +
        "an older local server.",
    );
  }
}

function assertSamePort(name: ServiceName, opts: ResolvedOptions): void {
  const paths = servicePaths(name);
  const file = join(paths.confDir, name === "kafka" ? "server.properties" : "cassandra.yaml");
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return;
  }
  const match = name === "kafka"
    ? /^listeners=PLAINTEXT:\/\/127\.0\.0\.1:(\d+)/m.exec(text)
    : /^native_transport_port:\s*(\d+)/m.exec(text);
  const wanted = name === "kafka" ? opts.kafkaPort : opts.cassandraPort;
  if (match && Number(match[1]) !== wanted) {
    throw new Error(
      `${name} from this checkout is already running on port ${match[1]}, not ${wanted}: ` +
        `stop it first ("deno run -A local_services/cli.ts down")`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Failure reports
// ---------------------------------------------------------------------------------------------

/** Byte offsets of a server's logs when it was started: failure reports show only what follows. */
interface LogMark {
  mainLog: number;
  stdoutLog: number;
}

/** An Error naming the server, what happened, the likely cause and fix, and the last log lines. */
async function startFailure(name: ServiceName, what: string, mark: LogMark): Promise<Error> {
  const paths = servicePaths(name);
  const main = readableLines(await tailFile(paths.mainLog, 200, mark.mainLog));
  const stdout = readableLines(await tailFile(paths.stdoutLog, 200, mark.stdoutLog));
  const { cause, fix } = diagnose(name, [...main, ...stdout].join("\n"));
  main.splice(0, Math.max(0, main.length - LOG_TAIL_LINES));
  stdout.splice(0, Math.max(0, stdout.length - LOG_TAIL_LINES));
  const sections = [
    `${name} did not start: ${what}.`,
    `Cause: ${cause}`,
    `Fix: ${fix}`,
  ];
  if (main.length > 0) sections.push(`Last lines of ${paths.mainLog}:\n${indent(main.join("\n"))}`);
  if (stdout.length > 0) {
    sections.push(`Last lines of ${paths.stdoutLog}:\n${indent(stdout.join("\n"))}`);
  }
  if (main.length === 0 && stdout.length === 0) sections.push("(no log lines were written)");
  return new Error(sections.join("\n"));
}

/** Log lines worth showing a person: no start markers, no classpath dumps, no endless lines. */
function readableLines(lines: string[]): string[] {
  return lines
    .filter((line) => !line.startsWith("====") && !/Classpath:|JVM Arguments:/.test(line))
    .map((line) => line.length > 400 ? `${line.slice(0, 400)}...` : line);
}

/** Known failure patterns in a server's log, with the fix a person should apply. */
function diagnose(name: ServiceName, logText: string): { cause: string; fix: string } {
  const paths = servicePaths(name);
  const rules: { pattern: RegExp; cause: string; fix: string }[] = [
    {
      pattern: /Address already in use|Failed to bind|BindException|Unable to bind/i,
      cause: "a port it needs is already taken by another process",
      fix: 'find the process with "ss -ltnp" and stop it, then run up again',
    },
    {
      pattern: /Could not reserve enough space|java\.lang\.OutOfMemoryError|Cannot allocate memory/,
      cause: "not enough memory for the JVM heap",
      fix: `free memory, or lower -Xmx in local_services/${name}/` +
        (name === "kafka" ? "jvm.options" : "jvm17_server.options"),
    },
    {
      pattern: /UnsupportedClassVersionError/,
      cause: "java is too old for these jars",
      fix: "install OpenJDK 17 and put it first on PATH",
    },
    {
      pattern: /Unrecognized VM option|Unrecognized option|Could not create the Java Virtual/,
      cause: "the JVM rejected an option",
      fix: "use OpenJDK 17 (java -version), or fix the option named above in the jvm options file",
    },
    {
      pattern: /jnidispatch|UnsatisfiedLinkError|JNA not found|native library/i,
      cause: "JNA could not load its native library",
      fix: `make sure ${paths.tmpDir} is on a filesystem that allows executing files`,
    },
    {
      pattern: /No space left on device/i,
      cause: "the disk is full",
      fix: `free disk space (data is in ${paths.dir})`,
    },
    {
      pattern: /ClassNotFoundException|NoClassDefFoundError|Error opening zip file|ZipException/,
      cause: "the jars are missing or incomplete",
      fix: `delete ${paths.libDir} and run up again to refetch them`,
    },
    {
      pattern: /Invalid cluster\.id|Mismatched cluster|meta\.properties|is not formatted/i,
      cause: "Kafka's storage is missing, unformatted or from another cluster",
      fix: `delete ${paths.dataDir} (this loses local topics) and run up again`,
    },
    {
      pattern: /CommitLogReplayException|Could not read commit log descriptor|CorruptSSTable/i,
      cause: "Cassandra found damaged commit log or sstable files",
      fix: `delete ${paths.dir}/commitlog (recent writes are lost), or all of ${paths.dir} ` +
        "except lib/, and run up again",
    },
    {
      pattern:
        /ConfigurationException|Invalid yaml|Exception encountered during startup|Fatal error|Exiting Kafka/i,
      cause: "the server rejected its configuration or failed during startup (see the log)",
      fix: `read the log lines below; the rendered config is in ${paths.confDir}`,
    },
  ];
  for (const rule of rules) {
    if (rule.pattern.test(logText)) return { cause: rule.cause, fix: rule.fix };
  }
  return {
    cause: "the log shows no error; the process may have been killed from outside " +
      "(kill -9, or the kernel's OOM killer: check dmesg)",
    fix: `read ${paths.mainLog} and ${paths.stdoutLog}, then run up again`,
  };
}

/** The last `n` lines of `file`, reading at most its last 64 KiB and nothing before `from`. */
async function tailFile(file: string, n: number, from = 0): Promise<string[]> {
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(file, { read: true });
  } catch {
    return [];
  }
  try {
    const size = (await handle.stat()).size;
    const floor = from <= size ? from : 0; // a smaller file was rotated: read it all
    const start = Math.max(floor, size - 64 * 1024);
    await handle.seek(start, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size - start);
    let read = 0;
    while (read < buffer.length) {
      const count = await handle.read(buffer.subarray(read));
      if (count === null) break;
      read += count;
    }
    const lines = decode(buffer.subarray(0, read)).split("\n");
    if (start > floor) lines.shift(); // partial first line
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.slice(-n);
  } finally {
    handle.close();
  }
}

/** Last `n` lines of a service's main log and stdout log, for `cli.ts logs`. */
export async function serviceLogTail(
  name: ServiceName,
  lines = 50,
): Promise<{ file: string; lines: string[] }[]> {
  assertServiceName(name);
  const paths = servicePaths(name);
  const result = [];
  for (const file of [paths.mainLog, paths.stdoutLog]) {
    if (existsSync(file)) result.push({ file, lines: await tailFile(file, lines) });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

type SerialQueue = <T>(task: () => Promise<T>) => Promise<T>;

/** Runs tasks one at a time (Maven's local repository is not safe for parallel writers). */
function createSerialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task);
    tail = run.catch(() => {});
    return run;
  };
}

function assertServiceName(name: string): asserts name is ServiceName {
  if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
    throw new TypeError(`Unknown service ${JSON.stringify(name)}: expected kafka or cassandra`);
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
