/**
 * The pure part of `deno task smoke`: its flags, the known set of trades it pushes through the
 * pipeline, and what each layer must then hold, computed here independently of the processor's
 * own code (its own small exact decimal, its own ordering), so a bug in gold cannot hide itself.
 *
 * The trades carry a symbol unique to the run (`SMOKE:R…`, an `EXCHANGE:PAIR` symbol, so it has
 * no US trading session and never collides with a real one). The producer refuses symbols it did
 * not subscribe to, but takes the `SMOKE:` namespace from a feed without a Finnhub key (the
 * simulator; `producer/producer.ts` `acceptedSymbols`), so the smoke trades need no subscription
 * and are told apart from the simulated feed by their symbol alone.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { SYMBOL_PATTERN } from "../shared/config.ts";
import type { FeedGap } from "../shared/types.ts";

/** Flags of `deno task smoke`. */
export interface SmokeArgs {
  /** The simulator's base URL (`http://host:port`); default from SIMULATOR_PORT. */
  readonly simulatorUrl: string | undefined;
  /** The status endpoint's base URL; default from STATUS_HOST and STATUS_PORT. */
  readonly statusUrl: string | undefined;
  /** Deadline for the whole check, ms. Default 90 000. */
  readonly timeoutMs: number;
  readonly verbose: boolean;
  readonly help: boolean;
}

/** The usage text of `deno task smoke`. */
export const SMOKE_USAGE =
  `Usage: deno task smoke [-v] [--simulator URL] [--status URL] [--timeout SECONDS]

Pushes a known set of trades through a running pipeline (deno task start, or docker compose)
and checks bronze, silver, the dead-letter topic, gold and the consumer lag; forces one drop of
the producer's connection and checks its feed gap on the gaps topic. Prints PASS or FAIL per stage; exit code 0 when everything passed, 1 otherwise, 2 on bad flags.

Options:
  -v, --verbose        Details of each check (rows found, expected and actual candles).
  --simulator URL      The simulator the producer reads. Default http://127.0.0.1:<SIMULATOR_PORT>.
                       In docker compose: http://simulator:8765.
  --status URL         The status endpoint. Default http://<STATUS_HOST>:<STATUS_PORT>.
  --timeout SECONDS    How long to wait for the trades to reach every layer. Default 90.
  -h, --help           This text.

Kafka, Cassandra, topics, keyspace and groups come from the same environment (.env) as the
pipeline's.`;

/** Parses the flags; throws a `RangeError` naming the bad one. */
export function parseSmokeArgs(args: readonly string[]): SmokeArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        verbose: { type: "boolean", short: "v" },
        simulator: { type: "string" },
        status: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new RangeError((error as Error).message);
  }
  const url = (name: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    if (!/^https?:\/\//.test(text) || !URL.canParse(text)) {
      throw new RangeError(`--${name} must be an http:// URL, got ${JSON.stringify(text)}`);
    }
    return text.replace(/\/+$/, "");
  };
  let timeoutMs = 90_000;
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (!/^\d+(\.\d+)?$/.test(values.timeout) || seconds <= 0 || seconds > 3600) {
      throw new RangeError(
        `--timeout must be a number of seconds from 1 to 3600, got ${
          JSON.stringify(values.timeout)
        }`,
      );
    }
    timeoutMs = Math.round(seconds * 1000);
  }
  return {
    simulatorUrl: url("simulator", values.simulator),
    statusUrl: url("status", values.status),
    timeoutMs,
    verbose: values.verbose ?? false,
    help: values.help ?? false,
  };
}

/** One trade as the smoke test sends it (Finnhub's field names). */
export interface SmokeTrade {
  readonly s: string;
  readonly p: number;
  readonly t: number;
  readonly v: number;
  readonly c: readonly string[] | null;
}

