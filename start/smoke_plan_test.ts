import assert from "node:assert/strict";
import { SYMBOL_PATTERN } from "../shared/config.ts";
import type { FeedGap } from "../shared/types.ts";
import {
  candleDifferences,
  canonicalDecimal,
  expectedCandles,
  forcedGapCheck,
  formatReport,
  goldBucketOf,
  hourBuckets,
  parseSmokeArgs,
  smokePlan,
  smokeSymbol,
} from "./smoke_plan.ts";

Deno.test("parseSmokeArgs() reads -v, the URLs and the timeout, with defaults", () => {
  assert.deepEqual(parseSmokeArgs([]), {
    simulatorUrl: undefined,
    statusUrl: undefined,
    timeoutMs: 90_000,
    verbose: false,
    help: false,
  });
  assert.deepEqual(
    parseSmokeArgs([
      "-v",
      "--simulator",
      "http://simulator:8765/",
      "--status=http://s:8080",
      "--timeout",
      "30",
    ]),
    {
      simulatorUrl: "http://simulator:8765",
      statusUrl: "http://s:8080",
      timeoutMs: 30_000,
      verbose: true,
      help: false,
    },
  );
  assert.equal(parseSmokeArgs(["--help"]).help, true);
});

Deno.test("parseSmokeArgs() refuses unknown flags, bad URLs and bad timeouts, naming them", () => {
  assert.throws(() => parseSmokeArgs(["--bogus"]), RangeError);
  assert.throws(() => parseSmokeArgs(["--simulator", "ws://x:1"]), /--simulator must be an http/);
  assert.throws(() => parseSmokeArgs(["--timeout", "0"]), /--timeout must be/);
  assert.throws(() => parseSmokeArgs(["--timeout", "ten"]), /--timeout must be/);
  assert.throws(() => parseSmokeArgs(["extra"]), RangeError);
});

Deno.test("smokeSymbol() is a valid, unique-per-run EXCHANGE:PAIR symbol", () => {
  const a = smokeSymbol(1_750_000_000_000, () => 0.1);
  const b = smokeSymbol(1_750_000_000_001, () => 0.1);
  const c = smokeSymbol(1_750_000_000_000, () => 0.2);
  assert.match(a, /^SMOKE:R[0-9A-Z]+$/);
  assert.ok(SYMBOL_PATTERN.test(a));
  assert.equal(new Set([a, b, c]).size, 3);
});

Deno.test("smokePlan() sends an identical pair, a v=0 print and one invalid trade in one frame", () => {
  const plan = smokePlan("SMOKE:RX", 1_750_000_000_000);
  assert.equal(plan.sent.length, 7);
  assert.equal(plan.valid.length, 6);
  assert.ok(plan.invalid.p < 0);
  const frame = JSON.parse(plan.frame);
  assert.equal(frame.type, "trade");
  assert.deepEqual(frame.data, plan.sent);
  const pair = plan.valid.filter((t) => t.p === 99.75);
  assert.equal(pair.length, 2);
  assert.deepEqual(pair[0], pair[1]);
  assert.equal(plan.valid.filter((t) => t.v === 0).length, 1);
  for (const t of plan.sent) assert.ok(t.t < 1_750_000_000_000 && t.t > 1_750_000_000_000 - 5_000);
});

Deno.test("expectedCandles() computes exact OHLCV, counts and the price x volume sum", () => {
  const plan = smokePlan("SMOKE:RX", Date.UTC(2025, 5, 1, 12, 2, 0));
  const [candle, ...rest] = expectedCandles(plan.valid, "5m");
  assert.equal(rest.length, 0);
  assert.deepEqual(candle, {
    interval: "5m",
    windowStart: Date.UTC(2025, 5, 1, 12, 0, 0),
    open: 100.5,
    high: 102,
    low: 99.75,
    close: 100.125,
    volume: "9.75", // 2 + 1.5 + 3 + 3 + 0 + 0.25
    pvSum: "976.40625", // 201 + 151.875 + 299.25 + 299.25 + 25.03125
    tradeCount: 6,
    priceOnlyCount: 1,
  });
  assert.equal(expectedCandles(plan.valid, "1h")[0]!.windowStart, Date.UTC(2025, 5, 1, 12));
});

