/**
 * Candles for the export tests: ordinary ones and the awkward ones (long decimals, a null VWAP,
 * symbols with `:` `.` `/` `-`).
 *
 * @module
 */
import type { CandleWithSum } from "../shared/gold_table.ts";

/** A 5-minute candle of `symbol` at `windowStart`, with `overrides`. */
export function testCandle(
  overrides: Partial<CandleWithSum> = {},
): CandleWithSum {
  const windowStart = overrides.windowStart ?? Date.parse("2026-12-01T14:05:00Z");
  return {
    symbol: "BINANCE:BTCUSDT",
    interval: "5m",
    windowStart,
    windowEnd: windowStart + 300_000,
    open: 0.1,
    high: 0.30000000000000004,
    low: 0.1,
    close: 0.2,
    volume: "0.30000000000000004",
    pvSum: "0.0700000000000000099999999999",
    vwap: "0.2333333333",
    tradeCount: 3,
    isFinal: true,
    gapMs: 0,
    gapCount: 0,
    coverage: 1,
    ...overrides,
  };
}

/** `count` consecutive candles from `start`, each a little different. */
export function testCandles(count: number, start = Date.parse("2026-12-01T00:00:00Z")) {
  return Array.from({ length: count }, (_, i) =>
    testCandle({
      windowStart: start + i * 300_000,
      open: 100 + i / 7,
      volume: `${i}.${String(i).padStart(8, "0")}`,
      vwap: i === 0 ? null : "100.5",
      tradeCount: i,
      isFinal: i % 2 === 0,
    }));
}
