/**
 * The fault suite's harness: the real pipeline on fresh topics and a fresh keyspace, every
 * worker a real OS process (`producer/main.ts`, `processor/main.ts --stage ...`,
 * `status/main.ts`) fed by the simulator (in this process, with its ground-truth log), and the
 * checks every scenario ends with: bronze, silver and gold against the independent reference
 * (`tests/reference.py`) computed from what the simulator sent, zero duplicates, zero missing
 * beyond what the scenario allows, lag back to zero, no secret in any output.
 *
 * Every child's stdout and stderr go to `<dir>/<label>.log` (printed when a scenario fails); the
 * resident memory of each child is sampled from `/proc/<pid>/status` every second.
 *
 * `FAULT_SUITE=full` selects the long variant of each scenario; `FAULT_SUITE_SEED=<n>` replays
 * a run (every scenario prints its seed).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Admin, Consumer } from "kafkajs";
import type cassandra from "cassandra-driver";
import { hourBucket } from "../../shared/buckets.ts";
import type { Config } from "../../shared/config.ts";
import { createKafka } from "../../shared/kafka.ts";
import { createLogger, silentLogger } from "../../shared/log.ts";
import type { MetricsSnapshot } from "../../shared/metrics.ts";
import { roleEnv, roleProcess } from "../../shared/process/role.ts";
import { type ProcessExit, type RunningProcess, spawnProcess } from "../../shared/process/spawn.ts";
import type { DeadLetter, RawTrade } from "../../shared/types.ts";
import { readGroundTruth, tradeEntries } from "../../simulator/ground_truth.ts";
import { type Simulator, type SimulatorOptions, startSimulator } from "../../simulator/server.ts";
import { cleanup, provision, session, testConfig, testWire, waitFor } from "../helpers.ts";
import { type SeededRun, seededRun } from "../progress.ts";
import { randomId } from "../../shared/random.ts";
import {
  assertGoldMatches,
  countRows,
  type GoldRows,
  goldTradeCount,
  readGold,
  total,
} from "../pipeline_assertions.ts";
import { computeReference, type Reference } from "../reference.ts";
import { groupIdOf, inputTopicOf, type StageName, STAGES } from "../../shared/topology.ts";
import { type Interval, INTERVALS } from "../../shared/gold_table.ts";

/** `FAULT_SUITE=full`: the long variant (what `deno task test:faults` runs). */
export const FULL = Deno.env.get("FAULT_SUITE") === "full";

/** kafkajs and child processes outlive a test's own bookkeeping. */
export const testOptions = { sanitizeOps: false, sanitizeResources: false };

/**
 * Distinctive secrets every child gets: none of them (nor their URL or base64 forms) may appear
 * in any output. The local Cassandra has no authentication: the driver is given the user and
 * password (`CASSANDRA_USERNAME` set) and the server never asks for them.
 */
export const SECRETS = {
  FINNHUB_API_KEY: "fhk-Q7+zR/x9=FaultSuiteKey-2718",
  CASSANDRA_PASSWORD: "cpw-W3+kL/m8=FaultSuitePass-3141",
  STATUS_TOKEN: "stt-J5+pN/v2=FaultSuiteToken-1618",
} as const;

const ROOT = new URL("../..", import.meta.url).pathname;
const HOUR = 3_600_000;

/** Feed symbols of the scenarios. */
export const FEED_SYMBOLS = ["AAPL", "MSFT", "TSLA", "NVDA", "BINANCE:BTCUSDT", "OANDA:EUR_USD"];

/** The start of a seeded scenario; `FAULT_SUITE_SEED` replays a run. */
export function seededScenario(name: string, fallback: number): SeededRun {
  return seededRun(name, "FAULT_SUITE_SEED", fallback);
}

/** A worker role the harness runs. */
export type Role = "producer" | StageName | "status";

/** One run of one child process. */
export interface Child {
  readonly role: Role;
  readonly label: string;
  readonly pid: number;
  readonly process: RunningProcess;
  /** Resolves once it exited and its output is in its log. */
  readonly ended: Promise<ProcessExit>;
  status?: ProcessExit;
  killed: boolean;
  readonly startedAt: number;
}

/** Resident memory samples of one process, KiB. */
export interface RssSeries {
  readonly label: string;
  readonly samples: { readonly at: number; readonly kib: number }[];
}