Deno.test("expectedCandles() splits at a window boundary and orders ties by send order", () => {
  const boundary = Date.UTC(2025, 0, 1, 0, 5, 0);
  const trades = [
    { s: "X", p: 2, t: boundary - 1, v: 0.1, c: null },
    { s: "X", p: 3, t: boundary - 1, v: 0.2, c: null },
    { s: "X", p: 4, t: boundary, v: 1e-7, c: null },
  ];
  const candles = expectedCandles(trades, "5m");
  assert.equal(candles.length, 2);
  assert.equal(candles[0]!.open, 2);
  assert.equal(candles[0]!.close, 3);
  assert.equal(candles[0]!.volume, "0.3"); // exact, not 0.30000000000000004
  assert.equal(candles[1]!.volume, "0.0000001");
  assert.equal(candles[1]!.pvSum, "0.0000004");
  assert.equal(expectedCandles(trades, "1h").length, 1);
});

Deno.test("candleDifferences() names each field that differs; decimals compare by value", () => {
  const [expected] = expectedCandles(
    smokePlan("SMOKE:RX", Date.UTC(2025, 5, 1, 12, 2)).valid,
    "5m",
  );
  const actual = {
    windowStart: expected!.windowStart,
    open: 100.5,
    high: 102,
    low: 99.75,
    close: 100.125,
    volume: "9.750",
    pvSum: "976.40625",
    tradeCount: 6,
    priceOnlyCount: 1,
  };
  assert.deepEqual(candleDifferences(expected!, actual), []);
  assert.deepEqual(candleDifferences(expected!, { ...actual, tradeCount: 12, volume: "19.5" }), [
    "volume: expected 9.75, got 19.5",
    "trade_count: expected 6, got 12",
  ]);
});

Deno.test("canonicalDecimal() strips trailing zeros and exponents", () => {
  assert.equal(canonicalDecimal("9.750"), "9.75");
  assert.equal(canonicalDecimal("1E+2"), "100");
  assert.equal(canonicalDecimal("0.00"), "0");
  assert.equal(canonicalDecimal("-1.50"), "-1.5");
  assert.equal(canonicalDecimal("4E-7"), "0.0000004");
});

Deno.test("hourBuckets() and goldBucketOf() give the partitions to read", () => {
  const t = Date.UTC(2025, 11, 31, 23, 59, 59);
  assert.deepEqual(hourBuckets(t, t + 2_000), [Date.UTC(2025, 11, 31, 23), Date.UTC(2026, 0, 1)]);
  assert.deepEqual(hourBuckets(t, t), [Date.UTC(2025, 11, 31, 23)]);
  assert.equal(goldBucketOf(Date.UTC(2025, 11, 31, 23, 55), "5m"), "2025-12-01");
  assert.equal(goldBucketOf(Date.UTC(2025, 11, 31, 23), "1h"), "2025-01-01");
});

Deno.test("formatReport() prints PASS/FAIL per check, details for failures or with -v", () => {
  const results = [
    { name: "bronze", pass: true, summary: "7 rows", details: ["row 1"] },
    { name: "gold 5m", pass: false, summary: "differs", details: ["volume: expected 1, got 2"] },
  ];
  assert.deepEqual(formatReport(results, false), [
    "PASS  bronze   7 rows",
    "FAIL  gold 5m  differs",
    "               volume: expected 1, got 2",
    "smoke: FAIL (1 of 2 checks failed)",
  ]);
  assert.equal(formatReport(results, true).length, 5);
  assert.equal(formatReport([results[0]!], false).at(-1), "smoke: PASS (1 checks)");
});

Deno.test("forcedGapCheck() passes on the reconnect gap of the forced drop, and says what it found otherwise", () => {
  const dropAt = 1_700_000_000_000;
  const gap = (cause: FeedGap["cause"], fromMs: number): FeedGap => ({
    gapId: `f:${cause}:${fromMs}`,
    fromMs,
    toMs: fromMs + 300,
    symbols: ["AAPL"],
    cause,
    connectionId: "ab-2",
    detectedAtMs: fromMs + 300,
  });
  const pass = forcedGapCheck(
    [gap("buffer_overflow", dropAt + 5), gap("reconnect", dropAt + 3)],
    dropAt,
  );
  assert.equal(pass.pass, true);
  assert.equal(pass.name, "feed gap");
  assert.match(
    pass.summary,
    /gap f:reconnect:1700000000003: 300 ms until the producer subscribed again/,
  );
  assert.equal(pass.details.length, 2);
  const none = forcedGapCheck([], dropAt);
  assert.equal(none.pass, false);
  assert.match(none.summary, /no reconnect gap from the drop forced at 2023-11-14T22:13:20.000Z/);
  // A reconnect gap from well before the drop is another one.
  assert.equal(forcedGapCheck([gap("reconnect", dropAt - 5_000)], dropAt).pass, false);
  assert.equal(forcedGapCheck([gap("watchdog", dropAt + 1)], dropAt).pass, false);
});
