import assert from "node:assert/strict";
import { avroType, encodeBody } from "../../shared/avro.ts";
import { loadConfig } from "../../shared/config.ts";
import type { RawTrade, SilverTrade, TradingSession } from "../../shared/types.ts";
import { sessionFor } from "../../shared/trading_session.ts";
import {
  REJECTION_CODES,
  type RejectionCode,
  type SilverRules,
  type SourcePosition,
  toSilverTrade,
  TradeRejection,
} from "./validate.ts";
import { mulberry32 } from "../../shared/random.ts";

/**
 * The configuration's defaults: 60 s of clock skew, floor 2000-01-01T00:00:00Z, prices from 1e-10
 * to 1e12, volumes up to 1e15.
 */
const RULES: SilverRules = loadConfig({}).silver;
const FLOOR = Date.UTC(2000, 0, 1);
const POSITION: SourcePosition = { topic: "market.trades.raw", partition: 3, offset: 12_345 };
/** Wednesday 2024-07-10 10:00 EDT. */
const T = Date.parse("2024-07-10T10:00:00.000-04:00");

const VALID: RawTrade = {
  s: "AAPL",
  p: 190.5,
  t: T,
  v: 100,
  c: ["1", "12"],
  ingestTime: T + 100,
  connectionId: "run-1/conn-1",
  frameSeq: 7,
  tradeIndex: 0,
};

/** A valid trade with some fields replaced, of any type (an untyped caller's view). */
function raw(fields: Record<string, unknown> = {}): RawTrade {
  return { ...VALID, ...fields } as RawTrade;
}

