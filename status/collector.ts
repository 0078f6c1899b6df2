/**
 * Collects the workers' reports from the metrics topic and keeps the latest of each worker,
 * with the rates of its counters between its last two reports.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import { decode } from "../shared/avro.ts";
import { describeError, type Logger } from "../shared/log.ts";
import type { MetricsSnapshot } from "../shared/metrics.ts";
import type { WorkerReport, WorkerRole } from "../shared/types.ts";

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
  readonly log: Logger;
  /** A worker with no report for this long is down. Default 10000 ms. */
  readonly staleAfterMs?: number;
  /** A worker with no report for this long is forgotten. Default 10 minutes. */
  readonly forgetAfterMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
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
  const latest = new Map<
    string,
    { report: WorkerReport; snapshot: MetricsSnapshot; rates: Record<string, number> }
  >();
  let consumer: Consumer | undefined;

  function accept(report: WorkerReport): void {
    let snapshot: MetricsSnapshot;
    try {
      snapshot = JSON.parse(report.metrics);
    } catch {
      options.log.warn("ignoring a report with unreadable metrics", { worker: report.workerId });
      return;
    }
    const previous = latest.get(report.workerId);
    if (previous && report.time <= previous.report.time) return; // out of order or repeated
    const rates: Record<string, number> = {};
    if (previous) {
      const seconds = (report.time - previous.report.time) / 1000;
      const before = counters(previous.snapshot);
      for (const [key, value] of counters(snapshot)) {
        rates[key] = Math.max(0, value - (before.get(key) ?? 0)) / seconds;
      }
    }
    latest.set(report.workerId, { report, snapshot, rates });
  }

  return {
    accept,
    async start() {
      consumer = options.kafka.consumer({ groupId: options.groupId, maxWaitTimeInMs: 250 });
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: false });
      await consumer.run({
        autoCommit: true,
        eachMessage: ({ message }) => {
          if (!message.value) return Promise.resolve();
          try {
            accept(decode("WorkerReport", message.value));
          } catch (error) {
            options.log.warn("ignoring an undecodable report", { error: describeError(error) });
          }
          return Promise.resolve();
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
