import assert from "node:assert/strict";
import type { SilverTrade } from "../../shared/types.ts";
import {
  alreadyFolded,
  amountsOf,
  type Candle,
  finalize,
  foldTrade,
  vwap,
  writeTimestamp,
} from "./candle.ts";
import { formatDecimal } from "../../shared/decimal.ts";
import { type Interval, windowStart } from "../../shared/gold_table.ts";
import { mulberry32 } from "../../shared/random.ts";

const T0 = Date.parse("2026-11-24T14:00:00Z");

function trade(overrides: Partial<SilverTrade>): SilverTrade {
  return {
    symbol: "AAPL",
    price: 100,
    eventTime: T0,
    volume: 1,
    priceOnly: false,
    conditions: [],
    session: "REGULAR",
    ingestTime: T0 + 5,
    rawTopic: "raw",
    rawPartition: 0,
    rawOffset: 0,
    ...overrides,
  };
}

function foldAll(trades: readonly SilverTrade[], interval: Interval = "5m"): Candle {
  let candle: Candle | undefined;
  for (const t of trades) candle = foldTrade(candle, t, interval);
  assert.ok(candle);
  return candle;
}

Deno.test("foldTrade() starts a candle from one trade", () => {
  const c = foldAll([trade({ price: 101.5, volume: 3, eventTime: T0 + 1234 })]);
  assert.equal(c.windowStart, T0);
  assert.equal(c.windowEnd, T0 + 300_000);
  assert.deepEqual([c.open, c.high, c.low, c.close], [101.5, 101.5, 101.5, 101.5]);
  assert.equal(formatDecimal(c.volume), "3");
  assert.equal(c.tradeCount, 1);
  assert.equal(formatDecimal(vwap(c)!), "101.5");
});

Deno.test("open and close follow event time, not arrival order", () => {
  const c = foldAll([
    trade({ price: 2, eventTime: T0 + 2000, rawOffset: 1 }),
    trade({ price: 1, eventTime: T0 + 1000, rawOffset: 2 }),
    trade({ price: 4, eventTime: T0 + 4000, rawOffset: 3 }),
    trade({ price: 3, eventTime: T0 + 3000, rawOffset: 4 }),
  ]);
  assert.equal(c.open, 1);
  assert.equal(c.close, 4);
  assert.equal(c.high, 4);
  assert.equal(c.low, 1);
});

Deno.test("ties in event time are broken by source position", () => {
  const c = foldAll([
    trade({ price: 10, rawPartition: 1, rawOffset: 5 }),
    trade({ price: 11, rawPartition: 1, rawOffset: 6 }),
    trade({ price: 9, rawPartition: 0, rawOffset: 7 }),
  ]);
  assert.equal(c.open, 9, "partition 0 sorts before partition 1");
  assert.equal(c.close, 11, "offset 6 is the latest of partition 1");
});

Deno.test("foldTrade() keeps both identical prints of one frame", () => {
  const c = foldAll([
    trade({ price: 122.1, volume: 10, rawOffset: 40 }),
    trade({ price: 122.1, volume: 10, rawOffset: 41 }),
  ]);
  assert.equal(c.tradeCount, 2);
  assert.equal(formatDecimal(c.volume), "20");
});

Deno.test("foldTrade() skips a redelivered trade, whatever it looks like", () => {
  const first = foldAll([trade({ rawOffset: 10 }), trade({ rawOffset: 11, price: 105 })]);
  const again = foldTrade(first, trade({ rawOffset: 11, price: 105 }), "5m");
  assert.equal(again, first);
  assert.equal(foldTrade(first, trade({ rawOffset: 3 }), "5m"), first);
  assert.ok(alreadyFolded(first, trade({ rawOffset: 11 })));
  assert.ok(!alreadyFolded(first, trade({ rawOffset: 11, rawPartition: 2 })));
});

Deno.test("price-only prints (v = 0) set prices but not volume or VWAP", () => {
  const c = foldAll([
    trade({ price: 50, volume: 2, rawOffset: 1, eventTime: T0 + 10 }),
    trade({ price: 80, volume: 0, priceOnly: true, rawOffset: 2, eventTime: T0 + 20 }),
    trade({ price: 10, volume: 0, priceOnly: true, rawOffset: 3, eventTime: T0 + 5 }),
  ]);
  assert.deepEqual([c.open, c.high, c.low, c.close], [10, 80, 10, 80]);
  assert.equal(formatDecimal(c.volume), "2");
  assert.equal(formatDecimal(vwap(c)!), "50");
  assert.equal(c.tradeCount, 3);
  assert.equal(c.priceOnlyCount, 2);
});

Deno.test("vwap() is null when every trade was price-only", () => {
  const c = foldAll([trade({ volume: 0, priceOnly: true })]);
  assert.equal(vwap(c), null);
});

Deno.test("foldTrade() refuses a trade of another symbol or window", () => {
  const c = foldAll([trade({})]);
  assert.throws(() => foldTrade(c, trade({ symbol: "MSFT", rawOffset: 1 }), "5m"), RangeError);
  assert.throws(
    () => foldTrade(c, trade({ eventTime: T0 + 300_000, rawOffset: 1 }), "5m"),
    RangeError,
  );
});

