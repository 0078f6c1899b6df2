/**
 * `deno task start`: the whole pipeline in one command.
 *
 * 1. Reads the config (`.env` and the environment) and checks that the ports it will listen on
 *    (STATUS_PORT, and SIMULATOR_PORT without a key) are free, before anything starts.
 * 2. On the local defaults, starts Kafka and Cassandra when they are not running (and remembers
 *    that it did, to stop them again at the end); creates the topics and applies the schema.
 * 3. Without FINNHUB_API_KEY runs the bundled simulator and says SIMULATED DATA; with a key the
 *    producer reads Finnhub.
 * 4. Starts the status endpoint, the bronze, silver and gold stages and the producer, each as its
 *    own process (the same mains as `deno task status|processor --stage X|producer`), and waits
 *    until `/readyz` says every worker reports.
 * 5. Shows a live view (terminal) or a summary line every 10 s (not a terminal).
 * 6. Ctrl-C or SIGTERM stops in order: the producer (it flushes to Kafka), the stages (each
 *    finishes its batch and commits), the status endpoint and simulator, then the local servers
 *    only if this run started them. A second Ctrl-C (a second or more after the first: a
 *    terminal delivers one Ctrl-C more than once) kills everything at once.
 *
 * A child that dies before the pipeline is ready fails the start: everything is stopped and its
 * last lines are shown. Once running, a child that dies is reported and restarted with backoff:
 * the stages resume from their committed offsets and the producer reconnects, so a transient
 * crash (Cassandra briefly away, an out-of-memory kill) heals without losing or duplicating data,
 * whereas stopping everything would turn it into an outage. The restarts follow the supervisors'
 * policy (`shared/process/restart_policy.ts`: 1 s, doubling while a child keeps dying within a
 * minute, back to 1 s after a minute's run); a sixth death within 5 minutes is not transient:
 * then everything stops, exit 1.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type cassandra from "cassandra-driver";
import {
  cassandraReachable,
  ensureServices,
  kafkaReachable,
  localServices,
  type ServiceName,
  stopService,
} from "../local_services/services.ts";
import { createCassandraClient } from "../shared/cassandra.ts";
import { provisionSchema, provisionTopics } from "../shared/provision.ts";
import {
  type Config,
  CONFIG_VARIABLES,
  loadConfig,
  secretEnv,
  secretsOf,
} from "../shared/config.ts";
import { hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { delay } from "../shared/delay.ts";
import { describeError } from "../shared/log.ts";
import { portFree, portHolder } from "../shared/ports.ts";
import { redact } from "../shared/secret.ts";
import { createSignalGate } from "../shared/shutdown.ts";
import { describeWindow, RESTART_POLICY } from "../shared/process/restart_policy.ts";
import { roleEnv, type RoleName, roleProcess } from "../shared/process/role.ts";
import { supervise as superviseProcess } from "../shared/process/supervise.ts";
import {
  type ProcessExit,
  type ProcessSpec,
  type RunningProcess,
  spawnProcess,
} from "../shared/process/spawn.ts";
import { type NeededPort, portTakenMessage } from "./ports.ts";
import {
  type CandleView,
  type ChildView,
  type MetricTotals,
  parseMetricTotals,
  readyBanner,
  renderView,
  type StatusJson,
  summaryLine,
  type ViewState,
} from "./view.ts";
import { STAGES } from "../shared/topology.ts";

const USAGE = `Usage: deno task start [--plain]

Starts the whole pipeline: local Kafka and Cassandra when needed, topics and schema, the
simulator (without FINNHUB_API_KEY) or Finnhub, the producer, the bronze, silver and gold stages
and the status endpoint. Ctrl-C stops everything it started, in order.

Options:
  --plain      Plain log lines even on a terminal (a summary every 10 s instead of the live view).
  -h, --help   This text.

Configuration: .env and the environment (see .env.example).`;

const READY_TIMEOUT_MS = 180_000;
const SIMULATOR_TIMEOUT_MS = 30_000;
const PLAIN_SUMMARY_MS = 10_000;
const VIEW_REFRESH_MS = 1_000;
const CANDLE_REFRESH_MS = 2_000;
const FETCH_TIMEOUT_MS = 2_000;

/** kafkajs warnings every worker prints once at start; not problems. */
const KNOWN_NOISE =
  /KafkaJS v2\.0\.0 switched default partitioner|Limiting retries for the idempotent producer/;

