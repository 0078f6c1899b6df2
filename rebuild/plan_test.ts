import assert from "node:assert/strict";
import { formatDecimal, parseDecimal } from "../shared/decimal.ts";
import type { RawTrade, SilverTrade } from "../shared/types.ts";
import { type Candle, finalize, vwap, writeTimestamp } from "../processor/gold/candle.ts";
import type { SilverRules } from "../processor/silver/validate.ts";
import {
  aheadOf,
  candleChanges,
  deriveSilver,
  diffSilver,
  foldableKept,
  foldCandles,
  planGold,
  positionKey,
  type SourceRecord,
  type StoredCandle,
  windowKey,
} from "./plan.ts";

const RULES: SilverRules = {
  maxFutureMs: 60_000,
  minEventTime: Date.parse("2000-01-01T00:00:00Z"),
  minPrice: 1e-10,
  maxPrice: 1e12,
  maxVolume: 1e15,
};
const W = Date.parse("2026-12-07T10:00:00Z");
const SPAN = { from: W, to: W + 3_600_000 };

function record(offset: number, fields: Partial<RawTrade> = {}, partition = 0): SourceRecord {
  return {
    raw: {
      s: "BINANCE:BTCUSDT",
      p: 100,
      t: W + offset * 1000,
      v: 1,
      c: null,
      ingestTime: W + offset * 1000 + 5,
      connectionId: "c",
      frameSeq: offset,
      tradeIndex: 0,
      ...fields,
    },
    position: { topic: "raw", partition, offset },
  };
}

function silver(offset: number, fields: Partial<SilverTrade> = {}): SilverTrade {
  const trade = deriveSilver([record(offset)], SPAN, RULES).trades[0]!;
  return { ...trade, ...fields };
}

Deno.test("deriveSilver() validates with silver's rules, inside the span and wanted symbols only", () => {
  const records = [
    record(0),
    record(1, { p: -1 }),
    record(2, { t: W - 1 }), // before the span
    record(3, { t: SPAN.to }), // the end is exclusive
    record(4, { s: "AAPL" }),
    record(5, { p: 2e12 }),
  ];
  const all = deriveSilver(records, SPAN, RULES);
  assert.deepEqual(all.trades.map((t) => t.rawOffset), [0, 4]);
  assert.deepEqual(all.rejected, { bad_price: 1, bad_price_range: 1 });
  assert.equal(all.read.size, 6, "every position read counts, in the span or not");
  assert.ok(all.read.has(positionKey("raw", 0, 2)));
  const some = deriveSilver(records, SPAN, RULES, new Set(["AAPL"]));
  assert.deepEqual(some.trades.map((t) => t.symbol), ["AAPL"]);
  assert.deepEqual(some.rejected, {});
});

Deno.test("diffSilver() sorts stored rows into added, removed, changed, unchanged and kept", () => {
  const read = new Set([0, 1, 2, 3].map((o) => positionKey("raw", 0, o)));
  const stored = [
    silver(0),
    silver(1, { price: 99 }),
    silver(2), // read, now rejected
    silver(9), // not read: kept
  ];
  const rebuilt = [silver(0), silver(1), silver(3)];
  const diff = diffSilver(stored, rebuilt, read);
  assert.deepEqual(diff.added.map((t) => t.rawOffset), [3]);
  assert.deepEqual(diff.removed.map((t) => t.rawOffset), [2]);
  assert.deepEqual(diff.changed.map((c) => [c.before.price, c.after.price]), [[99, 100]]);
  assert.equal(diff.unchanged, 1);
  assert.deepEqual(diff.kept.map((t) => t.rawOffset), [9]);
});

Deno.test("diffSilver() sees a change in every stored column but stored_at", () => {
  const base = silver(0, { conditions: ["1"] });
  const changes: Partial<SilverTrade>[] = [
    { price: 101 },
    { volume: 2 },
    { priceOnly: true },
    { conditions: ["2"] },
    { conditions: [] },
    { session: "REGULAR" },
    { ingestTime: base.ingestTime + 1 },
    { rawTopic: "other" },
  ];
  const read = new Set([positionKey("raw", 0, 0)]);
  for (const change of changes) {
    const diff = diffSilver([{ ...base, ...change }], [base], read);
    assert.equal(diff.changed.length, 1, JSON.stringify(change));
  }
  assert.equal(diffSilver([base], [{ ...base, conditions: ["1"] }], read).unchanged, 1);
});

