import assert from "node:assert/strict";
import { benchSymbols } from "./symbols.ts";

Deno.test("benchSymbols() gives the crypto and forex pairs first, then BENCH0, BENCH1, ...", () => {
  assert.deepEqual(benchSymbols(2), ["BINANCE:BTCUSDT", "BINANCE:ETHUSDT"]);
  assert.deepEqual(benchSymbols(5), [
    "BINANCE:BTCUSDT",
    "BINANCE:ETHUSDT",
    "OANDA:EUR_USD",
    "BENCH0",
    "BENCH1",
  ]);
  assert.equal(new Set(benchSymbols(40)).size, 40);
  assert.deepEqual(benchSymbols(4, "FLOOD").slice(3), ["FLOOD0"]);
});