/** The latest report of one worker, from the metrics topic. */
export interface LatestReport {
  readonly workerId: string;
  readonly role: string;
  readonly startedAt: number;
  readonly time: number;
  readonly state: string;
  readonly metrics: MetricsSnapshot;
}

/** Options of {@linkcode startPipeline}. */
export interface PipelineOptions {
  readonly name: string;
  /** Config overrides (child environment), e.g. `FINNHUB_WATCHDOG_MS`. */
  readonly env?: Record<string, string>;
  readonly simulator?: SimulatorOptions;
  /** Print a note for each child start. Default true. */
  readonly log: (line: string) => void;
}

/** A running pipeline. */
export interface Pipeline {
  readonly config: Config;
  readonly env: Record<string, string>;
  readonly dir: string;
  readonly sim: Simulator;
  readonly groundTruthPath: string;
  readonly children: Child[];
  /** Simulator log events: `[epoch ms, line]`. */
  readonly simEvents: [number, string][];
  readonly rss: Map<string, RssSeries>;
  readonly admin: Admin;
  readonly client: cassandra.Client;
  /** Latest report of every worker seen on the metrics topic. */
  readonly reports: Map<string, LatestReport>;
  /** Starts a child; `label` names its log (restarts append). */
  spawn(role: Role, label?: string, extraEnv?: Record<string, string>): Promise<Child>;
  /** `kill -9` and waits until it is gone. */
  kill(child: Child): Promise<void>;
  /** The running child of `label`. */
  running(label: string): Child;
  /** Rejects as soon as a child exits that the test did not kill. */
  guarded<T>(work: Promise<T>): Promise<T>;
  /** Stops the feed and every child, prints logs on failure, drops topics and keyspace. */
  stop(passed: boolean): Promise<void>;
}