Deno.test("foldableKept() keeps rows below what the source read on their partition", () => {
  const kept = [silver(3), silver(10), { ...silver(1), rawPartition: 2 }];
  const known = new Map([[0, 10]]);
  assert.deepEqual(foldableKept(kept, known).map((t) => t.rawOffset), [3]);
});

Deno.test("foldCandles() folds in source order whatever order it is given, per interval", () => {
  const trades = [silver(2, { price: 105 }), silver(0, { price: 100 }), silver(1, { price: 90 })];
  const candles = foldCandles(trades, ["5m", "1h"]);
  assert.equal(candles.size, 2);
  const c = candles.get(windowKey("5m", "BINANCE:BTCUSDT", W))!;
  assert.equal(c.open, 100);
  assert.equal(c.close, 105);
  assert.equal(c.high, 105);
  assert.equal(c.low, 90);
  assert.equal(c.tradeCount, 3);
  assert.equal(formatDecimal(c.volume), "3");
  assert.deepEqual([...c.foldedOffsets], [[0, 2]]);
  assert.equal(c.isFinal, false);
  assert.equal(candles.get(windowKey("1h", "BINANCE:BTCUSDT", W))!.tradeCount, 3);
});

/** A stored row of `candle` as live gold writes it. */
function stored(candle: Candle, writeTime = writeTimestamp(candle)): StoredCandle {
  const average = vwap(candle);
  return { candle, vwap: average === null ? null : formatDecimal(average), writeTime };
}

const KNOWN = new Map([[0, 100]]);
const KEY = windowKey("5m", "BINANCE:BTCUSDT", W);

function folded(...offsets: number[]): Candle {
  return foldCandles(offsets.map((o) => silver(o)), ["5m"]).get(KEY)!;
}

Deno.test("planGold() leaves an untouched final row alone, keeping its late count", () => {
  const live = { ...finalize(folded(0, 1, 2)), lateCount: 1 };
  const plan = planGold(new Map([[KEY, stored(live)]]), new Map([[KEY, folded(0, 1, 2)]]), {
    knownEnd: KNOWN,
    finalBefore: Infinity,
  });
  assert.deepEqual(plan, {
    writes: [],
    unchanged: 1,
    leftOpen: [],
    openDiffer: [],
    liveAhead: [],
  });
});

Deno.test("planGold() restores a damaged row above the damage's write time", () => {
  const live = finalize(folded(0, 1, 2));
  const damageTime = writeTimestamp(live) + 3_600_000_000n; // an UPDATE an hour later
  const cases: Partial<Candle>[] = [
    { high: live.high + 1 },
    { volume: parseDecimal("12345.5") },
    { tradeCount: 2 },
    { foldedOffsets: new Map([[0, 1]]) },
  ];
  for (const damage of cases) {
    const row = stored({ ...live, ...damage }, damageTime);
    const plan = planGold(new Map([[KEY, row]]), new Map([[KEY, folded(0, 1, 2)]]), {
      knownEnd: KNOWN,
      finalBefore: -Infinity,
    });
    assert.equal(plan.writes.length, 1);
    const write = plan.writes[0]!;
    assert.equal(write.kind, "amend");
    assert.deepEqual(write.after, live);
    assert.equal(write.timestamp, damageTime + 1n);
  }
  // A damaged vwap column alone is seen too.
  const plan = planGold(
    new Map([[KEY, { ...stored(live), vwap: "1" }]]),
    new Map([[KEY, folded(0, 1, 2)]]),
    { knownEnd: KNOWN, finalBefore: -Infinity },
  );
  // The same version would tie with the damaged cell: one above it.
  assert.equal(plan.writes[0]!.timestamp, writeTimestamp(live) + 1n);
});

Deno.test("planGold() writes a candle with more trades under its own version", () => {
  const live = finalize(folded(0, 1));
  const plan = planGold(new Map([[KEY, stored(live)]]), new Map([[KEY, folded(0, 1, 2)]]), {
    knownEnd: KNOWN,
    finalBefore: -Infinity,
  });
  assert.equal(plan.writes[0]!.kind, "amend");
  assert.equal(plan.writes[0]!.timestamp, writeTimestamp(finalize(folded(0, 1, 2))));
});

