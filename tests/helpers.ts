/**
 * Shared pieces of the integration tests: the real local services (started on demand by the
 * project's own scripts), a config on fresh topic and keyspace names per test (so fresh
 * registry subjects `<topic>-value` too) set up and dropped around a test, the stages run in
 * this process, codecs of the wire format over the real schema registry, and waiting for a
 * condition with a deadline instead of sleeping.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import { ensureServices } from "../local_services/services.ts";
import { runStageWorker } from "../processor/worker.ts";
import { createCassandraClient } from "../shared/cassandra.ts";
import { type Config, isolatedNames, loadConfig } from "../shared/config.ts";
import { delay } from "../shared/delay.ts";
import { createLogger, type Logger, silentLogger } from "../shared/log.ts";
import { hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { deprovision, provisionSchema, provisionTopics } from "../shared/provision.ts";
import { randomId } from "../shared/random.ts";
import {
  createSchemaRegistryClient,
  type SchemaRegistryClient,
} from "../shared/schema_registry.ts";
import { type StageName, TOPIC_SCHEMAS, type TopicKey } from "../shared/topology.ts";
import { createWireCodec, subjectOf, type WireCodec } from "../shared/wire.ts";

let servicesReady: Promise<void> | undefined;

/**
 * Brings the local Kafka, Cassandra and schema registry up once per test process (no-op when
 * reachable; a server the environment points elsewhere is left alone).
 */
export function services(): Promise<void> {
  if (!servicesReady) hideKafkajsTimeoutWarning();
  servicesReady ??= ensureServices(Deno.env.toObject());
  return servicesReady;
}

/**
 * A config whose topics, consumer groups and keyspace are fresh for this test, on the local
 * services (or those named by the environment).
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const env = Deno.env.toObject();
  return loadConfig({
    KAFKA_BROKERS: env["KAFKA_BROKERS"],
    CASSANDRA_CONTACT_POINTS: env["CASSANDRA_CONTACT_POINTS"],
    SCHEMA_REGISTRY_URL: env["SCHEMA_REGISTRY_URL"],
    SCHEMA_REGISTRY_USERNAME: env["SCHEMA_REGISTRY_USERNAME"],
    SCHEMA_REGISTRY_PASSWORD: env["SCHEMA_REGISTRY_PASSWORD"],
    ...isolatedNames("test", randomId()),
    KAFKA_PARTITIONS: "3",
    LOG_LEVEL: "warn",
    ...overrides,
  });
}

/** A free TCP port on 127.0.0.1 (free when asked: bind it right after). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * What a child process started with `clearEnv: true` needs from this one: `PATH` (default
 * `/usr/bin:/bin`), and `HOME`, `DENO_DIR`, `KAFKA_BROKERS`, `CASSANDRA_CONTACT_POINTS` and
 * `SCHEMA_REGISTRY_URL` when set (Deno's cache and the same services).
 */
export function childProcessEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  const out: Record<string, string> = { PATH: env["PATH"] ?? "/usr/bin:/bin" };
  for (
    const name of [
      "HOME",
      "DENO_DIR",
      "KAFKA_BROKERS",
      "CASSANDRA_CONTACT_POINTS",
      "SCHEMA_REGISTRY_URL",
    ]
  ) {
    if (env[name]) out[name] = env[name]!;
  }
  return out;
}

/**
 * The logger of a worker run in a test: silent unless TEST_LOG_LEVEL is set (debug, info, warn,
 * error); with `lines`, every line at debug level also goes there (printed too when
 * TEST_LOG_LEVEL is set).
 */
export function testLogger(name: string, lines?: string[]): Logger {
  const level = Deno.env.get("TEST_LOG_LEVEL") as "debug" | "info" | "warn" | "error" | undefined;
  if (lines) {
    return createLogger(name, {
      level: "debug",
      write: (line) => {
        lines.push(line);
        if (level) console.error(line);
      },
    });
  }
  return level ? createLogger(name, { level }) : silentLogger();
}

/** Creates the config's topics and applies the schema to its keyspace. */
export async function provision(config: Config): Promise<void> {
  await services();
  await provisionTopics(config);
  await provisionSchema(config);
}

/**
 * Runs `body` on a fresh config (`testConfig(overrides)`, its topics and schema provisioned)
 * and a Cassandra session into its keyspace; then closes the session and drops the topics,
 * keyspace and registry subjects, whatever happened.
 */
