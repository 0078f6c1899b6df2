import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { decode } from "../shared/avro.ts";
import { FakeClock } from "../shared/clock.ts";
import { loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { createProducer, type ProducerOptions } from "./producer.ts";
import { FakeProducer, FakeSocket, FakeWorker } from "./test_doubles.ts";

function setup(overrides: Partial<ProducerOptions> = {}, env: Record<string, string> = {}) {
  const { worker, ...rest } = overrides;
  const config = loadConfig({
    FINNHUB_WS_URL: "ws://feed.test",
    FINNHUB_API_KEY: "k3y-secret",
    FINNHUB_SYMBOLS: "AAPL,BINANCE:BTCUSDT",
    PRODUCER_LINGER_MS: "0",
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
    // In this thread on a fake kafkajs client, unless the test gives a (fake) worker.
    ...(worker ? { worker } : { kafka: { producer: () => kafkaProducer } as unknown as Kafka }),
    log: createLogger("test", { write: (line) => lines.push(line) }),
    signal: controller.signal,
    runId: "feedc0de",
    clock,
    statsIntervalMs: 0,
    webSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    ...rest,
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
  socket.message('{"type":"trade","data":[{"s":"MSFT","p":3,"t":3,"v":1}]}');
  const report = await stop(t);
  assert.deepEqual(raw(t).map((m) => decode("Trade", m.value as Uint8Array).p), [2, 3]);
  const letters = deadLetters(t);
  assert.deepEqual(letters.map((l) => [l.key, l.reasonCode, l.source]), [
    ["AAPL", "bad_trade_shape", "producer"],
    [null, "invalid_json", "producer"],
    [null, "bad_frame_shape", "producer"],
    [null, "frame_too_large", "producer"],
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
  assert.equal(letters[3]!.payload.length, 512 * 1024);
  assert.equal(report.metrics.tradesRejected, 1);
  assert.equal(report.metrics.invalidFrames, 3);
  assert.equal(report.metrics.deadLettersProduced, 4);
});

Deno.test("the producer counts errors and unknown types and surfaces 'too many symbols' loudly", async () => {
  const t = setup();
  const socket = await opened(t);
  socket.message('{"type":"error","msg":"Subscribing to too many symbols"}');
  socket.message('{"type":"error","msg":"Something else"}');
  socket.message('{"type":"news"}');
  socket.message('{"type":"news"}');
  const report = await stop(t);
  assert.equal(report.metrics.errorFrames, 2);
  assert.equal(report.metrics.tooManySymbolsErrors, 1);
  assert.equal(report.metrics.unknownFrames, 2);
  assert.equal(report.metrics.lastError, "feed: Something else");
  const loud = t.lines.find((l) =>
    l.includes("TOO MANY SYMBOLS") || l.includes("too many symbols")
  );
  assert.ok(loud?.includes("ERROR") && loud.includes("symbolLimit=50"), t.lines.join("\n"));
  assert.equal(t.lines.filter((l) => l.includes("unknown type")).length, 1, "logged once per type");
  assert.ok(t.lines.every((l) => !l.includes("k3y-secret")));
});

Deno.test("the producer flushes every trade accepted before the signal, then disconnects", async () => {
  const t = setup({}, { PRODUCER_LINGER_MS: "1000", PRODUCER_BATCH_MAX_TRADES: "1000" });
  const socket = await opened(t);
  for (let i = 0; i < 250; i++) {
    socket.message(JSON.stringify({ type: "trade", data: [{ s: "AAPL", p: i, t: i, v: 1 }] }));
  }
  t.controller.abort();
  socket.message('{"type":"trade","data":[{"s":"AAPL","p":-1,"t":1,"v":1}]}');
  socket.finishClose();
  const report = await t.running;
  assert.equal(raw(t).length, 250, "flushed without waiting out the linger");
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

Deno.test("the producer stops reading and fails when its Kafka worker dies", async () => {
  const worker = new FakeWorker();
  const t = setup({ worker: () => worker, kafkaWorkers: 1 });
  await settle();
  worker.reply({ type: "ready", partitions: 6 });
  const socket = await opened(t);
  socket.message('{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1}]}');
  worker.onerror?.(new ErrorEvent("error", { message: "Uncaught out of memory" }));
  await settle();
  assert.deepEqual(socket.closedBy, { code: 1000, reason: "producer shutting down" });
  socket.finishClose();
  await assert.rejects(t.running, (error: Error) => {
    assert.match(error.message, /its Kafka sink failed/);
    assert.match(
      String((error.cause as Error).message),
      /Kafka worker 0 failed: Uncaught out of memory/,
    );
    return true;
  });
  assert.equal(
    t.producer.metrics.tradesFailed,
    1,
    "the trade handed to the dead worker is counted",
  );
  assert.ok(t.lines.some((l) => l.includes("the Kafka sink failed") && l.includes("unflushed=1")));
});
