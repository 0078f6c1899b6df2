/**
 * The reading side of the worker reports (`reporter.ts` writes them): collects the reports from
 * the metrics topic and keeps the latest of each worker, with the rates of its counters between
 * its last two reports. The status endpoint serves them; the benchmarks read them the same way.
 *
 * Whatever the topic carries, the status endpoint stays bounded and its `/metrics` valid: a
 * report is checked before it is kept ({@linkcode checkReport}: a known role and state, ids of
 * at most 200 characters, metrics of at most 256 KiB and 4000 series with Prometheus names, no
 * `worker` or `role` label of its own), and at most {@linkcode MAX_WORKERS} workers are kept, the
 * one that reported least recently forgotten first. Refused reports count in
 * `pipeline_status_reports_rejected_total`, forgotten workers in
 * `pipeline_status_workers_evicted_total`.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import { WORKER_ROLES } from "./config.ts";
import { describeError, type Logger } from "./log.ts";
import { MetricsRegistry, type MetricsSnapshot, type SeriesSnapshot } from "./metrics.ts";
import type { WorkerReport, WorkerRole } from "./types.ts";
import type { WireCodec } from "./wire.ts";

/** Workers kept at most (a deployment runs about 20; restarts add new ids). */
export const MAX_WORKERS = 128;
/** Longest metrics JSON of one report, in characters. */
export const MAX_METRICS_CHARS = 256 * 1024;
/** Most series in one report (a worker has about 100). */
export const MAX_SERIES = 4000;
/** Longest worker id, host, label value or help text. */
const MAX_TEXT = 200;
const MAX_HELP = 1000;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Labels the status endpoint adds itself (`worker`, `role`) or that Prometheus reserves. */
const RESERVED_LABEL = /^(worker|role|le|__.*)$/;

/** What the status endpoint knows of one worker. */
export interface WorkerView {
  readonly workerId: string;
  readonly role: WorkerRole;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  /** When its last report was made. */
  readonly lastReport: number;
  readonly state: WorkerReport["state"];
  /** Reporting and not stopped. */
  readonly up: boolean;
  readonly snapshot: MetricsSnapshot;
  /** Per-second rate of each counter series since the previous report, by `name{labels}`. */
  readonly rates: Readonly<Record<string, number>>;
}

/** Options of {@linkcode createCollector}. */
export interface CollectorOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly groupId: string;
  /**
   * Decodes the reports (fetching each writer schema id once from the registry). A report that
   * cannot be decoded, or arrives while the registry cannot say what its id means, is refused.
   */
  readonly wire: WireCodec;
  readonly log: Logger;
  /** A worker with no report for this long is down. Default 10000 ms. */
  readonly staleAfterMs?: number;
  /** A worker with no report for this long is forgotten. Default 10 minutes. */
  readonly forgetAfterMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
  /** Where refused reports and forgotten workers are counted. Default a registry of its own. */
  readonly metrics?: MetricsRegistry;
  /** Workers kept at most. Default {@linkcode MAX_WORKERS}. */
  readonly maxWorkers?: number;
}

/** The running collector. */
export interface Collector {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every worker seen recently, up or down. */
  workers(): WorkerView[];
  /** Takes in one report (what the consumer does for each message). */
  accept(report: WorkerReport): void;
}

function fail(what: string): never {
  throw new RangeError(`worker report refused: ${what}`);
}

function text(value: unknown, what: string, max: number): string {
  if (typeof value !== "string") fail(`${what} must be a string`);
  if (value.length > max) fail(`${what} is ${value.length} characters, more than ${max}`);
  return value;
}

/** A number of a series; JSON writes NaN as null. */
function sample(value: unknown, what: string): number {
  if (value === null) return Number.NaN;
  if (typeof value !== "number") fail(`${what} must be a number`);
  return value;
}

