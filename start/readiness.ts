/**
 * When `deno task start` calls the pipeline ready: the simulator answers its control route, then
 * the status endpoint's `/readyz` says every worker reports and its `/metrics` show the producer
 * holding the feed connection. Each wait has a deadline and ends early on a stop request; a
 * deadline passed is an error naming what was still missing and the children's last lines.
 *
 * @module
 */
import type { Config } from "../shared/config.ts";
import { delay } from "../shared/delay.ts";
import { describeError } from "../shared/log.ts";
import { type Entry, tailOf } from "./children.ts";
import { indent, type Output } from "./output.ts";
import type { StopControl } from "./stop.ts";
import { parseMetricTotals } from "./view.ts";

const READY_TIMEOUT_MS = 180_000;
const SIMULATOR_TIMEOUT_MS = 30_000;
/** How long one request to the status endpoint or the simulator may take. */
export const FETCH_TIMEOUT_MS = 2_000;

/** The status endpoint's bearer token, when one is set. */
export function authHeaders(config: Config | null): Record<string, string> {
  // No keep-alive: a pooled connection to the status endpoint held its shutdown (it waits for
  // open connections) until it was killed, whenever start stopped it soon after a poll.
  const close = { connection: "close" };
  return config?.status.token.isSet
    ? { ...close, authorization: `Bearer ${config.status.token.reveal()}` }
    : close;
}

/** True when `url` answers 2xx within the fetch timeout. */
export async function answers(url: string, config: Config | null): Promise<boolean> {
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

/** Waits until the simulator on `port` answers. */
export async function waitSimulator(port: number, entry: Entry, stop: StopControl): Promise<void> {
  const deadline = Date.now() + SIMULATOR_TIMEOUT_MS;
  while (Date.now() < deadline) {
    stop.throwIfStopping();
    if (await answers(`http://127.0.0.1:${port}/control/stats`, null)) return;
    await delay(200, stop.signal);
  }
  throw new Error(
    `the simulator did not answer on 127.0.0.1:${port} within ${SIMULATOR_TIMEOUT_MS / 1000} s` +
      `; its last lines:\n${indent(tailOf(entry))}`,
  );
}

/** Options of {@linkcode waitReady}. */
export interface WaitReadyOptions {
  readonly config: Config;
  readonly out: Output;
  readonly stop: StopControl;
  /** The feed the producer must be connected to. */
  readonly feedUrl: string;
  /** The children, for their last lines when the deadline passes. */
  readonly entries: Iterable<Entry>;
}

/** Waits until the status endpoint at `base` says the pipeline is ready; notes every 20 s. */
export async function waitReady(base: string, options: WaitReadyOptions): Promise<void> {
  const { config, out, stop } = options;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let reasons: string[] = ["the status endpoint did not answer"];
  let nextNote = Date.now() + 20_000;
  while (Date.now() < deadline) {
    stop.throwIfStopping();
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
        reasons = [`the producer is not connected to ${new URL(options.feedUrl).origin} yet`];
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
    await delay(500, stop.signal);
  }
  const quiet = [...options.entries].map((e) => `${e.name}:\n${indent(tailOf(e).slice(-8))}`)
    .join("\n");
  throw new Error(
    `the pipeline did not become ready within ${READY_TIMEOUT_MS / 1000} s: ${
      reasons.join("; ")
    }. Last lines of each process:\n${quiet}`,
  );
}