Deno.test("late trades are folded in and counted", () => {
  const c = finalize(foldAll([trade({ rawOffset: 1 })]));
  const amended = foldTrade(c, trade({ rawOffset: 2, price: 90 }), "5m", { late: true });
  assert.equal(amended.lateCount, 1);
  assert.equal(amended.isFinal, true);
  assert.equal(amended.low, 90);
});

Deno.test("writeTimestamp() grows with every fold and with finality", () => {
  const a = foldAll([trade({ rawOffset: 1 })]);
  const b = foldTrade(a, trade({ rawOffset: 2 }), "5m");
  assert.ok(writeTimestamp(b) > writeTimestamp(a));
  assert.ok(writeTimestamp(finalize(b)) > writeTimestamp(b));
  const c = foldTrade(finalize(b), trade({ rawOffset: 3 }), "5m", { late: true });
  assert.ok(writeTimestamp(c) > writeTimestamp(finalize(b)));
});

Deno.test("folding thousands of random trades equals an independent reference", () => {
  const rand = mulberry32(42);
  for (const interval of ["5m", "1h"] as Interval[]) {
    // Prices are whole cents and volumes whole micro-units, so the reference can sum exactly in
    // integers without any decimal code.
    const trades: (SilverTrade & { cents: number; micros: number })[] = [];
    for (let offset = 0; offset < 3000; offset++) {
      const cents = 10_000 + Math.floor(rand() * 5000);
      const priceOnly = rand() < 0.1;
      const micros = priceOnly ? 0 : 1 + Math.floor(rand() * 5_000_000);
      trades.push({
        ...trade({
          price: cents / 100,
          volume: micros / 1e6,
          priceOnly,
          // out of order within a few seconds, in one window
          eventTime: T0 + 60_000 + Math.floor(rand() * 5000) - 2500,
          rawPartition: 3,
          rawOffset: offset,
        }),
        cents,
        micros,
      });
    }
    // Redeliver a stretch in the middle, as a crash-and-replay would.
    const delivered = [...trades.slice(0, 2000), ...trades.slice(1500, 3000)];
    const c = foldAll(delivered, interval);
    const sorted = [...trades].sort((a, b) =>
      a.eventTime - b.eventTime || a.rawPartition - b.rawPartition || a.rawOffset - b.rawOffset
    );
    const volumeMicros = trades.reduce((s, t) => s + BigInt(t.micros), 0n);
    const pvCentsMicros = trades.reduce((s, t) => s + BigInt(t.cents) * BigInt(t.micros), 0n);
    assert.equal(c.windowStart, windowStart(T0 + 60_000, interval));
    assert.equal(c.tradeCount, 3000);
    assert.equal(c.open, sorted[0]!.price);
    assert.equal(c.close, sorted.at(-1)!.price);
    assert.equal(c.high, Math.max(...trades.map((t) => t.cents)) / 100);
    assert.equal(c.low, Math.min(...trades.map((t) => t.cents)) / 100);
    assert.equal(c.volume.units * 10n ** BigInt(6 - c.volume.scale), volumeMicros);
    assert.equal(c.pvSum.units * 10n ** BigInt(8 - c.pvSum.scale), pvCentsMicros);
    // VWAP to 10 places, half-even, computed from the integer sums.
    const scaled = (pvCentsMicros * 10n ** 10n) / (volumeMicros * 100n);
    const rest = (pvCentsMicros * 10n ** 10n) % (volumeMicros * 100n);
    const rounded = rest * 2n > volumeMicros * 100n ||
        (rest * 2n === volumeMicros * 100n && scaled % 2n === 1n)
      ? scaled + 1n
      : scaled;
    const v = vwap(c)!;
    assert.equal(v.units * 10n ** BigInt(10 - v.scale), rounded);
  }
});

Deno.test("foldTrade() with the trade's amounts given folds exactly as without them", () => {
  const random = mulberry32(20);
  let computed: Candle | undefined;
  let given: Candle | undefined;
  for (let i = 0; i < 500; i++) {
    const t = trade({
      rawOffset: i,
      eventTime: T0 + Math.floor(random() * 300_000),
      price: Math.round(random() * 1e6) / 1e3,
      volume: random() < 0.1 ? 0 : Math.round(random() * 1e5) / 1e2,
      priceOnly: random() < 0.1,
    });
    computed = foldTrade(computed, t, "5m");
    given = foldTrade(given, t, "5m", { amounts: amountsOf(t) });
  }
  assert.deepEqual(given, computed);
});

Deno.test("amountsOf() is the exact volume and price x volume, zero for a price-only trade", () => {
  const amounts = amountsOf(trade({ price: 0.1, volume: 3 }));
  assert.equal(formatDecimal(amounts.volume), "3");
  assert.equal(formatDecimal(amounts.pv), "0.3");
  const priceOnly = amountsOf(trade({ price: 5, volume: 0, priceOnly: true }));
  assert.deepEqual([formatDecimal(priceOnly.volume), formatDecimal(priceOnly.pv)], ["0", "0"]);
});
