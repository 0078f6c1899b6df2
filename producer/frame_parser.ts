/**
 * Turns one Finnhub WebSocket frame into what the producer does with it: trades to forward,
 * single trades to dead-letter, a ping, an error, an unknown type, or a whole frame to
 * dead-letter. Pure: no I/O, never recurses on untrusted data, and throws only on a bug of its
 * own (the producer dead-letters the frame then, as `producer_error`).
 *
 * A trade "could be parsed" when `s` is a non-empty string, `p` a number, `t` an integer of at
 * most 2^53 - 1 in magnitude written as one (its JSON text, not only its double value, is read),
 * `v` a number and `c` absent, `null` or an array of strings, and no key of the trade appears
 * twice. Values that are well-typed but wrong (a negative price, seconds instead of milliseconds)
 * are forwarded: bronze is the raw audit trail and silver rejects them later. A trade of a symbol
 * the connection did not subscribe to is refused here (`unsubscribed_symbol`): Finnhub sends
 * only what was subscribed, and every symbol let through costs state in every stage downstream.
 *
 * A key that appears twice in the frame object (`{"type":"trade","type":"ping"}`) refuses the
 * whole frame (`bad_frame_shape`), and twice in a trade refuses that trade: JSON parsers disagree
 * on which of the two values counts (JavaScript keeps the last, others the first or fail), so
 * neither reading is safe to forward.
 *
 * Every payload handed back is the input's own bytes: a refused frame whole, a refused trade
 * exactly as it was written in the frame (never re-serialised, so `9007199254740993` stays so).
 *
 * @module
 */
import type { Conditions } from "../shared/types.ts";

/**
 * Frames larger than this many UTF-8 bytes are refused whole (`frame_too_large`) without being
 * parsed. Real frames are a few KiB; 4 MiB is about 50,000 trades, whose parse takes about
 * 15 MiB of heap for a moment (3.6 times the text, measured), well inside the producer's 128 MiB.
 */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * Bounds on one trade's strings, so a hostile frame can never make a Kafka record (and with it
 * the whole batch) exceed the broker's size limit. Real symbols are under 40 characters and
 * real conditions are one or two digits.
 */
export const MAX_SYMBOL_LENGTH = 64;
/** Most entries in a trade's `c` list. */
export const MAX_CONDITIONS = 64;
/** Longest single condition string. */
export const MAX_CONDITION_LENGTH = 32;

/** One trade as received, with its index in the frame's `data` array. */
export interface ParsedTrade {
  readonly s: string;
  readonly p: number;
  readonly t: number;
  readonly v: number;
  readonly c: Conditions;
  readonly index: number;
}

/** Reason code of a single trade that was refused. */
export type TradeRejectCode = "bad_trade_shape" | "unsubscribed_symbol" | "inexact_integer";

/** One trade of a trade frame that was refused. */
export interface RejectedTrade {
  readonly index: number;
  /** The trade's bytes exactly as they are in the frame. */
  readonly payload: Uint8Array;
  readonly reasonCode: TradeRejectCode;
  readonly reason: string;
  /** The trade's symbol when it has a usable one, for the dead-letter record key. */
  readonly symbol: string | null;
}

/** Why a whole frame was refused. */
export type FrameRejectCode = "invalid_json" | "bad_frame_shape" | "frame_too_large";

/** What one frame turned out to be. */
export type ParsedFrame =
  | {
    readonly kind: "trades";
    readonly trades: readonly ParsedTrade[];
    readonly rejected: readonly RejectedTrade[];
  }
  | { readonly kind: "ping" }
  | { readonly kind: "error"; readonly message: string; readonly tooManySymbols: boolean }
  | { readonly kind: "unknown"; readonly frameType: string }
  | {
    readonly kind: "invalid";
    readonly reasonCode: FrameRejectCode;
    readonly reason: string;
    /** The frame's bytes, whole (bounding a dead letter's size is the producer's business). */
    readonly payload: Uint8Array;
  };

