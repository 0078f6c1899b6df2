/**
 * Where a raw trade becomes a silver trade: {@linkcode toSilverTrade} validates one
 * {@linkcode RawTrade} and normalises it into a {@linkcode SilverTrade}, or throws a
 * {@linkcode TradeRejection} whose `code` says which rule it broke. Pure: no I/O, no clock.
 *
 * @module
 */
import { SYMBOL_PATTERN } from "../../shared/config.ts";
import type { RawTrade, SilverTrade } from "../../shared/types.ts";
import { tradingSession } from "../../shared/trading_session.ts";

/**
 * Every rejection code, in the order {@linkcode toSilverTrade} checks the rules: the first rule a
 * trade breaks is the one reported.
 *
 * 1. `bad_symbol`: `s` is not a string matching `SYMBOL_PATTERN` of `shared/config.ts` exactly
 *    (no trimming, no case folding).
 * 2. `bad_price`: `p` is not a finite number > 0 (`0`, `-0`, `NaN` and ±`Infinity` fail).
 * 3. `bad_price_range`: `p` is below `rules.minPrice` or above `rules.maxPrice`
 *    (`SILVER_MIN_PRICE`, `SILVER_MAX_PRICE`): absurd but finite prices, like `5e-324`, which
 *    makes a VWAP of 10 decimals 0, or `1.797e308`, whose price x volume overflows.
 * 4. `bad_time`: `t` is not a safe integer within ±8.64e15, the range of a `Date` (milliseconds
 *    are whole, and the Cassandra driver and `tradingSession` need a `Date`-sized time).
 * 5. `bad_time_floor`: `t` is before `rules.minEventTime` (catches seconds sent as milliseconds).
 * 6. `bad_volume`: `v` is not a finite number >= 0 (`-0` passes as `0`).
 * 7. `bad_volume_range`: `v` is above `rules.maxVolume` (`SILVER_MAX_VOLUME`): `1.797e308` would
 *    make a candle's exact volume 309 digits long. A positive volume has no floor (a tiny one adds
 *    digits, never a wrong result), and `0` is a price-only update.
 * 8. `bad_conditions`: `c` is none of a list of strings, `null` or `"ABSENT"` (only an untyped
 *    caller can send that; Avro decoding cannot).
 * 9. `bad_ingest_time`: `ingestTime` is not a safe integer within ±8.64e15 (a producer bug, but
 *    it would silently disable the next rule).
 * 10. `bad_time_future`: `t` is more than `rules.maxFutureMs` after `ingestTime`.
 *
 * The trade's own fields come first in schema order (`s`, `p`, `t`, `v`, `c`, `ingestTime`), then
 * the rule that compares two of them.
 */
export const REJECTION_CODES = [
  "bad_symbol",
  "bad_price",
  "bad_price_range",
  "bad_time",
  "bad_time_floor",
  "bad_volume",
  "bad_volume_range",
  "bad_conditions",
  "bad_ingest_time",
  "bad_time_future",
] as const;

/** A short stable reason code, for metrics and the dead-letter record's `reasonCode`. */
export type RejectionCode = typeof REJECTION_CODES[number];

/**
 * A trade the silver stage refuses. `message` names the field and its value, and holds nothing
 * but the trade's own fields (never the source position, the connection or the configuration's
 * values). Long strings are cut to their first 64 characters.
 */
export class TradeRejection extends Error {
  /** Which rule the trade broke. */
  readonly code: RejectionCode;

  constructor(code: RejectionCode, message: string) {
    super(message);
    this.name = "TradeRejection";
    this.code = code;
  }
}

/** Where the raw record was read from: copied into the silver trade as its identity. */
export interface SourcePosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/**
 * The silver rules, from `Config["silver"]`. All are required: no default here, so a wiring
 * mistake cannot fall back silently to values that differ from the configuration.
 */
export interface SilverRules {
  /** Reject a trade whose event time is more than this many milliseconds after its ingest time. */
  readonly maxFutureMs: number;
  /** Reject a trade whose event time (epoch milliseconds) is earlier than this. */
  readonly minEventTime: number;
  /** Reject a lower price. */
  readonly minPrice: number;
  /** Reject a higher price. */
  readonly maxPrice: number;
  /** Reject a higher volume. */
  readonly maxVolume: number;
}

const EMPTY_CONDITIONS: readonly string[] = Object.freeze([]);
/** Longest string a message shows whole. */
const LONGEST_SHOWN = 64;
/** The largest distance from the epoch a `Date` (and so the Cassandra driver) can hold. */
const MAX_TIME = 8.64e15;
const SYMBOL_RULE =
  "must be a ticker like AAPL or EXCHANGE:PAIR like BINANCE:BTCUSDT (upper case, SYMBOL_PATTERN)";
const WHOLE_MS_RULE = "must be whole epoch milliseconds a Date can hold (within ±8.64e15)";
const CONDITIONS_RULE = 'must be a list of strings, null or "ABSENT"';