/** Asserts that `toSilverTrade` rejects `trade` with `code`, and returns the rejection. */
function rejected(
  trade: RawTrade,
  code: RejectionCode,
  rules: SilverRules = RULES,
): TradeRejection {
  let caught: unknown;
  try {
    toSilverTrade(trade, POSITION, rules);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof TradeRejection, `expected a TradeRejection ${code}, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function accepted(trade: RawTrade, rules: SilverRules = RULES): SilverTrade {
  return toSilverTrade(trade, POSITION, rules);
}

function label(value: unknown): string {
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (typeof value === "bigint") return `${value}n`;
  return JSON.stringify(value) ?? String(value);
}

// ---------------------------------------------------------------------------------------------
// Normalisation

Deno.test("toSilverTrade() normalises a valid stock trade and copies the source position", () => {
  assert.deepEqual(accepted(VALID), {
    symbol: "AAPL",
    price: 190.5,
    eventTime: T,
    volume: 100,
    priceOnly: false,
    conditions: ["1", "12"],
    session: "REGULAR",
    ingestTime: T + 100,
    rawTopic: "market.trades.raw",
    rawPartition: 3,
    rawOffset: 12_345,
  });
});

Deno.test("toSilverTrade() gives crypto and FX trades no session", () => {
  for (const s of ["BINANCE:BTCUSDT", "OANDA:EUR_USD"]) {
    assert.equal(accepted(raw({ s })).session, null, s);
  }
});

Deno.test("toSilverTrade() gives a US equity the New York session of its event time", () => {
  const cases: [string, TradingSession][] = [
    ["2024-07-10T04:00:00.000-04:00", "PRE_MARKET"],
    ["2024-07-10T09:30:00.000-04:00", "REGULAR"],
    ["2024-07-10T16:00:00.000-04:00", "AFTER_HOURS"],
    ["2024-07-10T20:00:00.000-04:00", "CLOSED"],
    ["2024-07-13T12:00:00.000-04:00", "CLOSED"],
  ];
  for (const [iso, session] of cases) {
    const t = Date.parse(iso);
    assert.equal(accepted(raw({ t, ingestTime: t })).session, session, iso);
  }
});

Deno.test("toSilverTrade() keeps every shape of c as a list of strings", () => {
  const list = ["1", "8", "24", "12"];
  const cases: [unknown, readonly string[]][] = [
    [list, list],
    [["12"], ["12"]],
    [[""], [""]], // an empty condition string is data, kept as is
    [[], []],
    [null, []],
    ["ABSENT", []],
  ];
  for (const [c, conditions] of cases) {
    assert.deepEqual(accepted(raw({ c })).conditions, conditions, label(c));
  }
  // The list is shared, not copied: the raw record is not used after the conversion.
  assert.equal(accepted(raw({ c: list })).conditions, list);
});

Deno.test("toSilverTrade() rejects a c that is no list of strings, null or ABSENT", () => {
  // deno-lint-ignore no-sparse-arrays
  const sparse = [, "1"];
  const bad: unknown[] = [
    undefined,
    "PRESENT",
    "absent",
    "",
    "1",
    0,
    {},
    [1],
    ["1", null],
    ["1", undefined],
    [["1"]],
    sparse,
  ];
  for (const c of bad) {
    const error = rejected(raw({ c }), "bad_conditions");
    assert.match(error.message, /^Rejected trade: field 'c' must be a list of strings/);
  }
});

Deno.test("toSilverTrade() accepts a late trade: there is no lateness rule in silver", () => {
  const t = T - 365 * 86_400_000;
  assert.equal(accepted(raw({ t })).eventTime, t);
});

// ---------------------------------------------------------------------------------------------
// Price

Deno.test("toSilverTrade() accepts a price from SILVER_MIN_PRICE to SILVER_MAX_PRICE, both included", () => {
  assert.equal(RULES.minPrice, 1e-10);
  assert.equal(RULES.maxPrice, 1e12);
  for (const p of [1e-10, 2.3e-10, 0.0001, 1, 129.575, 7296.89, 1.5e9, 1e12]) {
    assert.equal(accepted(raw({ p })).price, p, label(p));
  }
});

Deno.test("toSilverTrade() rejects an absurd but finite price outside the bounds with bad_price_range", () => {
  for (const p of [Number.MIN_VALUE, 5e-324, 1e-12, 9.99e-11, 1.0000000000000002e12, 1e15]) {
    rejected(raw({ p }), "bad_price_range");
  }
  for (const p of [1.797e308, Number.MAX_VALUE]) {
    rejected(raw({ p, v: 1.797e308 }), "bad_price_range");
  }
  const rules = { ...RULES, minPrice: 1, maxPrice: 2 };
  rejected(raw({ p: 0.5 }), "bad_price_range", rules);
  rejected(raw({ p: 2.5 }), "bad_price_range", rules);
  assert.equal(accepted(raw({ p: 2 }), rules).price, 2);
});

Deno.test("toSilverTrade() rejects a price of 0, -0, below 0, NaN, ±Infinity or no number", () => {
  const bad: unknown[] = [
    0,
    -0,
    -1,
    -Number.MIN_VALUE,
    -Number.MAX_VALUE,
    NaN,
    Infinity,
    -Infinity,
    "1",
    null,
    undefined,
    1n,
    true,
  ];
  for (const p of bad) rejected(raw({ p }), "bad_price");
});

// ---------------------------------------------------------------------------------------------
// Volume

Deno.test("toSilverTrade() takes v = 0 as a price-only update", () => {
  const trade = accepted(raw({ v: 0 }));
  assert.equal(trade.priceOnly, true);
  assert.ok(Object.is(trade.volume, 0));
});

Deno.test("toSilverTrade() takes v = -0 as 0, a price-only update with volume +0", () => {
  const trade = accepted(raw({ v: -0 }));
  assert.equal(trade.priceOnly, true);
  assert.ok(Object.is(trade.volume, 0), "volume must be +0, not -0");
});

Deno.test("toSilverTrade() keeps any volume > 0 up to SILVER_MAX_VOLUME, fractional too, as a real trade", () => {
  assert.equal(RULES.maxVolume, 1e15);
  for (const v of [Number.MIN_VALUE, 1e-12, 0.011467, 0.5, 1, 79, 1e9, 1e15]) {
    const trade = accepted(raw({ v }));
    assert.equal(trade.volume, v, label(v));
    assert.equal(trade.priceOnly, false, label(v));
  }
});

Deno.test("toSilverTrade() rejects an absurd but finite volume above SILVER_MAX_VOLUME with bad_volume_range", () => {
  for (const v of [1.0000000000000002e15, 1e20, 1.797e308, Number.MAX_VALUE]) {
    rejected(raw({ v }), "bad_volume_range");
  }
  rejected(raw({ v: 11 }), "bad_volume_range", { ...RULES, maxVolume: 10 });
  assert.equal(accepted(raw({ v: 10 }), { ...RULES, maxVolume: 10 }).volume, 10);
});

Deno.test("toSilverTrade() rejects a volume below 0, NaN, ±Infinity or no number", () => {
  const bad: unknown[] = [
    -1,
    -0.5,
    -Number.MIN_VALUE,
    NaN,
    Infinity,
    -Infinity,
    "0",
    null,
    undefined,
    0n,
    false,
  ];
  for (const v of bad) rejected(raw({ v }), "bad_volume");
});

// ---------------------------------------------------------------------------------------------
// Event time

Deno.test("toSilverTrade() accepts an event time exactly at the floor and rejects 1 ms before", () => {
  assert.equal(accepted(raw({ t: FLOOR, ingestTime: FLOOR })).eventTime, FLOOR);
  rejected(raw({ t: FLOOR - 1, ingestTime: FLOOR }), "bad_time_floor");
});

Deno.test("toSilverTrade() honours a custom floor", () => {
  const rules = { ...RULES, minEventTime: Date.UTC(2020, 0, 1) };
  const before = Date.UTC(2019, 11, 31, 23, 59, 59, 999);
  rejected(raw({ t: before, ingestTime: before }), "bad_time_floor", rules);
  assert.equal(accepted(raw({ t: before + 1, ingestTime: before }), rules).eventTime, before + 1);
});

Deno.test("toSilverTrade() rejects an event time in seconds instead of milliseconds", () => {
  for (const t of [1_700_000_000, 1_672_348_887, 946_684_800]) {
    const error = rejected(raw({ t }), "bad_time_floor");
    assert.match(error.message, /seconds instead of milliseconds\?$/);
  }
  // Not seconds either: no hint.
  for (const t of [0, -1, 5]) {
    assert.doesNotMatch(rejected(raw({ t }), "bad_time_floor").message, /seconds/);
  }
});

Deno.test("toSilverTrade() accepts up to maxFutureMs after ingestTime and rejects 1 ms more", () => {
  const ingestTime = T;
  const atLimit = accepted(raw({ t: ingestTime + RULES.maxFutureMs, ingestTime }));
  assert.equal(atLimit.eventTime, ingestTime + 60_000);
  rejected(raw({ t: ingestTime + RULES.maxFutureMs + 1, ingestTime }), "bad_time_future");
});

Deno.test("toSilverTrade() with maxFutureMs = 0 accepts t = ingestTime and rejects t + 1", () => {
  const rules = { ...RULES, maxFutureMs: 0 };
  assert.equal(accepted(raw({ t: T, ingestTime: T }), rules).eventTime, T);
  rejected(raw({ t: T + 1, ingestTime: T }), "bad_time_future", rules);
});

Deno.test("toSilverTrade() rejects an event time that is no whole millisecond a Date can hold", () => {
  const bad: unknown[] = [
    T + 0.5,
    NaN,
    Infinity,
    -Infinity,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    8.64e15 + 1,
    -8.64e15 - 1,
    String(T),
    null,
    undefined,
    BigInt(T),
  ];
  for (const t of bad) rejected(raw({ t, ingestTime: T }), "bad_time");
});

Deno.test("toSilverTrade() accepts the largest time a Date can hold when ingestTime allows it", () => {
  const trade = accepted(raw({ t: 8.64e15, ingestTime: 8.64e15 }));
  assert.equal(trade.eventTime, 8.64e15);
  assert.equal(typeof trade.session, "string");
});

Deno.test("toSilverTrade() rejects an ingestTime that is no whole millisecond a Date can hold", () => {
  for (const ingestTime of [T + 0.5, NaN, Infinity, 2 ** 53, 8.64e15 + 1, "1", null, undefined]) {
    rejected(raw({ ingestTime }), "bad_ingest_time");
  }
});

// ---------------------------------------------------------------------------------------------
// Symbols

const GOOD_SYMBOLS = [
  "AAPL",
  "A",
  "BRK.B",
  "BRK/A",
  "BF-B",
  "X1",
  "0",
  "9988",
  "BINANCE:BTCUSDT",
  "OANDA:EUR_USD",
  "COINBASE:ETH-USD",
  "FXCM:EUR/USD",
  "A:B",
  "X".repeat(32), // longest ticker
  `${"P".repeat(20)}:${"Q".repeat(32)}`, // longest prefix and pair
  // A plain upper-case word is a legal ticker shape: it is data, and never becomes CQL text.
  "SELECT",
  "DROP",
  "TABLE",
  "WHERE",
  "NULL",
  "TRUE",
];

const BAD_SYMBOLS: unknown[] = [
  "",
  "aapl", // upper case only: no case folding
  "Aapl",
  "aAPL",
  "binance:BTCUSDT",
  "BINANCE:btcusdt",
  "AAPL;DROP TABLE x",
  "AAPL;",
  '"AAPL"',
  "AAPL'",
  "'; DROP TABLE trades; --",
  "AAPL' OR '1'='1",
  '"SELECT"',
  "X".repeat(100),
  "X".repeat(33),
  `${"P".repeat(21)}:BTCUSDT`, // prefix too long
  `BINANCE:${"Q".repeat(33)}`, // pair too long
  " AAPL", // no trimming
  "AAPL ",
  "AAPL\n",
  "AAPL\r\n",
  "\tAAPL",
  "AA PL",
  "AAPL\u0000",
  "AAPL\u200b", // zero-width space
  "ÄPPL",
  "ＡＡＰＬ", // full-width letters
  "İBM",
  "ß",
  "AAPL😀",
  "BINANCE:",
  ":BTCUSDT",
  "BINANCE::BTCUSDT",
  "A:B:C",
  "1BINANCE:BTCUSDT", // a prefix starts with a letter
  "BIN-ANCE:BTCUSDT",
  "-AAPL", // a ticker starts with a letter or digit
  ".B",
  "/A",
  "_A",
  "AAPL*",
  "AAPL%",
  "AAPL)",
  "AAPL,MSFT",
  42,
  null,
  undefined,
  ["AAPL"],
];

Deno.test("toSilverTrade() accepts well-formed tickers and EXCHANGE:PAIR symbols", () => {
  for (const s of GOOD_SYMBOLS) assert.equal(accepted(raw({ s })).symbol, s, s);
});

Deno.test("toSilverTrade() rejects malformed symbols, without trimming or case folding", () => {
  for (const s of BAD_SYMBOLS) {
    const error = rejected(raw({ s }), "bad_symbol");
    assert.match(error.message, /^Rejected trade: field 's' must be /, label(s));
  }
});

// ---------------------------------------------------------------------------------------------
// Rule order and messages

Deno.test("toSilverTrade() reports the first broken rule, in the order of REJECTION_CODES", () => {
  // Every rule broken at once, then fixed one by one: the reported code walks the list.
  const fixes: [RejectionCode, Record<string, unknown>][] = [
    ["bad_symbol", { s: "AAPL" }],
    ["bad_price", { p: 1e300 }],
    ["bad_price_range", { p: 1 }],
    ["bad_time", { t: 1 }],
    ["bad_time_floor", { t: FLOOR + 120_000 }],
    ["bad_volume", { v: 1e300 }],
    ["bad_volume_range", { v: 1 }],
    ["bad_conditions", { c: [] }],
    ["bad_ingest_time", { ingestTime: FLOOR }],
    ["bad_time_future", { ingestTime: FLOOR + 120_000 }],
  ];
  let fields: Record<string, unknown> = {
    s: "aapl",
    p: -1,
    t: 0.5,
    v: -1,
    c: "PRESENT",
    ingestTime: NaN,
  };
  assert.deepEqual(fixes.map(([code]) => code), [...REJECTION_CODES]);
  for (const [code, fix] of fixes) {
    rejected(raw(fields), code);
    fields = { ...fields, ...fix };
  }
  assert.equal(accepted(raw(fields)).symbol, "AAPL");
});

Deno.test("TradeRejection is an Error with a name and a stable code", () => {
  const error = rejected(raw({ p: -1 }), "bad_price");
  assert.ok(error instanceof Error);
  assert.equal(error.name, "TradeRejection");
  assert.equal(new Set(REJECTION_CODES).size, REJECTION_CODES.length);
  for (const code of REJECTION_CODES) assert.match(code, /^bad_[a-z_]+$/);
});

Deno.test("TradeRejection messages name the field and the value", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ p: -1 }, "Rejected trade: field 'p' must be a finite number > 0, got -1"],
    [{ p: -0 }, "Rejected trade: field 'p' must be a finite number > 0, got -0"],
    [{ p: NaN }, "Rejected trade: field 'p' must be a finite number > 0, got NaN"],
    [{ p: "1" }, `Rejected trade: field 'p' must be a finite number > 0, got "1"`],
    [{ v: -Infinity }, "Rejected trade: field 'v' must be a finite number >= 0, got -Infinity"],
    [{ v: null }, "Rejected trade: field 'v' must be a finite number >= 0, got null"],
    [
      { p: 5e-324 },
      "Rejected trade: field 'p' must be from SILVER_MIN_PRICE to SILVER_MAX_PRICE, got 5e-324",
    ],
    [
      { v: 1.797e308 },
      "Rejected trade: field 'v' must not be above SILVER_MAX_VOLUME, got 1.797e+308",
    ],
    [
      { s: "aapl" },
      `Rejected trade: field 's' must be a ticker like AAPL or EXCHANGE:PAIR like BINANCE:BTCUSDT (upper case, SYMBOL_PATTERN), got "aapl"`,
    ],
    [
      { t: 1.5 },
      "Rejected trade: field 't' must be whole epoch milliseconds a Date can hold (within ±8.64e15), got 1.5 (1970-01-01T00:00:00.001Z)",
    ],
    [
      { t: 1_700_000_000 },
      "Rejected trade: field 't' must not be before the minimum event time (SILVER_MIN_EVENT_TIME), got 1700000000 (1970-01-20T16:13:20.000Z); seconds instead of milliseconds?",
    ],
    [
      { t: T + 60_001, ingestTime: T },
      `Rejected trade: field 't' must not be later than ingestTime ${T} by more than SILVER_MAX_FUTURE_MS, got ${
        T + 60_001
      } (2024-07-10T14:01:00.001Z); 60001 ms after`,
    ],
    [
      { ingestTime: 2 ** 53 },
      "Rejected trade: field 'ingestTime' must be whole epoch milliseconds a Date can hold (within ±8.64e15), got 9007199254740992",
    ],
    [
      { c: ["1", 5] },
      `Rejected trade: field 'c' must be a list of strings, null or "ABSENT", got 5 at index 1`,
    ],
    [
      { c: {} },
      `Rejected trade: field 'c' must be a list of strings, null or "ABSENT", got an object`,
    ],
  ];
  for (const [fields, message] of cases) {
    let caught: unknown;
    try {
      toSilverTrade(raw(fields), POSITION, RULES);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof TradeRejection, JSON.stringify(fields));
    assert.equal(caught.message, message);
  }
});

Deno.test("TradeRejection messages quote symbols safely and cut long ones", () => {
  const quoted = rejected(raw({ s: 'AAPL";\nDROP' }), "bad_symbol").message;
  assert.ok(quoted.endsWith(`got "AAPL\\";\\nDROP"`), quoted);
  assert.ok(!quoted.includes("\n"));
  const long = rejected(raw({ s: "X".repeat(100) }), "bad_symbol").message;
  assert.ok(long.endsWith(`got "${"X".repeat(64)}"… (100 characters)`), long);
});

