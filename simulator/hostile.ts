/**
 * A seeded stream of hostile frames for the fault suite: thousands of frames of bad shapes
 * (invalid JSON, huge frames, deep nesting, wrong types, NaN and Infinity, zero, negative and
 * absurd but finite prices and volumes, integers no double holds, keys written twice, empty, huge
 * and unsubscribed symbols, quotes, semicolons and CQL keywords, unicode, seconds instead of
 * milliseconds, far past and far future), most of them mixed with good trades in the same
 * frame. Each frame says, independently of the pipeline's code, what a correct pipeline does with
 * it: which dead letter the producer writes for the whole frame, or, trade by trade, which are
 * kept, which the producer refuses (with its code) and which silver refuses (with its code).
 *
 * The labels assume the producer subscribed exactly `symbols` (the good trades' symbols): a trade
 * of any other symbol, malformed or not, is the producer's to refuse (`unsubscribed_symbol`).
 *
 * Pure and deterministic: the same options give the same frames, byte for byte.
 *
 * @module
 */
import { mulberry32 } from "../shared/random.ts";

/** What happens to one trade of a frame the producer can parse. */
export type TradeFate =
  | "good"
  | "producer:bad_trade_shape"
  | "producer:unsubscribed_symbol"
  | "producer:inexact_integer"
  | `silver:${
    | "bad_price"
    | "bad_price_range"
    | "bad_volume_range"
    | "bad_time"
    | "bad_time_floor"
    | "bad_volume"
    | "bad_time_future"}`;

/** One trade of a hostile frame, with its fate. */
export interface HostileTrade {
  readonly fate: TradeFate;
  /** Which kind of damage (or `good`), for reports. */
  readonly kind: string;
  /** The trade object as sent (for good and forwarded trades: exactly what the producer reads). */
  readonly trade: Readonly<Record<string, unknown>> | unknown;
}

/** One hostile frame. */
export interface HostileFrame {
  /** Which kind of frame, for reports. */
  readonly kind: string;
  readonly text: string;
  /**
   * Set when the producer refuses the frame whole (one dead letter with this reason code, and
   * none of its trades kept); `unknown_type` frames are counted and make no letter.
   */
  readonly frameFate?: "invalid_json" | "bad_frame_shape" | "frame_too_large" | "unknown_type";
  /** The trades, when the frame is a trade frame the producer can parse. */
  readonly trades: readonly HostileTrade[];
}

/** Options of {@linkcode generateHostileFrames}. */
export interface HostileOptions {
  readonly seed: number;
  readonly count: number;
  /** Event time of the first good trade (epoch ms); good trades advance 1 ms each. */
  readonly start: number;
  /**
   * Symbols of good trades, which the producer must have subscribed (and no other). Default:
   * tickers that are CQL keywords, and crypto and FX pairs.
   */
  readonly symbols?: readonly string[];
  /** Largest frame the producer accepts, bytes (huge frames are made larger). Default 4 MiB. */
  readonly maxFrameBytes?: number;
}

/** Good symbols by default: valid tickers that happen to be CQL keywords, plus pairs. */
export const HOSTILE_GOOD_SYMBOLS: readonly string[] = [
  "SELECT",
  "DROP",
  "WHERE",
  "KEYSPACE",
  "BINANCE:BTCUSDT",
  "OANDA:EUR_USD",
];

const DAY = 86_400_000;

/** Generates `count` hostile frames. */
export function generateHostileFrames(options: HostileOptions): HostileFrame[] {
  const source: Source = {
    rand: mulberry32(options.seed),
    symbols: options.symbols ?? HOSTILE_GOOD_SYMBOLS,
    maxFrameBytes: options.maxFrameBytes ?? 4 * 1024 * 1024,
    clock: options.start,
  };
  const frames: HostileFrame[] = [];
  for (let n = 0; n < options.count; n++) {
    const roll = source.rand();
    const [, frame] = FRAME_KINDS.find(([below]) => roll < below) ?? [1, allBadFrame];
    frames.push(frame(source));
  }
  return frames;
}

