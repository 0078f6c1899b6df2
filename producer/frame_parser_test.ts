import assert from "node:assert/strict";
import { mulberry32 } from "../shared/random.ts";
import { hostileFrames, MALFORMED_FRAMES } from "../simulator/faults.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  integerOf,
  MAX_SYMBOL_LENGTH,
  type ParsedFrame,
  parseFrame,
} from "./frame_parser.ts";

const FIXTURES = new URL("../tests/fixtures/", import.meta.url);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

async function fixtureLines(): Promise<{ file: string; line: string }[]> {
  const out: { file: string; line: string }[] = [];
  for await (const entry of Deno.readDir(FIXTURES)) {
    if (!entry.isFile || !entry.name.endsWith(".ndjson")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, FIXTURES));
    for (const line of text.split("\n")) {
      if (line.trim() !== "") out.push({ file: entry.name, line });
    }
  }
  return out;
}

function trades(frame: ParsedFrame) {
  assert.equal(frame.kind, "trades");
  return frame as Extract<ParsedFrame, { kind: "trades" }>;
}

function invalid(frame: ParsedFrame) {
  assert.equal(frame.kind, "invalid");
  return frame as Extract<ParsedFrame, { kind: "invalid" }>;
}

Deno.test("parseFrame() classifies every sample frame in tests/fixtures without rejecting any", async () => {
  const lines = await fixtureLines();
  assert.ok(lines.length >= 5, "the fixtures hold frames");
  const kinds = new Set<string>();
  for (const { file, line } of lines) {
    const frame = parseFrame(line);
    kinds.add(frame.kind);
    assert.notEqual(frame.kind, "invalid", `${file}: ${line}`);
    assert.notEqual(frame.kind, "unknown", `${file}: ${line}`);
    const json = JSON.parse(line);
    if (frame.kind === "trades") {
      assert.equal(frame.rejected.length, 0, `${file}: ${line}`);
      assert.equal(frame.trades.length, json.data.length);
      frame.trades.forEach((trade, i) => {
        const raw = json.data[i];
        assert.equal(trade.index, i);
        assert.equal(trade.s, raw.s);
        assert.equal(trade.p, raw.p);
        assert.equal(trade.t, raw.t);
        assert.equal(trade.v, raw.v);
        assert.deepEqual(trade.c, "c" in raw ? raw.c : "ABSENT");
      });
    }
  }
  assert.deepEqual([...kinds].sort(), ["error", "ping", "trades"]);
});

Deno.test("parseFrame() keeps several symbols and same-millisecond trades of one frame in order", () => {
  const frame = trades(parseFrame(
    JSON.stringify({
      type: "trade",
      data: [
        { s: "TSLA", p: 122.09, t: 1672348887196, v: 4, c: ["1"] },
        { s: "AAPL", p: 129.58, t: 1672348887196, v: 1, c: [] },
        { s: "TSLA", p: 122.09, t: 1672348887196, v: 4, c: ["1"] },
      ],
    }),
  ));
  assert.deepEqual(frame.trades.map((t) => [t.s, t.index]), [["TSLA", 0], ["AAPL", 1], [
    "TSLA",
    2,
  ]]);
  assert.deepEqual(frame.trades[0], { ...frame.trades[2], index: 0 }, "identical prints both kept");
});

Deno.test("parseFrame() tells null, empty, absent and listed conditions apart", () => {
  const frame = trades(parseFrame(
    '{"type":"trade","data":[{"s":"A","p":1,"t":1,"v":1,"c":null},{"s":"A","p":1,"t":1,"v":1,"c":[]},' +
      '{"s":"A","p":1,"t":1,"v":1},{"s":"A","p":1,"t":1,"v":1,"c":["1","12"]}]}',
  ));
  assert.deepEqual(frame.trades.map((t) => t.c), [null, [], "ABSENT", ["1", "12"]]);
});

