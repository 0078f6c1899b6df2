import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { createHash } from "node:crypto";
import { FakeClock } from "../shared/clock.ts";
import { loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import {
  acceptedSymbols,
  createProducer,
  type ProducerOptions,
  SMOKE_NAMESPACE,
} from "./producer.ts";
import { memoryWire } from "../shared/memory_registry.ts";
import { SinkStoppedError } from "./kafka_sink.ts";
import { FakeProducer, FakeSocket } from "./test_doubles.ts";
import type { CoverageStore } from "./coverage_store.ts";
import type { CoverageMark } from "./feed_gaps.ts";

const wire = await memoryWire();
const decode: typeof wire.decode = (name, message) => wire.decode(name, message);

function setup(overrides: Partial<ProducerOptions> = {}, env: Record<string, string> = {}) {
  const config = loadConfig({
    FINNHUB_WS_URL: "ws://feed.test",
    FINNHUB_API_KEY: "k3y-secret",
    FINNHUB_SYMBOLS: "AAPL,BINANCE:BTCUSDT",
    KAFKA_TOPIC_RAW: "raw",
    KAFKA_TOPIC_DEAD_LETTER: "dlq",
    ...env,
  });
  const clock = new FakeClock();
  const kafkaProducer = new FakeProducer();
  const sockets: FakeSocket[] = [];
  const lines: string[] = [];
  const controller = new AbortController();
  const producer = createProducer({
    config,
    // On a fake kafkajs client.
    kafka: { producer: () => kafkaProducer } as unknown as Kafka,
    log: createLogger("test", { write: (line) => lines.push(line) }),
    signal: controller.signal,
    wire,
    runId: "feedc0de",
    clock,
    statsIntervalMs: 0,
    webSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    ...overrides,
  });
  const running = producer.run();
  return { clock, kafkaProducer, sockets, lines, controller, producer, running };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

async function opened(t: ReturnType<typeof setup>): Promise<FakeSocket> {
  await settle();
  const socket = t.sockets[0]!;
  socket.accept();
  return socket;
}

async function stop(t: ReturnType<typeof setup>) {
  t.controller.abort();
  t.sockets[t.sockets.length - 1]?.finishClose();
  return await t.running;
}

function raw(t: ReturnType<typeof setup>) {
  return t.kafkaProducer.sends.filter((s) => s.topic === "raw").flatMap((s) => s.messages);
}

function deadLetters(t: ReturnType<typeof setup>) {
  return t.kafkaProducer.sends.filter((s) => s.topic === "dlq").flatMap((s) =>
    s.messages.map((m) => ({
      key: m.key === null || m.key === undefined ? null : String(m.key),
      ...decode("DeadLetter", m.value as Uint8Array),
    }))
  );
}

Deno.test("the producer sends one Avro Trade per trade, keyed by symbol, with ingest time and frame position", async () => {
  const t = setup();
  const socket = await opened(t);
  socket.message('{"type":"ping"}');
  socket.message(JSON.stringify({
    type: "trade",
    data: [
      { s: "AAPL", p: 129.58, t: 1672348887666, v: 1, c: ["1", "12"] },
      { s: "BINANCE:BTCUSDT", p: 7296.89, t: 1575526691134, v: 0.011467, c: null },
      { s: "AAPL", p: 129.5, t: 1672348887667, v: 3 },
    ],
  }));
  const report = await stop(t);
  const messages = raw(t);
  assert.deepEqual(messages.map((m) => String(m.key)), ["AAPL", "BINANCE:BTCUSDT", "AAPL"]);
  assert.equal(messages[0]!.key, messages[2]!.key, "one key Buffer per symbol, reused");
  const now = t.clock.now();
  assert.ok(messages.every((m) => m.timestamp === String(now)));
  assert.deepEqual({ ...decode("Trade", messages[1]!.value as Uint8Array) }, {
    s: "BINANCE:BTCUSDT",
    p: 7296.89,
    t: 1575526691134,
    v: 0.011467,
    c: null,
    ingestTime: now,
    connectionId: "feedc0de-1",
    frameSeq: 2,
    tradeIndex: 1,
  });
  assert.equal(decode("Trade", messages[2]!.value as Uint8Array).c, "ABSENT");
  assert.equal(report.unflushed, 0);
  assert.equal(report.metrics.tradesReceived, 3);
  assert.equal(report.metrics.tradesProduced, 3);
  assert.equal(report.metrics.framesReceived, 2);
  assert.equal(report.metrics.pings, 1);
});

Deno.test("the producer keeps identical prints and a frame delivered twice, counting the suspected duplicate", async () => {
  const t = setup();
  const socket = await opened(t);
  const frame =
    '{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1},{"s":"AAPL","p":1,"t":1,"v":1}]}';
  socket.message(frame);
  socket.message(frame);
  socket.message('{"type":"ping"}');
  socket.message(frame);
  const report = await stop(t);
  assert.equal(raw(t).length, 6, "every trade delivered is forwarded");
  assert.equal(report.metrics.feedDuplicateFramesSuspected, 1);
});

Deno.test("the producer dead-letters a bad trade alone and invalid frames whole, and keeps running", async () => {
  const t = setup();
  const socket = await opened(t);
  socket.message(
    '{"type":"trade","data":[{"s":"AAPL","p":"1.5","t":1,"v":1},{"s":"AAPL","p":2,"t":2,"v":1}]}',
  );
  socket.message("{not json");
  socket.message("[]");
  socket.message("x".repeat(600_000));
  socket.message('{"type":"trade","data":[{"s":"AAPL","p":3,"t":3,"v":1}]}');
  const report = await stop(t);
  assert.deepEqual(raw(t).map((m) => decode("Trade", m.value as Uint8Array).p), [2, 3]);
  const letters = deadLetters(t);
  assert.deepEqual(letters.map((l) => [l.key, l.reasonCode, l.source]), [
    ["AAPL", "bad_trade_shape", "producer"],
    [null, "invalid_json", "producer"],
    [null, "bad_frame_shape", "producer"],
    [null, "invalid_json", "producer"],
  ]);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(letters[0]!.payload)), {
    s: "AAPL",
    p: "1.5",
    t: 1,
    v: 1,
  });
  assert.match(
    letters[0]!.reason,
    /trade 0: field 'p' must be a number, got string "1.5" \(connection feedc0de-1, frame 1\)/,
  );
  assert.equal(new TextDecoder().decode(letters[1]!.payload), "{not json");
  assert.equal(letters[1]!.originalSize, null, "whole: nothing to mark");
  assert.equal(letters[1]!.originalSha256, null);
  assert.equal(letters[3]!.payload.length, 512 * 1024, "too large for a record: an excerpt");
  assert.equal(letters[3]!.originalSize, 600_000);
  assert.equal(
    letters[3]!.originalSha256,
    createHash("sha256").update("x".repeat(600_000)).digest("hex"),
  );
  assert.match(letters[3]!.reason, /\[payload: the first 524288 of 600000 bytes\]$/);
  assert.equal(report.metrics.tradesRejected, 1);
  assert.equal(report.metrics.invalidFrames, 3);
  assert.equal(report.metrics.deadLettersProduced, 4);
  assert.equal(report.metrics.deadLettersTruncated, 1);
});

