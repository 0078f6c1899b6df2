/**
 * Turns one Finnhub WebSocket frame into what the producer does with it: trades to forward,
 * single trades to dead-letter, a ping, an error, an unknown type, or a whole frame to
 * dead-letter. Pure: no I/O, never throws on any input, never recurses on untrusted data.
 *
 * A trade "could be parsed" when `s` is a non-empty string, `p` a number, `t` a safe integer,
 * `v` a number and `c` absent, `null` or an array of strings. Values that are well-typed but
 * wrong (a negative price, seconds instead of milliseconds) are forwarded: bronze is the raw
 * audit trail and silver rejects them later.
 *
 * @module
 */
import type { Conditions } from "../shared/types.ts";

/** Frames larger than this many UTF-8 bytes are refused whole (`frame_too_large`). */
export const DEFAULT_MAX_FRAME_BYTES = 512 * 1024;

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

/** One trade of a trade frame that could not be parsed. */
export interface RejectedTrade {
  readonly index: number;
  /** The trade's JSON, or the whole frame when the trade cannot be serialised on its own. */
  readonly payload: string;
  readonly reason: string;
  /** The trade's symbol when it has a usable one, for the dead-letter record key. */
  readonly symbol: string | null;
}

/** Why a whole frame was refused. */
export type FrameRejectCode = "invalid_json" | "bad_frame_shape" | "frame_too_large";

/** Reason code of a single trade that was refused. */
export const BAD_TRADE_SHAPE = "bad_trade_shape";

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
    /** The frame's bytes, truncated to the size bound. */
    readonly payload: Uint8Array;
  };

/** Options of {@linkcode parseFrame}. */
export interface ParseFrameOptions {
  /** Largest accepted frame in UTF-8 bytes. Default {@linkcode DEFAULT_MAX_FRAME_BYTES}. */
  readonly maxFrameBytes?: number;
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
      return parseTradeFrame(value, text);
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

function parseTradeFrame(frame: Record<string, unknown>, text: string): ParsedFrame {
  const data = frame.data;
  if (!Array.isArray(data)) {
    return invalid(
      "bad_frame_shape",
      `trade frame field 'data' must be an array, got ${describe(data, "data" in frame)}`,
      text,
    );
  }
  const trades: ParsedTrade[] = [];
  const rejected: RejectedTrade[] = [];
  for (let index = 0; index < data.length; index++) {
    const item: unknown = data[index];
    const problem = tradeProblem(item);
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
        payload: serialise(item) ?? text,
        reason: `trade ${index}: ${problem}`,
        symbol: isPlainObject(item) && typeof item.s === "string" && item.s !== "" &&
            item.s.length <= MAX_SYMBOL_LENGTH
          ? item.s
          : null,
      });
    }
  }
  return { kind: "trades", trades, rejected };
}

/** What is wrong with one trade, or `null` when it can be forwarded. */
function tradeProblem(item: unknown): string | null {
  if (!isPlainObject(item)) return `must be a JSON object, got ${describe(item)}`;
  const { s, p, t, v } = item;
  if (typeof s !== "string" || s === "") {
    return `field 's' must be a non-empty string, got ${describe(s, "s" in item)}`;
  }
  if (s.length > MAX_SYMBOL_LENGTH) {
    return `field 's' must be at most ${MAX_SYMBOL_LENGTH} characters, got ${s.length}: ${
      describe(s)
    }`;
  }
  if (typeof p !== "number") return `field 'p' must be a number, got ${describe(p, "p" in item)}`;
  if (!Number.isSafeInteger(t)) {
    return `field 't' must be an integer of epoch milliseconds, got ${describe(t, "t" in item)}`;
  }
  if (typeof v !== "number") return `field 'v' must be a number, got ${describe(v, "v" in item)}`;
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

/** JSON of one untrusted value; `undefined` when it cannot be serialised (too deep). */
function serialise(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
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
    `frame is ${bytes.length} bytes, more than the ${maxBytes}-byte limit (payload truncated to the limit)`,
    bytes.subarray(0, maxBytes),
  );
}