function checkSeries(raw: unknown, family: string, histogram: boolean): SeriesSnapshot {
  if (typeof raw !== "object" || raw === null) fail(`a series of ${family} must be an object`);
  const series = raw as Record<string, unknown>;
  const labelsRaw = series["labels"] ?? {};
  if (typeof labelsRaw !== "object" || labelsRaw === null || Array.isArray(labelsRaw)) {
    fail(`the labels of ${family} must be an object`);
  }
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(labelsRaw)) {
    if (!LABEL_NAME.test(name) || RESERVED_LABEL.test(name)) {
      fail(`${family} has a label named ${JSON.stringify(name.slice(0, 40))}`);
    }
    labels[name] = text(value, `label ${name} of ${family}`, MAX_TEXT);
  }
  const value = sample(series["value"], `the value of ${family}`);
  if (!histogram) return { labels, value };
  const buckets = series["buckets"];
  const counts = series["counts"];
  if (
    !Array.isArray(buckets) || !Array.isArray(counts) || buckets.length !== counts.length ||
    buckets.length > 100
  ) {
    fail(`histogram ${family} needs buckets and counts of the same length (at most 100)`);
  }
  return {
    labels,
    value,
    buckets: buckets.map((b) => sample(b, `a bucket of ${family}`)),
    counts: counts.map((c) => sample(c, `a count of ${family}`)),
    sum: sample(series["sum"], `the sum of ${family}`),
    count: sample(series["count"], `the count of ${family}`),
  };
}

/**
 * The metrics of a report, checked and copied: throws a `RangeError` saying what is wrong when
 * the JSON is not a {@linkcode MetricsSnapshot} within the bounds, or would make `/metrics`
 * invalid (a bad name, a label the status endpoint adds itself).
 */