Deno.test("parseFrame() forwards well-typed but implausible trades for silver to reject", () => {
  const frame = trades(parseFrame(
    '{"type":"trade","data":[{"s":"AAPL","p":-5,"t":1672348887,"v":0},' +
      '{"s":"AAPL","p":1e999,"t":-1,"v":0.5,"x":"extra"}]}',
  ));
  assert.equal(frame.rejected.length, 0);
  assert.deepEqual(frame.trades.map((t) => [t.p, t.t, t.v]), [[-5, 1672348887, 0], [
    Infinity,
    -1,
    0.5,
  ]]);
});

Deno.test("parseFrame() dead-letters only the bad trade of a frame, naming the field and value", () => {
  const frame = trades(parseFrame(JSON.stringify({
    type: "trade",
    data: [
      { s: "AAPL", p: 1, t: 1, v: 1 },
      { s: "AAPL", p: "122.1", t: 1, v: 1 },
      { s: "MSFT", p: 1, t: 1.5, v: 1 },
      { s: "MSFT", p: 1, t: 1, v: 1, c: ["1", 2] },
      { s: "", p: 1, t: 1, v: 1 },
      { p: 1, t: 1, v: 1 },
      { s: "X", p: 1, t: 1, v: null },
      { s: "X", p: 1, t: 1, v: 1, c: "1" },
      7,
      null,
      [],
      { s: "OK", p: 2, t: 2, v: 2 },
    ],
  })));
  assert.deepEqual(frame.trades.map((t) => [t.s, t.index]), [["AAPL", 0], ["OK", 11]]);
  const reasons = frame.rejected.map((r) => r.reason);
  assert.deepEqual(reasons, [
    `trade 1: field 'p' must be a number, got string "122.1"`,
    "trade 2: field 't' must be an integer of epoch milliseconds, got number 1.5",
    "trade 3: field 'c' must hold only strings, got number 2 at position 1",
    `trade 4: field 's' must be a non-empty string, got string ""`,
    "trade 5: field 's' must be a non-empty string, got nothing (the key is missing)",
    "trade 6: field 'v' must be a number, got null",
    `trade 7: field 'c' must be an array of strings or null, got string "1"`,
    "trade 8: must be a JSON object, got number 7",
    "trade 9: must be a JSON object, got null",
    "trade 10: must be a JSON object, got an array of 0 items",
  ]);
  assert.deepEqual(frame.rejected.map((r) => r.symbol), [
    "AAPL",
    "MSFT",
    "MSFT",
    null,
    null,
    "X",
    "X",
    null,
    null,
    null,
  ]);
  assert.equal(decoder.decode(frame.rejected[0]!.payload), '{"s":"AAPL","p":"122.1","t":1,"v":1}');
  assert.ok(frame.rejected.every((r) => r.reasonCode === "bad_trade_shape"));
});

Deno.test("parseFrame() refuses over-long symbols and condition lists so one trade cannot outgrow a Kafka record", () => {
  const long = "A".repeat(MAX_SYMBOL_LENGTH + 1);
  const frame = trades(parseFrame(JSON.stringify({
    type: "trade",
    data: [
      { s: long, p: 1, t: 1, v: 1 },
      { s: "A", p: 1, t: 1, v: 1, c: new Array(65).fill("1") },
      { s: "A", p: 1, t: 1, v: 1, c: ["x".repeat(33)] },
    ],
  })));
  assert.equal(frame.trades.length, 0);
  assert.match(frame.rejected[0]!.reason, /field 's' must be at most 64 characters, got 65/);
  assert.equal(frame.rejected[0]!.symbol, null);
  assert.match(frame.rejected[1]!.reason, /at most 64 entries, got 65/);
  assert.match(frame.rejected[2]!.reason, /at most 32 characters, got 33 at position 0/);
});

