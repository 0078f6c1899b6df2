import assert from "node:assert/strict";
import type { TradingSession } from "./types.ts";
import {
  isUsEquity,
  newYorkUtcOffsetMs,
  sessionFor,
  tradingMsWithin,
  tradingSession,
  tradingSpansWithin,
} from "./trading_session.ts";
import { mulberry32 } from "./random.ts";

const EDT = -4 * 3_600_000;
const EST = -5 * 3_600_000;

/** An instant written with an explicit UTC offset, e.g. `at("2024-03-11T09:30:00.000-04:00")`. */
function at(iso: string): number {
  const time = Date.parse(iso);
  assert.ok(Number.isFinite(time), `bad test time ${iso}`);
  return time;
}

// ---------------------------------------------------------------------------------------------
// The independent reference: the runtime's time-zone database through Intl.

const newYork = new Intl.DateTimeFormat("en-US", {
  timeZone: "America/New_York",
  weekday: "short",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
  timeZoneName: "shortOffset",
});

interface Reference {
  readonly session: TradingSession;
  readonly offsetMs: number;
}

/** Reads `Wed, 09:30 GMT-5` (hot loop: a regular expression, no assert calls). */
const FORMATTED = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d):(\d\d) GMT([+-]\d{1,2})$/;

function reference(time: number): Reference {
  const text = newYork.format(time);
  const match = FORMATTED.exec(text);
  if (!match) throw new Error(`Unexpected Intl output ${JSON.stringify(text)} for ${time}`);
  const [, weekday, hour, minute, zone] = match;
  const minuteOfDay = Number(hour) * 60 + Number(minute);
  let session: TradingSession = "CLOSED";
  if (weekday !== "Sat" && weekday !== "Sun") {
    if (minuteOfDay >= 4 * 60 && minuteOfDay < 9 * 60 + 30) session = "PRE_MARKET";
    else if (minuteOfDay >= 9 * 60 + 30 && minuteOfDay < 16 * 60) session = "REGULAR";
    else if (minuteOfDay >= 16 * 60 && minuteOfDay < 20 * 60) session = "AFTER_HOURS";
  }
  return { session, offsetMs: Number(zone) * 3_600_000 };
}

function compareWithReference(times: Iterable<number>): { checked: number; mismatches: string[] } {
  const mismatches: string[] = [];
  let checked = 0;
  for (const time of times) {
    checked++;
    const expected = reference(time);
    const session = tradingSession(time);
    const offset = newYorkUtcOffsetMs(time);
    if (session !== expected.session || offset !== expected.offsetMs) {
      mismatches.push(
        `${new Date(time).toISOString()} (${
          newYork.format(time)
        }): got ${session} ${offset}, expected ${expected.session} ${expected.offsetMs}`,
      );
    }
  }
  return { checked, mismatches };
}

// ---------------------------------------------------------------------------------------------
// isUsEquity / sessionFor

Deno.test("isUsEquity() is true for well-formed tickers without an exchange prefix", () => {
  for (const symbol of ["AAPL", "BRK.B", "A", "TSLA", "BF-B", "BRK/A", "SELECT", "X1"]) {
    assert.equal(isUsEquity(symbol), true, symbol);
  }
});

Deno.test("isUsEquity() is false for crypto and FX symbols with an exchange prefix", () => {
  for (const symbol of ["BINANCE:BTCUSDT", "OANDA:EUR_USD", "COINBASE:ETH-USD", "FXCM:EUR/USD"]) {
    assert.equal(isUsEquity(symbol), false, symbol);
  }
});

Deno.test("isUsEquity() is false for malformed symbols", () => {
  for (const symbol of ["", "aapl", " AAPL", "AAPL;", "ÄPPL", ":AAPL", "X".repeat(33)]) {
    assert.equal(isUsEquity(symbol), false, JSON.stringify(symbol));
  }
});