/** Provisions fresh topics and keyspace, starts the simulator; no worker yet. */
export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const overrides = options.env ?? {};
  const config = testConfig({
    KAFKA_PARTITIONS: "3",
    GOLD_ALLOWED_LATENESS_MS: "2000",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_INTERVAL_MS: "1000",
    LOG_LEVEL: "info",
    ...overrides,
  });
  await provision(config);
  const dir = await Deno.makeTempDir({ prefix: `faults-${options.name}-` });
  const groundTruthPath = `${dir}/ground_truth.ndjson`;
  const simEvents: [number, string][] = [];
  const sim = await startSimulator({
    seed: 1,
    rate: 500,
    pingIntervalMs: 1_000,
    ...options.simulator,
    groundTruthPath,
    log: createLogger("simulator", {
      level: "info",
      write: (line) => simEvents.push([Date.now(), line]),
    }),
  });
  // Every child resolves `config`, but for the feed symbols and the Cassandra user, and gets the
  // secrets.
  const env = roleEnv({
    config,
    secrets: SECRETS,
    overrides: {
      CASSANDRA_USERNAME: "fault_suite_user",
      FINNHUB_SYMBOLS: FEED_SYMBOLS.join(","),
      FINNHUB_WS_URL: sim.url,
      ...overrides,
    },
  });
  const children: Child[] = [];
  const rss = new Map<string, RssSeries>();
  const failed = Promise.withResolvers<never>();
  failed.promise.catch(() => {});
  const admin = createKafka(config.kafka, silentLogger()).admin();
  await admin.connect();
  const client = session(config);
  const reports = new Map<string, LatestReport>();
  const reportConsumer = await readReports(config, reports);

  const sampler = setInterval(() => {
    for (const child of children) {
      if (child.status !== undefined) continue;
      const kib = rssKib(child.pid);
      if (kib === undefined) continue;
      let series = rss.get(`${child.label}#${child.pid}`);
      if (!series) {
        series = { label: `${child.label}#${child.pid}`, samples: [] };
        rss.set(series.label, series);
      }
      series.samples.push({ at: Date.now(), kib });
    }
  }, 1_000);

  let stopped = false;
  const pipeline: Pipeline = {
    config,
    env,
    dir,
    sim,
    groundTruthPath,
    children,
    simEvents,
    rss,
    admin,
    client,
    reports,
    async spawn(role, label = role, extraEnv = {}) {
      if (stopped) throw new Error(`the pipeline is stopped: not starting ${label}`);
      const file = await Deno.open(`${dir}/${label}.log`, { append: true, create: true });
      const encoder = new TextEncoder();
      const write = (line: string) => file.writeSync(encoder.encode(`${line}\n`));
      write(`--- ${new Date().toISOString()} harness: starting ${label}`);
      const process = spawnProcess(
        roleProcess(role, { env: { ...env, ...extraEnv }, name: label, cwd: ROOT }),
        { onLine: write },
      );
      const child: Child = {
        role,
        label,
        pid: process.pid,
        process,
        killed: false,
        startedAt: Date.now(),
        ended: process.exited.then((status) => {
          file.close();
          child.status = status;
          if (!child.killed && !stopped) {
            failed.reject(
              new Error(
                `${label} (pid ${process.pid}) exited by itself: code ${status.code}, signal ${status.signal}`,
              ),
            );
          }
          return status;
        }),
      };
      children.push(child);
      return child;
    },
    async kill(child) {
      child.killed = true;
      child.process.kill();
      await child.ended;
    },
    running(label) {
      const child = children.findLast((c) => c.label === label && c.status === undefined);
      if (!child) throw new Error(`no running ${label}`);
      return child;
    },
    guarded(work) {
      return Promise.race([work, failed.promise]);
    },
    async stop(passed) {
      if (stopped) return;
      stopped = true;
      clearInterval(sampler);
      await sim.close().catch(() => {});
      await Promise.all(
        children.filter((c) => c.status === undefined).map((c) => {
          c.killed = true;
          c.process.kill();
          return c.ended;
        }),
      );
      await reportConsumer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      await client.shutdown().catch(() => {});
      if (!passed) {
        console.error(`logs are kept in ${dir}`);
        for (const label of new Set(children.map((c) => c.label))) {
          const text = await Deno.readTextFile(`${dir}/${label}.log`).catch(() => "");
          const lines = text.trimEnd().split("\n");
          console.error(`----- ${label}.log (last ${Math.min(lines.length, 30)}) -----`);
          console.error(lines.slice(-30).join("\n"));
        }
      }
      if (!passed && Deno.env.get("FAULT_SUITE_KEEP") === "1") {
        console.error(`kept keyspace ${config.cassandra.keyspace} and topics`);
      } else {
        await cleanup(config);
      }
      if (passed) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return pipeline;
}

/** Starts bronze, silver and gold (one process each) and the producer. */
export async function startWorkers(p: Pipeline, roles: readonly Role[] = [...STAGES, "producer"]) {
  for (const role of roles) await p.spawn(role);
}

function rssKib(pid: number): number | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+) kB/m.exec(text);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Waits until the simulator's first connection has subscribed `count` symbols (default every
 * feed symbol), failing at once when a child exits by itself.
 */
export async function waitForSubscribed(
  p: Pipeline,
  options: { readonly count?: number; readonly timeoutMs?: number } = {},
): Promise<void> {
  const count = options.count ?? FEED_SYMBOLS.length;
  await p.guarded(waitFor(
    "the producer to subscribe",
    () => p.sim.stats().connections[0]?.subscriptions === count,
    { timeoutMs: options.timeoutMs ?? 60_000 },
  ));
}

/** Starts the status endpoint on `port` and waits until it answers `/healthz`. */
export async function startStatus(p: Pipeline, port: number): Promise<void> {
  await p.spawn("status", "status", { STATUS_PORT: String(port) });
  await p.guarded(waitFor(
    "the status endpoint",
    async () => (await statusGet(port, "/healthz")).status === 200,
    { timeoutMs: 60_000 },
  ));
}

/** Start, peak and end resident memory of each process, MiB, as one line each. */
export function rssReport(p: Pipeline): string[] {
  const mib = (kib: number) => (kib / 1024).toFixed(0);
  return [...p.rss.values()].filter((s) => s.samples.length > 0).map((s) => {
    const values = s.samples.map((x) => x.kib);
    return `RSS ${s.label}: start ${mib(values[0]!)} MiB, peak ${
      mib(Math.max(...values))
    } MiB, end ${mib(values.at(-1)!)} MiB (${values.length} samples)`;
  });
}