Deno.test("parseFrame() reads pings, errors and unknown types", () => {
  assert.deepEqual(parseFrame('{"type":"ping"}'), { kind: "ping" });
  assert.deepEqual(parseFrame('{"type":"error","msg":"Subscribing to too many symbols"}'), {
    kind: "error",
    message: "Subscribing to too many symbols",
    tooManySymbols: true,
  });
  assert.deepEqual(parseFrame('{"type":"error","msg":"Invalid token"}'), {
    kind: "error",
    message: "Invalid token",
    tooManySymbols: false,
  });
  assert.deepEqual(parseFrame('{"type":"error"}'), {
    kind: "error",
    message: "(msg: nothing (the key is missing))",
    tooManySymbols: false,
  });
  assert.deepEqual(parseFrame('{"type":"news","data":[]}'), { kind: "unknown", frameType: "news" });
});

Deno.test("parseFrame() dead-letters whole frames that are not JSON or not the expected shape", () => {
  const cases: [string, string, RegExp][] = [
    ["", "invalid_json", /not valid JSON/],
    ['{"type":"trade","data":[{"s":"AAPL"', "invalid_json", /not valid JSON/],
    ["NaN", "invalid_json", /not valid JSON/],
    ["[1,2]", "bad_frame_shape", /must be a JSON object, got an array of 2 items/],
    ["null", "bad_frame_shape", /must be a JSON object, got null/],
    ['"trade"', "bad_frame_shape", /must be a JSON object, got string "trade"/],
    ['{"data":[]}', "bad_frame_shape", /'type' must be a string, got nothing/],
    ['{"type":7}', "bad_frame_shape", /'type' must be a string, got number 7/],
    ['{"type":"trade"}', "bad_frame_shape", /'data' must be an array, got nothing/],
    [
      '{"type":"trade","data":{"s":"A"}}',
      "bad_frame_shape",
      /'data' must be an array, got an object/,
    ],
  ];
  for (const [text, code, reason] of cases) {
    const frame = invalid(parseFrame(text));
    assert.equal(frame.reasonCode, code, text);
    assert.match(frame.reason, reason, text);
    assert.equal(decoder.decode(frame.payload), text, "the payload is the frame exactly");
  }
});

Deno.test("parseFrame() survives hostile frames: deep nesting, __proto__ keys, huge numbers", () => {
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  assert.equal(invalid(parseFrame(deep, { maxFrameBytes: 1 << 20 })).reasonCode, "bad_frame_shape");
  const deepTrade = `{"type":"trade","data":[${"[".repeat(100_000)}${"]".repeat(100_000)}]}`;
  const frame = trades(parseFrame(deepTrade, { maxFrameBytes: 1 << 20 }));
  assert.equal(frame.rejected.length, 1);
  const proto = trades(
    parseFrame(
      '{"type":"trade","__proto__":{"x":1},"data":[{"s":"A","p":1,"t":1,"v":1,' +
        '"__proto__":{"c":["9"]}}]}',
    ),
  );
  assert.deepEqual(proto.trades[0]!.c, "ABSENT");
  assert.equal(({} as Record<string, unknown>).x, undefined, "no prototype pollution");
  const big = trades(parseFrame('{"type":"trade","data":[{"s":"A","p":1,"t":1e300,"v":1}]}'));
  assert.match(big.rejected[0]!.reason, /field 't' must be an integer/);
});

Deno.test("parseFrame() refuses a frame over the size bound whole, with its size, unparsed", () => {
  const text = JSON.stringify({
    type: "trade",
    data: [{ s: "A", p: 1, t: 1, v: 1, c: ["é".repeat(2_200_000)] }],
  });
  const bytes = encoder.encode(text);
  assert.ok(bytes.length > DEFAULT_MAX_FRAME_BYTES);
  const frame = invalid(parseFrame(text));
  assert.equal(frame.reasonCode, "frame_too_large");
  assert.match(
    frame.reason,
    new RegExp(`frame is ${bytes.length} bytes, more than the 4194304-byte limit`),
  );
  assert.deepEqual(frame.payload, bytes, "the payload is the frame whole");
  const small = invalid(parseFrame("x".repeat(101), { maxFrameBytes: 100 }));
  assert.equal(small.reasonCode, "frame_too_large");
  assert.equal(small.payload.length, 101);
  assert.equal(parseFrame('{"type":"ping"}', { maxFrameBytes: 15 }).kind, "ping");
});

