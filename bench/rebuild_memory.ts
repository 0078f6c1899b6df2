/**
 * Heap a rebuild needs per trade of its span, measured: `n` raw records of one UTC day (five
 * symbols), re-derived by silver's rules, the stored silver rows read back (a copy), compared and
 * folded into every interval, as `rebuild.ts` holds them. README "Rebuilding silver and gold"
 * quotes it; `BYTES_PER_TRADE` in `rebuild/span.ts` follows it.
 *
 *     deno run -A --v8-flags=--expose-gc bench/rebuild_memory.ts 1000000
 *
 * @module
 */
import { deriveSilver, diffSilver, foldCandles, type SourceRecord } from "../rebuild/plan.ts";

const SYMBOLS = ["AAPL", "MSFT", "TSLA", "BINANCE:BTCUSDT", "OANDA:EUR_USD"];
const DAY = 86_400_000;

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 200_000);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  const day = Date.parse("2026-12-05T00:00:00Z");
  gc();
  const base = Deno.memoryUsage().heapUsed;
  const records: SourceRecord[] = [];
  for (let i = 0; i < n; i++) {
    const t = day + Math.floor((i * DAY) / n);
    records.push({
      raw: {
        s: SYMBOLS[i % SYMBOLS.length]!,
        p: 100 + (i % 50) / 7,
        t,
        v: 1 + (i % 9),
        c: ["1", "12"],
        ingestTime: t + 40,
        connectionId: "c0ffee-1",
        frameSeq: i,
        tradeIndex: 0,
      },
      position: { topic: "market.trades.raw", partition: i % 3, offset: Math.floor(i / 3) },
    });
  }
  const rules = {
    maxFutureMs: 60_000,
    minEventTime: 0,
    minPrice: 0,
    maxPrice: 1e9,
    maxVolume: 1e12,
  };
  const derived = deriveSilver(records, { from: day, to: day + DAY }, rules);
  const stored = derived.trades.map((t) => ({ ...t, conditions: [...t.conditions] }));
  const diff = diffSilver(stored, derived.trades, derived.read);
  const candles = foldCandles(derived.trades);
  gc();
  const used = Deno.memoryUsage().heapUsed - base;
  console.log(
    `${n} trades: ${Math.round(used / 1e6)} MB of heap, ${Math.round(used / n)} B a trade ` +
      `(${candles.size} candles, ${diff.unchanged} silver rows compared)`,
  );
}
