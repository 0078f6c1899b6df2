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
import type cassandra from "cassandra-driver";
import { createCassandraClient } from "../shared/cassandra.ts";
import { type Config, CONFIG_VARIABLES, loadConfig, secretsOf } from "../shared/config.ts";
import { hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { describeError } from "../shared/log.ts";
import { portFree, portHolder } from "../shared/ports.ts";
import { provisionSchema, provisionTopics } from "../shared/provision.ts";
import { STAGES } from "../shared/topology.ts";
import { type Children, createChildren, LOG_DIR, pidOf } from "./children.ts";
import {
  type LocalServers,
  localServersOf,
  startLocalServers,
  stopLocalServers,
} from "./local_servers.ts";
import { showLiveView } from "./live_view.ts";
import { createOutput, createScreen, type Output, type Screen, seconds } from "./output.ts";
import { displayHost, type NeededPort, portTakenMessage } from "./ports.ts";
import { answers, waitReady, waitSimulator } from "./readiness.ts";
import { createStopControl, type StopControl, stopOnStartSignals, Stopping } from "./stop.ts";
import { readyBanner } from "./view.ts";

const USAGE = `Usage: deno task start [--plain]

Starts the whole pipeline: local Kafka and Cassandra when needed, topics and schema, the
simulator (without FINNHUB_API_KEY) or Finnhub, the producer, the bronze, silver and gold stages
and the status endpoint. Ctrl-C stops everything it started, in order.

Options:
  --plain      Plain log lines even on a terminal (a summary every 10 s instead of the live view).
  -h, --help   This text.

Configuration: .env and the environment (see .env.example).`;

const DEFAULT_FINNHUB_URL = CONFIG_VARIABLES.find((v) => v.name === "FINNHUB_WS_URL")!.default;

async function main(args: string[]): Promise<number> {
  const flags = parseFlags(args);
  if (typeof flags === "number") return flags;
  hideKafkajsTimeoutWarning();
  const env = Deno.env.toObject();
  const config = readConfig(env);
  if (!config) return 1;
  const out = createOutput(Deno.stdout.isTerminal() && !flags.plain, secretsOf(config));
  const t0 = performance.now();
  const feed = describeFeed(config);
  if (!(await portsFree(config, feed.simulated, out))) return 1;

  const stop = createStopControl();
  const screen = createScreen(out);
  const children = createChildren({ config, env, out, screen, stop });
  const stopSignals = stopOnStartSignals(stop, (name) => {
    screen.leave();
    out.warn(`second ${name}: killing every process now (no flush, no commit)`);
    children.killAll();
  });
  const run: Run = {
    config,
    env,
    out,
    t0,
    feed,
    stop,
    screen,
    children,
    servers: localServersOf(env),
    statusBase: `http://${displayHost(config.status.host)}:${config.status.port}`,
    ready: false,
    session: undefined,
  };
  try {
    await startAndShow(run);
  } catch (error) {
    if (!(error instanceof Stopping)) {
      stop.request({ kind: "failure", message: describeError(error) });
    }
  }
  const code = await stopInOrder(run);
  stopSignals();
  return code;
}

/** One run of start: what every step reads, and what they leave for the stop. */
interface Run {
  readonly config: Config;
  readonly env: Readonly<Record<string, string>>;
  readonly out: Output;
  /** When start began (`performance.now()`). */
  readonly t0: number;
  readonly feed: Feed;
  readonly stop: StopControl;
  readonly screen: Screen;
  readonly children: Children;
  readonly servers: LocalServers;
  /** The status endpoint's base URL. */
  readonly statusBase: string;
  /** Set once the pipeline was ready. */
  ready: boolean;
  /** The view's Cassandra session, once open. */
  session: cassandra.Client | undefined;
}

/** The steps up to a ready pipeline, then the view until a stop is requested. */
async function startAndShow(run: Run): Promise<void> {
  const { config, env, out, stop, children, feed } = run;
  const startedAt = Date.now();
  out.say(feed.line);
  await startLocalServers(run.servers, { config, env, out, signal: stop.signal });
  stop.throwIfStopping();
  await prepareTopicsAndSchema(config, out);
  stop.throwIfStopping();
  if (feed.simulated) await startSimulator(children, config, out, stop);
  stop.throwIfStopping();
  startWorkers(children, config, feed.simulated, out);
  const entries = children.entries.values();
  await waitReady(run.statusBase, { config, out, stop, feedUrl: feed.url, entries });
  stop.throwIfStopping();
  run.ready = true;
  children.markReady();
  const urls = await announceReady(run.statusBase, config, feed.label, out, run.t0);
  run.session = createCassandraClient(config.cassandra, {
    applicationName: "market-start",
    keyspace: config.cassandra.keyspace,
  });
  await showLiveView({
    ...run,
    session: run.session,
    frame: { startedAt, feed: feed.label, urls, logDir: out.tty ? LOG_DIR : null },
  });
}

/**
 * Says why the run stops, stops the children in order and the local servers it started, and
 * returns the exit code: 0 only after a signal and a clean stop.
 */
async function stopInOrder(run: Run): Promise<number> {
  const { out, stop, children } = run;
  run.screen.leave();
  const reason = stop.reason;
  if (reason?.kind === "failure") out.warn(`FAILED: ${reason.message}`);
  out.say(
    reason?.kind === "signal" ? `${reason.name} received: stopping in order` : "stopping in order",
  );
  const stopStartedAt = performance.now();
  const childrenClean = await children.stopInOrder();
  const clean = await stopLocalServers(run.servers, out, { wasReady: run.ready }) &&
    childrenClean;
  await run.session?.shutdown().catch(() => {});
  children.close();
  if (reason?.kind !== "failure" && clean) {
    out.say(`stopped cleanly in ${seconds(performance.now() - stopStartedAt)}`);
    return 0;
  }
  out.warn(
    clean
      ? "stopped; nothing is left running"
      : "stopped, but not every process exited cleanly (see above); nothing is left running",
  );
  return 1;
}

/** The flags, or the exit code when there is nothing to run (`--help`, a bad flag). */
function parseFlags(args: string[]): { plain: boolean } | number {
  try {
    const { values } = parseArgs({
      args,
      options: { plain: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    if (!values.help) return { plain: values.plain ?? false };
    console.log(USAGE);
    return 0;
  } catch (error) {
    console.error(`start: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
}

/** The config, or `null` after saying which variable is wrong. */
function readConfig(env: Readonly<Record<string, string>>): Config | null {
  try {
    return loadConfig(env);
  } catch (error) {
    console.error(
      `start: cannot start: ${(error as Error).message} (fix it in .env or the environment)`,
    );
    return null;
  }
}

/** Where the trades come from: the bundled simulator, Finnhub, or another server. */
interface Feed {
  /** No key and the default URL: the simulator runs. */
  readonly simulated: boolean;
  /** `SIMULATED DATA (...)`, `LIVE DATA from Finnhub`, ... */
  readonly label: string;
  /** The first line start says. */
  readonly line: string;
  /** The URL the producer connects to. */
  readonly url: string;
}

function describeFeed(config: Config): Feed {
  const simulated = !config.finnhub.apiKey.isSet && config.finnhub.url === DEFAULT_FINNHUB_URL;
  const origin = new URL(config.finnhub.url).origin;
  const label = simulated
    ? "SIMULATED DATA (no FINNHUB_API_KEY)"
    : config.finnhub.apiKey.isSet
    ? `LIVE DATA from ${origin === new URL(DEFAULT_FINNHUB_URL).origin ? "Finnhub" : origin}`
    : `data from FINNHUB_WS_URL ${origin} (no FINNHUB_API_KEY)`;
  return {
    simulated,
    label,
    line: simulated
      ? "FINNHUB_API_KEY is not set: running the bundled simulator. SIMULATED DATA, not market " +
        "prices (put FINNHUB_API_KEY=<key> in .env for live Finnhub trades)."
      : `feed: ${label}`,
    url: simulated ? simulatorUrl(config) : config.finnhub.url,
  };
}

function simulatorUrl(config: Config): string {
  return `ws://127.0.0.1:${config.simulator.port}/`;
}

/** Whether the ports start will listen on are free; says which is not, before anything starts. */
async function portsFree(config: Config, simulated: boolean, out: Output): Promise<boolean> {
  if (config.status.port === 0) {
    out.warn(
      "cannot start: STATUS_PORT=0 picks a random port, and start must know where the status " +
        "endpoint listens: set STATUS_PORT to a free port (default 8080) in .env",
    );
    return false;
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
      return false;
    }
  }
  return true;
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

/** Starts the simulator on SIMULATOR_PORT and waits until it answers. */
async function startSimulator(
  children: Children,
  config: Config,
  out: Output,
  stop: StopControl,
): Promise<void> {
  const port = config.simulator.port;
  const simulator = children.start("simulator", ["--port", String(port), "--host", "127.0.0.1"]);
  await waitSimulator(port, simulator, stop);
  out.say(`simulator (pid ${pidOf(simulator)}) on ${simulatorUrl(config)}`);
}

/** Starts the status endpoint, the stages and the producer (on the simulator when simulated). */
function startWorkers(children: Children, config: Config, simulated: boolean, out: Output) {
  children.start("status");
  // The same heap bounds as `deno task processor|producer` and compose give them.
  for (const stage of STAGES) children.start(stage);
  children.start("producer", [], simulated ? { FINNHUB_WS_URL: simulatorUrl(config) } : {});
  out.say(
    `started ${
      [...children.entries.values()].map((e) => `${e.name} (pid ${pidOf(e)})`).join(", ")
    }; waiting until every worker reports (status /readyz)`,
  );
}

/** Says READY with the URLs to open; returns them for the view. */
async function announceReady(
  statusBase: string,
  config: Config,
  feed: string,
  out: Output,
  t0: number,
): Promise<{ label: string; url: string }[]> {
  const urls = [
    { label: "status", url: `${statusBase}/status` },
    { label: "metrics", url: `${statusBase}/metrics` },
  ];
  if (await answers(`${statusBase}/`, config)) {
    urls.unshift({ label: "market", url: `${statusBase}/` });
  }
  if (config.grafana.url) urls.push({ label: "grafana", url: config.grafana.url });
  for (const line of readyBanner(feed, urls, performance.now() - t0)) out.say(line);
  if (!out.tty) out.say(`process logs: ${LOG_DIR}/`);
  return urls;
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
