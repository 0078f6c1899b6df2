/**
 * Producer buffer memory: what a full buffer costs while Kafka is down, so the producer's heap
 * bound (`PRODUCER_V8_FLAGS`) can be checked against `PRODUCER_BUFFER_MAX_TRADES`.
 *
 * Builds trades the way the producer does (an Avro `Trade` record per trade, keyed by one
 * `Buffer` per symbol) and holds `--trades` of them in the sink's {@linkcode TradeBuffer} as
 * kafkajs messages, exactly what waits there while no send succeeds.
 * Prints the heap and off-heap bytes per buffered trade. Run it with the producer's flags to see
 * that a full default buffer fits:
 *
 *   deno run -A --v8-flags=--expose-gc,--max-old-space-size=128,--max-semi-space-size=8 \
 *     bench/producer_buffer_memory.ts [--trades 200000]
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import type { Message } from "kafkajs";
import { memoryWire } from "../shared/memory_registry.ts";
import { TradeBuffer } from "../producer/trade_buffer.ts";

const SYMBOLS = ["AAPL", "MSFT", "AMZN", "NVDA", "BINANCE:BTCUSDT", "BINANCE:ETHUSDT"];
const FRAME_TRADES = 50;

function parseTrades(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: { trades: { type: "string", default: "200000" } },
  });
  const value = Number(values.trades);
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`--trades must be a positive integer, got ${values.trades}`);
  }
  return value;
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc so the figures are after a full GC");
  gc();
  gc();
}

function snapshot() {
  collect();
  const m = Deno.memoryUsage();
  return { heap: m.heapUsed, external: m.external, rss: m.rss };
}

const trades = parseTrades(Deno.args);
const wire = await memoryWire(); // the producer's framing; the id is the registry's business
const buffer = new TradeBuffer<Message>({ maxItems: trades, batchMaxItems: 1000 });
const keys = new Map(SYMBOLS.map((s) => [s, Buffer.from(s)]));
const before = snapshot();
let frameSeq = 0;
let ingestTime = Date.UTC(2026, 11, 1, 14, 30);
while (buffer.size < trades) {
  frameSeq++;
  ingestTime += 3;
  const timestamp = String(ingestTime);
  for (let i = 0; i < FRAME_TRADES && buffer.size < trades; i++) {
    const s = SYMBOLS[(frameSeq + i) % SYMBOLS.length]!;
    const value = wire.encode("Trade", {
      s,
      p: 100 + (frameSeq % 1000) / 100,
      t: ingestTime - 40,
      v: (i % 7) + 0.5,
      c: ["1", "12"],
      ingestTime,
      connectionId: "c0ffee00-0000-4000-8000-000000000001",
      frameSeq,
      tradeIndex: i,
    });
    buffer.push({ key: keys.get(s)!, value, timestamp });
  }
}
const after = snapshot();
// Read after the snapshot, so the buffer is alive when it is taken.
if (buffer.size !== trades) throw new Error(`buffered ${buffer.size} trades, not ${trades}`);
const perTrade = (bytes: number) => (bytes / trades).toFixed(0);
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
console.log(
  `${trades} buffered trades: heap +${mib(after.heap - before.heap)} MiB (${
    perTrade(after.heap - before.heap)
  } B/trade), off-heap +${mib(after.external - before.external)} MiB (${
    perTrade(after.external - before.external)
  } B/trade), RSS ${mib(before.rss)} -> ${mib(after.rss)} MiB`,
);