Deno.test("parseFrame() forwards every trade of a frame larger than the old 512 KiB bound", () => {
  const data = Array.from({ length: 20_000 }, (_, i) => ({
    s: "BINANCE:BTCUSDT",
    p: 7296.89 + i,
    t: 1575526691134 + i,
    v: 0.011467,
    c: null,
  }));
  const text = JSON.stringify({ type: "trade", data });
  assert.ok(text.length > 1024 * 1024, `${text.length} bytes`);
  const frame = trades(parseFrame(text));
  assert.equal(frame.rejected.length, 0);
  assert.equal(frame.trades.length, 20_000);
  assert.deepEqual(frame.trades[19_999], { ...data[19_999], index: 19_999 });
});

Deno.test("parseFrame() hands a refused trade on as the very bytes it had in the frame", () => {
  const raw = ' { "s" : "MSFT", "p":"1.5" ,"t":9007199254740993,"v":1e0,"x":"\\u00e9 é 📈"} ';
  const text = `{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1},${raw},7]}`;
  for (const input of [text, encoder.encode(text), encoder.encode(text).buffer as ArrayBuffer]) {
    const frame = trades(parseFrame(input));
    assert.equal(frame.trades.length, 1);
    assert.equal(decoder.decode(frame.rejected[0]!.payload), raw.trim());
    assert.deepEqual(frame.rejected[0]!.payload, encoder.encode(raw.trim()));
    assert.equal(decoder.decode(frame.rejected[1]!.payload), "7");
  }
});

Deno.test("parseFrame() refuses a time written as an integer no double holds exactly, with its own code", () => {
  const frame = trades(parseFrame(
    '{"type":"trade","data":[{"s":"A","p":1,"t":9007199254740993,"v":1},' +
      '{"s":"A","p":1,"t":-9007199254740992,"v":1},{"s":"A","p":1,"t":1e300,"v":1},' +
      '{"s":"A","p":1,"t":9007199254740991,"v":1},{"s":"A","p":1,"t":1.672348887666e12,"v":1},' +
      '{"s":"A","p":1,"t":1672348887666.0000000001,"v":1},{"s":"A","p":1,"t":-0,"v":1}]}',
  ));
  assert.deepEqual(frame.rejected.map((r) => [r.index, r.reasonCode]), [
    [0, "inexact_integer"],
    [1, "inexact_integer"],
    [2, "inexact_integer"],
    [5, "bad_trade_shape"],
  ]);
  assert.equal(
    frame.rejected[0]!.reason,
    "trade 0: field 't' must be an integer a double holds exactly (at most 9007199254740991 in magnitude), got number 9007199254740993",
  );
  assert.equal(
    decoder.decode(frame.rejected[0]!.payload),
    '{"s":"A","p":1,"t":9007199254740993,"v":1}',
  );
  assert.match(
    frame.rejected[3]!.reason,
    /must be an integer of epoch milliseconds, got number 1672348887666\.0000000001/,
  );
  assert.deepEqual(frame.trades.map((t) => t.t), [9007199254740991, 1672348887666, -0]);
});