Deno.test("the producer dead-letters trades of symbols it did not subscribe to and forwards the rest of the frame", async () => {
  const t = setup();
  const socket = await opened(t);
  socket.message(JSON.stringify({
    type: "trade",
    data: [
      { s: "AAPL", p: 1, t: 1, v: 1 },
      { s: "MSFT", p: 2, t: 2, v: 1 },
      { s: "aapl", p: 3, t: 3, v: 1 },
      { s: "BINANCE:BTCUSDT", p: 4, t: 4, v: 1 },
    ],
  }));
  // A flood of distinct, well-formed symbols: none of them may reach the sink.
  for (let n = 0; n < 9; n++) {
    socket.message(JSON.stringify({
      type: "trade",
      data: Array.from({ length: 100 }, (_, i) => ({ s: `Z${n * 100 + i}`, p: 1, t: i, v: 1 })),
    }));
  }
  const report = await stop(t);
  assert.deepEqual(raw(t).map((m) => String(m.key)), ["AAPL", "BINANCE:BTCUSDT"]);
  const letters = deadLetters(t);
  assert.equal(letters.length, 2 + 900);
  assert.ok(letters.every((l) => l.reasonCode === "unsubscribed_symbol"));
  assert.deepEqual(letters.slice(0, 2).map((l) => [l.key, new TextDecoder().decode(l.payload)]), [
    ["MSFT", '{"s":"MSFT","p":2,"t":2,"v":1}'],
    ["aapl", '{"s":"aapl","p":3,"t":3,"v":1}'],
  ]);
  assert.match(letters[0]!.reason, /symbol string "MSFT" was not subscribed/);
  assert.equal(report.metrics.tradesReceived, 2);
  assert.equal(report.metrics.tradesUnsubscribed, 902);
  assert.equal(report.metrics.tradesRejected, 902);
  const warnings = t.lines.filter((l) => l.includes("sent input to the dead-letter topic"));
  assert.equal(warnings.length, 1, "the warning is throttled by reason code");
});

