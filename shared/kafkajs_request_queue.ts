/**
 * Stops kafkajs 2.2.4's idle request-queue loop (tulios/kafkajs#1556, #1704; unfixed upstream).
 *
 * Each broker connection's `RequestQueue.checkPendingRequests` ends by calling
 * `scheduleCheckPendingRequests`, which, with no request pending and no client-side throttling,
 * computes a negative delay (`throttledUntil` is -1) and sets a timer anyway; that timer runs
 * `checkPendingRequests` again, and so on: every connection of every client runs a callback about
 * every millisecond, forever, busy or idle. Profiled in the producer at 500 trades/s it was a
 * tenth of the main thread's CPU (`checkPendingRequests` from a timer), and the same in each of
 * its Kafka workers; the stages' consumers and producers run it too.
 *
 * {@linkcode stopIdleRequestQueueLoop} replaces `scheduleCheckPendingRequests` with kafkajs's own,
 * except that it sets no timer when nothing is pending and the queue is not throttled. Nothing
 * is lost by that: a request pushed later is sent at once or queued (and then schedules its own
 * check), and every answered request checks the queue again (`fulfillRequest`), as in kafkajs.
 * Pending or throttled, the timer is set exactly as kafkajs sets it.
 *
 * @module
 */
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";

/** The parts of kafkajs's `RequestQueue` this module reads and replaces. */
export interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: unknown;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's interval between checks of a queue that has requests pending, ms. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

const prototype = (RequestQueue as unknown as { prototype: RequestQueueInternals }).prototype;

/** kafkajs's `scheduleCheckPendingRequests`, as shipped (for tests). */
export const ORIGINAL_SCHEDULE = prototype.scheduleCheckPendingRequests;

function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
  if (this.throttleCheckTimeoutId) return;
  let scheduleAt = this.throttledUntil - Date.now();
  if (this.pending.length > 0) {
    scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL;
  } else if (scheduleAt <= 0) {
    // Nothing waits and nothing throttles: the next push or answer checks the queue itself.
    return;
  }
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, scheduleAt);
}

/** Installs the loop-free `scheduleCheckPendingRequests` (see the module doc); idempotent. */
export function stopIdleRequestQueueLoop(): void {
  prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
}