Deno.test("sessionFor() gives the New York session for a US equity", () => {
  const time = at("2024-07-10T10:00:00.000-04:00");
  assert.equal(sessionFor("AAPL", time), "REGULAR");
  assert.equal(sessionFor("BRK.B", at("2024-07-10T05:00:00.000-04:00")), "PRE_MARKET");
  assert.equal(sessionFor("A", at("2024-07-13T10:00:00.000-04:00")), "CLOSED");
});

Deno.test("sessionFor() is null for crypto, FX and malformed symbols at any time", () => {
  const times = [at("2024-07-10T10:00:00.000-04:00"), at("2024-07-13T03:00:00.000-04:00")];
  for (const symbol of ["BINANCE:BTCUSDT", "OANDA:EUR_USD", "aapl", ""]) {
    for (const time of times) assert.equal(sessionFor(symbol, time), null, symbol);
  }
});

// ---------------------------------------------------------------------------------------------
// newYorkUtcOffsetMs

Deno.test("newYorkUtcOffsetMs() switches to EDT at 02:00 EST on the second Sunday of March", () => {
  const cases: [string, number][] = [
    ["2024-03-10T06:59:59.999Z", EST], // 01:59:59.999 EST
    ["2024-03-10T07:00:00.000Z", EDT], // 03:00 EDT
    ["2019-03-10T06:59:59.999Z", EST],
    ["2019-03-10T07:00:00.000Z", EDT],
    ["2007-03-11T06:59:59.999Z", EST], // first year of the 2007 rule
    ["2007-03-11T07:00:00.000Z", EDT],
    ["2026-03-08T06:59:59.999Z", EST],
    ["2026-03-08T07:00:00.000Z", EDT],
  ];
  for (const [iso, offset] of cases) assert.equal(newYorkUtcOffsetMs(at(iso)), offset, iso);
});

Deno.test("newYorkUtcOffsetMs() switches to EST at 02:00 EDT on the first Sunday of November", () => {
  const cases: [string, number][] = [
    ["2024-11-03T05:59:59.999Z", EDT], // 01:59:59.999 EDT, first pass through 01:xx
    ["2024-11-03T06:00:00.000Z", EST], // 01:00 EST, second pass
    ["2024-11-03T06:59:59.999Z", EST],
    ["2019-11-03T05:59:59.999Z", EDT],
    ["2019-11-03T06:00:00.000Z", EST],
    ["2007-11-04T05:59:59.999Z", EDT],
    ["2007-11-04T06:00:00.000Z", EST],
  ];
  for (const [iso, offset] of cases) assert.equal(newYorkUtcOffsetMs(at(iso)), offset, iso);
});

Deno.test("newYorkUtcOffsetMs() follows the 1987-2006 rule (April to October) before 2007", () => {
  const cases: [string, number][] = [
    ["2006-03-12T12:00:00.000Z", EST], // the 2007 rule would already be on EDT here
    ["2006-04-02T06:59:59.999Z", EST],
    ["2006-04-02T07:00:00.000Z", EDT],
    ["2006-10-29T05:59:59.999Z", EDT],
    ["2006-10-29T06:00:00.000Z", EST],
    ["2006-11-01T12:00:00.000Z", EST], // the 2007 rule would still be on EDT here
    ["2000-04-02T07:00:00.000Z", EDT],
    ["2000-10-29T06:00:00.000Z", EST],
  ];
  for (const [iso, offset] of cases) assert.equal(newYorkUtcOffsetMs(at(iso)), offset, iso);
});

Deno.test("newYorkUtcOffsetMs() is EST around New Year in both UTC and New York time", () => {
  for (const iso of ["2024-12-31T23:59:59.999Z", "2025-01-01T00:00:00.000Z", "2025-01-01T04:59Z"]) {
    assert.equal(newYorkUtcOffsetMs(at(iso)), EST, iso);
  }
});

// ---------------------------------------------------------------------------------------------
// tradingSession: hand-written boundaries