/** What the parser asks of the subscribed symbols: membership and, for the reason text, a count. */
export type SymbolSet = Pick<ReadonlySet<string>, "has" | "size">;

/** Options of {@linkcode parseFrame}. */
export interface ParseFrameOptions {
  /** Largest accepted frame in UTF-8 bytes. Default {@linkcode DEFAULT_MAX_FRAME_BYTES}. */
  readonly maxFrameBytes?: number;
  /**
   * The symbols the connection subscribed to, matched exactly; a trade of any other symbol is
   * refused (`unsubscribed_symbol`). Default: every symbol is accepted.
   */
  readonly subscribed?: SymbolSet;
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const TOO_MANY_SYMBOLS = /too many symbols/i;

/**
 * Classifies one frame. Text frames are JSON; binary frames are accepted when they are UTF-8
 * JSON (Finnhub sends text, but a proxy might not).
 */
export function parseFrame(
  frame: string | Uint8Array | ArrayBuffer,
  options: ParseFrameOptions = {},
): ParsedFrame {
  const maxBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  let text: string;
  if (typeof frame === "string") {
    text = frame;
    // A UTF-16 unit is at most 3 UTF-8 bytes: only encode when the frame might be too large.
    if (text.length * 3 > maxBytes) {
      const bytes = encoder.encode(text);
      if (bytes.length > maxBytes) return tooLarge(bytes, maxBytes);
    }
  } else {
    const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
    if (bytes.length > maxBytes) return tooLarge(bytes, maxBytes);
    try {
      text = utf8.decode(bytes);
    } catch {
      return invalid("invalid_json", "binary frame is not UTF-8 text", bytes);
    }
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return invalid(
      "invalid_json",
      `frame is not valid JSON (${clip((error as Error).message, 120)})`,
      text,
    );
  }
  if (!isPlainObject(value)) {
    return invalid(
      "bad_frame_shape",
      `frame must be a JSON object, got ${describe(value)}`,
      text,
    );
  }
  // From here on the text is known to be valid JSON, which is all the scanner needs.
  const layout = scanFrame(text, skipSpace(text, 0), value.type === "trade");
  if (layout.duplicateKey !== null) {
    return invalid(
      "bad_frame_shape",
      `frame has the key ${
        JSON.stringify(clip(layout.duplicateKey, 64))
      } twice (parsers disagree on which value counts, so the frame is refused whole)`,
      text,
    );
  }
  const type = value.type;
  if (typeof type !== "string") {
    return invalid(
      "bad_frame_shape",
      `frame field 'type' must be a string, got ${describe(type, "type" in value)}`,
      text,
    );
  }
  switch (type) {
    case "trade":
      return parseTradeFrame(value, text, layout.items, options.subscribed);
    case "ping":
      return { kind: "ping" };
    case "error": {
      const message = typeof value.msg === "string"
        ? value.msg
        : `(msg: ${describe(value.msg, "msg" in value)})`;
      return { kind: "error", message, tooManySymbols: TOO_MANY_SYMBOLS.test(message) };
    }
    default:
      return { kind: "unknown", frameType: clip(type, 64) };
  }
}

function parseTradeFrame(
  frame: Record<string, unknown>,
  text: string,
  items: readonly ScannedItem[] | null,
  subscribed: SymbolSet | undefined,
): ParsedFrame {
  const data = frame.data;
  if (!Array.isArray(data)) {
    return invalid(
      "bad_frame_shape",
      `trade frame field 'data' must be an array, got ${describe(data, "data" in frame)}`,
      text,
    );
  }
  if (items === null || items.length !== data.length) {
    throw new Error(
      `frame scanner found ${items?.length} trades where JSON.parse found ${data.length}: a bug in frame_parser.ts`,
    );
  }
  const trades: ParsedTrade[] = [];
  const rejected: RejectedTrade[] = [];
  for (let index = 0; index < data.length; index++) {
    const item: unknown = data[index];
    const source = items[index]!;
    const problem = tradeProblem(item, source, subscribed);
    if (problem === null) {
      const trade = item as Record<string, unknown>;
      trades.push({
        s: trade.s as string,
        p: trade.p as number,
        t: trade.t as number,
        v: trade.v as number,
        c: "c" in trade ? trade.c as string[] | null : "ABSENT",
        index,
      });
    } else {
      rejected.push({
        index,
        payload: encoder.encode(text.slice(source.start, source.end)),
        reasonCode: problem.code,
        reason: `trade ${index}: ${problem.reason}`,
        symbol: isPlainObject(item) && typeof item.s === "string" && item.s !== "" &&
            item.s.length <= MAX_SYMBOL_LENGTH
          ? item.s
          : null,
      });
    }
  }
  return { kind: "trades", trades, rejected };
}

interface TradeProblem {
  readonly code: TradeRejectCode;
  readonly reason: string;
}

function shape(reason: string): TradeProblem {
  return { code: "bad_trade_shape", reason };
}

/** What is wrong with one trade, or `null` when it can be forwarded. */
function tradeProblem(
  item: unknown,
  source: ScannedItem,
  subscribed: SymbolSet | undefined,
): TradeProblem | null {
  if (!isPlainObject(item)) return shape(`must be a JSON object, got ${describe(item)}`);
  if (source.duplicateKey !== null) {
    return shape(
      `has the key ${
        JSON.stringify(clip(source.duplicateKey, 64))
      } twice (parsers disagree on which value counts)`,
    );
  }
  const { s, p, t, v } = item;
  if (typeof s !== "string" || s === "") {
    return shape(`field 's' must be a non-empty string, got ${describe(s, "s" in item)}`);
  }
  if (s.length > MAX_SYMBOL_LENGTH) {
    return shape(
      `field 's' must be at most ${MAX_SYMBOL_LENGTH} characters, got ${s.length}: ${describe(s)}`,
    );
  }
  if (typeof p !== "number") {
    return shape(`field 'p' must be a number, got ${describe(p, "p" in item)}`);
  }
  const time = timeProblem(t, "t" in item, source.t);
  if (time !== null) return time;
  if (typeof v !== "number") {
    return shape(`field 'v' must be a number, got ${describe(v, "v" in item)}`);
  }
  const conditions = conditionsProblem(item);
  if (conditions !== null) return shape(conditions);
  if (subscribed !== undefined && !subscribed.has(s)) {
    return {
      code: "unsubscribed_symbol",
      reason: `symbol ${describe(s)} was not subscribed on this connection (${
        subscribed.size === 1 ? "1 symbol is" : `${subscribed.size} symbols are`
      }, set by FINNHUB_SYMBOLS)`,
    };
  }
  return null;
}

/**
 * `t` must be written as an integer (`1.5` and `1672348887666.0000001` are not, though the
 * second reads as a whole double) within ±(2^53 - 1): past that a double cannot hold every
 * integer, so `9007199254740993` would silently become `...992` (`inexact_integer`).
 */
function timeProblem(t: unknown, present: boolean, literal: string | null): TradeProblem | null {
  const rule = "field 't' must be an integer of epoch milliseconds";
  if (typeof t !== "number" || literal === null) {
    return shape(`${rule}, got ${describe(t, present)}`);
  }
  // The common case, without a regular expression: digits alone that read as a safe integer
  // (digits beyond 2^53 - 1 would read as a double that is not a safe integer).
  if (Number.isSafeInteger(t) && isDigits(literal)) return null;
  const integer = integerOf(literal);
  if (integer === "not an integer") return shape(`${rule}, got number ${clip(literal, 64)}`);
  if (integer === "too large") {
    return {
      code: "inexact_integer",
      reason:
        `field 't' must be an integer a double holds exactly (at most ${Number.MAX_SAFE_INTEGER} in magnitude), got number ${
          clip(literal, 64)
        }`,
    };
  }
  return null;
}

/** `-?[0-9]+` */
function isDigits(literal: string): boolean {
  let i = literal.charCodeAt(0) === 45 ? 1 : 0;
  if (i === literal.length) return false;
  for (; i < literal.length; i++) {
    const c = literal.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

const NUMBER_LITERAL = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Whether a JSON number literal denotes an integer, read exactly from its digits: `"ok"` for an
 * integer within ±(2^53 - 1), `"too large"` for an integer beyond, `"not an integer"` otherwise.
 */
export function integerOf(literal: string): "ok" | "too large" | "not an integer" {
  const match = NUMBER_LITERAL.exec(literal);
  if (match === null) return "not an integer";
  const [, whole = "", fraction = "", exponentText = "0"] = match;
  let digits = (whole + fraction).replace(/^0+/, "");
  // The value is digits x 10^exponent.
  let exponent = Number(exponentText) - fraction.length;
  if (digits === "") return "ok";
  const trailing = digits.length - digits.replace(/0+$/, "").length;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  if (exponent < 0) return "not an integer";
  // 2^53 - 1 has 16 digits: anything longer is too large, without building a huge number.
  if (digits.length + exponent > 16) return "too large";
  return BigInt(digits) * 10n ** BigInt(exponent) > MAX_SAFE ? "too large" : "ok";
}

/** What is wrong with a trade's `c`, or `null`. */
function conditionsProblem(item: Record<string, unknown>): string | null {
  if (!("c" in item)) return null;
  const c = item.c;
  if (c === null) return null;
  if (!Array.isArray(c)) {
    return `field 'c' must be an array of strings or null, got ${describe(c)}`;
  }
  if (c.length > MAX_CONDITIONS) {
    return `field 'c' must have at most ${MAX_CONDITIONS} entries, got ${c.length}`;
  }
  for (let i = 0; i < c.length; i++) {
    const entry: unknown = c[i];
    if (typeof entry !== "string") {
      return `field 'c' must hold only strings, got ${describe(entry)} at position ${i}`;
    }
    if (entry.length > MAX_CONDITION_LENGTH) {
      return `field 'c' entries must be at most ${MAX_CONDITION_LENGTH} characters, got ${entry.length} at position ${i}`;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The scanner: where each value is in the text, which JSON.parse does not say. It runs only on
// text JSON.parse accepted, so it can take the grammar for granted; it is iterative (a depth
// counter, no recursion) so deep nesting costs it nothing.

/** One item of a trade frame's `data`: where it is, and for an object its first repeated key. */
interface ScannedItem {
  readonly start: number;
  readonly end: number;
  /** The first key found twice, decoded; `null` when none is, or the item is no object. */
  readonly duplicateKey: string | null;
  /** The text of the value of `t`, when the item is an object that has one. */
  readonly t: string | null;
}

/** The frame object: its first repeated key, and the items of `data` when asked for. */
interface ScannedFrame {
  readonly duplicateKey: string | null;
  /** `null` when not asked for, or `data` is no array. */
  readonly items: readonly ScannedItem[] | null;
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

function skipSpace(text: string, i: number): number {
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
  }
  return i;
}

/** `i` at a string's opening quote; returns the index after its closing quote. */
function skipString(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i + 1;
  }
  return text.length;
}

/** `i` at a value's first character; returns the index after the value. */
function skipValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === QUOTE) return skipString(text, i);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    // A number, true, false or null: up to the next delimiter.
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (
        c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || c === 32 || c === 10 ||
        c === 13 || c === 9
      ) break;
    }
    return i;
  }
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = skipString(text, i) - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1;
    }
  }
  return text.length;
}