Deno.test("the producer keeps a refused trade's text exactly as sent and refuses a time no double holds", async () => {
  const t = setup();
  const socket = await opened(t);
  const exact = '{"s":"AAPL","p":1,"t":9007199254740993,"v":1}';
  socket.message(`{"type":"trade","data":[${exact},{"s":"AAPL","p":2,"t":2,"v":1.0}]}`);
  const report = await stop(t);
  assert.equal(raw(t).length, 1);
  const [letter] = deadLetters(t);
  assert.equal(letter!.reasonCode, "inexact_integer");
  assert.equal(new TextDecoder().decode(letter!.payload), exact, "not re-serialised as ...992");
  assert.equal(report.metrics.tradesRejected, 1);
});

Deno.test("the producer forwards every trade of a frame over 512 KiB and refuses one over 4 MiB with an excerpt, its size and hash", async () => {
  const t = setup({}, { PRODUCER_BUFFER_MAX_TRADES: "100000" });
  const socket = await opened(t);
  const frame = (count: number) =>
    JSON.stringify({
      type: "trade",
      data: Array.from(
        { length: count },
        (_, i) => ({ s: "AAPL", p: 1 + i, t: i, v: 1, c: ["1"] }),
      ),
    });
  const big = frame(25_000);
  assert.ok(big.length > 1024 * 1024, `${big.length}`);
  socket.message(big);
  const huge = frame(90_000);
  assert.ok(huge.length > 4 * 1024 * 1024);
  socket.message(huge);
  const report = await stop(t);
  assert.equal(raw(t).length, 25_000, "the large frame's trades all forwarded");
  const [letter] = deadLetters(t);
  assert.equal(letter!.reasonCode, "frame_too_large");
  assert.equal(letter!.originalSize, huge.length);
  assert.equal(letter!.originalSha256, createHash("sha256").update(huge).digest("hex"));
  assert.deepEqual(
    new TextDecoder().decode(letter!.payload),
    huge.slice(0, 512 * 1024),
    "the excerpt is the frame's first bytes",
  );
  assert.match(letter!.reason, /frame is \d+ bytes, more than the 4194304-byte limit/);
  assert.equal(report.metrics.invalidFrames, 1);
  assert.equal(report.metrics.deadLettersTruncated, 1);
});

