/**
 * The symbols a benchmark feeds: two crypto pairs and a forex pair first (the symbol shapes
 * Finnhub has besides stocks), then `BENCH0`, `BENCH1`, ... (or another prefix) up to the count.
 *
 * @module
 */

/** The first `count` benchmark symbols, the made-up ones named `<prefix><n>`. */
export function benchSymbols(count: number, prefix = "BENCH"): string[] {
  return [
    "BINANCE:BTCUSDT",
    "BINANCE:ETHUSDT",
    "OANDA:EUR_USD",
    ...Array.from({ length: Math.max(0, count - 3) }, (_, i) => `${prefix}${i}`),
  ].slice(0, count);
}