Deno.test("integerOf() reads a JSON number's digits exactly", () => {
  const cases: [string, ReturnType<typeof integerOf>][] = [
    ["0", "ok"],
    ["-0", "ok"],
    ["0.000e5", "ok"],
    ["1672348887666", "ok"],
    ["1.672348887666e12", "ok"],
    ["100e-2", "ok"],
    ["9007199254740991", "ok"],
    ["-9007199254740991", "ok"],
    ["9007199254740992", "too large"],
    ["9007199254740993", "too large"],
    ["90071992547409910", "too large"],
    ["1e16", "too large"],
    ["1E400", "too large"],
    ["1e99999999999999999999", "too large"],
    ["1.5", "not an integer"],
    ["1e-1", "not an integer"],
    ["1672348887666.0000000001", "not an integer"],
    ["1e-99999999999999999999", "not an integer"],
    ["true", "not an integer"],
  ];
  for (const [literal, expected] of cases) assert.equal(integerOf(literal), expected, literal);
});

Deno.test("parseFrame() refuses a frame with a key twice, and a trade with a key twice alone", () => {
  for (
    const text of [
      '{"type":"trade","type":"ping"}',
      '{"type":"ping","type":"ping"}',
      '{"type":"trade","data":[],"data":[{"s":"A","p":1,"t":1,"v":1}]}',
      '{"\\u0074ype":"trade","type":"trade","data":[]}',
      '{"type":"news","x":1,"x":2}',
    ]
  ) {
    const frame = invalid(parseFrame(text));
    assert.equal(frame.reasonCode, "bad_frame_shape", text);
    assert.match(frame.reason, /frame has the key "(type|data|x)" twice/, text);
    assert.equal(decoder.decode(frame.payload), text);
  }
  const frame = trades(parseFrame(
    '{"type":"trade","data":[{"s":"A","p":1,"t":1,"v":1,"p":2},{"s":"A","p":1,"t":1,"v":1},' +
      '{"s":"B","p":1,"t":1,"v":1,"c":[{"k":1,"k":2}]}]}',
  ));
  assert.deepEqual(frame.trades.map((t) => t.index), [1], "nested objects are not read");
  assert.equal(frame.rejected[0]!.reasonCode, "bad_trade_shape");
  assert.match(frame.rejected[0]!.reason, /trade 0: has the key "p" twice/);
  assert.match(frame.rejected[1]!.reason, /trade 2: field 'c' must hold only strings/);
});

Deno.test("parseFrame() refuses trades of symbols the connection did not subscribe to, matching exactly", () => {
  const subscribed = new Set(["AAPL", "BINANCE:BTCUSDT"]);
  const frame = trades(parseFrame(
    JSON.stringify({
      type: "trade",
      data: ["AAPL", "aapl", "BINANCE:BTCUSDT", "BINANCE:BTCUSDT ", "BTCUSDT", "MSFT", "AAPL"]
        .map((s, i) => ({ s, p: 1, t: i, v: 1 })),
    }),
    { subscribed },
  ));
  assert.deepEqual(frame.trades.map((t) => [t.index, t.s]), [
    [0, "AAPL"],
    [2, "BINANCE:BTCUSDT"],
    [6, "AAPL"],
  ]);
  assert.deepEqual(frame.rejected.map((r) => [r.index, r.reasonCode, r.symbol]), [
    [1, "unsubscribed_symbol", "aapl"],
    [3, "unsubscribed_symbol", "BINANCE:BTCUSDT "],
    [4, "unsubscribed_symbol", "BTCUSDT"],
    [5, "unsubscribed_symbol", "MSFT"],
  ]);
  assert.equal(
    frame.rejected[0]!.reason,
    'trade 1: symbol string "aapl" was not subscribed on this connection (2 symbols are, set by FINNHUB_SYMBOLS)',
  );
  const bad = trades(parseFrame('{"type":"trade","data":[{"s":"MSFT","p":"1","t":1,"v":1}]}', {
    subscribed,
  }));
  assert.equal(bad.rejected[0]!.reasonCode, "bad_trade_shape", "a bad shape is reported first");
});

