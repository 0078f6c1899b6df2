/**
 * The span arithmetic of `deno task rebuild`, pure: parsing its arguments, widening the asked
 * event-time span to whole windows of the largest gold interval, the ingest-time span to scan
 * for it, and whether Kafka still holds that scan.
 *
 * The span is in event time (the trade's `t`): a rebuild of [from, to) re-derives every silver
 * trade whose event time is in it and every gold window inside it. A window only partly inside
 * is rebuilt whole: the span is widened to the window bounds of the largest interval (with 1d
 * candles, 10:20-10:40 becomes that UTC day, 00:00-24:00), so a candle is always folded from all
 * of its trades.
 *
 * Kafka timestamps are ingest times (the producer stamps each record with its frame's receive
 * time), and a trade's event time can be earlier (a late print) or a little later (a clock
 * ahead, at most `SILVER_MAX_FUTURE_MS`: silver rejects more). So the scan of the raw topic
 * starts `SILVER_MAX_FUTURE_MS` before the span and ends `lateMarginMs` after it, and every record
 * is filtered by its event time. A trade received more than the margin after its window is not
 * in the scan: its silver row is kept as it is and still folded into gold (see `plan.ts`).
 *
 * @module
 */
import { SYMBOL_PATTERN } from "../shared/config.ts";
import { type Interval, INTERVAL_MS, INTERVALS, windowStart } from "../shared/gold_table.ts";

/** The layers a rebuild can write. */
export const LAYERS = ["silver", "gold"] as const;
/** One layer. */
export type Layer = typeof LAYERS[number];

/** Where the raw trades are read from. */
export type SourceChoice = "auto" | "kafka" | "bronze";

/** Default margin scanned after the span for late trades, ms (one hour). */
export const DEFAULT_LATE_MARGIN_MS = 3_600_000;

/**
 * Heap a rebuild needs per trade of its span: the raw record, the re-derived silver trade, the
 * stored silver row read back and the comparison's keys (about 720 B with 1,000,000 trades).
 */
export const BYTES_PER_TRADE = 720;

/** Default bound on the trades a rebuild holds: about 1.4 GB of heap. */
export const DEFAULT_MAX_TRADES = 2_000_000;

/** The error of a span holding more than `limit` trades. */
export function tooManyTrades(limit: number): RangeError {
  return new RangeError(
    `the span holds more than ${limit} trades (--max-trades; about ${
      Math.round(limit * BYTES_PER_TRADE / 1e6)
    } MB of heap at ~${BYTES_PER_TRADE} B each): nothing was written; rebuild fewer symbols ` +
      `(--symbols) at a time, or raise --max-trades with the heap to match ` +
      `(deno run --v8-flags=--max-old-space-size=<MB>)`,
  );
}

/** The command line of `deno task rebuild`, parsed. */
export interface RebuildArgs {
  /** Asked span start (inclusive), event time, epoch ms. */
  readonly from: number;
  /** Asked span end (exclusive), event time, epoch ms. */
  readonly to: number;
  /** Only these symbols; undefined: every symbol found. */
  readonly symbols: readonly string[] | undefined;
  readonly layers: readonly Layer[];
  readonly source: SourceChoice;
  readonly lateMarginMs: number;
  /** Stop (writing nothing) when the span holds more trades than this: memory stays bounded. */
  readonly maxTrades: number;
  /** Print a few amended candles and changed rows with before/after. */
  readonly verbose: boolean;
  /** Compare and report only; write nothing. */
  readonly dryRun: boolean;
  readonly help: boolean;
}

