import assert from "node:assert/strict";
import type { CandleJson } from "./store.ts";
import { tradingDayOf, watchlistRow, watchlistSymbols, watchSessionOf } from "./watchlist.ts";

const t = (iso: string) => Date.parse(iso);

/** A 5m candle starting at `iso`. */
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
    final: true,
  };
}

Deno.test("tradingDayOf() gives a US equity its New York day from 04:00 to 20:00", () => {
  // Friday 2026-12-04, EST (UTC-5): 04:00 = 09:00Z, 09:30 = 14:30Z, 20:00 = 01:00Z.
  assert.deepEqual(tradingDayOf("AAPL", t("2026-12-04T15:00:00Z")), {
    date: "2026-12-04",
    from: t("2026-12-04T09:00:00Z"),
    to: t("2026-12-05T01:00:00Z"),
    openFrom: t("2026-12-04T14:30:00Z"),
  });
  // Before the regular open the open is the pre-market's first trade.
  const early = tradingDayOf("AAPL", t("2026-12-04T14:29:59.999Z"));
  assert.equal(early.openFrom, t("2026-12-04T09:00:00Z"));
  assert.equal(tradingDayOf("AAPL", t("2026-12-04T14:30:00Z")).openFrom, t("2026-12-04T14:30:00Z"));
});

Deno.test("tradingDayOf() keeps Friday's day over the weekend until Monday 04:00 New York", () => {
  for (
    const iso of [
      "2026-12-05T01:00:00Z", // Friday 20:00
      "2026-12-05T12:00:00Z", // Saturday
      "2026-12-06T23:59:59Z", // Sunday
      "2026-12-07T08:59:59.999Z", // Monday 03:59:59.999
    ]
  ) {
    const day = tradingDayOf("MSFT", t(iso));
    assert.equal(day.date, "2026-12-04", iso);
    assert.equal(day.openFrom, t("2026-12-04T14:30:00Z"), iso);
  }
  assert.equal(tradingDayOf("MSFT", t("2026-12-07T09:00:00Z")).date, "2026-12-07");
  // Tuesday 02:00 New York is still Monday's day.
  assert.equal(tradingDayOf("MSFT", t("2026-12-08T07:00:00Z")).date, "2026-12-07");
});

Deno.test("tradingDayOf() follows daylight saving: each weekday at its own offset", () => {
  // 2026-03-08 (Sunday) springs forward: Friday the 6th is EST, Monday the 9th EDT.
  assert.deepEqual(tradingDayOf("AAPL", t("2026-03-08T15:00:00Z")), {
    date: "2026-03-06",
    from: t("2026-03-06T09:00:00Z"),
    to: t("2026-03-07T01:00:00Z"),
    openFrom: t("2026-03-06T14:30:00Z"),
  });
  assert.deepEqual(tradingDayOf("AAPL", t("2026-03-09T14:00:00Z")), {
    date: "2026-03-09",
    from: t("2026-03-09T08:00:00Z"),
    to: t("2026-03-10T00:00:00Z"),
    openFrom: t("2026-03-09T13:30:00Z"),
  });
  // Monday 03:30 EDT (07:30Z) is before the pre-market: still Friday's (EST) day.
  assert.equal(tradingDayOf("AAPL", t("2026-03-09T07:30:00Z")).date, "2026-03-06");
  // 2026-11-01 falls back: Friday 10-30 is EDT, Monday 11-02 EST.
  assert.equal(tradingDayOf("AAPL", t("2026-11-01T12:00:00Z")).from, t("2026-10-30T08:00:00Z"));
  assert.equal(tradingDayOf("AAPL", t("2026-11-02T12:00:00Z")).from, t("2026-11-02T09:00:00Z"));
});

Deno.test("tradingDayOf() gives crypto and FX the UTC day, weekends included", () => {
  for (const symbol of ["BINANCE:BTCUSDT", "OANDA:EUR_USD"]) {
    assert.deepEqual(tradingDayOf(symbol, t("2026-12-05T23:59:59.999Z")), {
      date: "2026-12-05",
      from: t("2026-12-05T00:00:00Z"),
      to: t("2026-12-06T00:00:00Z"),
      openFrom: t("2026-12-05T00:00:00Z"),
    });
  }
});