export function parseSnapshot(json: string): MetricsSnapshot {
  if (json.length > MAX_METRICS_CHARS) {
    fail(`metrics are ${json.length} characters, more than ${MAX_METRICS_CHARS}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    fail("metrics are not JSON");
  }
  const familiesRaw = (raw as { families?: unknown } | null)?.families;
  if (!Array.isArray(familiesRaw)) fail("metrics must be an object with a families array");
  const names = new Set<string>();
  let total = 0;
  const families: MetricsSnapshot["families"][number][] = [];
  for (const family of familiesRaw as unknown[]) {
    const f = (family ?? {}) as Record<string, unknown>;
    const name = text(f["name"], "a metric name", MAX_TEXT);
    if (!METRIC_NAME.test(name)) fail(`metric name ${JSON.stringify(name)} is not valid`);
    if (names.has(name)) fail(`metric ${name} appears twice`);
    names.add(name);
    const kind = f["kind"];
    if (kind !== "counter" && kind !== "gauge" && kind !== "histogram") {
      fail(`metric ${name} has kind ${JSON.stringify(kind)}`);
    }
    if (!Array.isArray(f["series"])) fail(`metric ${name} must have a series array`);
    total += f["series"].length;
    if (total > MAX_SERIES) fail(`metrics have more than ${MAX_SERIES} series`);
    families.push({
      name,
      help: text(f["help"] ?? "", `the help of ${name}`, MAX_HELP),
      kind,
      series: f["series"].map((s: unknown) => checkSeries(s, name, kind === "histogram")),
    });
  }
  return { families };
}

/** A report's identity checked (known role and state, bounded ids), its metrics parsed. */
export function checkReport(report: WorkerReport): MetricsSnapshot {
  text(report.workerId, "workerId", MAX_TEXT);
  text(report.host, "host", MAX_TEXT);
  if (!(WORKER_ROLES as readonly string[]).includes(report.role)) {
    fail(`role ${JSON.stringify(String(report.role).slice(0, 40))} is not one of ${WORKER_ROLES}`);
  }
  if (report.state !== "running" && report.state !== "stopped") {
    fail(`state ${JSON.stringify(String(report.state).slice(0, 40))} is not running or stopped`);
  }
  return parseSnapshot(report.metrics);
}

/** `name{a="1",b="2"}`: the key of one series. */
export function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(",")}}`;
}

function counters(snapshot: MetricsSnapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const family of snapshot.families) {
    if (family.kind !== "counter") continue;
    for (const series of family.series) {
      out.set(seriesKey(family.name, series.labels), series.value);
    }
  }
  return out;
}

/** Creates a collector reading `topic` from its end. */
export function createCollector(options: CollectorOptions): Collector {
  const now = options.now ?? Date.now;
  const staleAfterMs = options.staleAfterMs ?? 10_000;
  const forgetAfterMs = options.forgetAfterMs ?? 600_000;
  const maxWorkers = options.maxWorkers ?? MAX_WORKERS;
  const metrics = options.metrics ?? new MetricsRegistry();
  const rejected = metrics.counter(
    "pipeline_status_reports_rejected_total",
    "Worker reports the status endpoint refused: undecodable, or beyond its bounds.",
  );
  const evicted = metrics.counter(
    "pipeline_status_workers_evicted_total",
    `Workers the status endpoint forgot, least recently reporting first, to keep at most ${maxWorkers}.`,
  );
  /** Map order is report order: the first worker is the one that reported least recently. */
  const latest = new Map<
    string,
    { report: WorkerReport; snapshot: MetricsSnapshot; rates: Record<string, number> }
  >();
  let consumer: Consumer | undefined;

  function refuse(message: string, fields: Record<string, unknown>): void {
    // Logged the first time and every 1000th: a flood of bad reports does not flood the log.
    if (rejected.get() % 1000 === 0) {
      options.log.warn(message, { ...fields, refused: rejected.get() + 1 });
    }
    rejected.inc();
  }

  function accept(report: WorkerReport): void {
    let snapshot: MetricsSnapshot;
    try {
      snapshot = checkReport(report);
    } catch (error) {
      refuse("ignoring a worker report", { error: describeError(error) });
      return;
    }
    const previous = latest.get(report.workerId);
    if (previous && report.time <= previous.report.time) return; // out of order or repeated
    const rates: Record<string, number> = Object.create(null);
    if (previous) {
      const seconds = (report.time - previous.report.time) / 1000;
      const before = counters(previous.snapshot);
      for (const [key, value] of counters(snapshot)) {
        rates[key] = Math.max(0, value - (before.get(key) ?? 0)) / seconds;
      }
    }
    latest.delete(report.workerId); // to the end: the most recent
    latest.set(report.workerId, { report, snapshot, rates });
    while (latest.size > maxWorkers) {
      latest.delete(latest.keys().next().value as string);
      evicted.inc();
    }
  }

  return {
    accept,
    async start() {
      consumer = options.kafka.consumer({ groupId: options.groupId, maxWaitTimeInMs: 250 });
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: false });
      await consumer.run({
        autoCommit: true,
        eachMessage: async ({ message }) => {
          if (!message.value) return;
          let report: WorkerReport;
          try {
            report = await options.wire.decodeAsync("WorkerReport", message.value);
          } catch (error) {
            refuse("ignoring a worker report that cannot be decoded", {
              error: describeError(error),
            });
            return;
          }
          accept(report);
        },
      });
    },
    async stop() {
      await consumer?.disconnect();
    },
    workers() {
      const at = now();
      const out: WorkerView[] = [];
      for (const [id, { report, snapshot, rates }] of latest) {
        const age = at - report.time;
        if (age > forgetAfterMs) {
          latest.delete(id);
          continue;
        }
        out.push({
          workerId: report.workerId,
          role: report.role,
          host: report.host,
          pid: report.pid,
          startedAt: report.startedAt,
          lastReport: report.time,
          state: report.state,
          up: report.state === "running" && age <= staleAfterMs,
          snapshot,
          rates,
        });
      }
      return out.sort((a, b) =>
        a.role.localeCompare(b.role) || a.workerId.localeCompare(b.workerId)
      );
    },
  };
}