Deno.test("the producer dead-letters a binary frame that is not UTF-8 with its bytes, and counts a frame the socket refused", async () => {
  const t = setup();
  const socket = await opened(t);
  const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x00, 0x7d]);
  socket.onmessage?.(new MessageEvent("message", { data: bytes.slice().buffer }));
  socket.onerror?.(new ErrorEvent("error", { message: "Invalid UTF-8" }));
  socket.finishClose(1007);
  await settle();
  const report = await stop(t);
  const letters = deadLetters(t);
  assert.deepEqual(letters.map((l) => l.reasonCode), ["invalid_json", "frame_unreadable"]);
  assert.deepEqual([...letters[0]!.payload], [...bytes]);
  assert.equal(letters[1]!.payload.length, 0);
  assert.match(
    letters[1]!.reason,
    /refused this frame before the producer could read it \(Invalid UTF-8: .*connection feedc0de-1, frame 2\)/,
  );
  assert.equal(report.metrics.framesUnreadable, 1);
  assert.equal(report.metrics.framesReceived, 2);
});

Deno.test("the producer refuses a frame with a key twice instead of picking one", async () => {
  const t = setup();
  const socket = await opened(t);
  socket.message('{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1}],"type":"ping"}');
  const report = await stop(t);
  assert.equal(report.metrics.pings, 0);
  assert.equal(raw(t).length, 0);
  assert.deepEqual(deadLetters(t).map((l) => l.reasonCode), ["bad_frame_shape"]);
});

Deno.test("the producer counts errors and unknown types and surfaces 'too many symbols' loudly", async () => {
  const t = setup();
  const socket = await opened(t);
  socket.message('{"type":"error","msg":"Subscribing to too many symbols"}');
  socket.message('{"type":"error","msg":"Something else"}');
  socket.message('{"type":"news"}');
  socket.message('{"type":"news"}');
  for (let i = 0; i < 1_000; i++) socket.message(`{"type":"t${i}"}`);
  const report = await stop(t);
  assert.equal(report.metrics.errorFrames, 2);
  assert.equal(report.metrics.tooManySymbolsErrors, 1);
  assert.equal(report.metrics.unknownFrames, 1_002);
  assert.equal(report.metrics.lastError, "feed: Something else");
  const loud = t.lines.find((l) =>
    l.includes("TOO MANY SYMBOLS") || l.includes("too many symbols")
  );
  assert.ok(loud?.includes("ERROR") && loud.includes("symbolLimit=50"), t.lines.join("\n"));
  assert.equal(
    t.lines.filter((l) => l.includes("unknown type")).length,
    1,
    "logged once per 10 s, whatever the type: nothing remembers the types",
  );
  assert.ok(t.lines.every((l) => !l.includes("k3y-secret")));
});

Deno.test("the producer flushes every trade accepted before the signal, then disconnects", async () => {
  const t = setup({}, { PRODUCER_BATCH_MAX_TRADES: "1000" });
  const socket = await opened(t);
  for (let i = 0; i < 250; i++) {
    socket.message(JSON.stringify({ type: "trade", data: [{ s: "AAPL", p: i, t: i, v: 1 }] }));
  }
  t.controller.abort();
  socket.message('{"type":"trade","data":[{"s":"AAPL","p":-1,"t":1,"v":1}]}');
  socket.finishClose();
  const report = await t.running;
  assert.equal(raw(t).length, 250, "every accepted trade flushed");
  assert.equal(report.metrics.tradesReceived, 250, "nothing read after the signal");
  assert.equal(report.unflushed, 0);
  assert.equal(t.kafkaProducer.connected, false);
});

Deno.test("the producer gives up flushing after the shutdown timeout when Kafka hangs, and says how much", async () => {
  const t = setup({ shutdownTimeoutMs: 3_000 });
  const socket = await opened(t);
  t.kafkaProducer.hang = true;
  socket.message(
    '{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1},{"s":"AAPL","p":1,"t":2,"v":1}]}',
  );
  await settle();
  t.controller.abort();
  socket.finishClose();
  await settle();
  t.clock.tick(3_000);
  await settle();
  t.clock.tick(5_000);
  const report = await t.running;
  assert.equal(report.unflushed, 2);
  assert.equal(report.metrics.tradesFailed, 2);
  assert.ok(
    t.lines.some((l) => l.includes("shutdown gave up flushing") && l.includes("unflushed=2")),
  );
});