const BOUNDARIES: [string, TradingSession][] = [
  ["00:00:00.000", "CLOSED"],
  ["03:59:59.999", "CLOSED"],
  ["04:00:00.000", "PRE_MARKET"],
  ["04:00:00.001", "PRE_MARKET"],
  ["09:29:59.999", "PRE_MARKET"],
  ["09:30:00.000", "REGULAR"],
  ["09:30:00.001", "REGULAR"],
  ["15:59:59.999", "REGULAR"],
  ["16:00:00.000", "AFTER_HOURS"],
  ["16:00:00.001", "AFTER_HOURS"],
  ["19:59:59.999", "AFTER_HOURS"],
  ["20:00:00.000", "CLOSED"],
  ["20:00:00.001", "CLOSED"],
  ["23:59:59.999", "CLOSED"],
];

Deno.test("tradingSession() puts each boundary ± 1 ms on the right side on an EST weekday", () => {
  for (const [clock, session] of BOUNDARIES) {
    assert.equal(tradingSession(at(`2024-01-10T${clock}-05:00`)), session, clock);
  }
});

Deno.test("tradingSession() puts each boundary ± 1 ms on the right side on an EDT weekday", () => {
  for (const [clock, session] of BOUNDARIES) {
    assert.equal(tradingSession(at(`2024-07-10T${clock}-04:00`)), session, clock);
  }
});

Deno.test("tradingSession() keeps the boundaries in local time on the days around a transition", () => {
  const days = [
    "2024-03-08T%-05:00", // Friday before spring forward
    "2024-03-11T%-04:00", // Monday after spring forward
    "2024-11-01T%-04:00", // Friday before fall back
    "2024-11-04T%-05:00", // Monday after fall back
    "2006-03-31T%-05:00", // Friday before the 2006 spring forward (old rule)
    "2006-04-03T%-04:00", // Monday after it
    "2006-10-27T%-04:00", // Friday before the 2006 fall back
    "2006-10-30T%-05:00", // Monday after it
  ];
  for (const day of days) {
    for (const [clock, session] of BOUNDARIES) {
      const iso = day.replace("%", clock);
      assert.equal(tradingSession(at(iso)), session, iso);
    }
  }
});

Deno.test("tradingSession() is CLOSED all day on transition Sundays, around 02:00 too", () => {
  const times = [
    "2024-03-10T00:00:00.000-05:00",
    "2024-03-10T01:59:59.999-05:00",
    "2024-03-10T03:00:00.000-04:00",
    "2024-03-10T04:00:00.000-04:00",
    "2024-03-10T10:00:00.000-04:00",
    "2024-03-10T23:59:59.999-04:00",
    "2024-11-03T00:00:00.000-04:00",
    "2024-11-03T01:30:00.000-04:00",
    "2024-11-03T01:30:00.000-05:00",
    "2024-11-03T04:00:00.000-05:00",
    "2024-11-03T10:00:00.000-05:00",
    "2024-11-03T23:59:59.999-05:00",
  ];
  for (const iso of times) assert.equal(tradingSession(at(iso)), "CLOSED", iso);
});

Deno.test("tradingSession() is CLOSED on Saturday and Sunday and reopens Monday 04:00", () => {
  const cases: [string, TradingSession][] = [
    ["2024-01-05T19:59:59.999-05:00", "AFTER_HOURS"], // Friday
    ["2024-01-05T20:00:00.000-05:00", "CLOSED"],
    ["2024-01-06T00:00:00.000-05:00", "CLOSED"], // Saturday
    ["2024-01-06T04:00:00.000-05:00", "CLOSED"],
    ["2024-01-06T09:30:00.000-05:00", "CLOSED"],
    ["2024-01-06T12:00:00.000-05:00", "CLOSED"],
    ["2024-01-06T16:00:00.000-05:00", "CLOSED"],
    ["2024-01-07T09:30:00.000-05:00", "CLOSED"], // Sunday
    ["2024-01-07T23:59:59.999-05:00", "CLOSED"],
    ["2024-01-08T03:59:59.999-05:00", "CLOSED"], // Monday
    ["2024-01-08T04:00:00.000-05:00", "PRE_MARKET"],
    ["2024-07-06T12:00:00.000-04:00", "CLOSED"], // Saturday in summer
    ["2024-07-07T12:00:00.000-04:00", "CLOSED"], // Sunday in summer
    ["2024-07-08T04:00:00.000-04:00", "PRE_MARKET"],
  ];
  for (const [iso, session] of cases) assert.equal(tradingSession(at(iso)), session, iso);
});