const DEFAULT_FINNHUB_URL = CONFIG_VARIABLES.find((v) => v.name === "FINNHUB_WS_URL")!.default;

/** Stop order: each group stops only after the one before it exited. */
const STOP_ORDER: readonly (readonly string[])[] = [
  ["producer"],
  ["bronze", "silver", "gold"],
  ["status", "simulator"],
];
const STOP_NOTES: Readonly<Record<string, string>> = {
  producer: "flushing accepted trades to Kafka",
  bronze: "finishing its batch, committing offsets",
  silver: "finishing its batch, committing offsets",
  gold: "flushing open candles, committing offsets",
  status: "",
  simulator: "",
};
const STOP_GRACE_MS: Readonly<Record<string, number>> = {
  producer: 30_000,
  bronze: 60_000,
  silver: 60_000,
  gold: 60_000,
  status: 10_000,
  simulator: 10_000,
};

function modulePath(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

/** `127.0.0.1` for a wildcard bind address, brackets for IPv6. */
function displayHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

function describeExit(exit: ProcessExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

interface Entry {
  readonly spec: ProcessSpec;
  /** The current run; `null` before the first. */
  process: RunningProcess | null;
  state: ChildView["state"];
  restarts: number;
  loop: Promise<void>;
}

/** The pid of the entry's process while it runs. */
function pidOf(entry: Entry): number | null {
  return entry.process && !entry.process.exit ? entry.process.pid : null;
}

/** The last lines of the entry's latest run. */
function tailOf(entry: Entry): readonly string[] {
  return entry.process?.tail() ?? [];
}

/** Where the output goes: the live view (terminal) or plain lines. */
interface Output {
  readonly tty: boolean;
  /** A line of our own (stdout). */
  say(line: string): void;
  /** A problem (stderr). */
  warn(line: string): void;
}

function createOutput(tty: boolean, secrets: Config["finnhub"]["apiKey"][]): Output {
  // A closed terminal (SIGHUP) must not break the ordered stop: write errors are dropped.
  const write = (stream: typeof Deno.stdout, line: string) =>
    safeWrite(stream, redact(`start: ${line}`, secrets) + "\n");
  return {
    tty,
    say: (line) => write(Deno.stdout, line),
    warn: (line) => write(Deno.stderr, line),
  };
}

async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: { plain: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`start: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  hideKafkajsTimeoutWarning();
  const env = Deno.env.toObject();
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    console.error(
      `start: cannot start: ${(error as Error).message} (fix it in .env or the environment)`,
    );
    return 1;
  }
  const secrets = secretsOf(config);
  const out = createOutput(Deno.stdout.isTerminal() && !flags.plain, secrets);
  const t0 = performance.now();
  const startedAt = Date.now();

  // -- The feed ---------------------------------------------------------------------------------
  const simulated = !config.finnhub.apiKey.isSet && config.finnhub.url === DEFAULT_FINNHUB_URL;
  const feedOrigin = new URL(config.finnhub.url).origin;
  const feed = simulated
    ? "SIMULATED DATA (no FINNHUB_API_KEY)"
    : config.finnhub.apiKey.isSet
    ? `LIVE DATA from ${
      feedOrigin === new URL(DEFAULT_FINNHUB_URL).origin ? "Finnhub" : feedOrigin
    }`
    : `data from FINNHUB_WS_URL ${feedOrigin} (no FINNHUB_API_KEY)`;

  // -- Ports, before anything starts ------------------------------------------------------------
  if (config.status.port === 0) {
    out.warn(
      "cannot start: STATUS_PORT=0 picks a random port, and start must know where the status " +
        "endpoint listens: set STATUS_PORT to a free port (default 8080) in .env",
    );
    return 1;
  }
  const needed: NeededPort[] = [{
    host: config.status.host,
    port: config.status.port,
    variable: "STATUS_PORT",
    purpose: "the status endpoint",
  }];
  if (simulated) {
    needed.push({
      host: "127.0.0.1",
      port: config.simulator.port,
      variable: "SIMULATOR_PORT",
      purpose: "the simulator",
    });
  }
  for (const port of needed) {
    if (!portFree(port.host, port.port)) {
      out.warn(`cannot start: ${portTakenMessage(port, await portHolder(port.port))}`);
      out.warn("nothing was started");
      return 1;
    }
  }

  // -- Signals ----------------------------------------------------------------------------------
  const stopController = new AbortController();
  const stopState: { reason: StopReason | null } = { reason: null };
  const entries = new Map<string, Entry>();
  let viewActive = false;
  function requestStop(reason: StopReason) {
    if (stopState.reason) return;
    stopState.reason = reason;
    stopController.abort();
  }
  const signalGate = createSignalGate();
  function onSignal(name: string) {
    return () => {
      const decision = signalGate();
      if (decision === "repeat") return;
      if (decision === "force" || stopState.reason) {
        leaveView();
        out.warn(`second ${name}: killing every process now (no flush, no commit)`);
        for (const entry of entries.values()) entry.process?.kill();
        Deno.exit(130);
      }
      requestStop({ kind: "signal", name });
    };
  }
  const signalHandlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((name) => {
    const handler = onSignal(name);
    Deno.addSignalListener(name, handler);
    return { name, handler };
  });

  // -- The view's terminal handling -------------------------------------------------------------
  const encoder = new TextEncoder();
  function enterView() {
    if (!out.tty || viewActive) return;
    viewActive = true;
    safeWrite(Deno.stdout, "\x1b[?1049h\x1b[?25l");
  }
  function leaveView() {
    if (!viewActive) return;
    viewActive = false;
    safeWrite(Deno.stdout, "\x1b[?25h\x1b[?1049l");
  }

  // -- Child output -----------------------------------------------------------------------------
  const logDir = modulePath(".local/start/logs");
  const logFiles = new Map<string, Deno.FsFile>();
  const problems: string[] = [];
  function notice(problem: string) {
    problems.push(problem);
    if (problems.length > 20) problems.shift();
  }
  function onChildLine(name: string, line: string) {
    try {
      logFiles.get(name)?.writeSync(encoder.encode(line + "\n"));
    } catch {
      // Disk full or file gone: the line still reaches the view or stderr.
    }
    const level = KNOWN_NOISE.test(line)
      ? undefined
      : / (ERROR|WARN) /.exec(line.slice(0, 40))?.[1];
    if (level) notice(`${line.slice(11, 19)} ${line.slice(25)}`.slice(0, 300));
    if (!out.tty) {
      safeWrite(Deno.stderr, `[${name}] ${line}\n`);
    } else if (!viewActive && level === "ERROR") {
      safeWrite(Deno.stderr, `[${name}] ${line}\n`);
    }
  }

  // -- Supervision ------------------------------------------------------------------------------
  let ready = false;
  function addChild(role: RoleName, args: string[] = [], overrides = {}): Entry {
    const name = role;
    try {
      Deno.mkdirSync(logDir, { recursive: true });
      logFiles.set(
        name,
        Deno.openSync(`${logDir}/${name}.log`, { write: true, create: true, truncate: true }),
      );
    } catch {
      // No log file: the lines still reach the view's error list or stderr.
    }
    const entry: Entry = {
      spec: roleProcess(role, {
        env: roleEnv({
          inherit: env,
          config,
          secrets: secretEnv(config),
          supervised: true,
          overrides,
        }),
        args,
      }),
      process: null,
      state: "starting",
      restarts: 0,
      loop: Promise.resolve(),
    };
    entries.set(name, entry);
    entry.loop = supervise(entry);
    return entry;
  }

  async function supervise(entry: Entry): Promise<void> {
    const { name } = entry.spec;
    const end = await superviseProcess({
      spawn: () =>
        spawnProcess(entry.spec, { newSession: true, onLine: (line) => onChildLine(name, line) }),
      signal: stopController.signal,
      policy: RESTART_POLICY,
      onStart: (process) => {
        entry.process = process;
        entry.state = ready ? "running" : "starting";
      },
      onDeath: (exit, decision) => {
        const what = `${name} exited unexpectedly (${describeExit(exit)})`;
        const lastLines = `Its last lines:\n${
          indent(tailOf(entry))
        }\n(full log: ${logDir}/${name}.log)`;
        if (!ready || decision.action === "give-up") {
          entry.state = "failed";
          requestStop({
            kind: "failure",
            message: ready
              ? `${what}, the ${decision.deaths}th time in ${
                describeWindow(RESTART_POLICY.deathWindowMs)
              }: not a transient failure, stopping everything. ${lastLines}`
              : `${what} while starting. ${lastLines}`,
          });
          return "fail";
        }
        entry.restarts = decision.restarts;
        entry.state = "restarting";
        const message = `${what}; restarting it in ${
          seconds(decision.delayMs)
        } (restart ${entry.restarts})`;
        notice(`${new Date().toISOString().slice(11, 19)} ${message}`);
        if (!viewActive) out.warn(message);
      },
    });
    if (end.outcome === "stopped") entry.state = "stopped";
  }

  // -- Startup ----------------------------------------------------------------------------------
  const startedServices: ServiceName[] = [];
  const local = localServices(env);
  let session: cassandra.Client | undefined;
  let exitCode = 0;
  try {
    out.say(
      simulated
        ? "FINNHUB_API_KEY is not set: running the bundled simulator. SIMULATED DATA, not market " +
          "prices (put FINNHUB_API_KEY=<key> in .env for live Finnhub trades)."
        : `feed: ${feed}`,
    );
    if (local.length > 0) {
      const before = await Promise.all(
        local.map((name) =>
          name === "kafka"
            ? kafkaReachable([...config.kafka.brokers])
            : cassandraReachable([...config.cassandra.contactPoints])
        ),
      );
      const missing = local.filter((_, i) => !before[i]);
      if (missing.length === 0) {
        out.say(
          local.length > 1
            ? `local ${local.join(" and ")} already running: using them (they stay running)`
            : `local ${local[0]} already running: using it (it stays running)`,
        );
      } else {
        out.say(
          `starting local ${missing.join(" and ")} (first time: fetching jars with Maven, ` +
            "about a minute)",
        );
        const t = performance.now();
        try {
          await ensureServices(env, {
            log: (line) => out.say(line),
            signal: stopController.signal,
          });
        } finally {
          // Whatever answers now and did not before, this run started.
          for (const name of missing) {
            const up = name === "kafka"
              ? await kafkaReachable([...config.kafka.brokers])
              : await cassandraReachable([...config.cassandra.contactPoints]);
            if (up) startedServices.push(name);
          }
        }
        out.say(`local ${missing.join(" and ")} ready in ${seconds(performance.now() - t)}`);
      }
    }
    throwIfStopping();
    await prepareTopicsAndSchema(config, out);
    throwIfStopping();

    if (simulated) {
      const simulator = addChild("simulator", [
        "--port",
        String(config.simulator.port),
        "--host",
        "127.0.0.1",
      ]);
      await waitSimulator(config.simulator.port, simulator);
      out.say(
        `simulator (pid ${pidOf(simulator)}) on ws://127.0.0.1:${config.simulator.port}/`,
      );
    }
    throwIfStopping();
    addChild("status");
    // The same heap bounds as `deno task processor|producer` and compose give them.
    for (const stage of STAGES) addChild(stage);
    addChild(
      "producer",
      [],
      simulated ? { FINNHUB_WS_URL: `ws://127.0.0.1:${config.simulator.port}/` } : {},
    );
    out.say(
      `started ${
        [...entries.keys()].map((n) => `${n} (pid ${pidOf(entries.get(n)!)})`)
          .join(", ")
      }; waiting until every worker reports (status /readyz)`,
    );
    const statusBase = `http://${displayHost(config.status.host)}:${config.status.port}`;
    const feedUrl = simulated ? `ws://127.0.0.1:${config.simulator.port}/` : config.finnhub.url;
    await waitReady(statusBase, config, out, feedUrl);
    throwIfStopping();
    ready = true;
    for (const entry of entries.values()) if (entry.state === "starting") entry.state = "running";

    const urls = [
      { label: "status", url: `${statusBase}/status` },
      { label: "metrics", url: `${statusBase}/metrics` },
    ];
    if (await answers(`${statusBase}/`, config)) {
      urls.unshift({ label: "market", url: `${statusBase}/` });
    }
    if (config.grafana.url) urls.push({ label: "grafana", url: config.grafana.url });
    for (const line of readyBanner(feed, urls, performance.now() - t0)) out.say(line);
    if (!out.tty) out.say(`process logs: ${logDir}/`);

    // -- Running ------------------------------------------------------------------------------
    session = createCassandraClient(config.cassandra, {
      applicationName: "market-start",
      keyspace: config.cassandra.keyspace,
    });
    const view = createViewSource(config, statusBase, session);
    enterView();
    let lastSummary = 0;
    while (!stopState.reason) {
      const state: ViewState = {
        ...(await view.read()),
        now: Date.now(),
        startedAt,
        feed,
        urls,
        symbols: config.finnhub.symbols,
        children: [...entries.values()].map((e) => ({
          name: e.spec.name,
          pid: pidOf(e),
          state: e.state,
          restarts: e.restarts,
        })),
        problems,
        groupPrefix: config.kafka.groupPrefix,
        logDir: out.tty ? logDir : null,
      };
      if (stopState.reason) break;
      if (viewActive) {
        const { columns, rows } = consoleSize();
        const lines = renderView(state, columns).slice(0, rows - 1);
        safeWrite(
          Deno.stdout,
          `\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`,
        );
      } else if (Date.now() - lastSummary >= PLAIN_SUMMARY_MS) {
        lastSummary = Date.now();
        out.say(`${new Date().toISOString().slice(11, 19)} ${summaryLine(state)}`);
      }
      await delay(viewActive ? VIEW_REFRESH_MS : 1_000, stopController.signal);
    }
  } catch (error) {
    if (!(error instanceof Stopping)) {
      requestStop({ kind: "failure", message: describeError(error) });
    }
  }

  // -- Stopping ---------------------------------------------------------------------------------
  leaveView();
  const reason = stopState.reason;
  if (reason?.kind === "failure") {
    out.warn(`FAILED: ${reason.message}`);
    exitCode = 1;
  }
  out.say(
    reason?.kind === "signal" ? `${reason.name} received: stopping in order` : "stopping in order",
  );
  const clean = await stopAll();
  await session?.shutdown().catch(() => {});
  for (const file of logFiles.values()) file.close();
  for (const { name, handler } of signalHandlers) Deno.removeSignalListener(name, handler);
  if (exitCode === 0 && clean) {
    out.say(`stopped cleanly in ${seconds(performance.now() - stopStartedAt)}`);
    return 0;
  }
  out.warn(
    clean
      ? "stopped; nothing is left running"
      : "stopped, but not every process exited cleanly (see above); nothing is left running",
  );
  return 1;

  // -- Helpers closing over the run ---------------------------------------------------------

  function throwIfStopping() {
    if (stopState.reason) throw new Stopping();
  }

  async function waitSimulator(port: number, entry: Entry): Promise<void> {
    const deadline = Date.now() + SIMULATOR_TIMEOUT_MS;
    while (Date.now() < deadline) {
      throwIfStopping();
      if (await answers(`http://127.0.0.1:${port}/control/stats`, null)) return;
      await delay(200, stopController.signal);
    }
    throw new Error(
      `the simulator did not answer on 127.0.0.1:${port} within ${SIMULATOR_TIMEOUT_MS / 1000} s` +
        `; its last lines:\n${indent(tailOf(entry))}`,
    );
  }

  async function waitReady(
    base: string,
    config: Config,
    out: Output,
    feedUrl: string,
  ): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let reasons: string[] = ["the status endpoint did not answer"];
    let nextNote = Date.now() + 20_000;
    while (Date.now() < deadline) {
      throwIfStopping();
      try {
        const response = await fetch(`${base}/readyz`, {
          headers: authHeaders(config),
          signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        });
        const body = await response.json();
        if (response.ok && body?.ready === true) {
          // Workers report from their start; the producer must also hold the feed connection.
          const metrics = await fetch(`${base}/metrics`, {
            headers: authHeaders(config),
            signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
          });
          if (metrics.ok && parseMetricTotals(await metrics.text()).feedConnected > 0) return;
          reasons = [`the producer is not connected to ${new URL(feedUrl).origin} yet`];
        } else {
          reasons = Array.isArray(body?.reasons) ? body.reasons : [`HTTP ${response.status}`];
        }
      } catch (error) {
        reasons = [`the status endpoint did not answer (${describeError(error)})`];
      }
      if (Date.now() > nextNote) {
        out.say(`still waiting for readiness: ${reasons.join("; ")}`);
        nextNote = Date.now() + 20_000;
      }
      await delay(500, stopController.signal);
    }
    const quiet = [...entries.values()].map((e) =>
      `${e.spec.name}:\n${indent(tailOf(e).slice(-8))}`
    ).join("\n");
    throw new Error(
      `the pipeline did not become ready within ${READY_TIMEOUT_MS / 1000} s: ${
        reasons.join("; ")
      }. Last lines of each process:\n${quiet}`,
    );
  }

  async function stopAll(): Promise<boolean> {
    stopStartedAt = performance.now();
    let clean = true;
    for (const group of STOP_ORDER) {
      await Promise.all(group.map(async (name) => {
        const entry = entries.get(name);
        if (!entry) return;
        if (pidOf(entry) === null) {
          await entry.loop;
          if (entry.state === "failed") clean = false;
          return;
        }
        entry.state = "stopping";
        const note = STOP_NOTES[name] ? ` (${STOP_NOTES[name]})` : "";
        out.say(`stopping ${name}${note}...`);
        const t = performance.now();
        const exit = await entry.process!.stop(STOP_GRACE_MS[name] ?? 10_000);
        await entry.loop;
        entry.state = "stopped";
        if (exit && (exit.code !== 0 || exit.signal)) {
          clean = false;
          out.warn(
            `${name} stopped with ${describeExit(exit)} after ${seconds(performance.now() - t)}`,
          );
        } else {
          out.say(`${name} stopped in ${seconds(performance.now() - t)}`);
        }
      }));
    }
    if (startedServices.length > 0) {
      for (const name of [...startedServices].reverse()) {
        out.say(`stopping local ${name} (this run started it)...`);
        try {
          await stopService(name, { log: (line) => out.say(line) });
        } catch (error) {
          clean = false;
          out.warn(`could not stop ${name}: ${describeError(error)}`);
        }
      }
    } else if (local.length > 0 && ready) {
      out.say(
        local.length > 1
          ? `local ${local.join(" and ")} left running (they were running before start)`
          : `local ${local[0]} left running (it was running before start)`,
      );
    }
    return clean;
  }
}