/**
 * The kinds of frame and their share of the stream: one draw picks the first kind whose bound
 * it is under (above the last: `allBadFrame`). The draws inside each builder follow in a fixed
 * order: that order is the stream, so a seed replays.
 */
const FRAME_KINDS: readonly (readonly [number, (source: Source) => HostileFrame])[] = [
  [0.6, mixedFrame],
  [0.61, largeMixedFrame],
  [0.65, deepTradeFrame],
  [0.7, protoKeysFrame],
  [0.78, invalidJsonFrame],
  [0.784, hugeFrame],
  [0.785, largeFrame],
  [0.8, deepFrame],
  [0.9, badShapeFrame],
  [0.92, unknownTypeFrame],
];

/** The seeded draws of one stream, and the event time of its next good trade. */
interface Source {
  readonly rand: () => number;
  readonly symbols: readonly string[];
  readonly maxFrameBytes: number;
  clock: number;
}

function pick<T>(source: Source, list: readonly T[]): T {
  return list[Math.floor(source.rand() * list.length)]!;
}

function int(source: Source, from: number, to: number): number {
  return from + Math.floor(source.rand() * (to - from + 1));
}

/** The common case: good and bad trades side by side. */
function mixedFrame(source: Source): HostileFrame {
  const trades = mixed(source, int(source, 1, 8), int(source, 1, 4));
  return { kind: "mixed", text: tradeFrame(trades), trades };
}

/** A large but acceptable frame: many trades, a few bad. */
function largeMixedFrame(source: Source): HostileFrame {
  const trades = mixed(source, int(source, 100, 500), int(source, 5, 30));
  return { kind: "large-mixed", text: tradeFrame(trades), trades };
}

/** A trade nested thousands of levels deep next to good ones. */
function deepTradeFrame(source: Source): HostileFrame {
  const depth = int(source, 1_000, 50_000);
  const trades = mixed(source, int(source, 1, 4), 0);
  const text = `{"type":"trade","data":[${trades.map(tradeJson).join(",")}${
    trades.length ? "," : ""
  }${"[".repeat(depth)}${"]".repeat(depth)}]}`;
  return {
    kind: "deep-trade",
    text,
    trades: [...trades, { fate: "producer:bad_trade_shape", kind: "deep-trade", trade: null }],
  };
}

/** Extra keys a parser must not trip over (prototype pollution attempts), trades fine. */
function protoKeysFrame(source: Source): HostileFrame {
  const trades = mixed(source, int(source, 1, 5), int(source, 0, 2));
  return {
    kind: "proto-keys",
    text: tradeFrame(trades, ',"__proto__":{"polluted":true},"constructor":{"x":1}'),
    trades,
  };
}

function invalidJsonFrame(source: Source): HostileFrame {
  const trades = lost(source, int(source, 1, 6));
  const body = tradeFrame(trades);
  const variant = int(source, 0, 5);
  const text = variant === 0
    ? body.slice(0, int(source, 1, body.length - 1)) // truncated
    : variant === 1
    ? body.replace(/"p":[^,}]+/, '"p":NaN')
    : variant === 2
    ? body.replace(/"p":[^,}]+/, '"p":Infinity')
    : variant === 3
    ? body.replace(/"v":[^,}]+/, '"v":-Infinity')
    : variant === 4
    ? body.replace(/]}$/, ",]}") // trailing comma
    : body.replaceAll('"', "'"); // single quotes
  return { kind: `invalid-json-${variant}`, text, frameFate: "invalid_json", trades };
}

/** Larger than the producer's limit: refused whole, good trades with it. */
function hugeFrame(source: Source): HostileFrame {
  const trades = goodTradesOver(source, source.maxFrameBytes + 1024);
  return { kind: "huge-frame", text: tradeFrame(trades), frameFate: "frame_too_large", trades };
}

/** Over 512 KiB (the producer's limit once) and under its limit: every trade kept. */
function largeFrame(source: Source): HostileFrame {
  const trades = goodTradesOver(source, 512 * 1024 + 1024);
  return { kind: "large-frame", text: tradeFrame(trades), trades };
}

