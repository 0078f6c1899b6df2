import assert from "node:assert/strict";
import {
  coverageOf,
  coverageWriteTimestamp,
  type GapSpan,
  union,
  validateFeedGap,
  windowGaps,
} from "./gap_coverage.ts";
import { mulberry32 } from "./random.ts";
import { expectedCoverage } from "../tests/gap_reference.ts";
import type { FeedGap } from "./types.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** An instant written with an explicit UTC offset. */
function at(iso: string): number {
  const time = Date.parse(iso);
  assert.ok(Number.isFinite(time), `bad test time ${iso}`);
  return time;
}

/**
 * The independent reference (tests/gap_reference.ts, also the feed-gap tests' own) for spans of
 * one symbol.
 */
function reference(symbol: string, from: number, to: number, gaps: readonly GapSpan[]) {
  const feedGaps: FeedGap[] = gaps.map((g) => ({
    gapId: g.gapId,
    fromMs: g.from,
    toMs: g.to,
    symbols: [symbol],
    cause: "reconnect",
    connectionId: "",
    detectedAtMs: g.to,
  }));
  const { gapMs, gapCount } = expectedCoverage(symbol, from, to, feedGaps);
  return { gapMs, gapCount };
}

function gap(gapId: string, from: number, to: number): GapSpan {
  return { gapId, from, to };
}

// ---------------------------------------------------------------------------------------------

Deno.test("windowGaps() counts overlapping gaps once in gapMs and each in gapCount", () => {
  const w = { from: at("2024-01-10T10:00:00-05:00"), to: at("2024-01-10T11:00:00-05:00") };
  const gaps = [
    gap("a", w.from + 5 * MINUTE, w.from + 15 * MINUTE),
    gap("b", w.from + 10 * MINUTE, w.from + 20 * MINUTE),
    gap("c", w.from + 10 * MINUTE, w.from + 12 * MINUTE), // inside b
  ];
  assert.deepEqual(windowGaps("AAPL", w, gaps), { gapMs: 15 * MINUTE, gapCount: 3 });
});

Deno.test("windowGaps() clips gaps to the window and ignores gaps that only touch its ends", () => {
  const w = { from: at("2024-01-10T10:00:00-05:00"), to: at("2024-01-10T10:05:00-05:00") };
  assert.deepEqual(
    windowGaps("AAPL", w, [
      gap("before", w.from - HOUR, w.from),
      gap("after", w.to, w.to + HOUR),
      gap("across", w.from - MINUTE, w.from + MINUTE),
    ]),
    { gapMs: MINUTE, gapCount: 1 },
  );
  assert.deepEqual(windowGaps("AAPL", w, [gap("all", 0, w.to + 1)]), {
    gapMs: 5 * MINUTE,
    gapCount: 1,
  });
});

Deno.test("windowGaps() ignores a US stock's gap outside trading hours, not a crypto symbol's", () => {
  // Wednesday 21:00-23:00 New York: closed for AAPL, trading for BTC.
  const w = { from: at("2024-01-10T21:00:00-05:00"), to: at("2024-01-10T23:00:00-05:00") };
  const gaps = [gap("night", w.from + MINUTE, w.from + 31 * MINUTE)];
  assert.deepEqual(windowGaps("AAPL", w, gaps), { gapMs: 0, gapCount: 0 });
  assert.deepEqual(windowGaps("BINANCE:BTCUSDT", w, gaps), { gapMs: 30 * MINUTE, gapCount: 1 });
});

Deno.test("windowGaps() counts only the in-hours part of a gap across the close", () => {
  // 1h window 19:30-20:30 EST; gap 19:50-20:20: 10 minutes in hours.
  const w = { from: at("2024-01-10T19:30:00-05:00"), to: at("2024-01-10T20:30:00-05:00") };
  assert.deepEqual(
    windowGaps("AAPL", w, [gap("g", w.from + 20 * MINUTE, w.from + 50 * MINUTE)]),
    { gapMs: 10 * MINUTE, gapCount: 1 },
  );
  // A second gap entirely after 20:00 does not count.
  assert.deepEqual(
    windowGaps("AAPL", w, [
      gap("g", w.from + 20 * MINUTE, w.from + 50 * MINUTE),
      gap("late", w.from + 40 * MINUTE, w.from + 55 * MINUTE),
    ]),
    { gapMs: 10 * MINUTE, gapCount: 1 },
  );
});

Deno.test("windowGaps() counts a repeated gap id once", () => {
  const w = { from: 0, to: HOUR };
  assert.deepEqual(
    windowGaps("X:BTC", w, [gap("g", 0, MINUTE), gap("g", 0, MINUTE), gap("g", 0, 2 * MINUTE)]),
    { gapMs: 2 * MINUTE, gapCount: 1 },
  );
});