export async function withTestKeyspace(
  overrides: Record<string, string>,
  body: (config: Config, client: cassandra.Client) => Promise<void>,
): Promise<void> {
  const config = testConfig(overrides);
  await provision(config);
  const client = session(config);
  try {
    await body(config, client);
  } finally {
    await client.shutdown();
    await cleanup(config);
  }
}

/**
 * Starts `stage` in this process as `processor/main.ts --stage <stage>` runs it (logging through
 * {@linkcode testLogger}); `stop()` aborts it, waits until it stopped and throws what it failed
 * with.
 */
export function startStage(config: Config, stage: StageName): { stop(): Promise<void> } {
  const controller = new AbortController();
  const done = runStageWorker({
    config,
    stage,
    log: testLogger(stage),
    metrics: new MetricsRegistry(),
    signal: controller.signal,
  });
  done.catch(() => {}); // surfaced by stop()
  return {
    stop() {
      controller.abort();
      return done;
    },
  };
}

/**
 * Runs `body` on a fresh config (`testConfig(overrides)`, its topics and schema provisioned)
 * with `stages` running in this process ({@linkcode startStage}); then stops them, failing when
 * one of them failed, and drops the topics, keyspace and registry subjects, whatever happened.
 */
export async function withStages(
  overrides: Record<string, string>,
  stages: readonly StageName[],
  body: (config: Config) => Promise<void>,
): Promise<void> {
  const config = testConfig(overrides);
  await provision(config);
  const running = stages.map((stage) => startStage(config, stage));
  let stopped: PromiseSettledResult<void>[];
  try {
    await body(config);
  } finally {
    stopped = await Promise.allSettled(running.map((r) => r.stop()));
    await cleanup(config);
  }
  for (const result of stopped) {
    if (result.status === "rejected") throw result.reason;
  }
}

let registryClient: SchemaRegistryClient | undefined;
let readingWire: WireCodec | undefined;

/** The schema registry the tests use (SCHEMA_REGISTRY_URL, else the local one), one client. */
export function testRegistry(): SchemaRegistryClient {
  registryClient ??= createSchemaRegistryClient(testConfig().registry, { timeoutMs: 15_000 });
  return registryClient;
}

/**
 * A codec that reads every topic of every test (each writer schema id fetched once for the test
 * process). It registers nothing: it cannot encode.
 */
export function testWire(): WireCodec {
  readingWire ??= createWireCodec(testRegistry());
  return readingWire;
}

/** A codec with the schemas of the config's `topics` registered under `<topic>-value`. */
export async function writerWire(config: Config, topics: readonly TopicKey[]): Promise<WireCodec> {
  const wire = createWireCodec(testRegistry());
  await wire.register(
    Object.fromEntries(topics.map((key) => [TOPIC_SCHEMAS[key], config.kafka.topics[key]])),
  );
  return wire;
}

/** Drops the test keyspace, topics and registry subjects (best effort). */
export const cleanup: (config: Config) => Promise<void> = deprovision;

/** Deletes the registry subjects `<topic>-value` of `topics` for good (best effort). */
export async function deleteSubjects(topics: readonly string[]): Promise<void> {
  await Promise.all(
    topics.map((topic) =>
      testRegistry().deleteSubject(subjectOf(topic), { permanent: true }).catch(() => {})
    ),
  );
}

/** A Cassandra client into the config's keyspace; close it in `finally`. */
export function session(config: Config): cassandra.Client {
  return createCassandraClient(config.cassandra, { keyspace: config.cassandra.keyspace });
}

/**
 * Polls `check` until it returns a value other than `undefined`/`false`, or throws after
 * `timeoutMs` with `what` and the last value seen.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what} (last: ${String(last)})`);
    }
    await delay(options.intervalMs ?? 200);
  }
}

/** How a command ended: its exit code and its output as text. */
export interface CommandOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` to its end; its exit code and output. */
export async function runCommand(command: Deno.Command): Promise<CommandOutcome> {
  const output = await command.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `deno task smoke` (start/smoke.ts) as its own process with exactly `env`; its outcome. */
export function runSmoke(
  env: Record<string, string>,
  args: readonly string[],
): Promise<CommandOutcome> {
  return runCommand(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../start/smoke.ts", import.meta.url).pathname, ...args],
      env,
      clearEnv: true,
      stdin: "null",
    }),
  );
}