async function readReports(config: Config, into: Map<string, LatestReport>): Promise<Consumer> {
  const consumer = createKafka(config.kafka, silentLogger()).consumer({
    groupId: `${config.kafka.groupPrefix}.harness-reports-${randomId()}`,
    sessionTimeout: 6_000,
    heartbeatInterval: 1_000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: config.kafka.topics.metrics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const report = await testWire().decodeAsync("WorkerReport", message.value!);
      const previous = into.get(report.workerId);
      if (!previous || previous.time <= report.time) {
        into.set(report.workerId, {
          workerId: report.workerId,
          role: report.role,
          startedAt: report.startedAt,
          time: report.time,
          state: report.state,
          metrics: JSON.parse(report.metrics),
        });
      }
      return Promise.resolve();
    },
  });
  return consumer;
}

/** A metric's value in a snapshot, summed over its series. */
export function metric(snapshot: MetricsSnapshot, name: string): number {
  const family = snapshot.families.find((f) => f.name === name);
  let sum = 0;
  for (const series of family?.series ?? []) sum += series.value;
  return sum;
}

/** The producer reports, oldest process first. */
export function producerReports(p: Pipeline): LatestReport[] {
  return [...p.reports.values()].filter((r) => r.role === "producer").sort((a, b) =>
    a.startedAt - b.startedAt
  );
}

/** A producer counter summed over every producer process that reported (killed ones too). */
export function producerTotal(p: Pipeline, name: string): number {
  return producerReports(p).reduce((sum, r) => sum + metric(r.metrics, name), 0);
}

/**
 * The report of the producer that reads the feed: the newest one holding the lease
 * (`PRODUCER_LEASE=kafka`, where a standby runs beside it), else the newest.
 */
export function feedProducerReport(p: Pipeline): LatestReport | undefined {
  const reports = producerReports(p);
  return reports.findLast((r) => metric(r.metrics, "pipeline_producer_lease_active") === 1) ??
    reports.at(-1);
}

/**
 * Pauses the feed and waits until the producer reading it has handed every trade it received
 * to Kafka (or counted it dropped), in a report made after the pause.
 */
export async function drainFeed(p: Pipeline, timeoutMs = 120_000): Promise<void> {
  p.sim.inject({ type: "pause" });
  const pausedAt = Date.now();
  await p.guarded(waitFor("the producer to hand every received trade to Kafka", () => {
    const latest = feedProducerReport(p);
    if (!latest || latest.time < pausedAt + 1_000) return false;
    const m = latest.metrics;
    const received = metric(m, "pipeline_producer_trades_received_total");
    const done = metric(m, "pipeline_producer_trades_acked_total") +
      metric(m, "pipeline_producer_trades_dropped_total") +
      metric(m, "pipeline_producer_trades_failed_total");
    return received === done && metric(m, "pipeline_producer_buffer_depth_trades") === 0;
  }, { timeoutMs, intervalMs: 500 }));
}

/** One raw-topic record. */
export interface RawRecord {
  readonly partition: number;
  readonly offset: number;
  readonly trade: RawTrade;
}

/**
 * Reads a topic from the beginning up to its end offsets now, with the schema ids of each batch
 * resolved before `map` sees it (so `testWire().decode` works there).
 */
export async function readWhole<T>(
  config: Config,
  topic: string,
  map: (value: Uint8Array, partition: number, offset: number) => T,
  timeoutMs = 300_000,
): Promise<T[]> {
  const kafka = createKafka(config.kafka, silentLogger(), { clientIdSuffix: "reader" });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map(
    (await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]),
  );
  await admin.disconnect();
  const expected = [...ends.values()].reduce((a, b) => a + b, 0);
  const out: T[] = [];
  const seen = new Map<number, number>();
  if (expected === 0) return out;
  const consumer = kafka.consumer({
    groupId: `${config.kafka.groupPrefix}.reader-${randomId()}`,
    maxBytes: 16 * 1024 * 1024,
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    // Offsets of transaction markers (the producer writes in transactions) and aborted records
    // hold no message: a batch, even one of markers only, reads through its last offset.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const through = Math.min(Number(payload.lastOffset) + 1, ends.get(payload.partition) ?? 0);
      if (through > (seen.get(payload.partition) ?? 0)) seen.set(payload.partition, through);
    });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        await testWire().resolve(batch.messages.map((m) => m.value));
        const end = ends.get(batch.partition) ?? 0;
        for (const message of batch.messages) {
          const offset = Number(message.offset);
          if (offset >= end || offset < (seen.get(batch.partition) ?? 0)) continue;
          seen.set(batch.partition, offset + 1);
          out.push(map(new Uint8Array(message.value ?? []), batch.partition, offset));
        }
      },
    });
    await waitFor(
      `${expected} records of ${topic}`,
      () => [...ends].every(([partition, end]) => (seen.get(partition) ?? 0) >= end),
      { timeoutMs, intervalMs: 250 },
    );
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** The raw topic, decoded. */
export function readRaw(config: Config): Promise<RawRecord[]> {
  return readWhole(config, config.kafka.topics.raw, (value, partition, offset) => ({
    partition,
    offset,
    trade: testWire().decode("Trade", value),
  }));
}

