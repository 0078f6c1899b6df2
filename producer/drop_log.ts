/**
 * Counting and logging trades dropped because the buffer is full, in aggregate: one line when
 * dropping starts, one per interval while it goes on, one when it has stopped for an interval.
 *
 * @module
 */
import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { ProducerMetrics } from "./metrics.ts";

/** Counts drops into `metrics.tradesDropped` and logs them in aggregate. */
export class DropLog {
  readonly #metrics: ProducerMetrics;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #capacity: number;
  #inEpisode = 0;
  #sinceLog = 0;
  #lastLog = 0;
  #lastDrop = 0;

  constructor(
    metrics: ProducerMetrics,
    log: Logger,
    options: { clock: Clock; intervalMs: number; capacity: number },
  ) {
    this.#metrics = metrics;
    this.#log = log;
    this.#clock = options.clock;
    this.#intervalMs = options.intervalMs;
    this.#capacity = options.capacity;
  }

  /** One trade dropped. */
  dropped(): void {
    const now = this.#clock.now();
    this.#metrics.tradesDropped++;
    this.#inEpisode++;
    this.#sinceLog++;
    this.#lastDrop = now;
    if (this.#inEpisode === 1) {
      this.#lastLog = now;
      this.#sinceLog = 0;
      this.#log.error("buffer full: dropping new trades until Kafka catches up", {
        bufferCapacity: this.#capacity,
        droppedTotal: this.#metrics.tradesDropped,
      });
    } else if (now - this.#lastLog >= this.#intervalMs) {
      this.#log.error("buffer still full: trades dropped", {
        dropped: this.#sinceLog,
        sinceMs: now - this.#lastLog,
        droppedTotal: this.#metrics.tradesDropped,
      });
      this.#lastLog = now;
      this.#sinceLog = 0;
    }
  }

  /** One trade accepted: ends an episode of drops once none happened for an interval. */
  accepted(): void {
    if (this.#inEpisode > 0 && this.#clock.now() - this.#lastDrop >= this.#intervalMs) this.end();
  }

  /** Ends an episode of drops now (at shutdown), logging its total. */
  end(): void {
    if (this.#inEpisode === 0) return;
    this.#log.warn("buffer has room again: trades dropped in this episode", {
      droppedThisEpisode: this.#inEpisode,
      droppedTotal: this.#metrics.tradesDropped,
    });
    this.#inEpisode = 0;
    this.#sinceLog = 0;
  }
}