Deno.test("the producer stops reading and fails when its Kafka sink fails for good", async () => {
  const t = setup();
  t.kafkaProducer.failures.push(
    new SinkStoppedError("Kafka refused the transaction: this producer was fenced", {
      fenced: true,
    }),
  );
  const socket = await opened(t);
  socket.message('{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1}]}');
  await settle();
  assert.deepEqual(socket.closedBy, { code: 1000, reason: "producer shutting down" });
  socket.finishClose();
  await assert.rejects(t.running, (error: Error) => {
    assert.match(error.message, /its Kafka sink failed/);
    assert.match(
      String((error.cause as Error).message),
      /this producer was fenced/,
    );
    return true;
  });
  assert.equal(
    t.producer.metrics.tradesFailed,
    1,
    "the trade the sink could not send is counted",
  );
  assert.ok(t.lines.some((l) => l.includes("the Kafka sink failed") && l.includes("unflushed=1")));
});

Deno.test("acceptedSymbols() takes the smoke namespace only from a feed without a Finnhub key", () => {
  const keyless = acceptedSymbols(["AAPL"], false);
  assert.ok(keyless.has("AAPL"));
  assert.ok(keyless.has(`${SMOKE_NAMESPACE}RX1`));
  assert.ok(!keyless.has("MSFT"));
  assert.ok(!keyless.has("SMOKE"));
  assert.equal(keyless.size, 1);
  const keyed = acceptedSymbols(["AAPL"], true);
  assert.ok(keyed.has("AAPL"));
  assert.ok(!keyed.has(`${SMOKE_NAMESPACE}RX1`), "never from Finnhub itself");
});

function gaps(t: ReturnType<typeof setup>) {
  return t.kafkaProducer.sends.filter((s) => s.topic === "gaps").flatMap((s) =>
    s.messages.map((m) => ({ key: String(m.key), ...decode("FeedGap", m.value as Uint8Array) }))
  );
}

/** A coverage store in memory: the marks written, and the one a start reads. */
function memoryStore(previous: CoverageMark | null = null) {
  const written: { mark: CoverageMark; at: number }[] = [];
  const store: CoverageStore = {
    read: () => Promise.resolve(previous),
    write(mark, at) {
      written.push({ mark, at });
      return Promise.resolve();
    },
  };
  return { store, written };
}

const GAP_ENV = { KAFKA_TOPIC_GAPS: "gaps", FINNHUB_RECONNECT_BASE_MS: "100" };
const BOTH = ["AAPL", "BINANCE:BTCUSDT"];

Deno.test("the producer publishes a reconnect gap from the close to the next subscription, keyed by its id", async () => {
  const t = setup({ feedId: "f1" }, GAP_ENV);
  const first = await opened(t);
  t.clock.tick(5_000);
  const closedAt = t.clock.now();
  first.finishClose(1006);
  t.clock.tick(1_000); // the backoff
  await settle();
  t.clock.tick(37);
  t.sockets[1]!.accept();
  const subscribedAt = t.clock.now();
  await stop(t);
  const [gap, ...more] = gaps(t);
  assert.equal(more.length, 0);
  assert.deepEqual(gap, {
    key: `f1:reconnect:${closedAt}`,
    gapId: `f1:reconnect:${closedAt}`,
    fromMs: closedAt,
    toMs: subscribedAt,
    symbols: BOTH,
    cause: "reconnect",
    connectionId: "feedc0de-2",
    detectedAtMs: subscribedAt,
  });
  const m = t.producer.metrics.snapshot();
  assert.equal(m.feedGaps.reconnect, 1);
  assert.equal(m.feedGapMs.reconnect, subscribedAt - closedAt);
  assert.equal(m.feedGapsPublished, 1);
});

