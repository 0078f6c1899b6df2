import assert from "node:assert/strict";
import { type Candle, finalize, foldTrade, vwap } from "../processor/gold/candle.ts";
import { formatDecimal } from "./decimal.ts";
import {
  type Interval,
  INTERVAL_MS,
  ROLLUP_INTERVALS,
  ROLLUP_SOURCE,
  type RollupInterval,
  type SummedCandle,
  windowStart,
} from "./gold_table.ts";
import { mulberry32 } from "./random.ts";
import { constituentsPerWindow, rollUp } from "./rollup.ts";
import type { SilverTrade } from "./types.ts";

const T0 = Date.parse("2026-11-24T12:00:00Z");
const M5 = 300_000;
const LATE = 10_000;
/** Long after every window of these tests: finality rests on the constituents' flags alone. */
const LATER = { now: T0 + 86_400_000, allowedLatenessMs: LATE };

function candle(overrides: Partial<SummedCandle> & { readonly windowStart: number }): SummedCandle {
  const interval = (overrides.interval ?? "5m") as Interval;
  return {
    symbol: "AAPL",
    interval,
    windowEnd: overrides.windowStart + INTERVAL_MS[interval],
    open: 100,
    high: 110,
    low: 90,
    close: 105,
    volume: "2",
    vwap: "100",
    tradeCount: 2,
    isFinal: true,
    pvSum: "200",
    priceOnlyCount: 0,
    lateCount: 0,
    gapMs: 0,
    gapCount: 0,
    coverage: 1,
    ...overrides,
  };
}

Deno.test("rollUp() takes open of the first, close of the last, high and low of all, sums the rest", () => {
  const [c] = rollUp(
    [
      candle({
        windowStart: T0 + 2 * M5,
        open: 7,
        close: 8,
        high: 9,
        low: 6,
        volume: "0.5",
        pvSum: "4",
        tradeCount: 3,
        lateCount: 1,
      }),
      candle({
        windowStart: T0,
        open: 1,
        close: 2,
        high: 3,
        low: 0.5,
        volume: "1.25",
        pvSum: "2.5",
        tradeCount: 1,
        priceOnlyCount: 2,
      }),
      candle({
        windowStart: T0 + M5,
        open: 4,
        close: 5,
        high: 12,
        low: 4,
        volume: "0",
        pvSum: "0",
        vwap: null,
        tradeCount: 4,
        priceOnlyCount: 4,
      }),
    ],
    "15m",
    LATER,
  );
  assert.deepEqual(c, {
    symbol: "AAPL",
    interval: "15m",
    windowStart: T0,
    windowEnd: T0 + 900_000,
    open: 1,
    high: 12,
    low: 0.5,
    close: 8,
    volume: "1.75",
    // (2.5 + 4) / 1.75 = 3.714285714285..., half-even at 10 places
    vwap: "3.7142857143",
    tradeCount: 8,
    isFinal: true,
    pvSum: "6.5",
    priceOnlyCount: 6,
    lateCount: 1,
    gapMs: 0,
    gapCount: 0,
    coverage: 1,
  });
});

Deno.test("rollUp() computes VWAP from the sums, never as an average of VWAPs", () => {
  const [c] = rollUp(
    [
      candle({ windowStart: T0, volume: "1", pvSum: "10", vwap: "10" }),
      candle({ windowStart: T0 + M5, volume: "3", pvSum: "90", vwap: "30" }),
    ],
    "15m",
    LATER,
  );
  // (10 + 90) / 4 = 25, not (10 + 30) / 2 = 20.
  assert.equal(c!.vwap, "25");
  assert.equal(c!.volume, "4");
});

Deno.test("rollUp() keeps decimals exact where doubles would not", () => {
  const [c] = rollUp(
    [
      candle({ windowStart: T0, volume: "0.1", pvSum: "0.1" }),
      candle({ windowStart: T0 + M5, volume: "0.2", pvSum: "0.2" }),
    ],
    "15m",
    LATER,
  );
  assert.equal(c!.volume, "0.3");
  assert.equal(c!.pvSum, "0.3");
  assert.equal(c!.vwap, "1");
});

