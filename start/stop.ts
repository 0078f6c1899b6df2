/**
 * How a run of `deno task start` comes to stop: a signal (SIGINT, SIGTERM, SIGHUP) or a failure
 * (a child dying while starting or too often, readiness never reached). The first request wins
 * and aborts one signal the start-up steps watch; the stop itself is ordered (`children.ts`).
 *
 * Signals follow `shared/shutdown.ts`: repeats within a second of the first are the same Ctrl-C;
 * a signal after that, or any signal once a failure is stopping the run, kills every child at
 * once (no flush, no commit) and exits 130.
 *
 * @module
 */
import { createSignalGate } from "../shared/shutdown.ts";

/** Why the run stops: a signal, or a failure with the message to show. */
export type StopReason = { kind: "signal"; name: string } | { kind: "failure"; message: string };

/** Thrown inside the start-up sequence when a stop was requested; not an error. */
export class Stopping extends Error {
  constructor() {
    super("stopping");
  }
}

/** The run's stop request. */
export interface StopControl {
  /** Aborted once a stop is requested. */
  readonly signal: AbortSignal;
  /** Why, once requested. */
  readonly reason: StopReason | null;
  /** Requests the stop; a later request does not change the reason. */
  request(reason: StopReason): void;
  /** Throws {@linkcode Stopping} once a stop is requested. */
  throwIfStopping(): void;
}

/** A run not asked to stop yet. */
export function createStopControl(): StopControl {
  const controller = new AbortController();
  let reason: StopReason | null = null;
  return {
    signal: controller.signal,
    get reason() {
      return reason;
    },
    request(next) {
      if (reason) return;
      reason = next;
      controller.abort();
    },
    throwIfStopping() {
      if (reason) throw new Stopping();
    },
  };
}

/**
 * Turns SIGINT, SIGTERM and SIGHUP into a stop request of `stop`; a forced exit first calls
 * `beforeForce` with the signal's name (to leave the view, say so and kill the children).
 * Returns a function that removes the listeners.
 */
export function stopOnStartSignals(
  stop: StopControl,
  beforeForce: (name: string) => void,
): () => void {
  const gate = createSignalGate();
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((name) => {
    const handler = () => {
      const decision = gate();
      if (decision === "repeat") return;
      if (decision === "force" || stop.reason) {
        beforeForce(name);
        Deno.exit(130);
      }
      stop.request({ kind: "signal", name });
    };
    Deno.addSignalListener(name, handler);
    return { name, handler };
  });
  return () => {
    for (const { name, handler } of handlers) Deno.removeSignalListener(name, handler);
  };
}