Deno.test("TradeRejection messages hold nothing but the trade's own fields", () => {
  const position = { topic: "topic-NOT-IN-MESSAGE", partition: 424_242, offset: 8_675_309 };
  const trade = { connectionId: "conn-NOT-IN-MESSAGE", frameSeq: 313_131, tradeIndex: 77_777 };
  const rules = {
    maxFutureMs: 54_321,
    minEventTime: FLOOR,
    minPrice: 0.0246,
    maxPrice: 97_531,
    maxVolume: 86_420,
  };
  const broken: Record<string, unknown>[] = [
    { s: "" },
    { p: 0 },
    { p: 0.01 },
    { p: 97_532 },
    { t: NaN },
    { t: 12_345 },
    { v: -1 },
    { v: 86_421 },
    { c: 0 },
    { ingestTime: NaN },
    { t: T + 54_322, ingestTime: T },
  ];
  const codes = new Set<string>();
  for (const fields of broken) {
    try {
      toSilverTrade(raw({ ...trade, ...fields }), position, rules);
      assert.fail(`accepted ${JSON.stringify(fields)}`);
    } catch (error) {
      assert.ok(error instanceof TradeRejection);
      codes.add(error.code);
      for (
        const foreign of [
          "NOT-IN-MESSAGE",
          "424242",
          "8675309",
          "313131",
          "77777",
          "54321",
          "0246",
          "97531",
          "86420",
          String(FLOOR),
        ]
      ) {
        assert.ok(!error.message.includes(foreign), `${error.message} includes ${foreign}`);
      }
    }
  }
  assert.deepEqual([...codes].sort(), [...REJECTION_CODES].sort());
});