let stopStartedAt = performance.now();

/** Why the run stops: a signal, or a failure with the message to show. */
type StopReason = { kind: "signal"; name: string } | { kind: "failure"; message: string };

/** Thrown inside the start-up sequence when a stop was requested; not an error. */
class Stopping extends Error {
  constructor() {
    super("stopping");
  }
}

const safeEncoder = new TextEncoder();

/** Writes to a terminal or pipe that may be gone (closed terminal): errors are dropped. */
function safeWrite(stream: typeof Deno.stdout, text: string): void {
  try {
    let bytes = safeEncoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
  } catch {
    // Nowhere to write to.
  }
}

function indent(lines: readonly string[]): string {
  return lines.length === 0 ? "    (no output)" : lines.map((l) => `    ${l}`).join("\n");
}

function consoleSize(): { columns: number; rows: number } {
  try {
    const { columns, rows } = Deno.consoleSize();
    return { columns: columns >= 20 ? columns : 100, rows: rows >= 10 ? rows : 40 };
  } catch {
    return { columns: 100, rows: 40 };
  }
}

function authHeaders(config: Config | null): Record<string, string> {
  return config?.status.token.isSet
    ? { authorization: `Bearer ${config.status.token.reveal()}` }
    : {};
}

/** True when `url` answers 2xx within the fetch timeout. */
async function answers(url: string, config: Config | null): Promise<boolean> {
  try {
    const response = await fetch(url, {
      headers: authHeaders(config),
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** Creates every topic and applies the schema (both idempotent), local or external servers. */
async function prepareTopicsAndSchema(config: Config, out: Output): Promise<void> {
  const outcomes = await provisionTopics(config);
  const created = outcomes.filter((o) => o.action === "created").map((o) => o.topic);
  out.say(
    created.length > 0
      ? `created topics ${created.join(", ")}`
      : `topics present (${outcomes.length})`,
  );
  await provisionSchema(config);
  out.say(`schema applied to keyspace ${config.cassandra.keyspace}`);
}

/** Reads what the view shows: `/status`, `/metrics` and the latest 5m candle per symbol. */
function createViewSource(config: Config, base: string, session: cassandra.Client) {
  let candles: CandleView[] = [];
  let candlesAt = 0;
  let candlesInFlight = false;
  const query = `SELECT window_start, open, high, low, close, volume, trade_count, is_final
    FROM ${config.cassandra.keyspace}.trades_gold_5m WHERE symbol = ? AND bucket = ? LIMIT 1`;

  async function latestCandle(symbol: string): Promise<CandleView | null> {
    const now = new Date();
    const months = [Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)];
    if (now.getUTCDate() === 1) {
      months.push(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
    }
    for (const month of months) {
      const bucket = new Date(month).toISOString().slice(0, 10);
      const result = await session.execute(query, [symbol, bucket], { prepare: true });
      const row = result.first();
      if (!row) continue;
      return {
        symbol,
        windowStart: (row.get("window_start") as Date).getTime(),
        open: row.get("open") as number,
        high: row.get("high") as number,
        low: row.get("low") as number,
        close: row.get("close") as number,
        volume: String(row.get("volume")),
        tradeCount: Number(row.get("trade_count")),
        isFinal: row.get("is_final") === true,
      };
    }
    return null;
  }

  return {
    async read(): Promise<
      Pick<ViewState, "status" | "statusError" | "totals" | "candles">
    > {
      const headers = authHeaders(config);
      const signal = () => AbortSignal.timeout(FETCH_TIMEOUT_MS);
      let status: StatusJson | null = null;
      let statusError: string | null = null;
      let totals: MetricTotals | null = null;
      const statusRead = (async () => {
        const response = await fetch(`${base}/status`, { headers, signal: signal() });
        if (!response.ok) throw new Error(`/status answered HTTP ${response.status}`);
        status = await response.json() as StatusJson;
      })().catch((error) => {
        statusError = describeError(error);
      });
      const metricsRead = (async () => {
        const response = await fetch(`${base}/metrics`, { headers, signal: signal() });
        if (!response.ok) {
          await response.body?.cancel();
          return;
        }
        totals = parseMetricTotals(await response.text());
      })().catch(() => {});
      // Candles refresh in the background: a slow Cassandra never stalls the view.
      if (!candlesInFlight && Date.now() - candlesAt >= CANDLE_REFRESH_MS) {
        candlesInFlight = true;
        (async () => {
          const found = await Promise.all(config.finnhub.symbols.map((s) => latestCandle(s)));
          candles = found.filter((c): c is CandleView => c !== null);
        })().catch(() => {}).finally(() => {
          candlesAt = Date.now();
          candlesInFlight = false;
        });
      }
      await Promise.all([statusRead, metricsRead]);
      return { status, statusError, totals, candles };
    },
  };
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    console.error(`start: ${describeError(error)}`);
    code = 1;
  }
  Deno.exit(code);
}