/** The dead-letter topic, decoded. */
export function readLetters(config: Config): Promise<DeadLetter[]> {
  return readWhole(
    config,
    config.kafka.topics.deadLetter,
    (value) => testWire().decode("DeadLetter", value),
  );
}

/** A raw trade as the feed sent it. */
function asSent(trade: RawTrade): string {
  const { s, p, t, v, c } = trade;
  return JSON.stringify(c === "ABSENT" ? { s, p, t, v } : { s, p, t, v, c });
}

/** How what reached Kafka compares with what the simulator sent. */
export interface Accounting {
  /** Trades the simulator sent. */
  readonly sent: number;
  /** Trades in the raw topic. */
  readonly inKafka: number;
  /** Sent but not in Kafka, as `connection/frame/index` with the simulator's connection. */
  readonly missing: { connection: number; frame: number; index: number; symbol: string }[];
  /** Producer connection id -> simulator connection number. */
  readonly connections: Map<string, number>;
  /** The trades in Kafka as the reference reads them, in send order. */
  readonly reference: Reference;
  readonly referenceInput: string;
  readonly raw: RawRecord[];
}

/**
 * Reads the raw topic and the ground truth, and matches them: every raw trade must be one the
 * simulator sent, exactly once (zero duplicates, nothing invented). Returns what is missing, and
 * the reference computed (by `reference.py`) from the trades that reached Kafka.
 */
export async function account(p: Pipeline): Promise<Accounting> {
  await p.sim.close(); // flushes the ground-truth log
  const sent = tradeEntries(await readGroundTruth(p.groundTruthPath));
  const raw = await readRaw(p.config);
  const byPosition = new Map<string, number>();
  sent.forEach((e, i) => byPosition.set(`${e.connection}/${e.frame}/${e.index}`, i));
  const connectionIds = [...new Set(sent.map((e) => e.connection))];
  const connections = new Map<string, number>();
  const matched = new Array<RawRecord | undefined>(sent.length);
  for (const record of raw) {
    const t = record.trade;
    let connection = connections.get(t.connectionId);
    if (connection === undefined) {
      connection = connectionIds.find((c) => {
        const i = byPosition.get(`${c}/${t.frameSeq}/${t.tradeIndex}`);
        return i !== undefined && JSON.stringify(sent[i]!.trade) === asSent(t) &&
          ![...connections.values()].includes(c);
      });
      assert.ok(connection !== undefined, `raw trade ${asSent(t)} was never sent`);
      connections.set(t.connectionId, connection);
    }
    const i = byPosition.get(`${connection}/${t.frameSeq}/${t.tradeIndex}`);
    assert.ok(
      i !== undefined && JSON.stringify(sent[i]!.trade) === asSent(t),
      `raw trade ${asSent(t)} of ${t.connectionId} frame ${t.frameSeq} is not what was sent there`,
    );
    assert.equal(
      matched[i],
      undefined,
      `trade ${connection}/${t.frameSeq}/${t.tradeIndex} twice in Kafka`,
    );
    matched[i] = record;
  }
  const missing = [];
  const lines: string[] = [];
  for (const [i, e] of sent.entries()) {
    const record = matched[i];
    if (!record) {
      missing.push({
        connection: e.connection,
        frame: e.frame,
        index: e.index,
        symbol: String(e.trade["s"]),
      });
      continue;
    }
    const { s, p: price, t, v } = e.trade;
    lines.push(JSON.stringify({ s, p: price, t, v, seq: i, ingest: record.trade.ingestTime }));
  }
  const referenceInput = `${p.dir}/reference_input.ndjson`;
  await Deno.writeTextFile(referenceInput, lines.join("\n") + "\n");
  const reference = await computeReference(referenceInput, p.config.silver);
  return {
    sent: sent.length,
    inKafka: raw.length,
    missing,
    connections,
    reference,
    referenceInput,
    raw,
  };
}