// ---------------------------------------------------------------------------------------------
// Property test: seeded random raw trades

/** SYMBOL_PATTERN's grammar written out by hand, as the independent check of the symbol rule. */
function wellFormedSymbol(s: unknown): boolean {
  if (typeof s !== "string") return false;
  const upper = (code: number) => code >= 65 && code <= 90;
  const digit = (code: number) => code >= 48 && code <= 57;
  const colon = s.indexOf(":");
  if (colon !== -1) {
    if (colon < 1 || colon > 20 || !upper(s.charCodeAt(0))) return false;
    for (let i = 1; i < colon; i++) {
      if (!upper(s.charCodeAt(i)) && !digit(s.charCodeAt(i))) return false;
    }
  }
  const body = s.slice(colon + 1);
  if (body.length < 1 || body.length > 32) return false;
  if (!upper(body.charCodeAt(0)) && !digit(body.charCodeAt(0))) return false;
  for (let i = 1; i < body.length; i++) {
    const code = body.charCodeAt(i);
    if (!upper(code) && !digit(code) && !"._-/".includes(body[i]!)) return false;
  }
  return true;
}

function wholeTime(value: unknown): value is number {
  return typeof value === "number" && Math.trunc(value) === value &&
    Math.abs(value) <= 8.64e15;
}