Deno.test("watchSessionOf() names the US session at the instant; crypto is always OPEN", () => {
  const cases: [string, string, string][] = [
    ["AAPL", "2026-12-04T08:59:59.999Z", "CLOSED"],
    ["AAPL", "2026-12-04T09:00:00Z", "PRE_MARKET"],
    ["AAPL", "2026-12-04T14:30:00Z", "REGULAR"],
    ["AAPL", "2026-12-04T21:00:00Z", "AFTER_HOURS"],
    ["AAPL", "2026-12-05T01:00:00Z", "CLOSED"],
    ["AAPL", "2026-12-05T15:00:00Z", "CLOSED"], // Saturday
    ["AAPL", "2026-03-09T13:30:00Z", "REGULAR"], // 09:30 EDT
    ["AAPL", "2026-03-06T13:30:00Z", "PRE_MARKET"], // 08:30 EST
    ["BINANCE:BTCUSDT", "2026-12-05T15:00:00Z", "OPEN"],
    ["OANDA:EUR_USD", "2026-12-04T03:00:00Z", "OPEN"],
  ];
  for (const [symbol, iso, session] of cases) {
    assert.equal(watchSessionOf(symbol, t(iso)), session, `${symbol} at ${iso}`);
  }
});

/** AAPL on Friday 2026-12-04 (EST): before, in and after its day. */
const FRIDAY = [
  candle("2026-12-04T08:55:00Z", 90, 91, "1000"), // 03:55: closed hours, not the day's
  candle("2026-12-04T09:00:00Z", 100, 100.2, "0.1", 2), // the pre-market's first trade
  candle("2026-12-04T14:25:00Z", 100.2, 101.1, "0.2", 3),
  candle("2026-12-04T14:30:00Z", 101.5, 101.9, "0.3"), // the regular open
  candle("2026-12-04T15:00:00Z", 101.9, 102.1, "1e-7"),
  candle("2026-12-05T01:00:00Z", 50, 50, "7"), // 20:00: closed hours
];

Deno.test("watchlistRow() in the regular session: open at 09:30, exact change and volume", () => {
  const row = watchlistRow("AAPL", t("2026-12-04T15:02:00Z"), FRIDAY);
  assert.equal(row.session, "REGULAR");
  assert.equal(row.open, 101.5);
  assert.equal(row.openTime, t("2026-12-04T14:30:00Z"));
  assert.equal(row.last, 102.1);
  assert.equal(row.lastTime, t("2026-12-04T15:00:00Z"));
  assert.equal(102.1 - 101.5 === 0.6, false, "the float difference is not 0.6");
  assert.equal(row.change, "0.6");
  assert.equal(row.changePercent, "0.59"); // 0.5911...
  assert.equal(row.volume, "0.6000001");
  assert.equal(row.trades, 7);
  assert.deepEqual(row.windows, [
    [t("2026-12-04T09:00:00Z"), 100.2, "0.1", 2],
    [t("2026-12-04T14:25:00Z"), 101.1, "0.2", 3],
    [t("2026-12-04T14:30:00Z"), 101.9, "0.3", 1],
    [t("2026-12-04T15:00:00Z"), 102.1, "1e-7", 1],
  ]);
});

Deno.test("watchlistRow() in the pre-market: open is the pre-market's first trade", () => {
  const row = watchlistRow("AAPL", t("2026-12-04T14:29:00Z"), FRIDAY.slice(0, 3));
  assert.equal(row.session, "PRE_MARKET");
  assert.equal(row.open, 100);
  assert.equal(row.last, 101.1);
  assert.equal(row.change, "1.1");
  assert.equal(row.changePercent, "1.1");
  assert.equal(row.volume, "0.3");
});

Deno.test("watchlistRow() after 09:30 with no regular trade yet falls back to the day's first", () => {
  const row = watchlistRow("AAPL", t("2026-12-04T14:31:00Z"), FRIDAY.slice(0, 3));
  assert.equal(row.session, "REGULAR");
  assert.equal(row.open, 100);
});

Deno.test("watchlistRow() on a weekend shows Friday, CLOSED, ignoring closed-hours candles", () => {
  const saturday = [...FRIDAY, candle("2026-12-05T15:00:00Z", 1, 1, "9")];
  const row = watchlistRow("AAPL", t("2026-12-05T15:10:00Z"), saturday);
  assert.equal(row.session, "CLOSED");
  assert.equal(row.day.date, "2026-12-04");
  assert.equal(row.open, 101.5);
  assert.equal(row.last, 102.1);
  assert.equal(row.volume, "0.6000001");
  assert.equal(row.windows.length, 4);
});

Deno.test("watchlistRow() across daylight saving: the day's volume at the day's own offset", () => {
  const candles = [
    candle("2026-03-09T07:55:00Z", 10, 10, "5"), // 03:55 EDT: before the day
    candle("2026-03-09T08:00:00Z", 10, 11, "1.5"), // 04:00 EDT
    candle("2026-03-09T13:30:00Z", 12, 12.5, "2.25"), // 09:30 EDT
    candle("2026-03-09T23:55:00Z", 12.5, 13, "0.25"), // 19:55 EDT
    candle("2026-03-10T00:00:00Z", 13, 14, "100"), // 20:00 EDT: after
  ];
  const row = watchlistRow("TSLA", t("2026-03-10T01:00:00Z"), candles);
  assert.equal(row.session, "CLOSED");
  assert.equal(row.volume, "4");
  assert.equal(row.open, 12);
  assert.equal(row.last, 13);
  assert.equal(row.change, "1");
  assert.equal(row.changePercent, "8.33");
  // The same UTC times on the Friday before (EST) fall an hour earlier in New York.
  const friday = candles.map((c) => ({ ...c, time: c.time - 3 * 86_400_000 }));
  const before = watchlistRow("TSLA", t("2026-03-07T02:00:00Z"), friday);
  assert.equal(before.volume, "102.5"); // 08:00Z is 03:00 EST (out); 00:00Z is 19:00 EST (in)
  assert.equal(before.open, 12.5); // 13:30Z is 08:30 EST: the first regular candle is 23:55Z
});