/** The run's trades: what silver must accept, what it must reject, and the frame to send. */
export interface SmokePlan {
  readonly symbol: string;
  /** Every trade of the frame, in frame order. */
  readonly sent: readonly SmokeTrade[];
  /** The trades silver accepts (gold folds exactly these). */
  readonly valid: readonly SmokeTrade[];
  /** The trade silver must dead-letter (`bad_price`). */
  readonly invalid: SmokeTrade;
  /** `{"data":[...],"type":"trade"}`, as Finnhub writes a trade frame. */
  readonly frame: string;
}

/** A symbol unique to this run: `SMOKE:R` and base-36 time and randomness. */
export function smokeSymbol(now: number, random: () => number = Math.random): string {
  const tail = Math.floor(random() * 36 ** 4).toString(36).padStart(4, "0");
  const symbol = `SMOKE:R${now.toString(36)}${tail}`.toUpperCase();
  if (!SYMBOL_PATTERN.test(symbol)) throw new Error(`Bug: smoke symbol ${symbol} is malformed`);
  return symbol;
}

/**
 * The known trades, with event times just before `now`: five distinct prints, one identical pair
 * (two real trades, both must be kept), one `v = 0` price-only print (sets the high, adds no
 * volume), and one trade with a negative price that silver must dead-letter.
 */
export function smokePlan(symbol: string, now: number): SmokePlan {
  const t0 = now - 1_000;
  const valid: SmokeTrade[] = [
    { s: symbol, p: 100.5, t: t0, v: 2, c: ["1"] },
    { s: symbol, p: 101.25, t: t0 + 1, v: 1.5, c: null },
    { s: symbol, p: 99.75, t: t0 + 2, v: 3, c: ["1", "12"] },
    { s: symbol, p: 99.75, t: t0 + 2, v: 3, c: ["1", "12"] },
    { s: symbol, p: 102, t: t0 + 3, v: 0, c: null },
    { s: symbol, p: 100.125, t: t0 + 4, v: 0.25, c: ["1"] },
  ];
  const invalid: SmokeTrade = { s: symbol, p: -1, t: t0 + 2, v: 1, c: null };
  const sent = [valid[0]!, valid[1]!, valid[2]!, valid[3]!, invalid, valid[4]!, valid[5]!];
  return { symbol, sent, valid, invalid, frame: `{"data":${JSON.stringify(sent)},"type":"trade"}` };
}

// ---------------------------------------------------------------------------------------------
// A small exact decimal, independent of processor/gold/decimal.ts.
// ---------------------------------------------------------------------------------------------

interface Exact {
  readonly digits: bigint;
  readonly scale: number;
}

/** The exact decimal of a JavaScript number's shortest round-trip text (`0.1` is 0.1). */
function exactOf(value: number): Exact {
  return exactOfText(String(value));
}