Deno.test("tradingSession() takes the weekday from New York, not UTC", () => {
  const cases: [string, TradingSession][] = [
    ["2024-01-06T00:30:00.000Z", "AFTER_HOURS"], // Saturday UTC, Friday 19:30 EST
    ["2024-07-06T00:30:00.000Z", "CLOSED"], // Saturday UTC, Friday 20:30 EDT
    ["2024-07-05T23:59:59.999Z", "AFTER_HOURS"], // Friday 19:59:59.999 EDT
    ["2024-01-08T03:00:00.000Z", "CLOSED"], // Monday UTC, Sunday 22:00 EST
    ["2024-01-08T08:59:59.999Z", "CLOSED"], // Monday 03:59:59.999 EST
    ["2024-01-08T09:00:00.000Z", "PRE_MARKET"], // Monday 04:00 EST
    ["2024-07-08T07:59:59.999Z", "CLOSED"], // Monday 03:59:59.999 EDT
    ["2024-07-08T08:00:00.000Z", "PRE_MARKET"], // Monday 04:00 EDT
  ];
  for (const [iso, session] of cases) assert.equal(tradingSession(at(iso)), session, iso);
});

Deno.test("tradingSession() takes the date from New York across New Year", () => {
  const cases: [string, TradingSession][] = [
    ["2025-01-01T00:30:00.000Z", "AFTER_HOURS"], // Tuesday 2024-12-31 19:30 EST
    ["2025-01-01T01:00:00.000Z", "CLOSED"], // Tuesday 20:00 EST
    ["2024-01-01T03:00:00.000Z", "CLOSED"], // Sunday 2023-12-31 22:00 EST
    ["2024-01-01T09:00:00.000Z", "PRE_MARKET"], // Monday 04:00 EST (a holiday: no calendar)
  ];
  for (const [iso, session] of cases) assert.equal(tradingSession(at(iso)), session, iso);
});

Deno.test("tradingSession() has no holiday calendar: a weekday holiday follows the clock", () => {
  assert.equal(tradingSession(at("2024-12-25T10:00:00.000-05:00")), "REGULAR"); // Christmas
  assert.equal(tradingSession(at("2024-07-04T10:00:00.000-04:00")), "REGULAR"); // Independence Day
  assert.equal(tradingSession(at("2024-11-29T15:00:00.000-05:00")), "REGULAR"); // half day
});

Deno.test("tradingSession() treats a fractional millisecond by the instant it names", () => {
  const open = at("2024-01-10T09:30:00.000-05:00");
  assert.equal(tradingSession(open - 0.5), "PRE_MARKET");
  assert.equal(tradingSession(open + 0.5), "REGULAR");
});

Deno.test("tradingSession() answers the same in any call order (the day memo is invisible)", () => {
  const friday = at("2024-03-08T09:30:00.000-05:00");
  const monday = at("2024-03-11T09:30:00.000-04:00");
  for (let i = 0; i < 3; i++) {
    assert.equal(tradingSession(friday - 1), "PRE_MARKET");
    assert.equal(tradingSession(monday - 1), "PRE_MARKET");
    assert.equal(tradingSession(friday), "REGULAR");
    assert.equal(tradingSession(monday), "REGULAR");
    assert.equal(tradingSession(monday - 3_600_000), "PRE_MARKET"); // 09:30 EST would be 08:30 EDT
  }
});

