/**
 * Validation of the market routes' query parameters: pure, so every rule is unit-tested. Each
 * function throws a `RangeError` whose message says which parameter is wrong and what is
 * expected; the routes answer it as a 400. Nothing from the query reaches a CQL string: the
 * values parsed here are bound to prepared statements.
 *
 * @module
 */
import { SYMBOL_PATTERN } from "../../shared/config.ts";
import { INTERVAL_MS, SERVED_INTERVALS, type ServedInterval } from "../../shared/gold_table.ts";

/** The intervals the market page shows: every served one, stored or rolled up. */
export const MARKET_INTERVALS: readonly ServedInterval[] = SERVED_INTERVALS;

const DAY_MS = 86_400_000;

/**
 * The longest range one `/api/candles` request may cover, per interval: at most 10,080 candles
 * (a week of minutes) and a few Cassandra partitions, and no more than the table keeps.
 */
export const MAX_SPAN_MS: Readonly<Record<ServedInterval, number>> = {
  "1m": 7 * DAY_MS,
  "5m": 31 * DAY_MS,
  "15m": 92 * DAY_MS,
  "1h": 366 * DAY_MS,
  "4h": 1_464 * DAY_MS,
  "1d": 3_653 * DAY_MS,
};

/** The range `/api/candles` covers when `from` is not given: the span before `to`. */
export const DEFAULT_SPAN_MS: Readonly<Record<ServedInterval, number>> = {
  "1m": DAY_MS / 2,
  "5m": 2 * DAY_MS,
  "15m": 7 * DAY_MS,
  "1h": 60 * DAY_MS,
  "4h": 180 * DAY_MS,
  "1d": 1_000 * DAY_MS,
};

/** Most candles one request returns, and the default. */
export const MAX_LIMIT = 5000;
export const DEFAULT_LIMIT = 1000;

/** Times outside [2000-01-01, 2100-01-01) are refused. */
export const EARLIEST_TIME = Date.UTC(2000, 0, 1);
export const LATEST_TIME = Date.UTC(2100, 0, 1);

/** A validated `/api/candles` query. */
export interface CandleQuery {
  readonly symbol: string;
  readonly interval: ServedInterval;
  /** Inclusive, epoch ms. */
  readonly from: number;
  /** Exclusive, epoch ms. */
  readonly to: number;
  readonly limit: number;
}

/** Query parameters as a URL gives them: a name may repeat. */
export type QueryParams = Readonly<Record<string, readonly string[]>>;

/** The query of a URL, every value of every name. */
export function queryOf(url: string | URL): QueryParams {
  const out: Record<string, string[]> = {};
  for (const [name, value] of new URL(url).searchParams) (out[name] ??= []).push(value);
  return out;
}

function allowOnly(params: QueryParams, names: readonly string[]): void {
  for (const name of Object.keys(params)) {
    if (!names.includes(name)) {
      throw new RangeError(
        `unknown parameter ${JSON.stringify(name)}: expected ${
          names.map((n) => `'${n}'`).join(", ")
        }`,
      );
    }
  }
}

function single(params: QueryParams, name: string): string | undefined {
  const values = params[name];
  if (values === undefined) return undefined;
  if (values.length > 1) throw new RangeError(`parameter '${name}' is given more than once`);
  return values[0];
}

/** A symbol: required, of the form `AAPL` or `EXCHANGE:PAIR`, as `FINNHUB_SYMBOLS` has it. */
export function parseSymbol(value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new RangeError("parameter 'symbol' is required, e.g. symbol=AAPL");
  }
  if (!SYMBOL_PATTERN.test(value)) {
    throw new RangeError(
      `parameter 'symbol' must be a ticker like AAPL or EXCHANGE:PAIR like BINANCE:BTCUSDT (upper case, at most 52 characters), got ${
        JSON.stringify(value.slice(0, 60))
      }`,
    );
  }
  return value;
}

/** An interval: one of {@linkcode MARKET_INTERVALS}; `fallback` when absent. */
export function parseInterval(
  value: string | undefined,
  fallback: ServedInterval = "5m",
): ServedInterval {
  if (value === undefined) return fallback;
  if (!(MARKET_INTERVALS as readonly string[]).includes(value)) {
    throw new RangeError(
      `parameter 'interval' must be one of ${MARKET_INTERVALS.join(", ")}, got ${
        JSON.stringify(value.slice(0, 20))
      }`,
    );
  }
  return value as ServedInterval;
}

const EPOCH_MS = /^\d{1,15}$/;
const ISO_TIME =
  /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** Whether the date and clock fields exist (`Date.parse` rolls 2026-02-30 into March). */
function calendarValid(value: string): boolean {
  const [y, m, d, hh = 0, mm = 0, ss = 0] = value.split(/[-T:.Z+]/).slice(0, 6).map(Number);
  const day = new Date(Date.UTC(y!, m! - 1, d!));
  return day.getUTCMonth() === m! - 1 && day.getUTCDate() === d && hh < 24 && mm < 60 && ss < 60;
}

/**
 * A time: epoch milliseconds (`1764590400000`), an ISO 8601 date (`2026-12-01`, UTC midnight) or
 * date-time with a zone (`2026-12-01T12:00:00Z`, `...+01:00`), from 2000 to 2099.
 */