Deno.test("rollUp() gives a null VWAP when every constituent is price-only", () => {
  const [c] = rollUp(
    [
      candle({ windowStart: T0, volume: "0", pvSum: "0", vwap: null, priceOnlyCount: 2 }),
      candle({ windowStart: T0 + M5, volume: "0", pvSum: "0", vwap: null, priceOnlyCount: 2 }),
    ],
    "15m",
    LATER,
  );
  assert.equal(c!.vwap, null);
  assert.equal(c!.volume, "0");
  assert.equal(c!.priceOnlyCount, 4);
});

Deno.test("rollUp() makes one candle per window, oldest first, with gaps and partial windows", () => {
  const out = rollUp(
    [
      candle({ windowStart: T0 + 7 * M5, open: 8 }),
      candle({ windowStart: T0 + M5, open: 2 }),
      candle({ windowStart: T0 + 12 * M5, open: 13 }),
    ],
    "15m",
    LATER,
  );
  assert.deepEqual(out.map((c) => [c.windowStart, c.windowEnd, c.open]), [
    [T0, T0 + 3 * M5, 2],
    [T0 + 6 * M5, T0 + 9 * M5, 8],
    [T0 + 12 * M5, T0 + 15 * M5, 13],
  ]);
  assert.deepEqual(rollUp([], "4h", LATER), []);
});

Deno.test("rollUp() aligns 4h windows to UTC from hourly rows", () => {
  const day = Date.parse("2026-11-24T00:00:00Z");
  const hours = Array.from(
    { length: 24 },
    (_, h) =>
      candle({
        interval: "1h",
        windowStart: day + h * 3_600_000,
        open: h,
        close: h + 0.5,
        tradeCount: 1,
      }),
  );
  const out = rollUp(hours, "4h", LATER);
  assert.equal(out.length, 6);
  out.forEach((c, i) => {
    assert.equal(c.windowStart, day + i * 14_400_000);
    assert.equal(c.windowEnd, day + (i + 1) * 14_400_000);
    assert.equal(c.open, 4 * i);
    assert.equal(c.close, 4 * i + 3.5);
    assert.equal(c.tradeCount, 4);
  });
});

Deno.test("rollUp() is final only when every constituent is and the window ended past lateness", () => {
  const end = T0 + 3 * M5;
  const three = (finals: boolean[]) =>
    finals.map((isFinal, i) => candle({ windowStart: T0 + i * M5, isFinal }));
  const final = (rows: SummedCandle[], now: number) =>
    rollUp(rows, "15m", { now, allowedLatenessMs: LATE })[0]!.isFinal;
  assert.equal(final(three([true, true, true]), end + LATE), true);
  assert.equal(final(three([true, true, true]), end + LATE - 1), false);
  assert.equal(final(three([true, false, true]), end + LATE), false);
  assert.equal(final(three([false, false, false]), end + 3_600_000), false);
  // A constituent with no trades has no row: the others' flags decide once the window is over.
  assert.equal(final([candle({ windowStart: T0, isFinal: true })], end + LATE - 1), false);
  assert.equal(final([candle({ windowStart: T0, isFinal: true })], end + LATE), true);
});

Deno.test("rollUp() refuses rows it cannot add up, naming them", () => {
  assert.throws(
    () => rollUp([candle({ windowStart: T0, interval: "1h" })], "15m", LATER),
    /Cannot roll 1h candles up into 15m: 15m is made of 5m candles/,
  );
  assert.throws(
    () => rollUp([candle({ windowStart: T0 })], "4h", LATER),
    /Cannot roll 5m candles up into 4h: 4h is made of 1h candles/,
  );
  assert.throws(
    () =>
      rollUp(
        [candle({ windowStart: T0 }), candle({ windowStart: T0 + M5, symbol: "MSFT" })],
        "15m",
        LATER,
      ),
    /two symbols \(AAPL and MSFT\)/,
  );
  assert.throws(
    () => rollUp([candle({ windowStart: T0 }), candle({ windowStart: T0 })], "15m", LATER),
    new RangeError(`Cannot roll up two 5m candles of AAPL for the window at ${T0}`),
  );
  assert.throws(
    () => rollUp([candle({ windowStart: T0 + 1 })], "15m", LATER),
    /not the start of a 5m window/,
  );
});

