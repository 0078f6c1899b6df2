/**
 * Publishes gold candles to the candle-updates topic after their rows were written, for the
 * live market page. Best effort by design: Cassandra's gold tables are the record, so a publish
 * never holds up or fails the stage.
 *
 * - `publish()` returns at once; one send is in flight at a time, and candles queued meanwhile
 *   are coalesced per (interval, symbol, window): only the newest state of each is sent, so a
 *   slow or absent Kafka costs at most one pending entry per candle, capped at `maxPending`;
 * - a failed send is counted (`pipeline_gold_candle_updates_failed_total`, in updates, by
 *   reason) and dropped: the next flush of that candle publishes a newer state anyway.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Producer } from "kafkajs";
import { describeError, type Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { CandleUpdate } from "../../shared/types.ts";
import type { WireCodec } from "../../shared/wire.ts";
import { type Candle, vwap } from "./candle.ts";
import { formatDecimal } from "../../shared/decimal.ts";

/** Options of {@linkcode createCandlePublisher}. */
export interface CandlePublisherOptions {
  readonly producer: Pick<Producer, "send">;
  readonly topic: string;
  /** Encodes the updates (CandleUpdate registered under `<topic>-value`). */
  readonly wire: WireCodec;
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  /** Most updates in one send. Default 500. */
  readonly maxBatch?: number;
  /** Most distinct candles waiting; the oldest waiting one is dropped past it. Default 20000. */
  readonly maxPending?: number;
}

/** The running publisher. */
export interface CandlePublisher {
  /** Queues the updates for sending and returns at once. */
  publish(updates: readonly CandleUpdate[]): void;
  /** Waits until nothing is queued or in flight, or `timeoutMs` passed. Never throws. */
  drain(timeoutMs: number): Promise<void>;
}

/** The update of a candle written at `updatedAt` (epoch ms). */
export function candleUpdateOf(candle: Candle, updatedAt: number): CandleUpdate {
  const average = vwap(candle);
  return {
    symbol: candle.symbol,
    interval: candle.interval,
    windowStart: candle.windowStart,
    windowEnd: candle.windowEnd,
    open: candle.open,
    high: candle.high,
    low: candle.low,
    close: candle.close,
    volume: formatDecimal(candle.volume),
    vwap: average === null ? null : formatDecimal(average),
    tradeCount: candle.tradeCount,
    isFinal: candle.isFinal,
    updatedAt,
  };
}

/** Creates a publisher over the stage's producer. */
export function createCandlePublisher(options: CandlePublisherOptions): CandlePublisher {
  const { producer, topic, wire, log } = options;
  const maxBatch = options.maxBatch ?? 500;
  const maxPending = options.maxPending ?? 20_000;
  const published = options.metrics.counter(
    "pipeline_gold_candle_updates_published_total",
    "Candle updates published to the candle-updates topic (best effort, for the market page).",
  );
  const failed = options.metrics.counter(
    "pipeline_gold_candle_updates_failed_total",
    "Candle updates not published, by reason (send, encode, overflow); gold rows are unaffected.",
  );
  const pending = new Map<string, CandleUpdate>();
  let running: Promise<void> | undefined;
  let failures = 0;

  async function pump(): Promise<void> {
    while (pending.size > 0) {
      const batch: CandleUpdate[] = [];
      for (const [key, update] of pending) {
        pending.delete(key);
        batch.push(update);
        if (batch.length >= maxBatch) break;
      }
      const messages: { key: Buffer; value: Buffer }[] = [];
      for (const update of batch) {
        try {
          messages.push({
            key: Buffer.from(update.symbol),
            value: wire.encode("CandleUpdate", update),
          });
        } catch (error) {
          failed.inc({ stage: "gold", reason: "encode" });
          log.warn("cannot encode a candle update", { error: describeError(error) });
        }
      }
      if (messages.length === 0) continue;
      try {
        await producer.send({ topic, messages });
        published.inc({ stage: "gold" }, messages.length);
        if (failures > 0) log.info("candle updates publish again", { afterFailures: failures });
        failures = 0;
      } catch (error) {
        failed.inc({ stage: "gold", reason: "send" }, messages.length);
        // Once, then every 100th: Kafka down must not flood the log.
        if (failures++ % 100 === 0) {
          log.warn("candle updates not published (best effort; gold rows are written)", {
            topic,
            failures,
            error: describeError(error),
          });
        }
      }
    }
  }

  function start(): void {
    if (running) return;
    running = pump().finally(() => {
      running = undefined;
      if (pending.size > 0) start();
    });
  }

  return {
    publish(updates) {
      for (const update of updates) {
        const key = `${update.interval}\u0000${update.symbol}\u0000${update.windowStart}`;
        pending.delete(key); // the newest state goes to the back of the queue
        pending.set(key, update);
        if (pending.size > maxPending) {
          const oldest = pending.keys().next().value!;
          pending.delete(oldest);
          failed.inc({ stage: "gold", reason: "overflow" });
        }
      }
      if (pending.size > 0) start();
    },
    async drain(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (running && Date.now() < deadline) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          running,
          new Promise<void>((resolve) => timer = setTimeout(resolve, deadline - Date.now())),
        ]);
        clearTimeout(timer);
      }
    },
  };
}