function deepFrame(source: Source): HostileFrame {
  const depth = int(source, 1_000, 100_000);
  return {
    kind: "deep-frame",
    text: "[".repeat(depth) + "]".repeat(depth),
    frameFate: "bad_frame_shape",
    trades: [],
  };
}

function badShapeFrame(source: Source): HostileFrame {
  const trades = lost(source, int(source, 1, 4));
  const inner = trades.map(tradeJson).join(",");
  const variant = int(source, 0, 7);
  const text = variant === 0
    ? `{"type":"trade","data":{"0":${trades[0] ? tradeJson(trades[0]) : "{}"}}}`
    : variant === 7
    ? `{"type":"ping","data":[${inner}],"type":"trade"}` // JavaScript would read "trade"
    : variant === 1
    ? `{"type":["trade"],"data":[${inner}]}`
    : variant === 2
    ? `{"type":null,"data":[${inner}]}`
    : variant === 3
    ? `{"data":[${inner}]}`
    : variant === 4
    ? `[{"type":"trade","data":[${inner}]}]`
    : variant === 5
    ? `{"type":"trade","data":"${"x".repeat(int(source, 1, 100))}"}`
    : pick(source, ["null", "42", '"trade"', "true"]);
  return { kind: `bad-frame-${variant}`, text, frameFate: "bad_frame_shape", trades };
}

function unknownTypeFrame(source: Source): HostileFrame {
  return {
    kind: "unknown-type",
    text: `{"type":"${pick(source, ["news", "TRADE", "trade ", "ping2", "ünïcode"])}","data":[]}`,
    frameFate: "unknown_type",
    trades: [],
  };
}

/** Only bad trades, many of them. */
function allBadFrame(source: Source): HostileFrame {
  const trades = mixed(source, 0, int(source, 1, 20));
  return { kind: "all-bad", text: tradeFrame(trades), trades };
}

/** Good trades until the frame holding them would pass `bytes`. */
function goodTradesOver(source: Source, bytes: number): HostileTrade[] {
  const trades: HostileTrade[] = [];
  let size = 30;
  while (size <= bytes) {
    const t: HostileTrade = { fate: "good", kind: "good", trade: good(source) };
    trades.push(t);
    size += tradeJson(t).length + 1;
  }
  return trades;
}

/** `goodCount` good trades with `badCount` bad ones put in at random places. */
function mixed(source: Source, goodCount: number, badCount: number): HostileTrade[] {
  const trades: HostileTrade[] = [];
  for (let i = 0; i < goodCount; i++) {
    trades.push({ fate: "good", kind: "good", trade: good(source) });
  }
  for (let i = 0; i < badCount; i++) {
    trades.splice(int(source, 0, trades.length), 0, bad(source));
  }
  return trades;
}

/** The good-trade part of a frame that is refused whole: sent, never kept. */
function lost(source: Source, count: number): HostileTrade[] {
  return mixed(source, count, 0);
}

/** A good trade, unique by its event time. */
function good(source: Source): Record<string, unknown> {
  const { rand } = source;
  const s = pick(source, source.symbols);
  const t = source.clock++;
  const fx = s.startsWith("OANDA:");
  const p = Math.round((fx ? 1 + rand() : 10 + rand() * 500) * 10_000) / 10_000;
  const v = fx ? 0 : Math.round(rand() * 500 * 1000) / 1000;
  const shape = rand();
  return shape < 0.3
    ? { s, p, t, v, c: ["1", "12"] }
    : shape < 0.5
    ? { s, p, t, v, c: null }
    : shape < 0.6
    ? { s, p, t, v, c: [] }
    : { s, p, t, v };
}

