/**
 * A stage's consumer stops polling Kafka while its input is idle, and still answers at once when
 * a record arrives.
 *
 * A stage's fetch holds (`FETCH_HOLD_MS`, `processor/worker.ts`): the broker answers once 256 KiB
 * are waiting or the hold has passed (silver 10 ms, the others 100 ms), so that records arriving
 * together form one batch. With nothing arriving, every hold ends empty and the next fetch goes
 * out at once: silver asked 100 times a second, the others 10. Measured with the three stages
 * (and their standbys) running on an empty topic, nothing else, 20 s: silver used 6.1% of a core,
 * Kafka 9.6% (1.6% with no consumer); at 2,000 trades/s Kafka used 11-17%. A market is closed
 * most hours of the week, and that was the pipeline's cost all that time.
 *
 * Here a fetch that returned no record makes the next one wait for the first record instead
 * (`minBytes` 1) for up to {@linkcode IDLE_FETCH_WAIT_MS}, Kafka's own default; the first fetch
 * that returns records brings the hold back. So an idle stage asks twice a second; a record
 * that ends the idle wait is handed over at once, with what came with it; the records after it
 * are held as before.
 *
 * Measured the same way after: silver 1.2% of a core (bronze 1.4 -> 1.1, gold 2.1 -> 1.6), Kafka
 * 3.5%; the idle pipeline, standbys included, from about 23% of a core to 10%. Under load the
 * CPU stayed within the noise, and the way to silver got shorter: a silver hold that ended empty
 * between two of the producer's sends used to leave the next send waiting up to 10 ms; now it is
 * fetched as it lands. Ingest->silver p50/p99 at 500 trades/s 10.7/28.3 and 10.7/28.7 ms against
 * 15.9/34.7 and 16.5/37.4 without; at 2,000/s 14.4/42.8 and 13.3/48.2 against 30.2/96.6 and
 * 19.3/44.4. Stages, Kafka and Cassandra: 57-59% of a core at 500/s and 69-79% at 2,000 with it,
 * 54-58% and 70-90% without (`deno task bench:pipeline --rates 500,2000 --latency-rate 2000
 * --duration-s 45 --warmup-s 20`, alternating without and with, alone, load 1.1-3.1; the first
 * run without saw 11% of a core of other work at 2,000/s).
 *
 * Installed on kafkajs's `ConsumerGroup` prototype by `createKafka`; it changes only consumers
 * created with `minBytes` above 1 (the stages'), and only the two settings a fetch reads. With
 * several brokers, a consumer's fetchers (one per broker) share the mode: either mode only changes
 * how long a broker may wait before answering, never what it answers.
 *
 * @module
 */
import ConsumerGroup from "kafkajs/src/consumer/consumerGroup.js";

/** How long an idle stage's fetch may wait for its first record, ms (`fetch.max.wait.ms`). */
export const IDLE_FETCH_WAIT_MS = 500;

/** What a fetch asks the broker to wait for. */
export interface FetchWait {
  /** The broker answers once this many bytes are waiting... */
  readonly minBytes: number;
  /** ...or once this many ms have passed. */
  readonly maxWaitTime: number;
}

/** The parts of kafkajs's `ConsumerGroup` this module reads and replaces. */
export interface FetchingGroup {
  minBytes: number;
  maxWaitTime: number;
  fetch(nodeId: number): Promise<readonly { readonly messages: readonly unknown[] }[]>;
}

/**
 * What the next fetch waits for: the consumer's own hold, or, when its last fetch returned no
 * record, the first record for up to {@linkcode IDLE_FETCH_WAIT_MS}. A consumer that holds
 * nothing (`minBytes` 1) is answered at the first record already and keeps its own wait.
 */
export function nextFetchWait(hold: FetchWait, idle: boolean): FetchWait {
  if (!idle || hold.minBytes <= 1) return hold;
  return { minBytes: 1, maxWaitTime: Math.max(IDLE_FETCH_WAIT_MS, hold.maxWaitTime) };
}

/** Per consumer group: its own hold, as created, and whether its last fetch was empty. */
const states = new WeakMap<FetchingGroup, { hold: FetchWait; idle: boolean }>();

/** `fetch` (kafkajs's) that waits as {@linkcode nextFetchWait} says. */
export function idleAwareFetch(
  fetch: FetchingGroup["fetch"],
): (this: FetchingGroup, nodeId: number) => ReturnType<FetchingGroup["fetch"]> {
  return async function (this: FetchingGroup, nodeId: number) {
    let state = states.get(this);
    if (state === undefined) {
      const hold = { minBytes: this.minBytes, maxWaitTime: this.maxWaitTime };
      states.set(this, state = { hold, idle: false });
    }
    const wait = nextFetchWait(state.hold, state.idle);
    this.minBytes = wait.minBytes;
    this.maxWaitTime = wait.maxWaitTime;
    const batches = await fetch.call(this, nodeId);
    state.idle = !batches.some((batch) => batch.messages.length > 0);
    return batches;
  };
}

const prototype = (ConsumerGroup as unknown as { prototype: FetchingGroup }).prototype;

/** kafkajs's `fetch`, as shipped. */
export const ORIGINAL_FETCH = prototype.fetch;

const replacement = idleAwareFetch(ORIGINAL_FETCH);

/** Installs {@linkcode idleAwareFetch} on kafkajs's `ConsumerGroup` (see the module); idempotent. */
export function stopIdlePolling(): void {
  prototype.fetch = replacement;
}