/** What the tables must hold. */
export interface Expected {
  /** Bronze rows per symbol, and the ingest hours they are in. */
  readonly bronze: Map<string, number>;
  readonly bronzeHours: number[];
  readonly reference: Reference;
  /** Event hours of valid trades. */
  readonly silverHours: number[];
}

/** The tables' expectation from the raw records and the reference. */
export function expectedFrom(raw: readonly RawRecord[], reference: Reference): Expected {
  const bronze = new Map<string, number>();
  const bronzeHours = new Set<number>();
  for (const { trade } of raw) {
    bronze.set(trade.s, (bronze.get(trade.s) ?? 0) + 1);
    bronzeHours.add(hourBucket(trade.ingestTime));
  }
  const silverHours = Object.values(reference.candles["1h"]).flatMap((w) =>
    Object.keys(w).map(Number)
  );
  return {
    bronze,
    bronzeHours: [...bronzeHours],
    reference,
    silverHours: [...new Set(silverHours)],
  };
}

/** Table figures, for the report. */
export interface TableFigures {
  readonly bronze: number;
  readonly silver: number;
  readonly gold5m: number;
  readonly gold1h: number;
  readonly candles5m: number;
  /** The sum of trade counts of each stored interval's candles. */
  readonly goldTrades: Readonly<Record<Interval, number>>;
}

async function compare(client: cassandra.Client, e: Expected): Promise<TableFigures> {
  const bronze = await countRows(client, "trades_bronze", [...e.bronze.keys()], e.bronzeHours);
  for (const [symbol, n] of e.bronze) {
    const have = bronze.get(symbol) ?? 0;
    if (have !== n) {
      throw new Error(`bronze holds ${have} of ${n} rows of ${JSON.stringify(symbol)}`);
    }
  }
  const symbols = Object.keys(e.reference.candles["5m"]);
  const silver = total(await countRows(client, "trades_silver", symbols, e.silverHours));
  if (silver !== e.reference.valid) {
    throw new Error(`silver holds ${silver} of ${e.reference.valid} rows`);
  }
  const hours = e.silverHours;
  const from = Math.min(...hours);
  const to = Math.max(...hours) + HOUR;
  await assertGoldMatches(client, e.reference, from, to);
  const gold = {} as Record<Interval, GoldRows>;
  for (const interval of INTERVALS) {
    gold[interval] = await readGold(client, interval, symbols, from, to);
  }
  const goldTrades = {} as Record<Interval, number>;
  for (const interval of INTERVALS) goldTrades[interval] = goldTradeCount(gold[interval]);
  return {
    bronze: total(bronze),
    silver,
    gold5m: goldTrades["5m"],
    gold1h: goldTrades["1h"],
    candles5m: Object.values(gold["5m"]).reduce((n, w) => n + Object.keys(w).length, 0),
    goldTrades,
  };
}

/**
 * Waits until bronze, silver and gold equal the expectation (exactly: bronze per symbol, silver
 * rows, every candle of every stored interval), then checks the trade counts of each interval's
 * candles sum to the valid trades.
 */
export async function assertTables(
  p: Pipeline,
  e: Expected,
  timeoutMs = 180_000,
): Promise<TableFigures> {
  let figures: TableFigures | undefined;
  await p.guarded(waitFor("bronze, silver and gold to equal the reference", async () => {
    figures = await compare(p.client, e);
    return true;
  }, { timeoutMs, intervalMs: 2_000 }));
  assert.ok(figures);
  for (const interval of INTERVALS) {
    assert.equal(
      figures.goldTrades[interval],
      e.reference.valid,
      `${interval} trade counts sum to the valid trades`,
    );
  }
  return figures;
}