/** A trade the producer forwards and silver refuses (one rule broken), or one it refuses. */
function bad(source: Source): HostileTrade {
  const base = good(source);
  const t = base["t"] as number;
  const roll = int(source, 0, 35);
  const silver = (code: string, kind: string, trade: unknown): HostileTrade => ({
    fate: `silver:${code}` as TradeFate,
    kind,
    trade,
  });
  const producer = (kind: string, trade: unknown): HostileTrade => ({
    fate: "producer:bad_trade_shape",
    kind,
    trade,
  });
  // A symbol the producer did not subscribe (every one below is outside `symbols`).
  const unsubscribed = (kind: string, trade: unknown): HostileTrade => ({
    fate: "producer:unsubscribed_symbol",
    kind,
    trade,
  });
  switch (roll) {
    case 0:
      return silver("bad_price", "zero-price", { ...base, p: 0 });
    case 1:
      return silver("bad_price", "negative-price", { ...base, p: -(base["p"] as number) });
    case 2:
      return silver("bad_price", "negative-zero-price", { ...base, p: -0 });
    case 3:
      return unsubscribed("lower-case-symbol", { ...base, s: "aapl" });
    case 4:
      return unsubscribed("quoted-symbol", { ...base, s: `AAPL'"` });
    case 5:
      return unsubscribed("cql-injection-symbol", {
        ...base,
        s: "X'; DROP KEYSPACE market; --",
      });
    case 6:
      return unsubscribed("semicolon-symbol", { ...base, s: "AAPL;SELECT" });
    case 7:
      return unsubscribed("unicode-symbol", {
        ...base,
        s: pick(source, ["ÄPPL", "股票", "📈📉"]),
      });
    case 8:
      return unsubscribed("control-character-symbol", {
        ...base,
        s: pick(source, ["AAPL\u0000", "AA\nPL", "\u202eLPAA"]),
      });
    case 9:
      return unsubscribed("long-symbol-64", { ...base, s: "Z".repeat(64) });
    case 10:
      return silver("bad_time_floor", "seconds-not-ms", { ...base, t: Math.floor(t / 1000) });
    case 11:
      return silver("bad_time_floor", "far-past", { ...base, t: int(source, 1, 900_000_000_000) });
    case 12:
      return silver("bad_time_floor", "negative-time", { ...base, t: -int(source, 1, 1e12) });
    case 13:
      return silver("bad_time_future", "a-day-ahead", {
        ...base,
        t: t + DAY + int(source, 0, DAY),
      });
    case 14:
      return silver("bad_time_future", "far-future", { ...base, t: t + 100 * 365 * DAY });
    case 15:
      return silver("bad_time", "beyond-date-range", { ...base, t: 9_000_000_000_000_000 });
    case 16:
      return silver("bad_volume", "negative-volume", { ...base, v: -int(source, 1, 1000) });
    case 17:
      return producer("price-as-string", { ...base, p: String(base["p"]) });
    case 18:
      return producer("time-as-float", { ...base, t: t + 0.5 });
    case 19:
      return producer("time-as-string", { ...base, t: String(t) });
    case 20:
      return producer("volume-null", { ...base, v: null });
    case 21:
      return producer("symbol-number", { ...base, s: 42 });
    case 22:
      return producer("empty-symbol", { ...base, s: "" });
    case 23:
      return producer("huge-symbol", { ...base, s: "H".repeat(int(source, 65, 2_000)) });
    case 24:
      return producer("missing-price", { s: base["s"], t, v: base["v"] });
    case 25:
      return producer("trade-not-object", pick(source, [null, 7, "trade", true, []]));
    case 26:
      return producer("numeric-conditions", { ...base, c: [1, 2] });
    case 27:
      return producer("too-many-conditions", { ...base, c: new Array(65).fill("1") });
    case 28:
      return producer("boolean-price", { ...base, p: true });
    case 29:
      return unsubscribed("well-formed-unsubscribed", { ...base, s: "ZZZZ" });
    case 30:
      // Written as 9007199254740993, which a double cannot hold (see tradeJson).
      return { fate: "producer:inexact_integer", kind: "inexact-time", trade: base };
    case 31:
      // Written with its price twice (see tradeJson).
      return producer("duplicate-key", base);
    case 32:
      // Finite, well outside any sane bound: p x v overflows.
      return silver("bad_price_range", "absurd-price", { ...base, p: 1.797e308, v: 1.797e308 });
    case 33:
      // Positive, yet a VWAP of 10 decimals would read 0.
      return silver("bad_price_range", "subnormal-price", { ...base, p: 5e-324 });
    case 34:
      return silver("bad_volume_range", "absurd-volume", { ...base, v: 1.797e308 });
    default:
      return producer("object-volume", { ...base, v: { value: 1 } });
  }
}

