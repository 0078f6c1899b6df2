/**
 * What can go wrong on a feed, on demand: the faults the simulator injects (from CLI flags at
 * start, or at runtime through `POST /control/fault`), and the catalogue of malformed and hostile
 * frames it sends. Each catalogued frame says what a correct producer does with it, so a test can
 * check the dead-letter topic against the simulator's own expectations.
 *
 * @module
 */

/** A fault to inject now. */
export type Fault =
  /** Close every open connection now. */
  | { readonly type: "drop" }
  /** Close each connection this long after it opened, again and again; 0 turns it off. */
  | { readonly type: "drop-every"; readonly ms: number }
  /** Send nothing at all (no trades, no pings) on every connection for `ms`. */
  | { readonly type: "silence"; readonly ms: number }
  /** Send one malformed (or hostile) frame to every connection every `ms`; 0 turns it off. */
  | { readonly type: "malformed-every" | "hostile-every"; readonly ms: number }
  /** Send the next `count` malformed frames of the catalogue on every connection. */
  | { readonly type: "malformed"; readonly count?: number }
  /** Send the next `count` hostile frames of the catalogue on every connection. */
  | { readonly type: "hostile"; readonly count?: number }
  /** Deliver each of the next `count` trade frames twice. */
  | { readonly type: "duplicate"; readonly count?: number }
  /** Refuse the next `count` handshakes with `status`. */
  | { readonly type: "refuse"; readonly status: 401 | 429; readonly count?: number }
  /** Stop generating trades (pings go on) until `resume`. */
  | { readonly type: "pause" }
  | { readonly type: "resume" };

/**
 * What a correct producer does with a catalogued frame: the reason code of its one dead letter
 * (the whole frame's, or its one trade's), or `unknown_type` (counted, no letter). The catalogue
 * assumes the producer subscribed `AAPL` and never `ZZZZ`.
 */
export type FaultExpectation =
  | "invalid_json"
  | "bad_frame_shape"
  | "bad_trade_shape"
  | "unsubscribed_symbol"
  | "inexact_integer"
  | "frame_too_large"
  | "unknown_type";

/** Expectations whose dead letter holds one trade of the frame, not the frame. */
export const TRADE_EXPECTATIONS: readonly FaultExpectation[] = [
  "bad_trade_shape",
  "unsubscribed_symbol",
  "inexact_integer",
];

/** One malformed or hostile frame. */
export interface FaultFrame {
  readonly name: string;
  readonly frame: string | Uint8Array;
  /** Each such frame makes exactly one dead letter, except `unknown_type` (counted, no letter). */
  readonly expect: FaultExpectation;
}

/** Frames a buggy or confused server might send. */
export const MALFORMED_FRAMES: readonly FaultFrame[] = [
  { name: "truncated", frame: '{"type":"trade","data":[{"s":"AAPL","p":1', expect: "invalid_json" },
  { name: "not-json", frame: "hello, world", expect: "invalid_json" },
  { name: "empty", frame: "", expect: "invalid_json" },
  { name: "array", frame: '[{"type":"trade"}]', expect: "bad_frame_shape" },
  { name: "null", frame: "null", expect: "bad_frame_shape" },
  { name: "no-type", frame: '{"data":[]}', expect: "bad_frame_shape" },
  { name: "trade-without-data", frame: '{"type":"trade"}', expect: "bad_frame_shape" },
  {
    name: "data-not-array",
    frame: '{"type":"trade","data":{"s":"AAPL"}}',
    expect: "bad_frame_shape",
  },
  {
    name: "price-as-string",
    frame: '{"type":"trade","data":[{"s":"AAPL","p":"129.5","t":1672348887666,"v":1}]}',
    expect: "bad_trade_shape",
  },
  {
    name: "time-not-integer",
    frame: '{"type":"trade","data":[{"s":"AAPL","p":129.5,"t":1672348887.666,"v":1}]}',
    expect: "bad_trade_shape",
  },
  {
    name: "empty-symbol",
    frame: '{"type":"trade","data":[{"s":"","p":129.5,"t":1672348887666,"v":1}]}',
    expect: "bad_trade_shape",
  },
  {
    name: "numeric-condition",
    frame: '{"type":"trade","data":[{"s":"AAPL","p":129.5,"t":1672348887666,"v":1,"c":[1]}]}',
    expect: "bad_trade_shape",
  },
  {
    name: "unsubscribed-symbol",
    frame: '{"type":"trade","data":[{"s":"ZZZZ","p":129.5,"t":1672348887666,"v":1}]}',
    expect: "unsubscribed_symbol",
  },
  {
    name: "duplicate-type",
    frame: '{"type":"trade","data":[],"type":"ping"}',
    expect: "bad_frame_shape",
  },
  { name: "unknown-type", frame: '{"type":"news","data":[]}', expect: "unknown_type" },
];

let hostile: readonly FaultFrame[] | undefined;