Deno.test("the producer publishes a watchdog gap from the last frame; a clean run publishes none", async () => {
  const t = setup({ feedId: "f1" }, { ...GAP_ENV, FINNHUB_WATCHDOG_MS: "3000" });
  const first = await opened(t);
  t.clock.tick(1_000);
  first.message('{"type":"ping"}');
  const lastFrame = t.clock.now();
  t.clock.tick(3_000); // the watchdog closes the socket
  first.finishClose(4000);
  t.clock.tick(1_000);
  await settle();
  t.sockets[1]!.accept();
  await stop(t);
  const [gap] = gaps(t);
  assert.deepEqual([gap!.cause, gap!.fromMs, gap!.toMs], ["watchdog", lastFrame, t.clock.now()]);

  const clean = setup({ feedId: "f1" }, GAP_ENV);
  const socket = await opened(clean);
  clean.clock.tick(10_000);
  socket.message('{"type":"ping"}');
  await stop(clean);
  assert.deepEqual(gaps(clean), []);
});

Deno.test("the producer's downtime since its last mark is a producer_down gap; it marks coverage as it runs and at shutdown", async () => {
  const { store, written } = memoryStore({ coveredUntilMs: 1_699_999_940_000, symbols: BOTH });
  const t = setup({ feedId: "f1", coverageStore: store, markIntervalMs: 1_000 }, GAP_ENV);
  await settle();
  t.clock.tick(500);
  t.sockets[0]!.accept();
  const subscribedAt = t.clock.now();
  await settle();
  t.clock.tick(500); // a mark on the timer, a second after the start
  await settle();
  t.clock.tick(1_000); // and another
  await settle();
  t.clock.tick(500);
  const stoppedAt = t.clock.now();
  await stop(t);
  assert.deepEqual(
    gaps(t).map((g) => [g.cause, g.fromMs, g.toMs, g.gapId]),
    [["producer_down", 1_699_999_940_000, subscribedAt, "f1:producer_down:1699999940000"]],
  );
  assert.deepEqual(written.map((w) => w.mark.coveredUntilMs), [
    subscribedAt, // at the subscription
    subscribedAt + 500,
    subscribedAt + 1_500,
    stoppedAt, // at shutdown
  ]);
  assert.deepEqual(written.at(-1)!.mark.symbols, BOTH);
});

Deno.test("a first start with no mark publishes no gap and marks nothing before it covers", async () => {
  const { store, written } = memoryStore(null);
  const t = setup({ feedId: "f1", coverageStore: store, markIntervalMs: 1_000 }, GAP_ENV);
  await settle();
  t.clock.tick(3_000); // slow dialling: nothing covered yet
  await settle();
  assert.deepEqual(written, []);
  t.sockets[0]!.accept();
  await stop(t);
  assert.deepEqual(gaps(t), []);
  assert.equal(written.length, 2);
});

Deno.test("trades dropped by a full buffer are a buffer_overflow gap over their receive times", async () => {
  const t = setup({ feedId: "f1" }, {
    ...GAP_ENV,
    PRODUCER_BUFFER_MAX_TRADES: "2",
    PRODUCER_BATCH_MAX_TRADES: "2",
  });
  const socket = await opened(t);
  const trade = (s: string) => ({ s, p: 1, t: 1, v: 1 });
  t.clock.tick(10);
  const dropsAt = t.clock.now();
  // One frame of four: two fit the buffer, two are dropped.
  socket.message(JSON.stringify({
    type: "trade",
    data: [trade("AAPL"), trade("AAPL"), trade("BINANCE:BTCUSDT"), trade("AAPL")],
  }));
  assert.equal(t.producer.metrics.tradesDropped, 2);
  await settle();
  t.clock.tick(5);
  socket.message(JSON.stringify({ type: "trade", data: [trade("AAPL")] })); // taken: episode ends
  await stop(t);
  assert.deepEqual(gaps(t).map((g) => ({ ...g, detectedAtMs: 0 })), [{
    key: `f1:buffer_overflow:${dropsAt}`,
    gapId: `f1:buffer_overflow:${dropsAt}`,
    fromMs: dropsAt,
    toMs: dropsAt + 1,
    symbols: ["AAPL", "BINANCE:BTCUSDT"],
    cause: "buffer_overflow",
    connectionId: "feedc0de-1",
    detectedAtMs: 0,
  }]);
  assert.equal(t.producer.metrics.feedGapMs.buffer_overflow, 1);
});
