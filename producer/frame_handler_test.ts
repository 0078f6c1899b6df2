import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { FakeClock } from "../shared/clock.ts";
import { createLogger } from "../shared/log.ts";
import { memoryWire } from "../shared/memory_registry.ts";
import type { FrameMeta } from "./finnhub_client.ts";
import {
  createThrottle,
  FrameHandler,
  producerDeadLetter,
  sameFrame,
  type ThrottleKey,
} from "./frame_handler.ts";
import { MAX_DEAD_LETTER_PAYLOAD_BYTES } from "./letter_payload.ts";
import { createProducerMetrics } from "./metrics.ts";

const wire = await memoryWire();

/** A handler over a sink that records its offers (or throws from `offerTrade`). */
function setup(options: { offerTradeThrows?: boolean } = {}) {
  const clock = new FakeClock();
  const metrics = createProducerMetrics(100);
  const lines: string[] = [];
  const trades: { symbol: string; ingestTime: number; value: Buffer }[] = [];
  const letters: { key: string | null; value: Buffer }[] = [];
  const handler = new FrameHandler({
    sink: {
      offerTrade(symbol, ingestTime, encodeValue) {
        if (options.offerTradeThrows) throw new Error("sink broke");
        trades.push({ symbol, ingestTime, value: encodeValue() });
        return true;
      },
      offerDeadLetter(key, value) {
        letters.push({ key, value });
      },
    },
    wire,
    subscribed: new Set(["AAPL"]),
    maxFrameBytes: 1024,
    deadLetterTopic: "dlq",
    finnhub: { symbols: ["AAPL"], symbolLimit: 50 },
    throttle: createThrottle(clock, 10_000),
    metrics,
    log: createLogger("test", { write: (line) => lines.push(line) }),
    clock,
  });
  const letter = (i: number) => wire.decode("DeadLetter", letters[i]!.value);
  return { clock, metrics, lines, trades, letters, letter, handler };
}

function meta(connectionId: string, frameSeq: number): FrameMeta {
  return { connectionId, frameSeq, receivedAt: 1_700_000_000_000 };
}

Deno.test("FrameHandler offers each subscribed trade encoded with where it came from, and dead-letters the others keyed by symbol", () => {
  const t = setup();
  t.handler.onFrame(
    '{"type":"trade","data":[{"s":"AAPL","p":1.5,"t":7,"v":2},{"s":"MSFT","p":1,"t":8,"v":1}]}',
    meta("run-1", 3),
  );
  assert.equal(t.trades.length, 1);
  assert.equal(t.trades[0]!.symbol, "AAPL");
  assert.deepEqual({ ...wire.decode("Trade", t.trades[0]!.value) }, {
    s: "AAPL",
    p: 1.5,
    t: 7,
    v: 2,
    c: "ABSENT",
    ingestTime: 1_700_000_000_000,
    connectionId: "run-1",
    frameSeq: 3,
    tradeIndex: 0,
  });
  assert.equal(t.letters.length, 1);
  assert.equal(t.letters[0]!.key, "MSFT");
  assert.equal(t.letter(0).reasonCode, "unsubscribed_symbol");
  assert.match(t.letter(0).reason, /\(connection run-1, frame 3\)$/);
  assert.equal(t.metrics.framesReceived, 1);
  assert.equal(t.metrics.tradesReceived, 1);
  assert.equal(t.metrics.tradesRejected, 1);
  assert.equal(t.metrics.tradesUnsubscribed, 1);
});

Deno.test("FrameHandler counts a trade frame that repeats the previous one on its connection, and keeps its trades", () => {
  const t = setup();
  const frame = '{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1}]}';
  t.handler.onFrame(frame, meta("run-1", 1));
  t.handler.onFrame(frame, meta("run-2", 1));
  assert.equal(t.metrics.feedDuplicateFramesSuspected, 0, "another connection: not a repeat");
  t.handler.onFrame(frame, meta("run-2", 2));
  assert.equal(t.metrics.feedDuplicateFramesSuspected, 1);
  assert.equal(t.trades.length, 3);
});

Deno.test("FrameHandler dead-letters a frame it fails on, whole, instead of throwing", () => {
  const t = setup({ offerTradeThrows: true });
  const frame = '{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1}]}';
  t.handler.onFrame(frame, meta("run-1", 4));
  assert.equal(t.metrics.invalidFrames, 1);
  assert.equal(t.letters[0]!.key, null);
  const letter = t.letter(0);
  assert.equal(letter.reasonCode, "producer_error");
  assert.equal(new TextDecoder().decode(letter.payload), frame);
  assert.match(letter.reason, /sink broke \(connection run-1, frame 4\)$/);
  assert.ok(t.lines.some((l) => l.includes("could not handle a frame")));
});