function exactOfText(text: string): Exact {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i.exec(text.trim());
  if (!match) throw new RangeError(`not a decimal number: ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = "", exponent = "0"] = match;
  let scale = fraction.length - Number(exponent);
  let digits = BigInt(`${sign}${whole}${fraction}`);
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { digits, scale };
}

function rescale(a: Exact, scale: number): bigint {
  return a.digits * 10n ** BigInt(scale - a.scale);
}

function plus(a: Exact, b: Exact): Exact {
  const scale = Math.max(a.scale, b.scale);
  return { digits: rescale(a, scale) + rescale(b, scale), scale };
}

function times(a: Exact, b: Exact): Exact {
  return { digits: a.digits * b.digits, scale: a.scale + b.scale };
}

/** The canonical text of a decimal: no trailing fraction zeros, no exponent (`9.75`, `0`). */
function textOf(a: Exact): string {
  let { digits, scale } = a;
  while (scale > 0 && digits % 10n === 0n) {
    digits /= 10n;
    scale--;
  }
  const negative = digits < 0n;
  let text = (negative ? -digits : digits).toString();
  if (scale > 0) {
    text = text.padStart(scale + 1, "0");
    text = `${text.slice(0, -scale)}.${text.slice(-scale)}`;
  }
  return negative ? `-${text}` : text;
}

/** A decimal's text in canonical form (`"9.750"` and `"9.75E0"` both give `"9.75"`). */
export function canonicalDecimal(text: string): string {
  return textOf(exactOfText(text));
}

// ---------------------------------------------------------------------------------------------
// Expected candles
// ---------------------------------------------------------------------------------------------

/** The candle intervals gold keeps, in ms (the rolled-up 15m and 4h are not stored). */
export const SMOKE_INTERVALS = {
  "1m": 60_000,
  "5m": 300_000,
  "1h": 3_600_000,
  "1d": 86_400_000,
} as const;

/** What one gold row must hold for the smoke trades. */
export interface ExpectedCandle {
  readonly interval: keyof typeof SMOKE_INTERVALS;
  readonly windowStart: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** Canonical decimal text. */
  readonly volume: string;
  /** Sum of price x volume, canonical decimal text. */
  readonly pvSum: string;
  readonly tradeCount: number;
  readonly priceOnlyCount: number;
}

/**
 * The candles gold must hold for `trades` (all valid, in the order they were sent, which is
 * their source order): one per UTC-aligned window of `interval` they touch. Open is the earliest
 * event time, close the latest, ties going to the one sent first.
 */
export function expectedCandles(
  trades: readonly SmokeTrade[],
  interval: keyof typeof SMOKE_INTERVALS,
): ExpectedCandle[] {
  const size = SMOKE_INTERVALS[interval];
  const windows = new Map<number, { trade: SmokeTrade; order: number }[]>();
  trades.forEach((trade, order) => {
    const start = Math.floor(trade.t / size) * size;
    const list = windows.get(start) ?? [];
    list.push({ trade, order });
    windows.set(start, list);
  });
  return [...windows.entries()].sort(([a], [b]) => a - b).map(([windowStart, list]) => {
    const byTime = [...list].sort((a, b) => a.trade.t - b.trade.t || a.order - b.order);
    let volume: Exact = { digits: 0n, scale: 0 };
    let pvSum: Exact = { digits: 0n, scale: 0 };
    for (const { trade } of list) {
      if (trade.v === 0) continue;
      volume = plus(volume, exactOf(trade.v));
      pvSum = plus(pvSum, times(exactOf(trade.p), exactOf(trade.v)));
    }
    return {
      interval,
      windowStart,
      open: byTime[0]!.trade.p,
      high: Math.max(...list.map((e) => e.trade.p)),
      low: Math.min(...list.map((e) => e.trade.p)),
      close: byTime[byTime.length - 1]!.trade.p,
      volume: textOf(volume),
      pvSum: textOf(pvSum),
      tradeCount: list.length,
      priceOnlyCount: list.filter((e) => e.trade.v === 0).length,
    };
  });
}

/**
 * A gold row as read back, numbers as numbers and decimals as text in whatever form Cassandra
 * gives them ({@linkcode candleDifferences} compares them in canonical form).
 */
export type ActualCandle = Omit<ExpectedCandle, "interval">;

/** Every difference between an expected and an actual candle, as `field: expected X, got Y`. */
export function candleDifferences(expected: ExpectedCandle, actual: ActualCandle): string[] {
  const out: string[] = [];
  const check = (field: string, want: unknown, got: unknown) => {
    if (want !== got) out.push(`${field}: expected ${want}, got ${got}`);
  };
  check(
    "window_start",
    new Date(expected.windowStart).toISOString(),
    new Date(actual.windowStart).toISOString(),
  );
  check("open", expected.open, actual.open);
  check("high", expected.high, actual.high);
  check("low", expected.low, actual.low);
  check("close", expected.close, actual.close);
  check("volume", expected.volume, canonicalDecimal(actual.volume));
  check("pv_sum", expected.pvSum, canonicalDecimal(actual.pvSum));
  check("trade_count", expected.tradeCount, actual.tradeCount);
  check("price_only_count", expected.priceOnlyCount, actual.priceOnlyCount);
  return out;
}

/** The UTC hour buckets (ms) of bronze/silver partitions that can hold times in [from, to]. */
export function hourBuckets(from: number, to: number): number[] {
  const out: number[] = [];
  for (let h = Math.floor(from / 3_600_000) * 3_600_000; h <= to; h += 3_600_000) out.push(h);
  return out;
}

/**
 * The gold partition bucket: the UTC day (`YYYY-MM-DD`) for 1m, `YYYY-MM-01` of the month for
 * 5m, `YYYY-01-01` of the year for 1h and 1d.
 */
export function goldBucketOf(windowStart: number, interval: keyof typeof SMOKE_INTERVALS): string {
  const d = new Date(windowStart);
  const month = interval === "1m" || interval === "5m" ? d.getUTCMonth() + 1 : 1;
  const day = interval === "1m" ? d.getUTCDate() : 1;
  return `${d.getUTCFullYear()}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

/** One check's outcome, as printed. */
export interface CheckResult {
  readonly name: string;
  readonly pass: boolean;
  /** One line: what was found. */
  readonly summary: string;
  /** More lines for `-v`. */
  readonly details: readonly string[];
}

/**
 * How early a feed gap may start before the smoke test's forced drop, ms: the smoke test's and
 * the producer's clocks are the same machine's, but the request takes a moment.
 */
export const FORCED_GAP_SLACK_MS = 1_000;

/** The `reconnect` gap of the drop forced at `dropAt`, among `gaps`, if there. */
export function findForcedGap(gaps: readonly FeedGap[], dropAt: number): FeedGap | undefined {
  return gaps.find((g) =>
    g.cause === "reconnect" && g.fromMs >= dropAt - FORCED_GAP_SLACK_MS && g.toMs >= g.fromMs &&
    g.symbols.length > 0
  );
}

/**
 * The "feed gap" check: the drop forced at `dropAt` (the simulator closed the producer's
 * connection) must show on the gaps topic as a `reconnect` gap that starts no earlier than
 * {@linkcode FORCED_GAP_SLACK_MS} before it and ends once the producer subscribed again. `gaps`
 * are those read from the topic since just before the drop. Pure.
 */
export function forcedGapCheck(gaps: readonly FeedGap[], dropAt: number): CheckResult {
  const details = gaps.map((g) =>
    `${g.gapId}: ${g.cause} ${new Date(g.fromMs).toISOString()} .. ${
      new Date(g.toMs).toISOString()
    } (${g.toMs - g.fromMs} ms, ${g.symbols.length} symbols, ended by ${g.connectionId || "-"})`
  );
  const forced = findForcedGap(gaps, dropAt);
  return {
    name: "feed gap",
    pass: forced !== undefined,
    summary: forced
      ? `the forced drop is gap ${forced.gapId}: ${
        forced.toMs - forced.fromMs
      } ms until the producer subscribed again`
      : `no reconnect gap from the drop forced at ${
        new Date(dropAt).toISOString()
      } on the gaps topic (${gaps.length} other gap(s))`,
    details,
  };
}

/** The report lines: `PASS bronze  7 rows ...`, details indented when verbose, then a verdict. */
export function formatReport(results: readonly CheckResult[], verbose: boolean): string[] {
  const width = Math.max(...results.map((r) => r.name.length), 4);
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.pass ? "PASS" : "FAIL"}  ${r.name.padEnd(width)}  ${r.summary}`);
    if (verbose || !r.pass) {
      for (const d of r.details) lines.push(`      ${" ".repeat(width)}  ${d}`);
    }
  }
  const failed = results.filter((r) => !r.pass).length;
  lines.push(
    failed === 0
      ? `smoke: PASS (${results.length} checks)`
      : `smoke: FAIL (${failed} of ${results.length} checks failed)`,
  );
  return lines;
}