/** The rules restated independently of the implementation: the first broken one, or null. */
function firstBrokenRule(trade: Record<string, unknown>, rules: SilverRules): RejectionCode | null {
  const { s, p, t, v, c, ingestTime } = trade;
  if (!wellFormedSymbol(s)) return "bad_symbol";
  if (typeof p !== "number" || Number.isNaN(p) || p <= 0 || p === Infinity) return "bad_price";
  if (!(p >= rules.minPrice && p <= rules.maxPrice)) return "bad_price_range";
  if (!wholeTime(t)) return "bad_time";
  if (t < rules.minEventTime) return "bad_time_floor";
  if (typeof v !== "number" || Number.isNaN(v) || v < 0 || v === Infinity) return "bad_volume";
  if (!(v <= rules.maxVolume)) return "bad_volume_range";
  const conditionsOk = c === null || c === "ABSENT" ||
    (Array.isArray(c) && c.filter((x) => typeof x === "string").length === c.length);
  if (!conditionsOk) return "bad_conditions";
  if (!wholeTime(ingestTime)) return "bad_ingest_time";
  if (BigInt(t) - BigInt(ingestTime) > BigInt(rules.maxFutureMs)) return "bad_time_future";
  return null;
}

function randomRawTrade(random: () => number, rules: SilverRules): Record<string, unknown> {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const chance = (p: number) => random() < p;
  const ingestTime = Date.UTC(2000, 0, 1) + Math.floor(random() * 31 * 365 * 86_400_000);

  let s: unknown;
  const shape = random();
  if (shape < 0.6) s = pick(GOOD_SYMBOLS);
  else if (shape < 0.7) s = pick(BAD_SYMBOLS);
  else if (shape < 0.88) {
    // A good symbol with one character inserted, replaced or removed.
    const base = pick(GOOD_SYMBOLS);
    const at = Math.floor(random() * (base.length + 1));
    const ch = pick([..."AZ09:._-/ a;'\"Ä\n*,"]);
    const op = pick(["insert", "replace", "remove"]);
    s = op === "insert"
      ? base.slice(0, at) + ch + base.slice(at)
      : op === "replace"
      ? base.slice(0, at) + ch + base.slice(at + 1)
      : base.slice(0, at) + base.slice(at + 1);
  } else if (shape < 0.98) {
    const alphabet = [..."ABCXYZ0189:._-/ ab;'\"Ä\n"];
    const length = pick([0, 1, 2, 5, 19, 20, 21, 31, 32, 33, 53, 54, 60]);
    s = Array.from({ length }, () => pick(alphabet)).join("");
  } else s = pick([42, null, undefined, ["AAPL"]]);

  const p = chance(0.15)
    ? pick([0, -0, -1, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, "1", null])
    : chance(0.1)
    ? pick([
      rules.minPrice,
      rules.minPrice * (1 - 1e-15),
      rules.maxPrice,
      rules.maxPrice * (1 + 1e-15),
      5e-324,
      1.797e308,
    ])
    : chance(0.9)
    ? random() * 10_000 + Number.MIN_VALUE
    : -random() * 10;

  const maxFuture = rules.maxFutureMs;
  const t = chance(0.65) ? ingestTime - Math.floor(random() * 3_600_000) : pick([
    ingestTime + maxFuture,
    ingestTime + maxFuture + 1,
    ingestTime + Math.floor(random() * (maxFuture + 1)),
    ingestTime + maxFuture + 1 + Math.floor(random() * 86_400_000),
    rules.minEventTime,
    rules.minEventTime - 1,
    Math.floor(ingestTime / 1000),
    ingestTime + 0.5,
    NaN,
    Infinity,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    8.64e15,
    -1,
    String(ingestTime),
    null,
  ]);

  const v = chance(0.15)
    ? pick([0, -0, -1, -Number.MIN_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity, "1", null])
    : chance(0.15)
    ? pick([rules.maxVolume, rules.maxVolume * (1 + 1e-15), 1.797e308, Number.MAX_VALUE])
    : chance(0.5)
    ? Math.floor(random() * 1000)
    : random() * 2;

  const c = pick<unknown>([
    ["1", "8", "24", "12"],
    ["1", "24", "12"],
    ["1", "24", "12"],
    [],
    [],
    [],
    null,
    null,
    null,
    "ABSENT",
    "ABSENT",
    "ABSENT",
    [""],
    undefined,
    "PRESENT",
    [1],
    ["1", null],
    {},
  ]);

  return {
    s,
    p,
    t,
    v,
    c,
    ingestTime: chance(0.9) ? ingestTime : pick([NaN, ingestTime + 0.5, 2 ** 53, null, "1"]),
    connectionId: "run-1/conn-1",
    frameSeq: 1 + Math.floor(random() * 1000),
    tradeIndex: Math.floor(random() * 50),
  };
}