Deno.test("planGold() leaves open rows, and rows ahead of the read, to live gold", () => {
  const open = folded(0, 1);
  const ahead = finalize(folded(0, 1, 150));
  assert.equal(aheadOf(ahead, KNOWN), true);
  assert.equal(aheadOf(folded(0, 99), KNOWN), false);
  assert.equal(
    aheadOf(foldCandles([{ ...silver(0), rawPartition: 3 }], ["5m"]).get(KEY)!, KNOWN),
    true,
  );
  const other = windowKey("5m", "BINANCE:BTCUSDT", W + 300_000);
  const plan = planGold(
    new Map([[KEY, stored(open)], [other, stored({ ...ahead, windowStart: W + 300_000 })]]),
    new Map([[KEY, folded(0, 1, 2)], [other, folded(0, 1)]]),
    { knownEnd: KNOWN, finalBefore: Infinity },
  );
  assert.deepEqual(plan.writes, []);
  assert.deepEqual(plan.leftOpen, [KEY]);
  assert.deepEqual(plan.liveAhead, [other]);
  // The open row lacks a trade the rebuild folds: reported, to rebuild once it is final.
  assert.deepEqual(plan.openDiffer, [{ interval: "5m", symbol: "BINANCE:BTCUSDT", start: W }]);
});

Deno.test("planGold() reports an open row differing from the rebuild, never writes it", () => {
  const open = folded(0, 1, 2);
  const same = planGold(new Map([[KEY, stored(open)]]), new Map([[KEY, folded(0, 1, 2)]]), {
    knownEnd: KNOWN,
    finalBefore: Infinity,
  });
  assert.deepEqual([same.leftOpen, same.openDiffer, same.writes], [[KEY], [], []]);
  // A stricter policy drops trade 2, or every trade of the window: the open row is left alone.
  for (const rebuilt of [new Map([[KEY, folded(0, 1)]]), new Map()]) {
    const plan = planGold(new Map([[KEY, stored(open)]]), rebuilt, {
      knownEnd: KNOWN,
      finalBefore: Infinity,
    });
    assert.deepEqual(plan.writes, []);
    assert.deepEqual(plan.leftOpen, [KEY]);
    assert.deepEqual(plan.openDiffer, [{ interval: "5m", symbol: "BINANCE:BTCUSDT", start: W }]);
  }
});

Deno.test("planGold() adds a missing window only once every live watermark passed it", () => {
  const rebuilt = new Map([[KEY, folded(0, 1)]]);
  const end = W + 300_000;
  const before = planGold(new Map(), rebuilt, { knownEnd: KNOWN, finalBefore: end - 1 });
  assert.deepEqual(before.leftOpen, [KEY]);
  assert.equal(before.openDiffer.length, 1);
  assert.equal(before.writes.length, 0);
  const after = planGold(new Map(), rebuilt, { knownEnd: KNOWN, finalBefore: end });
  assert.equal(after.writes.length, 1);
  assert.equal(after.writes[0]!.kind, "add");
  assert.equal(after.writes[0]!.after!.isFinal, true);
  assert.equal(after.writes[0]!.timestamp, writeTimestamp(finalize(folded(0, 1))));
});

Deno.test("planGold() removes a final window no trade is left in, above its write time", () => {
  const live = finalize(folded(0, 1));
  const plan = planGold(new Map([[KEY, stored(live)]]), new Map(), {
    knownEnd: KNOWN,
    finalBefore: Infinity,
  });
  assert.equal(plan.writes[0]!.kind, "remove");
  assert.equal(plan.writes[0]!.after, undefined);
  assert.equal(plan.writes[0]!.timestamp, writeTimestamp(live) + 1n);
  assert.deepEqual(plan.writes[0]!.window, { interval: "5m", symbol: "BINANCE:BTCUSDT", start: W });
});

Deno.test("candleChanges() lists the columns that differ", () => {
  const live = finalize(folded(0, 1, 2));
  const damaged = {
    ...stored({ ...live, high: 101, volume: parseDecimal("12345.5") }),
    vwap: stored(live).vwap,
  };
  assert.equal(candleChanges(damaged, live), "high 101 -> 100, volume 12345.5 -> 3");
  assert.match(candleChanges(undefined, live), /^\(none\) -> open 100 .* trades 3$/);
  assert.match(candleChanges(stored(live), undefined), / -> \(none\)$/);
  assert.equal(candleChanges(stored(live), live), "fold state (offsets, open/close keys)");
});