export function parseTime(name: string, value: string): number {
  let time = Number.NaN;
  if (EPOCH_MS.test(value)) time = Number(value);
  else if (ISO_TIME.test(value) && calendarValid(value)) time = Date.parse(value);
  if (!Number.isFinite(time)) {
    throw new RangeError(
      `parameter '${name}' must be epoch milliseconds or an ISO 8601 time with a zone like 2026-12-01T12:00:00Z, got ${
        JSON.stringify(value.slice(0, 40))
      }`,
    );
  }
  if (time < EARLIEST_TIME || time >= LATEST_TIME) {
    throw new RangeError(
      `parameter '${name}' must be from 2000-01-01 to 2099-12-31, got ${
        new Date(time).toISOString()
      }`,
    );
  }
  return time;
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const limit = Number(value);
  if (!/^\d{1,6}$/.test(value) || limit < 1 || limit > MAX_LIMIT) {
    throw new RangeError(
      `parameter 'limit' must be a whole number from 1 to ${MAX_LIMIT}, got ${
        JSON.stringify(value.slice(0, 20))
      }`,
    );
  }
  return limit;
}

/**
 * `/api/candles?symbol=&interval=&from=&to=&limit=`: `symbol` required; `interval` default
 * 5m; `to` default now plus one interval (the forming candle included); `from` default
 * {@linkcode DEFAULT_SPAN_MS} before `to`; `from < to`, at most {@linkcode MAX_SPAN_MS} apart;
 * `limit` (newest candles kept) default {@linkcode DEFAULT_LIMIT}, at most {@linkcode MAX_LIMIT}.
 */
export function parseCandleQuery(params: QueryParams, now: number): CandleQuery {
  allowOnly(params, ["symbol", "interval", "from", "to", "limit"]);
  const symbol = parseSymbol(single(params, "symbol"));
  const interval = parseInterval(single(params, "interval"));
  const toText = single(params, "to");
  const fromText = single(params, "from");
  const to = toText === undefined
    ? Math.min(now + INTERVAL_MS[interval], LATEST_TIME - 1)
    : parseTime("to", toText);
  const from = fromText === undefined
    ? Math.max(EARLIEST_TIME, to - DEFAULT_SPAN_MS[interval])
    : parseTime("from", fromText);
  if (from >= to) {
    throw new RangeError(
      `parameter 'from' (${new Date(from).toISOString()}) must be before 'to' (${
        new Date(to).toISOString()
      })`,
    );
  }
  if (to - from > MAX_SPAN_MS[interval]) {
    throw new RangeError(
      `the range from 'from' to 'to' must be at most ${
        MAX_SPAN_MS[interval] / DAY_MS
      } days for interval ${interval}, got ${((to - from) / DAY_MS).toFixed(1)} days`,
    );
  }
  return { symbol, interval, from, to, limit: parseLimit(single(params, "limit")) };
}

/** Most gaps one `/api/gaps` request returns, and the default. */
export const MAX_GAPS = 1000;

/** The longest range of one `/api/gaps` request: the life of a `feed_gaps` row (365 days). */
export const MAX_GAP_SPAN_MS = 366 * DAY_MS;

/** A validated `/api/gaps` query. */
export interface GapQuery {
  readonly symbol: string;
  /** Gaps ending after this, epoch ms. */
  readonly from: number;
  /** Gaps starting before this, epoch ms. */
  readonly to: number;
  readonly limit: number;
}

/**
 * `/api/gaps?symbol=&from=&to=&limit=`: `symbol` required; `to` default now; `from` default 2
 * days before `to`; `from < to`, at most {@linkcode MAX_GAP_SPAN_MS} apart; `limit` (the first
 * gaps by start) default and at most {@linkcode MAX_GAPS}.
 */
export function parseGapQuery(params: QueryParams, now: number): GapQuery {
  allowOnly(params, ["symbol", "from", "to", "limit"]);
  const symbol = parseSymbol(single(params, "symbol"));
  const toText = single(params, "to");
  const fromText = single(params, "from");
  const to = toText === undefined ? Math.min(now, LATEST_TIME - 1) : parseTime("to", toText);
  const from = fromText === undefined
    ? Math.max(EARLIEST_TIME, to - 2 * DAY_MS)
    : parseTime("from", fromText);
  if (from >= to) {
    throw new RangeError(
      `parameter 'from' (${new Date(from).toISOString()}) must be before 'to' (${
        new Date(to).toISOString()
      })`,
    );
  }
  if (to - from > MAX_GAP_SPAN_MS) {
    throw new RangeError(
      `the range from 'from' to 'to' must be at most ${MAX_GAP_SPAN_MS / DAY_MS} days, got ${
        ((to - from) / DAY_MS).toFixed(1)
      } days`,
    );
  }
  const limitText = single(params, "limit");
  const limit = limitText === undefined ? MAX_GAPS : Number(limitText);
  if (limitText !== undefined && (!/^\d{1,4}$/.test(limitText) || limit < 1 || limit > MAX_GAPS)) {
    throw new RangeError(
      `parameter 'limit' must be a whole number from 1 to ${MAX_GAPS}, got ${
        JSON.stringify(limitText.slice(0, 20))
      }`,
    );
  }
  return { symbol, from, to, limit };
}

/** `/api/latest?symbol=`. */
export function parseLatestQuery(params: QueryParams): { symbol: string } {
  allowOnly(params, ["symbol"]);
  return { symbol: parseSymbol(single(params, "symbol")) };
}

/** `/api/stream?symbol=`: one symbol's candles, or every symbol's without it. */
export function parseStreamQuery(params: QueryParams): { symbol?: string } {
  allowOnly(params, ["symbol"]);
  const symbol = single(params, "symbol");
  return symbol === undefined ? {} : { symbol: parseSymbol(symbol) };
}

/** Routes that take no parameters. */
export function parseNoQuery(params: QueryParams): void {
  allowOnly(params, []);
}