Deno.test("tradingSession() works at the epoch and at the ends of the Date range", () => {
  assert.equal(tradingSession(0), "AFTER_HOURS"); // Wednesday 1969-12-31 19:00 EST
  assert.equal(tradingSession(-1), "AFTER_HOURS");
  for (const time of [8.64e15, -8.64e15]) {
    assert.ok(["PRE_MARKET", "REGULAR", "AFTER_HOURS", "CLOSED"].includes(tradingSession(time)));
  }
});

Deno.test("tradingSession() and newYorkUtcOffsetMs() throw a RangeError for a non-time", () => {
  for (const bad of [NaN, Infinity, -Infinity, 8.64e15 + 1, -8.64e15 - 1, Number.MAX_VALUE]) {
    assert.throws(() => tradingSession(bad), RangeError, String(bad));
    assert.throws(() => newYorkUtcOffsetMs(bad), RangeError, String(bad));
  }
  // A rejected call must not leave a memo that answers for the bad value next time.
  assert.throws(() => tradingSession(NaN), /got NaN/);
  assert.equal(tradingSession(at("2024-01-10T10:00:00.000-05:00")), "REGULAR");
});

// ---------------------------------------------------------------------------------------------
// tradingSession: cross-check against the time-zone database

const SWEEP_FROM = Date.UTC(2000, 0, 1);
const SWEEP_TO = Date.UTC(2031, 0, 1);
const QUARTER_HOUR = 15 * 60_000;

Deno.test("tradingSession() and newYorkUtcOffsetMs() match Intl every 15 minutes, 2000-2030", () => {
  function* quarterHours() {
    for (let time = SWEEP_FROM; time < SWEEP_TO; time += QUARTER_HOUR) yield time;
  }
  const { checked, mismatches } = compareWithReference(quarterHours());
  assert.equal(checked, (SWEEP_TO - SWEEP_FROM) / QUARTER_HOUR);
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} mismatches`);
});

Deno.test("tradingSession() matches Intl at each minute boundary ± 1 ms around 2019-2027 transitions", () => {
  function* aroundTransitions() {
    for (let year = 2019; year <= 2027; year++) {
      for (const month of [2, 10]) { // March and November
        // Every minute of the transition weekend (Friday to Tuesday), each ± 1 ms.
        const first = Date.UTC(year, month, 1);
        for (let time = first; time < first + 14 * 86_400_000; time += 60_000) {
          yield time - 1;
          yield time;
          yield time + 1;
        }
      }
    }
  }
  const { checked, mismatches } = compareWithReference(aroundTransitions());
  assert.ok(checked > 1_000_000);
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} mismatches`);
});