/** Trade objects as JSON; the rare ones that JSON cannot spell are written by hand. */
function tradeJson(trade: HostileTrade): string {
  const json = JSON.stringify(trade.trade);
  switch (trade.kind) {
    case "negative-zero-price":
      return json.replace('"p":0', '"p":-0');
    case "inexact-time":
      return json.replace(/"t":\d+/, '"t":9007199254740993');
    case "duplicate-key":
      return json.replace(/}$/, ',"p":1}');
    default:
      return json;
  }
}

function tradeFrame(trades: HostileTrade[], extra = ""): string {
  return `{"type":"trade"${extra},"data":[${trades.map(tradeJson).join(",")}]}`;
}

/** What a correct pipeline does with a set of hostile frames, summed. */
export interface HostileExpectations {
  readonly frames: number;
  /** Producer dead letters by reason code (one per refused frame, one per refused trade). */
  readonly producerLetters: Readonly<Record<string, number>>;
  /** Silver dead letters by reason code. */
  readonly silverLetters: Readonly<Record<string, number>>;
  /** Frames of an unknown type: counted by the producer, no letter. */
  readonly unknownFrames: number;
  /** Good trades of frames the producer parses: in bronze, silver and gold. */
  readonly good: readonly Readonly<Record<string, unknown>>[];
  /** Trades the producer forwards (good and silver-refused): bronze rows. */
  readonly forwarded: readonly Readonly<Record<string, unknown>>[];
  /** Bad trades in all (each in a dead letter, alone or inside its frame). */
  readonly badTrades: number;
  /** Good trades sent inside frames refused whole (kept in the frame's dead letter only). */
  readonly goodInRefusedFrames: number;
  readonly bytes: number;
  /** Frames by kind. */
  readonly kinds: Readonly<Record<string, number>>;
}

/** Sums what the frames should produce. */
export function hostileExpectations(frames: readonly HostileFrame[]): HostileExpectations {
  const producerLetters: Record<string, number> = {};
  const silverLetters: Record<string, number> = {};
  const kinds: Record<string, number> = {};
  const good: Record<string, unknown>[] = [];
  const forwarded: Record<string, unknown>[] = [];
  let unknownFrames = 0;
  let badTrades = 0;
  let goodInRefusedFrames = 0;
  let bytes = 0;
  const add = (map: Record<string, number>, key: string) => map[key] = (map[key] ?? 0) + 1;
  for (const frame of frames) {
    add(kinds, frame.kind);
    bytes += frame.text.length;
    if (frame.frameFate === "unknown_type") {
      unknownFrames++;
      continue;
    }
    if (frame.frameFate !== undefined) {
      add(producerLetters, frame.frameFate);
      for (const t of frame.trades) {
        if (t.fate === "good") goodInRefusedFrames++;
        else badTrades++;
      }
      continue;
    }
    for (const t of frame.trades) {
      if (t.fate === "good") {
        good.push(t.trade as Record<string, unknown>);
        forwarded.push(t.trade as Record<string, unknown>);
      } else if (t.fate.startsWith("producer:")) {
        badTrades++;
        add(producerLetters, t.fate.slice("producer:".length));
      } else {
        badTrades++;
        forwarded.push(t.trade as Record<string, unknown>);
        add(silverLetters, t.fate.slice("silver:".length));
      }
    }
  }
  return {
    frames: frames.length,
    producerLetters,
    silverLetters,
    unknownFrames,
    good,
    forwarded,
    badTrades,
    goodInRefusedFrames,
    bytes,
    kinds,
  };
}
