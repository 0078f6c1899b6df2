/**
 * Gives freed native memory back to the system. The producer's encoded trades, WebSocket frames
 * and Kafka requests live outside the V8 heap, in glibc malloc's arenas (one per thread that
 * allocates). A flood churns through hundreds of MiB of them; once freed, glibc keeps the pages
 * (it returns only the free top of an arena), so the arenas stayed at their flood size:
 * `bench/producer_flood_memory.ts` measured 84 MiB of arenas two minutes after a flood against 28
 * before it, and one `malloc_trim(0)` brought 93 MiB down to 36. So the producer calls it every
 * few seconds, off the event loop (a nonblocking FFI call runs on another thread), one call at a
 * time.
 *
 * Only where there is a glibc to call (Linux) and the process may use FFI (`--allow-ffi`, which
 * the producer's `-A` grants); elsewhere {@linkcode startMallocTrim} does nothing and says so at
 * debug level.
 *
 * @module
 */
import { type Clock, systemClock, type TimerId } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";

/** glibc's `malloc_trim(0)`, loaded; `close` unloads it. */
export interface MallocTrim {
  /** Resolves to 1 when memory was released, 0 when there was none to release. */
  trim(): Promise<number>;
  close(): void;
}

/** Loads `malloc_trim` from `library` (default glibc's `libc.so.6`); throws when it cannot. */
export function loadMallocTrim(library = "libc.so.6"): MallocTrim {
  const lib = Deno.dlopen(library, {
    malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true },
  });
  return { trim: () => lib.symbols.malloc_trim(0n), close: () => lib.close() };
}

/** Options of {@linkcode startMallocTrim}. */
export interface MallocTrimOptions {
  readonly log: Logger;
  /** Time between trims, ms. Default 5 000. */
  readonly intervalMs?: number;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
  /** Loads the trim. Default {@linkcode loadMallocTrim}. */
  readonly load?: () => MallocTrim;
}

/**
 * Trims every `intervalMs` until the returned function is called: the next trim is set once the
 * last one has finished, so a slow one is never stacked up. Returns a function that does nothing
 * when the trim cannot be loaded (no glibc, or no FFI permission).
 */
export function startMallocTrim(options: MallocTrimOptions): () => void {
  const clock = options.clock ?? systemClock;
  const intervalMs = options.intervalMs ?? 5_000;
  let trim: MallocTrim;
  try {
    trim = (options.load ?? loadMallocTrim)();
  } catch (error) {
    options.log.debug("not trimming malloc's free memory: cannot load malloc_trim", {
      error: (error as Error).message,
    });
    return () => {};
  }
  let stopped = false;
  let running = false;
  let timer: TimerId | undefined;
  const schedule = () => {
    timer = clock.setTimeout(() => {
      timer = undefined;
      running = true;
      trim.trim().catch((error) => {
        options.log.warn("malloc_trim failed", { error: (error as Error).message });
      }).finally(() => {
        running = false;
        if (stopped) trim.close();
        else schedule();
      });
    }, intervalMs);
  };
  schedule();
  return () => {
    if (stopped) return;
    stopped = true;
    if (timer !== undefined) clock.clearTimeout(timer);
    // A trim still running closes the library when it ends.
    if (!running) trim.close();
  };
}