/**
 * How every scenario ends: bronze, silver and gold equal the reference computed from what reached
 * Kafka, every stage's lag is zero, and no child's log holds a secret. Logs the figures and each
 * process's memory.
 */
export async function assertOutcome(
  p: Pipeline,
  a: Accounting,
  log: (line: string) => void,
  timeoutMs?: number,
): Promise<TableFigures> {
  const figures = await assertTables(p, expectedFrom(a.raw, a.reference), timeoutMs);
  await assertLagZero(p);
  const scanned = await assertNoSecrets(p);
  log(
    `tables equal the reference: bronze ${figures.bronze}, silver ${figures.silver}, gold 5m ` +
      `${figures.gold5m} trades in ${figures.candles5m} candles, gold 1m/1h/1d ` +
      `${figures.goldTrades["1m"]}/${figures.gold1h}/${figures.goldTrades["1d"]}; ` +
      `lag 0; ${scanned} log bytes free of secrets`,
  );
  for (const line of rssReport(p)) log(line);
  return figures;
}

/** Consumer lag (log end minus committed) of each stage, summed over partitions. */
export async function lagOf(p: Pipeline): Promise<Record<StageName, number>> {
  const out = {} as Record<StageName, number>;
  for (const stage of STAGES) {
    const topic = inputTopicOf(p.config, stage);
    const ends = await p.admin.fetchTopicOffsets(topic);
    const [committed] = await p.admin.fetchOffsets({
      groupId: groupIdOf(p.config, stage),
      topics: [topic],
    });
    const done = new Map(
      (committed?.partitions ?? []).map((x) => [x.partition, Math.max(0, Number(x.offset))]),
    );
    out[stage] = ends.reduce((n, x) => n + Number(x.high) - (done.get(x.partition) ?? 0), 0);
  }
  return out;
}

/** Waits until every stage has committed up to the end of its input. */
export async function assertLagZero(p: Pipeline, timeoutMs = 120_000): Promise<void> {
  await p.guarded(waitFor("every stage's lag to return to zero", async () => {
    const lag = await lagOf(p);
    return STAGES.every((s) => lag[s] === 0) ? lag : false;
  }, { timeoutMs, intervalMs: 1_000 }));
}

/** Every form a secret could leak in: itself, URL-encoded, base64 (each alignment), hex. */
export function secretForms(secret: string): string[] {
  const bytes = new TextEncoder().encode(secret);
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  const forms = new Set<string>([secret, encodeURIComponent(secret)]);
  forms.add(new URLSearchParams({ x: secret }).toString().slice(2));
  for (let shift = 0; shift < 3; shift++) {
    // A secret inside a longer base64 text: the characters fully determined by its bytes.
    const encoded = b64(new Uint8Array([...new Uint8Array(shift), ...bytes]));
    const core = encoded.slice(Math.ceil((shift * 4) / 3) + 1, -4);
    forms.add(core);
    forms.add(core.replaceAll("+", "-").replaceAll("/", "_"));
  }
  forms.add([...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""));
  return [...forms].filter((f) => f.length >= 8);
}

/**
 * Asserts no secret, in any form, appears in any child's log of the pipeline or in `texts`
 * (status responses, dead letters). Returns how many bytes were scanned.
 */
export async function assertNoSecrets(
  p: Pipeline,
  texts: readonly { readonly where: string; readonly text: string }[] = [],
): Promise<number> {
  const forms = Object.entries(SECRETS).flatMap(([name, value]) =>
    secretForms(value).map((form) => ({ name, form }))
  );
  let scanned = 0;
  const all = [...texts];
  for (const label of new Set(p.children.map((c) => c.label))) {
    all.push({ where: `${label}.log`, text: await Deno.readTextFile(`${p.dir}/${label}.log`) });
  }
  for (const { where, text } of all) {
    scanned += text.length;
    for (const { name, form } of forms) {
      const at = text.indexOf(form);
      assert.equal(
        at,
        -1,
        `${where} contains ${name} (as ${JSON.stringify(form)}): ...${text.slice(at - 80, at)}`,
      );
    }
  }
  return scanned;
}

/** GET on the status endpoint, with or without the token. */
export async function statusGet(
  port: number,
  path: string,
  token?: string,
): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: response.status, text: await response.text() };
}