Deno.test("windowGaps() of a weekend window is nothing for a stock", () => {
  const saturday = at("2024-01-13T12:00:00-05:00");
  const w = { from: saturday, to: saturday + HOUR };
  assert.deepEqual(windowGaps("AAPL", w, [gap("g", 0, saturday + 2 * HOUR)]), {
    gapMs: 0,
    gapCount: 0,
  });
});

Deno.test("windowGaps() matches the reference for 3,000 random windows and gap sets", () => {
  const random = mulberry32(20_261_207);
  const sizes = [5 * MINUTE, HOUR, 24 * HOUR];
  const base = Date.UTC(2024, 0, 1);
  const mismatches: string[] = [];
  for (let i = 0; i < 3_000; i++) {
    const size = sizes[i % 3]!;
    const from = base + Math.floor(random() * 400) * 24 * HOUR +
      Math.floor(random() * (24 * HOUR / size)) * size;
    const to = from + size;
    const symbol = random() < 0.8 ? "AAPL" : "BINANCE:BTCUSDT";
    const gaps: GapSpan[] = [];
    const n = Math.floor(random() * 6);
    for (let k = 0; k < n; k++) {
      const start = from - size + Math.floor(random() * 3 * size);
      const length = 1 + Math.floor(random() * (random() < 0.5 ? size / 4 : 2 * size));
      gaps.push(gap(`g${Math.floor(random() * 4)}`, start, start + length));
    }
    const got = windowGaps(symbol, { from, to }, gaps);
    const expected = reference(symbol, from, to, gaps);
    if (got.gapMs !== expected.gapMs || got.gapCount !== expected.gapCount) {
      mismatches.push(
        `${symbol} ${new Date(from).toISOString()} ${size}: ${JSON.stringify(got)} != ` +
          JSON.stringify(expected),
      );
    }
  }
  assert.deepEqual(mismatches.slice(0, 5), []);
});

Deno.test("coverageOf() is 1 - gapMs / tradingMs, and 1 with no trading time", () => {
  assert.equal(coverageOf(0, 300_000), 1);
  assert.equal(coverageOf(60_000, 300_000), 0.8);
  assert.equal(coverageOf(300_000, 300_000), 0);
  assert.equal(coverageOf(0, 0), 1);
});

Deno.test("coverageWriteTimestamp() ranks more knowledge higher, count first", () => {
  const start = Date.UTC(2024, 0, 10);
  const none = coverageWriteTimestamp(start, { gapMs: 0, gapCount: 0 });
  const one = coverageWriteTimestamp(start, { gapMs: 86_400_000, gapCount: 1 });
  const two = coverageWriteTimestamp(start, { gapMs: 1, gapCount: 2 });
  const longer = coverageWriteTimestamp(start, { gapMs: 2, gapCount: 2 });
  assert.ok(none < one && one < two && two < longer);
  assert.equal(none, BigInt(start) * 1000n);
});

Deno.test("union() merges overlapping and touching spans in order", () => {
  assert.deepEqual(
    union([{ from: 5, to: 7 }, { from: 0, to: 2 }, { from: 2, to: 3 }, { from: 6, to: 9 }, {
      from: 4,
      to: 4,
    }]),
    [
      { from: 0, to: 3 },
      { from: 5, to: 9 },
    ],
  );
});

const GOOD: FeedGap = {
  gapId: "feed:reconnect:1700000000000",
  fromMs: 1_700_000_000_000,
  toMs: 1_700_000_005_000,
  symbols: ["AAPL", "BINANCE:BTCUSDT"],
  cause: "reconnect",
  connectionId: "c-1",
  detectedAtMs: 1_700_000_006_000,
};

Deno.test("validateFeedGap() accepts a well-formed gap, one of no length too", () => {
  assert.equal(validateFeedGap(GOOD), GOOD);
  const instant = { ...GOOD, toMs: GOOD.fromMs };
  assert.equal(validateFeedGap(instant), instant);
});

Deno.test("validateFeedGap() names the bad field", () => {
  const cases: [Partial<FeedGap>, RegExp][] = [
    [{ gapId: "" }, /gapId/],
    [{ fromMs: 1.5 }, /fromMs/],
    [{ toMs: 9e15 }, /toMs/],
    [{ toMs: GOOD.fromMs - 1 }, /toMs must be from fromMs to/],
    [
      { toMs: GOOD.fromMs + 367 * 86_400_000 },
      /toMs must be from fromMs to 31622400000 ms after it/,
    ],
    [{ symbols: [] }, /symbols must not be empty/],
    [{ symbols: ["aapl"] }, /symbol "aapl"/],
    [{ cause: "gremlins" as FeedGap["cause"] }, /cause must be one of/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => validateFeedGap({ ...GOOD, ...change }), message, JSON.stringify(change));
  }
});
