import assert from "node:assert/strict";
import { watchlistRow } from "../watchlist.ts";
import { SERVED_INTERVALS } from "../../../shared/gold_table.ts";
import type { CandleJson } from "../store.ts";
import {
  addDecimal,
  applyCandleToRow,
  CHART_INTERVALS,
  DEFAULT_INTERVAL,
  formatDecimalText,
  formatDuration,
  formatPercent,
  gapLines,
  isIncomplete,
  legendFields,
  opensBefore,
  pageRowOf,
  parseRoute,
  percentOf,
  routeHash,
  sessionLabel,
  sparklinePoints,
  subtractDecimal,
} from "./view.js";

const t = (iso: string) => Date.parse(iso);

function candle(iso: string, open: number, close: number, volume: string, trades = 1): CandleJson {
  const time = t(iso);
  return {
    time,
    end: time + 300_000,
    open,
    high: Math.max(open, close),
    low: Math.min(open, close),
    close,
    volume,
    vwap: null,
    trades,
    final: false,
  };
}

Deno.test("decimal helpers add, subtract and format without float error", () => {
  assert.equal(addDecimal("0.1", "0.2"), "0.3");
  assert.equal(addDecimal("0.30000000000000004", "1e-7"), "0.30000010000000004");
  assert.equal(subtractDecimal(102.1, 101.5), "0.6");
  assert.equal(subtractDecimal("1", "1.000"), "0");
  assert.equal(subtractDecimal(1, 2.5), "-1.5");
  assert.equal(formatDecimalText("1234567.890"), "1,234,567.89");
  assert.equal(formatDecimalText("0.6", { minFraction: 2, signed: true }), "+0.60");
  assert.equal(formatDecimalText("-999.75", { minFraction: 2, signed: true }), "-999.75");
  assert.equal(formatDecimalText("0", { minFraction: 2, signed: true }), "0.00");
  assert.equal(formatDecimalText("1e21"), "1,000,000,000,000,000,000,000");
  assert.throws(() => addDecimal("1,5", "1"), /Not a decimal number: "1,5"/);
});

Deno.test("percentOf() rounds half-to-even to 2 places like the server", () => {
  assert.equal(percentOf("0.6", 101.5), "0.59");
  assert.equal(percentOf("-999.75", 90000), "-1.11");
  assert.equal(percentOf("1", "8"), "12.5");
  assert.equal(percentOf("0.00125", "1"), "0.12"); // 0.125: half to even
  assert.equal(percentOf("0.00135", "1"), "0.14");
  assert.equal(percentOf("1", 0), null);
});

Deno.test("parseRoute() and routeHash(): watchlist by default, a symbol's chart by hash", () => {
  assert.deepEqual(parseRoute(""), { view: "watchlist" });
  assert.deepEqual(parseRoute("#/"), { view: "watchlist" });
  assert.deepEqual(parseRoute("#/symbol/AAPL"), { view: "chart", symbol: "AAPL", interval: "5m" });
  assert.deepEqual(parseRoute("#/symbol/BINANCE%3ABTCUSDT/1h"), {
    view: "chart",
    symbol: "BINANCE:BTCUSDT",
    interval: "1h",
  });
  assert.deepEqual(parseRoute("#/symbol/AAPL/7y"), {
    view: "chart",
    symbol: "AAPL",
    interval: "5m",
  });
  assert.deepEqual(parseRoute("#/symbol/%E0%A4%A"), { view: "watchlist" });
  for (const route of [{ view: "chart", symbol: "BINANCE:BTCUSDT", interval: "1h" }]) {
    assert.deepEqual(parseRoute(routeHash(route)), route);
  }
  assert.equal(routeHash({ view: "chart", symbol: "AAPL", interval: "5m" }), "#/symbol/AAPL");
  assert.equal(routeHash({ view: "watchlist" }), "#/");
  assert.deepEqual(CHART_INTERVALS, SERVED_INTERVALS);
  assert.equal(DEFAULT_INTERVAL, "5m");
});

Deno.test("legendFields() shows OHLC, exact volume and VWAP, trades and coverage", () => {
  const c = { ...candle("2026-12-04T15:00:00Z", 101.9, 102.1, "12345.5"), vwap: "102.00125" };
  assert.deepEqual(legendFields(c), [
    ["", "2026-12-04 15:00 UTC"],
    ["O", "101.90"],
    ["H", "102.10"],
    ["L", "101.90"],
    ["C", "102.10"],
    ["Vol", "12,345.5"],
    ["VWAP", "102.00125"],
    ["Trades", "1"],
    ["Coverage", "100%"],
  ]);
  const gappy = { ...c, vwap: null, coverage: 0.75, gapCount: 2 };
  assert.deepEqual(legendFields(gappy).slice(6), [
    ["VWAP", "–"],
    ["Trades", "1"],
    ["Coverage", "75.0% (2 gaps)"],
  ]);
  assert.equal(isIncomplete(c), false, "no coverage field: complete");
  assert.equal(isIncomplete(gappy), true);
  assert.equal(isIncomplete({ ...c, coverage: 1 }), false);
  assert.equal(formatPercent(0.99999), "99.9%", "never rounded up to 100%");
});

