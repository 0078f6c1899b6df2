/**
 * A deterministic feed of raw trades for processor tests, written as the producer would write
 * them, plus the ground truth the Python reference reads. Includes everything the stages must
 * get right: identical prints, same-millisecond trades, out-of-order prints, price-only `v = 0`
 * updates, fractional crypto volume, every shape of `c`, invalid trades of every kind, and
 * windows that cross hour and day boundaries.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Message, Producer } from "kafkajs";
import { mulberry32 } from "../shared/random.ts";
import type { RawTrade } from "../shared/types.ts";
import { createWireCodec } from "../shared/wire.ts";
import { testRegistry } from "./helpers.ts";

/** A trade as the feed sent it, with its send order. */
export interface SentTrade {
  readonly trade: RawTrade;
  readonly seq: number;
}

const VALID_SYMBOLS = ["AAPL", "MSFT", "TSLA", "BINANCE:BTCUSDT", "OANDA:EUR_USD"];
const BAD_SYMBOLS = ["aapl", "AAPL;DROP TABLE x", "'AAPL'", "ÄPPL", "", "X".repeat(80)];

/** Options of {@linkcode generateFeed}. */
export interface FeedOptions {
  readonly seed: number;
  readonly count: number;
  /** Event time of the first trade (ms). */
  readonly start: number;
  /** Event time advanced per trade on average (ms). */
  readonly stepMs: number;
  /** Ingest time stamped on every trade. */
  readonly ingestTime: number;
}

/** Generates the feed. */
export function generateFeed(options: FeedOptions): SentTrade[] {
  const rand = mulberry32(options.seed);
  const out: SentTrade[] = [];
  const prices = new Map(VALID_SYMBOLS.map((s, i) => [s, 100 + i * 37.5]));
  let clock = options.start;
  let frameSeq = 0;
  while (out.length < options.count) {
    frameSeq++;
    clock += Math.floor(rand() * options.stepMs * 2);
    const size = 1 + Math.floor(rand() * 8);
    const frame: RawTrade[] = [];
    for (let i = 0; i < size; i++) {
      const s = VALID_SYMBOLS[Math.floor(rand() * VALID_SYMBOLS.length)]!;
      const crypto = s.startsWith("BINANCE:");
      const fx = s.startsWith("OANDA:");
      const last = prices.get(s)!;
      const p = Math.max(0.01, Math.round((last + (rand() - 0.5) * 0.5) * 100) / 100);
      prices.set(s, p);
      const shapes = [["1", "8", "24", "12"], [], null, "ABSENT"] as const;
      frame.push({
        s,
        p: crypto ? Math.round(p * 1000 + rand() * 100) / 1000 : p,
        // slightly out of order: up to 1.5 s back
        t: clock - (rand() < 0.1 ? Math.floor(rand() * 1500) : 0),
        v: fx ? 0 : crypto ? Math.round(rand() * 1e6) / 1e6 : 1 + Math.floor(rand() * 300),
        c: crypto ? null : shapes[Math.floor(rand() * shapes.length)]!,
        ingestTime: options.ingestTime,
        connectionId: "feed-1",
        frameSeq,
        tradeIndex: i,
      });
      // identical prints in one frame
      if (rand() < 0.08) frame.push({ ...frame.at(-1)!, tradeIndex: frame.length });
      // an invalid trade now and then
      if (rand() < 0.03) {
        const kind = Math.floor(rand() * 6);
        const base = { ...frame.at(-1)!, tradeIndex: frame.length };
        frame.push(
          kind === 0
            ? { ...base, p: 0 }
            : kind === 1
            ? { ...base, p: -base.p }
            : kind === 2
            ? { ...base, v: -1 }
            : kind === 3
            ? { ...base, s: BAD_SYMBOLS[Math.floor(rand() * BAD_SYMBOLS.length)]! }
            : kind === 4
            ? { ...base, t: Math.floor(base.t / 1000) } // seconds, not milliseconds
            : { ...base, t: base.ingestTime + 86_400_000 }, // a day in the future
        );
      }
    }
    for (const trade of frame) {
      if (out.length < options.count) out.push({ trade, seq: out.length });
    }
  }
  return out;
}

/**
 * Produces the feed to `topic` keyed by symbol, in send order, in batches, in the Confluent wire
 * format with `Trade` registered under `<topic>-value` as the producer does.
 */
export async function produceFeed(
  producer: Producer,
  topic: string,
  feed: readonly SentTrade[],
  batchSize = 500,
): Promise<void> {
  const wire = createWireCodec(testRegistry());
  await wire.register({ Trade: topic });
  for (let i = 0; i < feed.length; i += batchSize) {
    const messages: Message[] = feed.slice(i, i + batchSize).map(({ trade }) => ({
      key: Buffer.from(trade.s),
      value: wire.encode("Trade", trade),
    }));
    await producer.send({ topic, acks: -1, messages });
  }
}

/** The feed as the reference reads it: one JSON object a line. */
export function groundTruthNdjson(feed: readonly SentTrade[]): string {
  return feed.map(({ trade, seq }) =>
    JSON.stringify({
      s: trade.s,
      p: trade.p,
      t: trade.t,
      v: trade.v,
      seq,
      ingest: trade.ingestTime,
    })
  ).join("\n") + "\n";
}
