/**
 * Workers report to the status endpoint through Kafka: every `intervalMs` a `WorkerReport`
 * (who the worker is, that it is alive, its metrics snapshot) goes to the metrics topic, keyed by
 * worker id, and a last one with state `stopped` on a clean shutdown. The status endpoint needs
 * no list of workers and no ports to scrape, and a worker that stops reporting shows as down.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Producer } from "kafkajs";
import { describeError, type Logger } from "./log.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import type { WorkerReport, WorkerRole } from "./types.ts";
import type { WireCodec } from "./wire.ts";

/** Options of {@linkcode startReporter}. */
export interface ReporterOptions {
  readonly producer: Producer;
  readonly topic: string;
  /** Encodes the reports (WorkerReport registered under `<topic>-value`). */
  readonly wire: WireCodec;
  readonly role: WorkerRole;
  /** The metrics to report, read at each report. */
  readonly snapshot: () => MetricsSnapshot;
  readonly log: Logger;
  /** Milliseconds between reports. Default 2000. */
  readonly intervalMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
}

/** A running reporter. */
export interface Reporter {
  readonly workerId: string;
  /** Sends one report now. */
  report(): Promise<void>;
  /** Stops the timer and sends the last report, with state `stopped`. */
  stop(): Promise<void>;
}

/** A worker id unique per process run: role, host, pid and a random suffix. */
export function newWorkerId(role: WorkerRole): string {
  return `${role}-${Deno.hostname()}-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
}

/** Starts reporting; the first report goes out at once. */
export function startReporter(options: ReporterOptions): Reporter {
  const now = options.now ?? Date.now;
  const workerId = newWorkerId(options.role);
  const startedAt = now();
  let failures = 0;
  async function send(state: WorkerReport["state"]): Promise<void> {
    const report: WorkerReport = {
      workerId,
      role: options.role,
      host: Deno.hostname(),
      pid: Deno.pid,
      startedAt,
      time: now(),
      state,
      metrics: JSON.stringify(options.snapshot()),
    };
    await options.producer.send({
      topic: options.topic,
      // acks = all: the stages' producer is idempotent, and kafkajs refuses any other acks on
      // one ("Not requiring ack for all messages invalidates the idempotent producer's EoS").
      acks: -1,
      messages: [{
        key: Buffer.from(workerId),
        value: options.wire.encode("WorkerReport", report),
      }],
    });
  }
  let inFlight = false;
  async function report(): Promise<void> {
    if (inFlight) return; // Kafka is slow: skip a beat rather than queue reports
    inFlight = true;
    try {
      await send("running");
      if (failures > 0) options.log.info("metrics reports resumed", { after: failures });
      failures = 0;
    } catch (error) {
      // Reporting must never take a worker down: Kafka being away is reported by lag anyway.
      if (failures++ === 0) {
        options.log.warn("metrics report failed", { error: describeError(error) });
      }
    } finally {
      inFlight = false;
    }
  }
  const timer = setInterval(report, options.intervalMs ?? 2000);
  void report();
  return {
    workerId,
    report,
    async stop() {
      clearInterval(timer);
      await send("stopped").catch(() => {});
    },
  };
}
