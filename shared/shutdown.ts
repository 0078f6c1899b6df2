/**
 * What SIGINT and SIGTERM mean to every entry point: the first stops in order (the producer
 * flushes, a stage commits what it wrote, servers close); a repeat within
 * {@linkcode REPEAT_GRACE_MS} of the first is the same stop, not a second request; a signal after
 * that forces an exit at once.
 *
 * The grace exists because one Ctrl-C arrives more than once: a terminal signals the whole
 * process group, so `deno task producer` gets SIGINT from the terminal and the same SIGINT again
 * from the task runner forwarding it, a millisecond apart; a supervisor that is itself signalled
 * passes SIGTERM on to children that already had the terminal's SIGINT. Treated as "second
 * signal: exit without flushing", an ordinary Ctrl-C lost the trades the producer held.
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** Repeats within this long of the first signal are the same request to stop, ms. */
export const REPEAT_GRACE_MS = 1_000;

/** What one signal means: the first stop, a repeat of it, or a request to exit at once. */
export type SignalDecision = "stop" | "repeat" | "force";

/**
 * A gate that classifies each signal by when it came: the first is `stop`, any within `graceMs`
 * of the first is `repeat`, any later one `force`.
 */
export function createSignalGate(
  graceMs: number = REPEAT_GRACE_MS,
  now: () => number = () => performance.now(),
): () => SignalDecision {
  let firstAt: number | undefined;
  return () => {
    const at = now();
    if (firstAt === undefined) {
      firstAt = at;
      return "stop";
    }
    return at - firstAt < graceMs ? "repeat" : "force";
  };
}

/** Options of {@linkcode stopOnSignals}. */
export interface StopOnSignalsOptions {
  readonly log: Logger;
  /** Default SIGINT and SIGTERM. */
  readonly signals?: readonly Deno.Signal[];
  /** Default {@linkcode REPEAT_GRACE_MS}. */
  readonly graceMs?: number;
  /** What a forced exit does once logged. Default `Deno.exit(130)`. */
  readonly onForce?: (signal: Deno.Signal) => void;
  /** What a forced exit skips, for its log line. Default "without finishing in order". */
  readonly skipped?: string;
}

/**
 * Aborts `controller` on the first signal, ignores repeats within the grace period, and forces
 * an exit on a signal after it. Returns a function that removes the listeners.
 */
export function stopOnSignals(
  controller: AbortController,
  options: StopOnSignalsOptions,
): () => void {
  const { log } = options;
  const graceMs = options.graceMs ?? REPEAT_GRACE_MS;
  const gate = createSignalGate(graceMs);
  const onForce = options.onForce ?? (() => Deno.exit(130));
  const listeners = (options.signals ?? ["SIGINT", "SIGTERM"]).map((signal) => {
    const listener = () => {
      switch (gate()) {
        case "stop":
          log.info(`${signal}: stopping (a further signal after ${graceMs} ms exits at once)`);
          controller.abort();
          return;
        case "repeat":
          log.info(`${signal} again within ${graceMs} ms: the same stop, still finishing`);
          return;
        case "force":
          log.error(
            `second ${signal}: exiting at once ${options.skipped ?? "without finishing in order"}`,
          );
          onForce(signal);
      }
    };
    Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });
  return () => {
    for (const { signal, listener } of listeners) Deno.removeSignalListener(signal, listener);
  };
}