/** The usage text of `deno task rebuild --help`. */
export const USAGE = `Usage: deno task rebuild --from <time> --to <time> [options]

Re-derives silver (trades_silver) and gold (every gold interval) for a span of EVENT time
(the trade's own time, not when it was received), from the raw topic while Kafka still holds
it, else from bronze (trades_bronze), with the live stages' own validation and fold code.
Writes only what differs, and prints what changed. Safe to run while the pipeline runs, and
to run again: every write is a whole row keyed by the trade's raw source position.

  --from <time>        span start, inclusive: ISO-8601 UTC (2026-12-07T10:00:00Z) or epoch ms
  --to <time>          span end, exclusive (same forms)
  --symbols A,B        only these symbols (default: every symbol in the source and in
                       latest_prices)
  --layers silver,gold the layers to write (default both; gold is always folded from the
                       rebuilt silver trades)
  --source auto|kafka|bronze
                       auto (default): Kafka when its retention still covers the scan, else
                       bronze
  --late-margin <ms>   Kafka timestamps and bronze buckets are INGEST times: the scan runs from
                       SILVER_MAX_FUTURE_MS before the span to this long after it (default
                       ${DEFAULT_LATE_MARGIN_MS}, one hour), and keeps records by event time. A
                       trade received later is not read: its silver row is kept as stored
  --max-trades <n>     stop, writing nothing, when the span holds more trades than this
                       (default ${DEFAULT_MAX_TRADES}: about ${
  Math.round(DEFAULT_MAX_TRADES * BYTES_PER_TRADE / 1e6)
} MB of heap at ~${BYTES_PER_TRADE} B a trade)
  --dry-run            compare and report, write nothing
  --verbose            list a few changed rows and candles with before and after
  --help               this text

The span is widened to whole windows of the largest gold interval (1d: whole UTC days), so
every candle is folded from all its trades. Gold windows that live gold has not made final yet
are left to it (reported as "left open", with how many differ from the rebuild): the rebuild
writes final windows only. After a policy change, run it again once they are final (a trade of
every partition past their end plus GOLD_ALLOWED_LATENESS_MS: for 1d, the next day's trades).`;

/** Parses a time: ISO-8601 with an explicit UTC offset, or epoch milliseconds. */
export function parseTime(text: string, flag: string): number {
  if (/^-?\d+$/.test(text)) {
    const ms = Number(text);
    if (Number.isSafeInteger(ms)) return ms;
  } else if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$/.test(text)) {
    // A date alone is UTC midnight; a date-time must say its zone.
    if (text.length === 10 || /(Z|[+-]\d{2}:?\d{2})$/.test(text)) {
      const ms = Date.parse(text);
      if (Number.isFinite(ms)) return ms;
    }
  }
  throw new RangeError(
    `${flag} must be an ISO-8601 UTC time like 2026-12-07T10:00:00Z or epoch milliseconds, got ${
      JSON.stringify(text)
    }`,
  );
}

/** Parses the command line of `deno task rebuild`. Throws a `RangeError` naming a bad flag. */
export function parseRebuildArgs(argv: readonly string[]): RebuildArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    switch (name) {
      case "--help":
      case "-h":
      case "--verbose":
      case "--dry-run":
        flags.add(name === "-h" ? "--help" : name);
        break;
      case "--from":
      case "--to":
      case "--symbols":
      case "--layers":
      case "--source":
      case "--late-margin":
      case "--max-trades": {
        const value = inline ?? argv[++i];
        if (value === undefined) throw new RangeError(`${name} needs a value`);
        values.set(name, value);
        break;
      }
      default:
        throw new RangeError(`Unknown argument ${JSON.stringify(arg)} (see --help)`);
    }
  }
  const help = flags.has("--help");
  const fromText = values.get("--from");
  const toText = values.get("--to");
  if (help && (fromText === undefined || toText === undefined)) {
    return { ...DEFAULTS, from: 0, to: 0, help };
  }
  if (fromText === undefined) throw new RangeError("--from is required (see --help)");
  if (toText === undefined) throw new RangeError("--to is required (see --help)");
  const from = parseTime(fromText, "--from");
  const to = parseTime(toText, "--to");
  if (to <= from) {
    throw new RangeError(
      `--to must be after --from, got ${new Date(from).toISOString()} .. ${
        new Date(to).toISOString()
      }`,
    );
  }
  return {
    from,
    to,
    symbols: parseSymbols(values.get("--symbols")),
    layers: parseLayers(values.get("--layers")),
    source: parseSource(values.get("--source")),
    lateMarginMs: parseMargin(values.get("--late-margin")),
    maxTrades: parseMaxTrades(values.get("--max-trades")),
    verbose: flags.has("--verbose"),
    dryRun: flags.has("--dry-run"),
    help,
  };
}