/** Frames an attacker (or a broken proxy) might send; built on first use, some are large. */
export function hostileFrames(): readonly FaultFrame[] {
  if (hostile) return hostile;
  const trade = '{"s":"AAPL","p":129.5,"t":1672348887666,"v":1,"c":["1"]}';
  hostile = [
    {
      // Over the producer's 4 MiB limit (about 4.6 MB).
      name: "oversized",
      frame: `{"type":"trade","data":[${new Array(80_000).fill(trade).join(",")}]}`,
      expect: "frame_too_large",
    },
    {
      name: "deep-nesting-frame",
      frame: "[".repeat(100_000) + "]".repeat(100_000),
      expect: "bad_frame_shape",
    },
    {
      name: "deep-nesting-trade",
      frame: `{"type":"trade","data":[${"[".repeat(100_000)}${"]".repeat(100_000)}]}`,
      expect: "bad_trade_shape",
    },
    {
      name: "proto-keys",
      frame:
        '{"type":"trade","__proto__":{"polluted":true},"data":[{"__proto__":{"s":"AAPL"},"constructor":{"prototype":{"polluted":true}},"p":1,"t":1672348887666,"v":1}]}',
      expect: "bad_trade_shape",
    },
    {
      name: "binary-garbage",
      frame: new Uint8Array([0xff, 0xfe, 0xfd, 0x00, 0xc3, 0x28, 0x80, 0x81]),
      expect: "invalid_json",
    },
    {
      name: "raw-control-characters",
      frame: '{"type":"trade",\u0000\u001b[31m"data":[]}',
      expect: "invalid_json",
    },
    {
      // An integer no double holds (it reads as Infinity).
      name: "huge-number",
      frame: '{"type":"trade","data":[{"s":"AAPL","p":1,"t":1e400,"v":1}]}',
      expect: "inexact_integer",
    },
    {
      // JSON.parse reads it as 9007199254740992.
      name: "inexact-time",
      frame: '{"type":"trade","data":[{"s":"AAPL","p":1,"t":9007199254740993,"v":1}]}',
      expect: "inexact_integer",
    },
    {
      name: "duplicate-key-trade",
      frame: '{"type":"trade","data":[{"s":"AAPL","p":1,"t":1672348887666,"v":1,"p":1e9}]}',
      expect: "bad_trade_shape",
    },
    {
      name: "long-symbol",
      frame: `{"type":"trade","data":[{"s":"${
        "A".repeat(10_000)
      }","p":1,"t":1672348887666,"v":1}]}`,
      expect: "bad_trade_shape",
    },
    {
      name: "many-conditions",
      frame: `{"type":"trade","data":[{"s":"AAPL","p":1,"t":1672348887666,"v":1,"c":[${
        new Array(10_000).fill('"1"').join(",")
      }]}]}`,
      expect: "bad_trade_shape",
    },
    {
      name: "type-is-object",
      frame: '{"type":{"toString":"trade"},"data":[]}',
      expect: "bad_frame_shape",
    },
  ];
  return hostile;
}

/**
 * Checks a fault that came as JSON (the control route) and returns it typed. Throws a
 * `TypeError` saying what is wrong.
 */
export function parseFault(value: unknown): Fault {
  if (typeof value !== "object" || value === null) {
    throw new TypeError("a fault must be a JSON object with a 'type'");
  }
  const fault = value as Record<string, unknown>;
  const count = optionalCount(fault.count);
  switch (fault.type) {
    case "drop":
    case "pause":
    case "resume":
      return { type: fault.type };
    case "drop-every":
    case "silence":
    case "malformed-every":
    case "hostile-every":
      return { type: fault.type, ms: requiredMs(fault.ms, fault.type) };
    case "malformed":
    case "hostile":
    case "duplicate":
      return count === undefined ? { type: fault.type } : { type: fault.type, count };
    case "refuse": {
      if (fault.status !== 401 && fault.status !== 429) {
        throw new TypeError("fault 'refuse' needs 'status' 401 or 429");
      }
      return count === undefined
        ? { type: "refuse", status: fault.status }
        : { type: "refuse", status: fault.status, count };
    }
    default:
      throw new TypeError(
        `unknown fault type ${
          JSON.stringify(fault.type)
        }: expected drop, drop-every, silence, malformed, malformed-every, hostile, hostile-every, duplicate, refuse, pause or resume`,
      );
  }
}

/**
 * Reads one `--fault` flag: `drop-every=MS`, `silence=MS`, `malformed-every=MS`,
 * `hostile-every=MS`, `malformed[=COUNT]`, `hostile[=COUNT]`, `duplicate[=COUNT]`,
 * `refuse=401|429[:COUNT]`, `pause`.
 */
export function parseFaultFlag(flag: string): Fault {
  const [name, value] = flag.split("=", 2) as [string, string | undefined];
  const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  if (name === "refuse") {
    const [status, count] = (value ?? "").split(":");
    return parseFault({ type: "refuse", status: Number(status), count: number(count) });
  }
  if (name.endsWith("-every") || name === "silence") {
    return parseFault({ type: name, ms: number(value) });
  }
  return parseFault({ type: name, count: number(value) });
}

function optionalCount(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new TypeError(`fault 'count' must be a whole number of at least 1, got ${value}`);
  }
  return value as number;
}

function requiredMs(value: unknown, type: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new TypeError(`fault '${type}' needs 'ms', a whole number of milliseconds, got ${value}`);
  }
  return value as number;
}