Deno.test("watchlistRow() for crypto: the UTC day, opened by its first trade", () => {
  const candles = [
    candle("2026-12-05T23:55:00Z", 1, 2, "3"),
    candle("2026-12-06T00:00:00Z", 90_000, 90_100.5, "0.001"),
    candle("2026-12-06T12:00:00Z", 90_100.5, 89_000.25, "0.002"),
  ];
  const row = watchlistRow("BINANCE:BTCUSDT", t("2026-12-06T12:03:00Z"), candles);
  assert.equal(row.session, "OPEN");
  assert.equal(row.day.date, "2026-12-06");
  assert.equal(row.open, 90_000);
  assert.equal(row.last, 89_000.25);
  assert.equal(row.change, "-999.75");
  assert.equal(row.changePercent, "-1.11");
  assert.equal(row.volume, "0.003");
  assert.equal(row.trades, 2);
});

Deno.test("watchlistRow() with no candle in the day: nulls and volume 0", () => {
  const row = watchlistRow("AAPL", t("2026-12-07T15:00:00Z"), FRIDAY);
  assert.equal(row.day.date, "2026-12-07");
  assert.deepEqual(
    [row.open, row.openTime, row.last, row.lastTime, row.change, row.changePercent],
    [null, null, null, null, null, null],
  );
  assert.equal(row.volume, "0");
  assert.equal(row.trades, 0);
  assert.deepEqual(row.windows, []);
});

Deno.test("watchlistRow() leaves the percentage out when the open is 0", () => {
  const row = watchlistRow("X:Y", t("2026-12-06T01:00:00Z"), [
    candle("2026-12-06T00:00:00Z", 0, 1, "1"),
  ]);
  assert.equal(row.change, "1");
  assert.equal(row.changePercent, null);
});

Deno.test("watchlistSymbols() lists the configured first, then the seen, once each, bounded", () => {
  assert.deepEqual(watchlistSymbols(["B", "A"], ["A", "C", "D"]), ["B", "A", "C", "D"]);
  assert.deepEqual(watchlistSymbols(["B", "A"], ["C", "D"], 3), ["B", "A", "C"]);
});

/** The New York wall clock of `ms` by the runtime's time-zone database. */
const NEW_YORK = new Intl.DateTimeFormat("en-US", {
  timeZone: "America/New_York",
  weekday: "short",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
function newYork(ms: number): { weekday: string; date: string; minutes: number } {
  const p = Object.fromEntries(NEW_YORK.formatToParts(ms).map((part) => [part.type, part.value]));
  return {
    weekday: p.weekday!,
    date: `${p.year}-${p.month}-${p.day}`,
    minutes: Number(p.hour) * 60 + Number(p.minute),
  };
}

Deno.test("tradingDayOf() agrees with the time-zone database every 47 minutes of 2026-2027", () => {
  const weekend = ["Sat", "Sun"];
  let previous = "";
  for (let now = t("2026-01-01T00:10:00Z"); now < t("2028-01-01T00:00:00Z"); now += 2_820_000) {
    const day = tradingDayOf("AAPL", now);
    const from = newYork(day.from);
    const to = newYork(day.to);
    const local = newYork(now);
    const at = new Date(now).toISOString();
    assert.equal(from.minutes, 4 * 60, `${at}: from 04:00`);
    assert.equal(to.minutes, 20 * 60, `${at}: to 20:00`);
    assert.equal(from.date, day.date, at);
    assert.equal(to.date, day.date, at);
    assert.ok(!weekend.includes(from.weekday), `${at}: a weekday`);
    assert.ok(day.from <= now, `${at}: begun`);
    // The latest such day: today when it is a weekday past 04:00, else an earlier one.
    const today = !weekend.includes(local.weekday) && local.minutes >= 4 * 60;
    assert.equal(day.date === local.date, today, at);
    assert.ok(day.date >= previous, `${at}: days never go back`);
    previous = day.date;
    const regularOpen = day.from + 5.5 * 3_600_000;
    assert.equal(newYork(regularOpen).minutes, 9 * 60 + 30);
    assert.equal(day.openFrom, now >= regularOpen ? regularOpen : day.from, at);
  }
});