const SILVER_KEYS = [
  "conditions",
  "eventTime",
  "ingestTime",
  "price",
  "priceOnly",
  "rawOffset",
  "rawPartition",
  "rawTopic",
  "session",
  "symbol",
  "volume",
];

function assertSilverInvariants(
  trade: SilverTrade,
  input: Record<string, unknown>,
  context: { rules: SilverRules; position: SourcePosition },
): void {
  const { rules, position } = context;
  assert.deepEqual(Object.keys(trade).sort(), SILVER_KEYS);
  assert.equal(trade.symbol, input.s);
  assert.ok(wellFormedSymbol(trade.symbol));
  assert.equal(trade.price, input.p);
  assert.ok(trade.price >= rules.minPrice && trade.price <= rules.maxPrice);
  assert.equal(trade.eventTime, input.t);
  assert.ok(Number.isSafeInteger(trade.eventTime) && trade.eventTime >= rules.minEventTime);
  assert.ok(trade.eventTime - trade.ingestTime <= rules.maxFutureMs);
  assert.equal(trade.ingestTime, input.ingestTime);
  assert.ok(trade.volume >= 0 && trade.volume <= rules.maxVolume && !Object.is(trade.volume, -0));
  assert.equal(trade.volume, input.v === 0 ? 0 : input.v); // -0 becomes +0
  assert.equal(trade.priceOnly, input.v === 0);
  assert.ok(Array.isArray(trade.conditions));
  assert.ok(trade.conditions.every((x) => typeof x === "string"));
  assert.deepEqual(trade.conditions, Array.isArray(input.c) ? input.c : []);
  assert.equal(trade.session, sessionFor(trade.symbol, trade.eventTime));
  assert.equal(trade.session === null, trade.symbol.includes(":"));
  assert.equal(trade.rawTopic, position.topic);
  assert.equal(trade.rawPartition, position.partition);
  assert.equal(trade.rawOffset, position.offset);
}

