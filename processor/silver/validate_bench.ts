/**
 * Micro-benchmarks of the silver stage's per-trade pure logic. Run: `deno bench processor/silver/`.
 *
 * The budget is 50,000 trades/s, 20 µs per trade for the whole stage; these functions should
 * cost well under 1 µs.
 *
 * @module
 */
import { loadConfig } from "../../shared/config.ts";
import type { RawTrade } from "../../shared/types.ts";
import { sessionFor, tradingSession } from "../../shared/trading_session.ts";
import { toSilverTrade, TradeRejection } from "./validate.ts";

const RULES = loadConfig({}).silver;
const POSITION = { topic: "market.trades.raw", partition: 0, offset: 0 };
/** Wednesday 2024-07-10 10:00 EDT. */
const T = Date.parse("2024-07-10T10:00:00.000-04:00");
const TRADES = 1024;

/** Stock and crypto trades of one trading day, 1 s apart, conditions in every shape. */
const trades: RawTrade[] = Array.from({ length: TRADES }, (_, i) => ({
  s: ["AAPL", "MSFT", "BRK.B", "BINANCE:BTCUSDT", "OANDA:EUR_USD"][i % 5]!,
  p: 100 + (i % 97) / 100,
  t: T + i * 1000,
  v: i % 7 === 0 ? 0 : (i % 13) + 0.5,
  c: [["1", "8", "24", "12"], [], null, "ABSENT"][i % 4] as RawTrade["c"],
  ingestTime: T + i * 1000 + 50,
  connectionId: "bench",
  frameSeq: i + 1,
  tradeIndex: 0,
}));

/** Instants spread over 2019-2027, so nearly every call misses the one-day memo. */
const scattered = Array.from(
  { length: TRADES },
  (_, i) => Date.UTC(2019, 0, 1) + ((i * 2_654_435_761) % (9 * 365 * 86_400)) * 1000 + i,
);

let sink = 0;
let n = 0;

Deno.bench("toSilverTrade(): valid trade, mixed symbols and conditions", {
  group: "toSilverTrade",
  baseline: true,
}, () => {
  const trade = toSilverTrade(trades[n++ & (TRADES - 1)]!, POSITION, RULES);
  sink += trade.volume;
});

const badPrice: RawTrade = { ...trades[0]!, p: -1 };
Deno.bench("toSilverTrade(): rejected trade (bad_price, builds a TradeRejection)", {
  group: "toSilverTrade",
}, () => {
  try {
    toSilverTrade(badPrice, POSITION, RULES);
  } catch (error) {
    if (error instanceof TradeRejection) sink += error.code.length;
  }
});

Deno.bench("tradingSession(): same New York day (memo hit)", {
  group: "tradingSession",
  baseline: true,
}, () => {
  sink += tradingSession(trades[n++ & (TRADES - 1)]!.t).length;
});

Deno.bench("tradingSession(): a different day every call (memo miss)", {
  group: "tradingSession",
}, () => {
  sink += tradingSession(scattered[n++ & (TRADES - 1)]!).length;
});

Deno.bench("sessionFor(): symbol check plus session", { group: "tradingSession" }, () => {
  const trade = trades[n++ & (TRADES - 1)]!;
  sink += sessionFor(trade.s, trade.t)?.length ?? 0;
});

const newYork = new Intl.DateTimeFormat("en-US", {
  timeZone: "America/New_York",
  weekday: "short",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
Deno.bench("for comparison: one Intl.DateTimeFormat#format per trade", {
  group: "tradingSession",
}, () => {
  sink += newYork.format(trades[n++ & (TRADES - 1)]!.t).length;
});

globalThis.addEventListener("unload", () => {
  if (sink === 42) console.log(sink);
});