Deno.test("constituentsPerWindow() is 3 for 15m and 4 for 4h", () => {
  assert.equal(constituentsPerWindow("15m"), 3);
  assert.equal(constituentsPerWindow("4h"), 4);
});

/** A gold candle as a row holds it, with the sums. */
function summed(c: Candle): SummedCandle {
  const average = vwap(c);
  return {
    symbol: c.symbol,
    interval: c.interval,
    windowStart: c.windowStart,
    windowEnd: c.windowEnd,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: formatDecimal(c.volume),
    vwap: average === null ? null : formatDecimal(average),
    tradeCount: c.tradeCount,
    isFinal: c.isFinal,
    pvSum: formatDecimal(c.pvSum),
    priceOnlyCount: c.priceOnlyCount,
    lateCount: c.lateCount,
    gapMs: 0,
    gapCount: 0,
    coverage: 1,
  };
}

/** Random trades of one symbol over `spanMs`: ties in event time, price-only ones, any order. */
function randomTrades(seed: number, count: number, spanMs: number): SilverTrade[] {
  const random = mulberry32(seed);
  const out: SilverTrade[] = [];
  for (let i = 0; i < count; i++) {
    const priceOnly = random() < 0.1;
    const eventTime = T0 + Math.floor(random() * spanMs / 1000) * 1000;
    out.push({
      symbol: "AAPL",
      price: Math.round((50 + random() * 100) * 100) / 100,
      eventTime,
      volume: priceOnly ? 0 : Math.round(random() * 1e6) / 1e4,
      priceOnly,
      conditions: [],
      session: "REGULAR",
      ingestTime: eventTime,
      rawTopic: "raw",
      rawPartition: Math.floor(random() * 3),
      rawOffset: i,
    });
  }
  return out;
}

/** Folds `trades` into windows of `interval` directly, as gold folds (windowStart of any length). */
function foldDirect(
  trades: readonly SilverTrade[],
  interval: Interval | RollupInterval,
  late: (t: SilverTrade) => boolean,
): Map<number, Candle> {
  const out = new Map<number, Candle>();
  for (const t of trades) {
    const start = windowStart(t.eventTime, interval);
    // foldTrade checks the window against `interval`; a roll-up length folds alike.
    out.set(start, foldTrade(out.get(start), t, interval as Interval, { late: late(t) }));
  }
  return out;
}

Deno.test("rollUp() of stored candles equals folding the same trades straight into 15m and 4h", () => {
  for (const interval of ROLLUP_INTERVALS) {
    for (const seed of [1, 2, 3, 4, 5]) {
      const span = 40 * INTERVAL_MS[interval] + 12_345;
      const trades = randomTrades(seed, 3000, span);
      const late = (t: SilverTrade) => t.rawOffset % 17 === 0;
      const stored = [...foldDirect(trades, ROLLUP_SOURCE[interval], late).values()].map((c) =>
        summed(seed % 2 === 0 ? finalize(c) : c)
      );
      const direct = [...foldDirect(trades, interval, late).values()]
        .sort((a, b) => a.windowStart - b.windowStart)
        .map((c) => summed(seed % 2 === 0 ? finalize(c) : c));
      // Long after the last window: finality rests on the constituents' flags.
      const rolled = rollUp(stored.reverse(), interval, {
        now: T0 + 2 * span,
        allowedLatenessMs: LATE,
      });
      assert.equal(rolled.length, direct.length, `${interval} seed ${seed}`);
      assert.deepEqual(rolled, direct, `${interval} seed ${seed}`);
    }
  }
});