/** A random JSON value (objects, arrays, escapes, unicode, odd spacing), to the given depth. */
function randomJson(rand: () => number, depth: number): string {
  const space = () => [" ", "", "\n", "\t", "\r\n  "][Math.floor(rand() * 5)]!;
  const str = () =>
    JSON.stringify(
      Array.from(
        { length: Math.floor(rand() * 6) },
        () =>
          ['"', "\\", "a", "é", "📈", "]", "}", ",", ":", "\u0000", "t"][Math.floor(rand() * 11)],
      ).join(""),
    );
  const roll = rand();
  if (depth <= 0 || roll < 0.4) {
    return [str(), "1", "-0", "9007199254740993", "1.5e-3", "true", "false", "null"][
      Math.floor(rand() * 8)
    ]!;
  }
  const n = Math.floor(rand() * 4);
  if (roll < 0.7) {
    const items = Array.from({ length: n }, () => space() + randomJson(rand, depth - 1) + space());
    return `[${items.join(",")}]`;
  }
  const keys = ["s", "p", "t", "v", "c", "t", "\\u0074"];
  const members = Array.from(
    { length: n },
    () =>
      `${space()}"${keys[Math.floor(rand() * keys.length)]}"${space()}:${space()}${
        randomJson(rand, depth - 1)
      }${space()}`,
  );
  return `{${members.join(",")}}`;
}

Deno.test("parseFrame() finds every trade's own text in random frames, as JSON.parse reads them", () => {
  const rand = mulberry32(20261207);
  for (let n = 0; n < 2_000; n++) {
    const items = Array.from(
      { length: Math.floor(rand() * 6) },
      () => rand() < 0.3 ? `{"s":"A","p":1.5,"t":${n},"v":0 }` : randomJson(rand, 4),
    );
    const text = `{ "x":${randomJson(rand, 3)}, "type" : "trade" ,"data":[ ${
      items.join(" , ")
    } ] }`;
    const expected: unknown[] = JSON.parse(text).data;
    const frame = trades(parseFrame(text));
    assert.equal(frame.trades.length + frame.rejected.length, expected.length, text);
    for (const trade of frame.trades) {
      const { index, ...fields } = trade;
      assert.deepEqual({ ...fields, c: "ABSENT" }, { ...(expected[index] as object), c: "ABSENT" });
    }
    for (const rejected of frame.rejected) {
      assert.deepEqual(
        JSON.parse(decoder.decode(rejected.payload)),
        expected[rejected.index],
        `${text}\ntrade ${rejected.index}`,
      );
    }
  }
});

Deno.test("parseFrame() reads UTF-8 binary frames and refuses other bytes", () => {
  const bytes = new TextEncoder().encode('{"type":"ping"}');
  assert.equal(parseFrame(bytes).kind, "ping");
  assert.equal(parseFrame(bytes.buffer as ArrayBuffer).kind, "ping");
  const bad = invalid(parseFrame(new Uint8Array([0xff, 0xfe, 0x00])));
  assert.equal(bad.reasonCode, "invalid_json");
  assert.match(bad.reason, /not UTF-8/);
  assert.deepEqual([...bad.payload], [0xff, 0xfe, 0x00]);
});

Deno.test("parseFrame() does with each of the simulator's malformed and hostile frames what the catalogue expects", () => {
  const subscribed = new Set(["AAPL"]);
  for (const { name, frame, expect } of [...MALFORMED_FRAMES, ...hostileFrames()]) {
    const parsed = parseFrame(frame, { subscribed });
    if (expect === "unknown_type") {
      assert.equal(parsed.kind, "unknown", name);
    } else if (
      expect === "bad_trade_shape" || expect === "unsubscribed_symbol" ||
      expect === "inexact_integer"
    ) {
      const t = trades(parsed);
      assert.equal(t.trades.length, 0, name);
      assert.deepEqual(t.rejected.map((r) => r.reasonCode), [expect], name);
    } else {
      assert.equal(invalid(parsed).reasonCode, expect, name);
    }
  }
});