/** The keys of one object so far; tells a repeated one (a list while short, then a Set). */
class KeySeen {
  readonly #list: string[] = [];
  #set: Set<string> | undefined;

  /** Notes `key`; `true` when it was already there. */
  repeated(key: string): boolean {
    if (this.#set !== undefined) {
      if (this.#set.has(key)) return true;
      this.#set.add(key);
      return false;
    }
    if (this.#list.includes(key)) return true;
    this.#list.push(key);
    if (this.#list.length > 16) this.#set = new Set(this.#list);
    return false;
  }
}

/** `i` at a key's opening quote: the key, decoded, and the index after its closing quote. */
function readKey(text: string, i: number): { key: string; end: number } {
  const end = skipString(text, i);
  const raw = text.slice(i + 1, end - 1);
  return { key: raw.includes("\\") ? JSON.parse(text.slice(i, end)) as string : raw, end };
}

/**
 * Walks the members of the object whose `{` is at `i`, calling `value` with each key and where
 * its value starts; `value` returns where the value ends. Returns where the object ends and its
 * first repeated key.
 */
function scanMembers(
  text: string,
  i: number,
  value: (key: string, start: number) => number,
): { end: number; duplicateKey: string | null } {
  const seen = new KeySeen();
  let duplicateKey: string | null = null;
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACE) return { end: i + 1, duplicateKey };
  while (i < text.length) {
    const { key, end } = readKey(text, i);
    if (seen.repeated(key)) duplicateKey ??= key;
    i = skipSpace(text, skipSpace(text, end) + 1); // past the colon
    i = skipSpace(text, value(key, i));
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipSpace(text, i + 1);
  }
  return { end: i + 1, duplicateKey };
}

/** The frame object (`{` at `i`): its repeated key; the items of `data` when `withItems`. */
function scanFrame(text: string, i: number, withItems: boolean): ScannedFrame {
  let items: ScannedItem[] | null = null;
  const { duplicateKey } = scanMembers(text, i, (key, start) => {
    if (!withItems || key !== "data" || items !== null || text.charCodeAt(start) !== OPEN_BRACKET) {
      return skipValue(text, start);
    }
    const scanned = scanItems(text, start);
    items = scanned.items;
    return scanned.end;
  });
  return { duplicateKey, items };
}

/** The array whose `[` is at `i`: each item, objects scanned for a repeated key and `t`. */
function scanItems(text: string, i: number): { items: ScannedItem[]; end: number } {
  const items: ScannedItem[] = [];
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACKET) return { items, end: i + 1 };
  while (i < text.length) {
    const item = text.charCodeAt(i) === OPEN_BRACE
      ? scanTrade(text, i)
      : { start: i, end: skipValue(text, i), duplicateKey: null, t: null };
    items.push(item);
    i = skipSpace(text, item.end);
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipSpace(text, i + 1);
  }
  return { items, end: i + 1 };
}

/** A trade object (`{` at `i`). */
function scanTrade(text: string, start: number): ScannedItem {
  let t: string | null = null;
  const { end, duplicateKey } = scanMembers(text, start, (key, at) => {
    const valueEnd = skipValue(text, at);
    if (key === "t" && t === null) t = text.slice(at, valueEnd);
    return valueEnd;
  });
  return { start, end, duplicateKey, t };
}

// ---------------------------------------------------------------------------------------------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A short description of an untrusted value for a reason text; never recurses. */
function describe(value: unknown, present = true): string {
  if (!present) return "nothing (the key is missing)";
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  switch (typeof value) {
    case "string":
      return `string ${JSON.stringify(clip(value, 64))}`;
    case "number":
      return `number ${value}`;
    case "boolean":
      return `boolean ${value}`;
    case "object":
      return "an object";
    default:
      return typeof value;
  }
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

function invalid(
  reasonCode: FrameRejectCode,
  reason: string,
  payload: string | Uint8Array,
): ParsedFrame {
  return {
    kind: "invalid",
    reasonCode,
    reason,
    payload: typeof payload === "string" ? encoder.encode(payload) : payload,
  };
}

function tooLarge(bytes: Uint8Array, maxBytes: number): ParsedFrame {
  return invalid(
    "frame_too_large",
    `frame is ${bytes.length} bytes, more than the ${maxBytes}-byte limit (not parsed)`,
    bytes,
  );
}