Deno.test("toSilverTrade() on 5,000 seeded random trades: a valid silver trade or the first broken rule", () => {
  const random = mulberry32(0x5117e2);
  const ruleSets: SilverRules[] = [
    RULES,
    { ...RULES, maxFutureMs: 0, minEventTime: FLOOR, maxVolume: 500 },
    {
      maxFutureMs: 1_000,
      minEventTime: Date.UTC(2020, 0, 1),
      minPrice: 0.5,
      maxPrice: 5_000,
      maxVolume: 1e9,
    },
    { ...RULES, maxFutureMs: 86_400_000, minEventTime: 0, minPrice: Number.MIN_VALUE },
  ];
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 5_000; i++) {
    const rules = ruleSets[i % ruleSets.length]!;
    const position = { topic: "market.trades.raw", partition: i % 6, offset: i * 7 };
    const input = randomRawTrade(random, rules);
    const expected = firstBrokenRule(input, rules);
    let outcome: string;
    try {
      const trade = toSilverTrade(input as unknown as RawTrade, position, rules);
      assert.equal(expected, null, `accepted, but expected ${expected}: ${label(input)}`);
      assertSilverInvariants(trade, input, { rules, position });
      // The silver record must be encodable as the SilverTrade Avro schema, unchanged.
      assert.deepEqual(
        { ...avroType("SilverTrade").fromBuffer(encodeBody("SilverTrade", trade)) },
        trade,
      );
      outcome = "accepted";
    } catch (error) {
      if (!(error instanceof TradeRejection)) throw error;
      assert.equal(error.code, expected, `${error.message}: ${label(input)}`);
      assert.match(error.message, /^Rejected trade: field '(s|p|t|v|c|ingestTime)' /);
      outcome = error.code;
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  // The generator reaches every outcome often enough to mean something.
  for (const outcome of ["accepted", ...REJECTION_CODES]) {
    assert.ok((outcomes.get(outcome) ?? 0) >= 30, `${outcome}: ${outcomes.get(outcome) ?? 0}`);
  }
});

Deno.test("the hand-written symbol grammar of the property test agrees with the tables", () => {
  for (const s of GOOD_SYMBOLS) assert.ok(wellFormedSymbol(s), s);
  for (const s of BAD_SYMBOLS) assert.ok(!wellFormedSymbol(s), label(s));
});

// ---------------------------------------------------------------------------------------------
// Finnhub sample frames

interface FixtureTrade {
  readonly s: string;
  readonly p: number;
  readonly t: number;
  readonly v: number;
  readonly c?: readonly string[] | null;
}

Deno.test("toSilverTrade() accepts every trade of the Finnhub sample frames with the default rules", async () => {
  const text = await Deno.readTextFile(
    new URL("../../tests/fixtures/finnhub_sample_frames.ndjson", import.meta.url),
  );
  const frames = text.split("\n").filter((line) => line.trim() !== "").map((line) =>
    JSON.parse(line) as { type: string; data?: FixtureTrade[] }
  );
  assert.deepEqual(frames.map((f) => f.type), ["trade", "trade", "trade", "ping", "error"]);

  const results: SilverTrade[] = [];
  frames.forEach((frame, frameIndex) => {
    if (frame.type !== "trade") return;
    frame.data!.forEach((item, tradeIndex) => {
      const rawTrade: RawTrade = {
        s: item.s,
        p: item.p,
        t: item.t,
        v: item.v,
        c: "c" in item ? item.c ?? null : "ABSENT",
        ingestTime: item.t + 100,
        connectionId: "fixture",
        frameSeq: frameIndex + 1,
        tradeIndex,
      };
      const position = { topic: "market.trades.raw", partition: 0, offset: results.length };
      const trade = toSilverTrade(rawTrade, position, RULES);
      assertSilverInvariants(trade, { ...rawTrade }, { rules: RULES, position });
      results.push(trade);
    });
  });

  // Frame 1: TSLA and AAPL on Thursday 2022-12-29 16:21 EST, after hours.
  // Frame 2: AAPL and A on Friday 2021-08-06 04:28 EDT, pre-market; one with c = [].
  // Frame 3: BINANCE:BTCUSDT with c = null and a fractional volume, no session.
  assert.deepEqual(
    results.map((t) => [t.symbol, t.price, t.volume, t.priceOnly, t.conditions, t.session]),
    [
      ["TSLA", 122.1, 1, false, ["1", "8", "24", "12"], "AFTER_HOURS"],
      ["TSLA", 122.09, 4, false, ["1", "8", "24", "12"], "AFTER_HOURS"],
      ["TSLA", 122.09, 10, false, ["1", "8", "24", "12"], "AFTER_HOURS"],
      ["TSLA", 122.1, 1, false, ["1", "8", "24", "12"], "AFTER_HOURS"],
      ["TSLA", 122.1, 2, false, ["1", "8", "24", "12"], "AFTER_HOURS"],
      ["TSLA", 122.1, 10, false, ["1", "8", "24", "12"], "AFTER_HOURS"],
      ["TSLA", 122.1, 79, false, ["1", "8", "24", "12"], "AFTER_HOURS"],
      ["AAPL", 129.58, 1, false, ["1", "24", "12"], "AFTER_HOURS"],
      ["AAPL", 129.575, 1, false, ["1", "24", "12"], "AFTER_HOURS"],
      ["AAPL", 146.76, 43, false, [], "PRE_MARKET"],
      ["A", 146.75, 1, false, ["1", "24", "12"], "PRE_MARKET"],
      ["BINANCE:BTCUSDT", 7296.89, 0.011467, false, [], null],
    ],
  );
  // Several trades of one millisecond all survive: silver never deduplicates.
  assert.equal(results.filter((t) => t.eventTime === 1_672_348_887_196).length, 5);
  assert.deepEqual(results.map((t) => t.rawOffset), results.map((_, i) => i));
});
