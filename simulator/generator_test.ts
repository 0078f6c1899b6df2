import assert from "node:assert/strict";
import { createTradeGenerator, type GeneratedTrade, mulberry32, symbolKind } from "./generator.ts";

const SYMBOLS = ["AAPL", "MSFT", "TSLA", "BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "OANDA:EUR_USD"];

function run(seed: number, ticks = 200, perTick = 50): GeneratedTrade[][] {
  const generator = createTradeGenerator({ seed, maxTradesPerFrame: 20 });
  const frames: GeneratedTrade[][] = [];
  for (let i = 0; i < ticks; i++) {
    frames.push(...generator.frames(1_700_000_000_000 + i * 10, perTick, SYMBOLS));
  }
  return frames;
}

Deno.test("mulberry32() is seeded and uniform enough", () => {
  const a = mulberry32(7);
  const b = mulberry32(7);
  const xs = Array.from({ length: 10_000 }, () => a());
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
});

Deno.test("symbolKind() tells stocks, crypto and FX apart", () => {
  assert.equal(symbolKind("AAPL"), "stock");
  assert.equal(symbolKind("BRK.B"), "stock");
  assert.equal(symbolKind("BINANCE:BTCUSDT"), "crypto");
  assert.equal(symbolKind("OANDA:EUR_USD"), "fx");
});

Deno.test("the generator is deterministic: same seed and calls, same frames; another seed differs", () => {
  assert.equal(JSON.stringify(run(42)), JSON.stringify(run(42)));
  assert.notEqual(JSON.stringify(run(42)), JSON.stringify(run(43)));
});

Deno.test("the generator makes exactly the requested number of trades in bounded frames", () => {
  const generator = createTradeGenerator({ seed: 1, maxTradesPerFrame: 20 });
  for (const count of [0, 1, 7, 500, 5_000]) {
    const frames = generator.frames(1_700_000_000_000, count, SYMBOLS);
    assert.equal(frames.reduce((n, f) => n + f.length, 0), count);
    assert.ok(frames.every((f) => f.length >= 1 && f.length <= 20));
  }
  assert.deepEqual(generator.frames(1, 10, []), [], "no subscriptions, no trades");
});

Deno.test("the generator only trades the symbols asked for", () => {
  const frames = createTradeGenerator({ seed: 3 }).frames(1_700_000_000_000, 1_000, [
    "AAPL",
    "BINANCE:BTCUSDT",
  ]);
  assert.deepEqual([...new Set(frames.flat().map((t) => t.s))].sort(), ["AAPL", "BINANCE:BTCUSDT"]);
});

Deno.test("the generator produces every quirk of the real feed", () => {
  const frames = run(99);
  const trades = frames.flat();
  const shapes = new Set(
    trades.map((t) =>
      !("c" in t) ? "absent" : t.c === null ? "null" : t.c!.length === 0 ? "empty" : "list"
    ),
  );
  assert.deepEqual([...shapes].sort(), ["absent", "empty", "list", "null"]);
  const crypto = trades.filter((t) => t.s.startsWith("BINANCE:"));
  assert.ok(crypto.every((t) => t.c === null), "crypto has c: null");
  assert.ok(crypto.some((t) => !Number.isInteger(t.v)), "fractional crypto volume");
  assert.ok(
    trades.filter((t) => t.s === "OANDA:EUR_USD").every((t) => t.v === 0),
    "FX is price-only",
  );
  assert.ok(crypto.some((t) => t.v === 0), "some crypto prints are price-only");
  assert.ok(
    trades.filter((t) => symbolKind(t.s) === "stock").every((t) =>
      Number.isInteger(t.v) && t.v > 0
    ),
  );
  assert.ok(trades.every((t) => t.p > 0 && Number.isFinite(t.p) && Number.isSafeInteger(t.t)));
  assert.ok(
    frames.some((f) => f.some((t, i) => i > 0 && JSON.stringify(t) === JSON.stringify(f[i - 1]))),
    "identical prints within one frame",
  );
  assert.ok(
    frames.some((f) =>
      f.some((t, i) => i > 0 && t.s === f[i - 1]!.s && t.t === f[i - 1]!.t && t.p !== f[i - 1]!.p)
    ),
    "several trades of one symbol in the same millisecond",
  );
  const latest = new Map<string, number>();
  const late = trades.filter((t) => {
    const before = latest.get(t.s) ?? 0;
    latest.set(t.s, Math.max(before, t.t));
    return t.t < before;
  });
  assert.ok(late.length > 0 && late.length < trades.length * 0.1, `late prints: ${late.length}`);
  const bySymbol = new Map<string, number[]>();
  for (const t of trades) bySymbol.set(t.s, [...(bySymbol.get(t.s) ?? []), t.p]);
  for (const [symbol, prices] of bySymbol) {
    assert.ok(new Set(prices).size > 5, `${symbol} price walks`);
    const first = prices[0]!;
    assert.ok(prices.every((p) => p > first / 2 && p < first * 2), `${symbol} walks, not jumps`);
  }
});