Deno.test("gapLines() lists each gap with its UTC span, duration and cause", () => {
  assert.deepEqual(
    gapLines([
      {
        gapId: "g1",
        from: t("2026-12-04T15:01:05Z"),
        to: t("2026-12-04T15:01:40Z"),
        cause: "reconnect",
        symbols: ["AAPL"],
      },
      {
        gapId: "g2",
        from: t("2026-12-04T16:00:00Z"),
        to: t("2026-12-04T18:03:00Z"),
        cause: "producer_down",
        symbols: ["AAPL"],
      },
    ]),
    [
      { id: "g1", text: "2026-12-04 15:01:05 – 15:01:40 UTC · 35 s · reconnect" },
      { id: "g2", text: "2026-12-04 16:00:00 – 18:03:00 UTC · 2 h 3 min · producer_down" },
    ],
  );
  assert.equal(formatDuration(245_000), "4 min 5 s");
  assert.equal(formatDuration(3_600_000), "1 h");
});

Deno.test("sessionLabel() names every session state", () => {
  assert.deepEqual(
    ["PRE_MARKET", "REGULAR", "AFTER_HOURS", "CLOSED", "OPEN"].map(sessionLabel),
    ["Pre-market", "Regular", "After-hours", "Closed", "Open 24h"],
  );
});

Deno.test("opensBefore(): a regular candle beats the pre-market; otherwise the earlier", () => {
  const openFrom = 1000;
  assert.equal(opensBefore(500, null, openFrom), true);
  assert.equal(opensBefore(1000, 500, openFrom), true);
  assert.equal(opensBefore(500, 1000, openFrom), false);
  assert.equal(opensBefore(1300, 1000, openFrom), false);
  assert.equal(opensBefore(1000, 1000, openFrom), true, "an update of the same window");
  assert.equal(opensBefore(200, 500, openFrom), true);
});

/** The JSON of a page row, as `/api/watchlist` gives it. */
// deno-lint-ignore no-explicit-any
function jsonOf(row: any) {
  const { closes: _, windows, ...rest } = row;
  return {
    ...rest,
    windows: [...windows].sort((a, b) => a[0] - b[0]).map((
      [t, w]: [number, { close: number; volume: string; trades: number }],
    ) => [t, w.close, w.volume, w.trades]),
  };
}

Deno.test("applyCandleToRow(): live candles in any order give the server's row exactly", () => {
  const now = t("2026-12-04T15:20:00Z");
  const candles = [
    candle("2026-12-04T08:55:00Z", 90, 91, "1000"), // before the day
    candle("2026-12-04T09:00:00Z", 100, 100.2, "0.1", 2),
    candle("2026-12-04T14:25:00Z", 100.2, 101.1, "0.2", 3),
    candle("2026-12-04T14:30:00Z", 101.5, 101.9, "0.30000000000000004"),
    candle("2026-12-04T15:00:00Z", 101.9, 102.1, "1e-7"),
    candle("2026-12-04T15:15:00Z", 102.1, 99.95, "12.5"),
  ];
  const expected = watchlistRow("AAPL", now, candles);
  for (
    const order of [
      candles,
      [...candles].reverse(),
      [3, 0, 5, 1, 4, 2].map((i) => candles[i]!),
    ]
  ) {
    const row = pageRowOf(JSON.parse(JSON.stringify(watchlistRow("AAPL", now, []))));
    for (const c of order) applyCandleToRow(row, c);
    assert.deepEqual(jsonOf(row), JSON.parse(JSON.stringify(expected)));
    assert.deepEqual(row.closes, expected.windows.map(([t, c]) => [t, c]));
  }
  // An update of a window replaces its volume and close, not adds to them; a replay of a
  // window the row already holds changes nothing.
  const row = pageRowOf(JSON.parse(JSON.stringify(expected)));
  applyCandleToRow(row, candles[5]!);
  assert.deepEqual(jsonOf(row), JSON.parse(JSON.stringify(expected)));
  assert.equal(
    applyCandleToRow(row, { ...candles[5]!, close: 1, volume: "1", trades: 0 }),
    false,
    "a stale state of a window (fewer trades) is ignored",
  );
  assert.deepEqual(jsonOf(row), JSON.parse(JSON.stringify(expected)));
  applyCandleToRow(row, { ...candles[5]!, close: 100, volume: "13", trades: 2 });
  assert.equal(row.volume, "13.60000010000000004");
  assert.equal(row.trades, 9);
  assert.equal(row.last, 100);
  assert.equal(row.change, "-1.5");
  assert.equal(row.closes.length, 5);
  assert.equal(applyCandleToRow(row, candle("2026-12-05T02:00:00Z", 1, 1, "1")), false);
});

Deno.test("sparklinePoints() spans the box, highest close at the top", () => {
  assert.equal(sparklinePoints([], 100, 20), "");
  assert.equal(sparklinePoints([[0, 5]], 100, 20), "0.0,10.0 100.0,10.0", "one close: flat");
  assert.equal(
    sparklinePoints([[0, 1], [50, 3], [100, 2]], 100, 20),
    "0.0,20.0 50.0,0.0 100.0,10.0",
  );
});