Deno.test("FrameHandler dead-letters an unreadable frame with an empty payload and counts it", () => {
  const t = setup();
  t.handler.onUnreadableFrame("invalid utf-8 sequence", meta("run-1", 9));
  assert.equal(t.metrics.framesReceived, 1);
  assert.equal(t.metrics.framesUnreadable, 1);
  const letter = t.letter(0);
  assert.equal(letter.reasonCode, "frame_unreadable");
  assert.equal(letter.payload.length, 0);
  assert.match(
    letter.reason,
    /^the WebSocket layer refused this frame .*\(invalid utf-8 sequence:/,
  );
});

Deno.test("FrameHandler counts pings, error frames and unknown types, warning of unknown types once per 10 s", () => {
  const t = setup();
  t.handler.onFrame('{"type":"ping"}', meta("run-1", 1));
  t.handler.onFrame('{"type":"error","msg":"Subscribing to too many symbols"}', meta("run-1", 2));
  t.handler.onFrame('{"type":"news"}', meta("run-1", 3));
  t.handler.onFrame('{"type":"news"}', meta("run-1", 4));
  assert.equal(t.metrics.pings, 1);
  assert.equal(t.metrics.errorFrames, 1);
  assert.equal(t.metrics.tooManySymbolsErrors, 1);
  assert.equal(t.metrics.lastError, "feed: Subscribing to too many symbols");
  assert.equal(t.metrics.unknownFrames, 2);
  assert.equal(t.lines.filter((l) => l.includes("unknown type")).length, 1);
  assert.ok(t.lines.some((l) => /FINNHUB REFUSED SUBSCRIPTIONS.* symbolLimit=50/.test(l)));
  assert.equal(t.letters.length, 0);
});

Deno.test("producerDeadLetter() keeps an input that fits whole, with no size or hash", () => {
  const input = new TextEncoder().encode("not json");
  const letter = producerDeadLetter(input, "bad", { reasonCode: "invalid_json", time: 5 });
  assert.deepEqual({ ...letter, payload: [...letter.payload] }, {
    payload: [...input],
    reason: "bad",
    reasonCode: "invalid_json",
    source: "producer",
    time: 5,
    sourceTopic: null,
    sourcePartition: null,
    sourceOffset: null,
    originalSize: null,
    originalSha256: null,
  });
});

Deno.test("producerDeadLetter() keeps the first 512 KiB of a larger input, its size and SHA-256, and says so", () => {
  const input = new Uint8Array(MAX_DEAD_LETTER_PAYLOAD_BYTES + 10).fill(65);
  const letter = producerDeadLetter(input, "too large", {
    reasonCode: "frame_too_large",
    time: 5,
  });
  assert.equal(letter.payload.length, MAX_DEAD_LETTER_PAYLOAD_BYTES);
  assert.equal(letter.originalSize, input.length);
  assert.equal(letter.originalSha256, createHash("sha256").update(input).digest("hex"));
  assert.equal(
    letter.reason,
    `too large [payload: the first ${MAX_DEAD_LETTER_PAYLOAD_BYTES} of ${input.length} bytes]`,
  );
});

Deno.test("createThrottle() allows a key the first time and then once per interval, each key apart", () => {
  const clock = new FakeClock();
  const throttle = createThrottle(clock, 10_000);
  const key: ThrottleKey = "invalid_json";
  assert.equal(throttle(key), true);
  assert.equal(throttle(key), false);
  assert.equal(throttle("unknown_type"), true, "another key");
  clock.tick(9_999);
  assert.equal(throttle(key), false);
  clock.tick(1);
  assert.equal(throttle(key), true);
});

Deno.test("sameFrame() compares text with text and bytes with bytes", () => {
  const bytes = (s: string) => new TextEncoder().encode(s).buffer as ArrayBuffer;
  assert.ok(sameFrame("a", "a"));
  assert.ok(!sameFrame("a", "b"));
  assert.ok(!sameFrame("a", bytes("a")), "text and bytes differ");
  assert.ok(sameFrame(bytes("abc"), bytes("abc")));
  assert.ok(!sameFrame(bytes("abc"), bytes("abd")));
  assert.ok(!sameFrame(bytes("abc"), bytes("ab")));
});