const DEFAULTS = {
  symbols: undefined,
  layers: LAYERS,
  source: "auto" as SourceChoice,
  lateMarginMs: DEFAULT_LATE_MARGIN_MS,
  maxTrades: DEFAULT_MAX_TRADES,
  verbose: false,
  dryRun: false,
};

function parseSymbols(text: string | undefined): readonly string[] | undefined {
  if (text === undefined) return undefined;
  const symbols = [...new Set(text.split(",").map((s) => s.trim()).filter((s) => s !== ""))];
  if (symbols.length === 0) throw new RangeError("--symbols must name at least one symbol");
  for (const symbol of symbols) {
    if (!SYMBOL_PATTERN.test(symbol)) {
      throw new RangeError(
        `--symbols: ${JSON.stringify(symbol)} is not a symbol like AAPL or BINANCE:BTCUSDT`,
      );
    }
  }
  return symbols;
}

function parseLayers(text: string | undefined): readonly Layer[] {
  if (text === undefined) return LAYERS;
  const layers = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const layer of layers) {
    if (!(LAYERS as readonly string[]).includes(layer)) {
      throw new RangeError(`--layers takes silver, gold or both, got ${JSON.stringify(layer)}`);
    }
  }
  if (layers.length === 0) throw new RangeError("--layers must name silver, gold or both");
  return LAYERS.filter((l) => layers.includes(l));
}

function parseSource(text: string | undefined): SourceChoice {
  if (text === undefined) return "auto";
  if (text === "auto" || text === "kafka" || text === "bronze") return text;
  throw new RangeError(`--source takes auto, kafka or bronze, got ${JSON.stringify(text)}`);
}

function parseMargin(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LATE_MARGIN_MS;
  const ms = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(ms)) {
    throw new RangeError(`--late-margin must be whole milliseconds >= 0, got ${text}`);
  }
  return ms;
}

function parseMaxTrades(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_TRADES;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`--max-trades must be a whole number >= 1, got ${text}`);
  }
  return n;
}

/** The largest of `intervals`. */
export function largestInterval(intervals: readonly Interval[] = INTERVALS): Interval {
  return intervals.reduce((a, b) => INTERVAL_MS[b] > INTERVAL_MS[a] ? b : a);
}

/**
 * [from, to) widened to whole windows of the largest interval: from down to its window's start,
 * to up to the end of the window holding `to - 1`.
 */
export function wholeWindowSpan(
  from: number,
  to: number,
  intervals: readonly Interval[] = INTERVALS,
): { from: number; to: number } {
  const largest = largestInterval(intervals);
  return {
    from: windowStart(from, largest),
    to: windowStart(to - 1, largest) + INTERVAL_MS[largest],
  };
}

/**
 * The ingest-time span to scan for trades with event times in [from, to): from `maxFutureMs`
 * before (a trade can be stamped at most that far after it was received) to `lateMarginMs`
 * after, and never past `now` (what is received after the scan is live traffic).
 */
export function ingestScan(
  span: { readonly from: number; readonly to: number },
  options: { readonly maxFutureMs: number; readonly lateMarginMs: number; readonly now: number },
): { from: number; to: number } {
  return {
    from: span.from - options.maxFutureMs,
    to: Math.min(span.to + options.lateMarginMs, options.now),
  };
}

/**
 * Whether one partition of the raw topic still holds everything received since the scan's
 * start: `low` is its earliest retained offset, `atStart` the first offset whose timestamp is at
 * or after the scan's start (from `fetchTopicOffsetsByTimestamp`). When that is the earliest
 * retained record and records were deleted before it, their timestamps are unknown: they may
 * have been inside the scan, so Kafka does not cover it.
 */
export function kafkaCovers(low: number, atStart: number): boolean {
  return low === 0 || atStart > low;
}

/** The UTC hour starts (bronze and silver buckets) that [from, to) touches. */
export function hoursBetween(from: number, to: number): number[] {
  const out: number[] = [];
  for (let h = Math.floor(from / 3_600_000) * 3_600_000; h < to; h += 3_600_000) out.push(h);
  return out;
}

/** A span as people read it. */
export function showSpan(span: { readonly from: number; readonly to: number }): string {
  return `${new Date(span.from).toISOString()} .. ${new Date(span.to).toISOString()}`;
}