/**
 * Validates `raw` and returns the normalised {@linkcode SilverTrade}, or throws a
 * {@linkcode TradeRejection} for the first rule it breaks, in the order of
 * {@linkcode REJECTION_CODES}.
 *
 * Normalisation:
 * - `conditions`: the list as received (shared, not copied), or an empty list for `null` and
 *   `"ABSENT"`;
 * - `volume`: `v`, with `-0` turned into `0`; `priceOnly`: `v === 0` (a price-only update that
 *   must not move volume or VWAP);
 * - `session`: the New York session for a US equity, `null` for symbols with an exchange prefix
 *   (see `sessionFor` in `trading_session.ts`);
 * - `ingestTime` copied; `rawTopic`, `rawPartition`, `rawOffset` from `position`.
 *
 * `position` comes from the consumer, not the data, and is copied without checks.
 */
export function toSilverTrade(
  raw: RawTrade,
  position: SourcePosition,
  rules: SilverRules,
): SilverTrade {
  const { s, p, t, v, c, ingestTime } = raw;
  if (typeof s !== "string" || !SYMBOL_PATTERN.test(s)) {
    throw rejection("bad_symbol", { field: "s", rule: SYMBOL_RULE, value: s });
  }
  if (!(Number.isFinite(p) && p > 0)) {
    throw rejection("bad_price", { field: "p", rule: "must be a finite number > 0", value: p });
  }
  if (p < rules.minPrice || p > rules.maxPrice) {
    throw rejection("bad_price_range", {
      field: "p",
      rule: "must be from SILVER_MIN_PRICE to SILVER_MAX_PRICE",
      value: p,
    });
  }
  if (!isWholeTime(t)) {
    throw rejection("bad_time", { field: "t", rule: WHOLE_MS_RULE, value: t });
  }
  if (t < rules.minEventTime) {
    throw rejection("bad_time_floor", {
      field: "t",
      rule: "must not be before the minimum event time (SILVER_MIN_EVENT_TIME)",
      value: t,
      detail: t > 0 && t * 1000 >= rules.minEventTime ? "; seconds instead of milliseconds?" : "",
    });
  }
  if (!(Number.isFinite(v) && v >= 0)) {
    throw rejection("bad_volume", { field: "v", rule: "must be a finite number >= 0", value: v });
  }
  if (v > rules.maxVolume) {
    throw rejection("bad_volume_range", {
      field: "v",
      rule: "must not be above SILVER_MAX_VOLUME",
      value: v,
    });
  }
  const conditions = c === null || c === "ABSENT" ? EMPTY_CONDITIONS : checkedConditions(c);
  if (!isWholeTime(ingestTime)) {
    throw rejection("bad_ingest_time", {
      field: "ingestTime",
      rule: WHOLE_MS_RULE,
      value: ingestTime,
    });
  }
  // Both are integers, so even a rounded difference compares exactly with an integer bound.
  if (t - ingestTime > rules.maxFutureMs) {
    throw rejection("bad_time_future", {
      field: "t",
      rule: `must not be later than ingestTime ${ingestTime} by more than SILVER_MAX_FUTURE_MS`,
      value: t,
      detail: `; ${t - ingestTime} ms after`,
    });
  }
  return {
    symbol: s,
    price: p,
    eventTime: t,
    volume: v === 0 ? 0 : v,
    priceOnly: v === 0,
    conditions,
    session: s.indexOf(":") === -1 ? tradingSession(t) : null,
    ingestTime,
    rawTopic: position.topic,
    rawPartition: position.partition,
    rawOffset: position.offset,
  };
}

/** A safe integer that a `Date` can hold. */
function isWholeTime(value: number): boolean {
  return Number.isSafeInteger(value) && value <= MAX_TIME && value >= -MAX_TIME;
}

function checkedConditions(c: unknown): readonly string[] {
  if (!Array.isArray(c)) {
    throw rejection("bad_conditions", { field: "c", rule: CONDITIONS_RULE, value: c });
  }
  for (let i = 0; i < c.length; i++) {
    if (typeof c[i] !== "string") {
      throw rejection("bad_conditions", {
        field: "c",
        rule: CONDITIONS_RULE,
        value: c[i],
        detail: ` at index ${i}`,
      });
    }
  }
  return c;
}

/** What a rejection message says: `field` `rule`, got `value` (plus `detail`). */
interface Broken {
  readonly field: string;
  readonly rule: string;
  readonly value: unknown;
  /** Appended after the value, e.g. `; 60001 ms after`. Default none. */
  readonly detail?: string;
}

function rejection(code: RejectionCode, broken: Broken): TradeRejection {
  const { field, rule, value, detail = "" } = broken;
  return new TradeRejection(
    code,
    `Rejected trade: field '${field}' ${rule}, got ${show(value)}${
      timeNote(field, value)
    }${detail}`,
  );
}

/** The ISO form of a rejected event time, when it has one. */
function timeNote(field: string, value: unknown): string {
  if (field !== "t" || typeof value !== "number" || !(Math.abs(value) <= MAX_TIME)) return "";
  return ` (${new Date(value).toISOString()})`;
}

/** A value as a message shows it: `-0` as `-0`, strings quoted and cut, objects by type. */
function show(value: unknown): string {
  switch (typeof value) {
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "string":
      return value.length > LONGEST_SHOWN
        ? `${JSON.stringify(value.slice(0, LONGEST_SHOWN))}… (${value.length} characters)`
        : JSON.stringify(value);
    case "bigint":
      return `${value}n`;
    case "boolean":
    case "undefined":
      return String(value);
    default:
      if (value === null) return "null";
      if (Array.isArray(value)) return `a list of ${value.length}`;
      return typeof value === "object" ? "an object" : `a ${typeof value}`;
  }
}