Deno.test("tradingSession() matches Intl at 200,000 random instants in random order", () => {
  const random = mulberry32(20_240_310);
  function* randomInstants() {
    for (let i = 0; i < 200_000; i++) {
      yield SWEEP_FROM + Math.floor(random() * (SWEEP_TO - SWEEP_FROM));
    }
  }
  const { mismatches } = compareWithReference(randomInstants());
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} mismatches`);
});

// ---------------------------------------------------------------------------------------------
// tradingSpansWithin / tradingMsWithin

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * The reference: every whole minute the span touches, in hours when Intl's New York weekday and
 * wall-clock time say so (sessions change only on whole minutes), counted for the part of it
 * inside the span.
 */
function referenceTradingMs(symbol: string, from: number, to: number): number {
  if (to <= from) return 0;
  if (!isUsEquity(symbol)) return to - from;
  let total = 0;
  for (let minute = Math.floor(from / MINUTE) * MINUTE; minute < to; minute += MINUTE) {
    if (reference(minute).session === "CLOSED") continue;
    total += Math.min(minute + MINUTE, to) - Math.max(minute, from);
  }
  return total;
}

Deno.test("tradingMsWithin() counts 04:00-20:00 New York time of a weekday, EST and EDT", () => {
  // Wednesday 2024-01-10 (EST) and Wednesday 2024-07-10 (EDT), midnight to midnight local.
  assert.equal(
    tradingMsWithin("AAPL", at("2024-01-10T00:00:00-05:00"), at("2024-01-11T00:00:00-05:00")),
    16 * HOUR,
  );
  assert.equal(
    tradingMsWithin("AAPL", at("2024-07-10T00:00:00-04:00"), at("2024-07-11T00:00:00-04:00")),
    16 * HOUR,
  );
  // A UTC day holds the end of one session and most of the next: 00:00-01:00 UTC is 19:00-20:00
  // EST, 09:00 UTC opens the next pre-market.
  assert.equal(
    tradingMsWithin("AAPL", Date.UTC(2024, 0, 10), Date.UTC(2024, 0, 11)),
    HOUR + 16 * HOUR - HOUR,
  );
});

Deno.test("tradingMsWithin() puts each boundary ± 1 ms on the right side", () => {
  const open = at("2024-01-10T04:00:00-05:00");
  const close = at("2024-01-10T20:00:00-05:00");
  assert.equal(tradingMsWithin("AAPL", open - 1, open), 0);
  assert.equal(tradingMsWithin("AAPL", open - 1, open + 1), 1);
  assert.equal(tradingMsWithin("AAPL", open, open + 1), 1);
  assert.equal(tradingMsWithin("AAPL", close - 1, close), 1);
  assert.equal(tradingMsWithin("AAPL", close - 1, close + 1), 1);
  assert.equal(tradingMsWithin("AAPL", close, close + 1), 0);
  // The regular-session boundaries are not boundaries of trading hours.
  const regular = at("2024-01-10T09:30:00-05:00");
  assert.equal(tradingMsWithin("AAPL", regular - 5, regular + 5), 10);
  assert.deepEqual(tradingSpansWithin("AAPL", open - 10, close + 10), [
    { from: open, to: close },
  ]);
});

Deno.test("tradingMsWithin() is 0 on Saturday and Sunday, and a weekend span counts Friday and Monday only", () => {
  const saturday = at("2024-01-13T00:00:00-05:00");
  assert.equal(tradingMsWithin("AAPL", saturday, saturday + 48 * HOUR), 0);
  const friday19 = at("2024-01-12T19:00:00-05:00");
  const monday05 = at("2024-01-15T05:00:00-05:00");
  assert.deepEqual(tradingSpansWithin("AAPL", friday19, monday05), [
    { from: friday19, to: at("2024-01-12T20:00:00-05:00") },
    { from: at("2024-01-15T04:00:00-05:00"), to: monday05 },
  ]);
  assert.equal(tradingMsWithin("AAPL", friday19, monday05), 2 * HOUR);
});

Deno.test("tradingMsWithin() of a whole week is 80 hours, also across both DST transitions", () => {
  for (
    const monday of [
      "2024-01-08T00:00:00-05:00", // EST
      "2024-03-04T00:00:00-05:00", // the week before the spring transition
      "2024-03-11T00:00:00-04:00", // the Monday after it (EDT)
      "2024-10-28T00:00:00-04:00", // the week of the autumn transition
      "2024-11-04T00:00:00-05:00", // the Monday after it (EST)
    ]
  ) {
    const from = at(monday) - 36 * HOUR; // from Saturday noon
    assert.equal(tradingMsWithin("AAPL", from, from + 7 * 24 * HOUR), 80 * HOUR, monday);
  }
});

Deno.test("tradingMsWithin() keeps local hours on the Mondays after a transition", () => {
  // 2024-03-11 is EDT: 04:00 local is 08:00 UTC (it was 09:00 UTC the Friday before).
  assert.equal(tradingMsWithin("AAPL", Date.UTC(2024, 2, 11, 7), Date.UTC(2024, 2, 11, 9)), HOUR);
  assert.equal(tradingMsWithin("AAPL", Date.UTC(2024, 2, 8, 7), Date.UTC(2024, 2, 8, 9)), 0);
  // 2024-11-04 is EST again: 04:00 local is 09:00 UTC.
  assert.equal(tradingMsWithin("AAPL", Date.UTC(2024, 10, 4, 8), Date.UTC(2024, 10, 4, 10)), HOUR);
  // Transition Sundays are closed all day, 02:00 included.
  assert.equal(tradingMsWithin("AAPL", Date.UTC(2024, 2, 10), Date.UTC(2024, 2, 11)), 0);
  assert.equal(tradingMsWithin("AAPL", Date.UTC(2024, 10, 3), Date.UTC(2024, 10, 4)), 0);
});

Deno.test("tradingMsWithin() counts a span of several days session by session", () => {
  // Tuesday 12:00 to Thursday 12:00 EST: 8 h + 16 h + 8 h.
  const from = at("2024-01-09T12:00:00-05:00");
  const to = at("2024-01-11T12:00:00-05:00");
  assert.equal(tradingMsWithin("AAPL", from, to), 32 * HOUR);
  assert.equal(tradingSpansWithin("AAPL", from, to).length, 3);
});

Deno.test("tradingMsWithin() is the whole span for crypto and FX, any day", () => {
  const saturday = at("2024-01-13T00:00:00-05:00");
  assert.equal(tradingMsWithin("BINANCE:BTCUSDT", saturday, saturday + 48 * HOUR), 48 * HOUR);
  assert.deepEqual(tradingSpansWithin("OANDA:EUR_USD", 5, 17), [{ from: 5, to: 17 }]);
  assert.equal(tradingMsWithin("X:BTCUSD", 0, 1), 1);
});

Deno.test("tradingMsWithin() is 0 for an empty or reversed span", () => {
  const t = at("2024-01-10T12:00:00-05:00");
  assert.equal(tradingMsWithin("AAPL", t, t), 0);
  assert.equal(tradingMsWithin("AAPL", t, t - HOUR), 0);
  assert.deepEqual(tradingSpansWithin("BINANCE:BTCUSDT", t, t), []);
});

Deno.test("tradingMsWithin() throws a RangeError for a non-time bound", () => {
  assert.throws(() => tradingMsWithin("AAPL", NaN, 0), RangeError);
  assert.throws(() => tradingMsWithin("AAPL", 0, Infinity), RangeError);
  assert.throws(() => tradingSpansWithin("BTC:X", 0, 9e15), RangeError);
});

Deno.test("tradingMsWithin() matches the Intl reference for 300 random spans of up to 9 days", () => {
  const random = mulberry32(20_261_207);
  const from2019 = Date.UTC(2019, 0, 1);
  const to2027 = Date.UTC(2027, 0, 1);
  const mismatches: string[] = [];
  for (let i = 0; i < 300; i++) {
    const from = from2019 + Math.floor(random() * (to2027 - from2019));
    // Half the spans end on a minute, half on any millisecond.
    const length = Math.floor(random() * 9 * 24 * 60) * MINUTE +
      (random() < 0.5 ? 0 : Math.floor(random() * MINUTE));
    const got = tradingMsWithin("MSFT", from, from + length);
    const expected = referenceTradingMs("MSFT", from, from + length);
    if (got !== expected) {
      mismatches.push(`${new Date(from).toISOString()} +${length} ms: ${got} != ${expected}`);
    }
  }
  assert.deepEqual(mismatches.slice(0, 10), []);
});

Deno.test("tradingSpansWithin() spans are ordered, never touch and lie inside the request", () => {
  const random = mulberry32(7);
  for (let i = 0; i < 500; i++) {
    const from = Date.UTC(2024, 0, 1) + Math.floor(random() * 365 * 24 * HOUR);
    const to = from + Math.floor(random() * 20 * 24 * HOUR);
    const spans = tradingSpansWithin("IBM", from, to);
    let last = -Infinity;
    for (const span of spans) {
      assert.ok(span.from > last && span.from < span.to && span.from >= from && span.to <= to);
      assert.equal(tradingSession(span.from) === "CLOSED", false);
      assert.equal(tradingSession(span.to - 1) === "CLOSED", false);
      last = span.to;
    }
  }
});
