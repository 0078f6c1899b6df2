/**
 * Waiting a while, the one way every part of the pipeline does it: {@linkcode delay} ends early
 * (resolves) when its signal aborts, for loops that check their own stop condition after each
 * wait; {@linkcode delayUnlessAborted} rejects with the abort reason, for waits whose caller must
 * not go on as if the time had passed. Components whose timing is under test take an injected
 * `Clock` (`shared/clock.ts`) instead.
 *
 * @module
 */

/** Waits `ms`; resolves at once when `signal` aborts (or has aborted). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Waits `ms`; rejects with `signal.reason` as soon as `signal` aborts (or has aborted). */
export function delayUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
