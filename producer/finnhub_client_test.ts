import assert from "node:assert/strict";
import { FakeClock } from "../shared/clock.ts";
import { createLogger } from "../shared/log.ts";
import { Secret } from "../shared/secret.ts";
import {
  feedUrls,
  type FinnhubClientOptions,
  type FrameMeta,
  runFinnhubClient,
} from "./finnhub_client.ts";
import { createProducerMetrics } from "./metrics.ts";
import { FakeSocket } from "./test_doubles.ts";

const KEY = "sk-test-7f3a9c";

function setup(overrides: Partial<FinnhubClientOptions> = {}) {
  const clock = new FakeClock();
  const sockets: FakeSocket[] = [];
  const frames: { data: string; meta: FrameMeta }[] = [];
  const lines: string[] = [];
  const metrics = createProducerMetrics();
  const controller = new AbortController();
  const options: FinnhubClientOptions = {
    url: "wss://feed.example/?x=1",
    apiKey: new Secret(KEY),
    symbols: ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"],
    watchdogMs: 10_000,
    reconnectBaseMs: 500,
    reconnectMaxMs: 30_000,
    authBackoffMs: 60_000,
    // No secrets given to the logger: the client itself must keep the key out.
    log: createLogger("test", { level: "debug", write: (line) => lines.push(line) }),
    metrics,
    onFrame: (data, meta) => frames.push({ data: data as string, meta }),
    signal: controller.signal,
    runId: "abcd1234",
    clock,
    random: () => 0,
    webSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    ...overrides,
  };
  const done = runFinnhubClient(options);
  const last = () => sockets[sockets.length - 1]!;
  const alive = () => sockets.filter((s) => s.alive).length;
  /** Aborts, lets the last socket finish its close, and waits until the client has ended. */
  const stop = async () => {
    controller.abort();
    last().finishClose();
    await done;
  };
  return { clock, sockets, frames, lines, metrics, controller, done, last, alive, stop };
}

Deno.test("the client dials with the token but never logs it", () => {
  const { dial, display } = feedUrls("wss://ws.finnhub.io", new Secret(KEY));
  assert.equal(dial, `wss://ws.finnhub.io/?token=${KEY}`);
  assert.equal(display, "wss://ws.finnhub.io/");
  assert.equal(feedUrls("ws://127.0.0.1:1/", new Secret("")).dial, "ws://127.0.0.1:1/");
});

Deno.test("the client subscribes every symbol on open and numbers frames from 1", async () => {
  const t = setup();
  assert.equal(t.sockets.length, 1);
  assert.equal(t.last().url, `wss://feed.example/?x=1&token=${KEY}`);
  assert.equal(t.last().binaryType, "arraybuffer");
  t.last().accept();
  assert.deepEqual(t.last().subscribed(), ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]);
  t.last().message('{"type":"ping"}');
  t.last().message('{"type":"trade","data":[]}');
  assert.deepEqual(t.frames.map((f) => [f.meta.connectionId, f.meta.frameSeq]), [
    ["abcd1234-1", 1],
    ["abcd1234-1", 2],
  ]);
  assert.equal(t.metrics.connectionState, "open");
  assert.equal(t.metrics.lastFrameTime, t.clock.now());
  await t.stop();
  assert.ok(t.lines.every((line) => !line.includes(KEY)), t.lines.join("\n"));
});

Deno.test("the client reconnects after the server closes, resubscribes everything and restarts frame numbers", async () => {
  const t = setup();
  t.last().accept();
  t.last().message('{"type":"ping"}');
  t.last().finishClose(1001, "going away");
  assert.equal(t.metrics.connectionState, "backoff");
  assert.equal(t.sockets.length, 1);
  t.clock.tick(249);
  assert.equal(t.sockets.length, 1, "waits the backoff");
  t.clock.tick(1);
  assert.equal(t.sockets.length, 2);
  t.last().accept();
  assert.deepEqual(t.last().subscribed(), ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]);
  t.last().message('{"type":"ping"}');
  assert.deepEqual(t.frames.map((f) => [f.meta.connectionId, f.meta.frameSeq]), [
    ["abcd1234-1", 1],
    ["abcd1234-2", 1],
  ]);
  assert.equal(t.metrics.reconnects, 1);
  assert.equal(t.metrics.connectionsOpened, 2);
  await t.stop();
});

/** Closes the last socket with `code` and ticks 1 ms at a time until the next one is dialled. */
function waitForNextDial(t: ReturnType<typeof setup>, code = 1006): number {
  const before = t.sockets.length;
  t.last().finishClose(code);
  let waited = 0;
  while (t.sockets.length === before) {
    t.clock.tick(1);
    waited++;
  }
  return waited;
}

Deno.test("the client backs off exponentially with a cap while it cannot connect", async () => {
  const t = setup({ reconnectMaxMs: 4_000 });
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) waits.push(waitForNextDial(t));
  assert.deepEqual(waits, [250, 500, 1000, 2000, 2000, 2000]);
  await t.stop();
});

Deno.test("a feed that sends a frame and drops, again and again, meets growing delays up to the cap", async () => {
  const t = setup({ reconnectMaxMs: 4_000 });
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    t.last().accept();
    t.last().message('{"type":"ping"}');
    t.clock.tick(100);
    t.last().message('{"type":"trade","data":[]}');
    waits.push(waitForNextDial(t, 1001));
  }
  assert.deepEqual(waits, [250, 500, 1000, 2000, 2000, 2000], "a frame alone resets nothing");
  assert.equal(t.metrics.reconnects, 6);
  await t.stop();
});

Deno.test("the backoff starts over once a connection delivered a frame after being open 2 s", async () => {
  const t = setup({ reconnectMaxMs: 4_000 });
  for (let i = 0; i < 4; i++) waitForNextDial(t);
  t.last().accept();
  t.last().message('{"type":"ping"}');
  t.clock.tick(1_999);
  t.last().message('{"type":"ping"}');
  assert.equal(waitForNextDial(t, 1001), 2000, "open 1 999 ms is not yet healthy");
  t.last().accept();
  t.clock.tick(5_000);
  assert.equal(waitForNextDial(t, 1001), 2000, "open 5 s but silent is not healthy");
  t.last().accept();
  t.clock.tick(2_000);
  t.last().message('{"type":"ping"}');
  assert.equal(waitForNextDial(t, 1001), 250, "a frame after 2 s open resets the backoff");
  assert.equal(waitForNextDial(t), 500, "and it grows again from the start");
  await t.stop();
});

Deno.test("the client reports a frame the WebSocket layer refused, numbered as a frame, then reconnects", async () => {
  const refused: { error: string; meta: FrameMeta }[] = [];
  const t = setup({ onUnreadableFrame: (error, meta) => refused.push({ error, meta }) });
  t.last().onerror?.(new ErrorEvent("error", { message: "Invalid UTF-8" }));
  assert.equal(refused.length, 0, "not before the connection opened");
  t.last().finishClose(1006);
  t.clock.tick(250);
  t.last().accept();
  t.last().message('{"type":"ping"}');
  t.last().onerror?.(new ErrorEvent("error", { message: "Frame too large" }));
  t.last().finishClose(1009);
  assert.deepEqual(refused, [{
    error: "Frame too large",
    meta: { connectionId: "abcd1234-1", frameSeq: 2, receivedAt: t.clock.now() },
  }]);
  assert.ok(t.lines.some((l) => l.includes("refused a frame") && l.includes("frameSeq=2")));
  t.last().onerror?.(new ErrorEvent("error", { message: "Connection reset by peer" }));
  assert.equal(refused.length, 1, "other errors are no frame");
  t.clock.tick(500);
  assert.equal(t.sockets.length, 3);
  await t.stop();
});

Deno.test("the watchdog replaces a silent connection, and only after the old one closed", async () => {
  const t = setup();
  t.last().accept();
  t.clock.tick(9_000);
  t.last().message('{"type":"ping"}');
  t.clock.tick(9_999);
  assert.equal(t.last().closedBy, null, "a ping resets the watchdog");
  t.clock.tick(1);
  assert.deepEqual(t.last().closedBy, { code: 4000, reason: "watchdog: feed silent" });
  assert.equal(t.metrics.watchdogTimeouts, 1);
  t.clock.tick(3_000);
  assert.equal(t.sockets.length, 1, "no second socket while the first is still closing");
  t.last().finishClose(4000);
  t.clock.tick(250);
  assert.equal(t.sockets.length, 2);
  assert.ok(t.sockets.every((s, i) => i === t.sockets.length - 1 || !s.alive));
  await t.stop();
});

Deno.test("the watchdog gives up waiting for a dead socket to close after the close timeout", async () => {
  const t = setup({ closeTimeoutMs: 5_000 });
  t.last().accept();
  t.clock.tick(10_000);
  assert.ok(t.last().closedBy);
  t.clock.tick(4_999);
  assert.equal(t.sockets.length, 1);
  t.clock.tick(1 + 250);
  assert.equal(t.sockets.length, 2);
  t.sockets[0]!.finishClose();
  assert.equal(
    t.metrics.connectionState,
    "connecting",
    "a late close of the old socket is ignored",
  );
  await t.stop();
});

Deno.test("a handshake refused with 401 backs off hard and says why", async () => {
  const t = setup();
  t.last().refuse(401);
  assert.equal(t.metrics.handshakeRefusals, 1);
  assert.match(t.metrics.lastError ?? "", /API key was refused \(HTTP 401\)/);
  const line = t.lines.find((l) => l.includes("refused the handshake"));
  assert.ok(line?.includes("ERROR"), t.lines.join("\n"));
  assert.ok(line?.includes("retryInMs=60000"));
  t.clock.tick(59_999);
  assert.equal(t.sockets.length, 1);
  t.clock.tick(1);
  assert.equal(t.sockets.length, 2);
  t.last().refuse(429);
  assert.match(t.metrics.lastError ?? "", /rate limited \(HTTP 429\)/);
  t.clock.tick(119_999);
  assert.equal(t.sockets.length, 2, "a second refusal in a row waits twice as long");
  t.clock.tick(1);
  assert.equal(t.sockets.length, 3);
  await t.stop();
  assert.ok(t.lines.every((l) => !l.includes(KEY)));
});

Deno.test("a handshake that hangs is abandoned after the connect timeout", async () => {
  const t = setup({ connectTimeoutMs: 2_000 });
  t.clock.tick(2_000);
  assert.deepEqual(t.last().closedBy, { code: 4000, reason: "handshake timeout" });
  t.last().finishClose(1006);
  t.clock.tick(250);
  assert.equal(t.sockets.length, 2);
  await t.stop();
});

Deno.test("abort stops reading at once, closes the socket and resolves once it closed", async () => {
  const t = setup();
  t.last().accept();
  t.last().message('{"type":"ping"}');
  t.controller.abort();
  assert.deepEqual(t.last().closedBy, { code: 1000, reason: "producer shutting down" });
  t.last().message('{"type":"trade","data":[]}');
  assert.equal(t.frames.length, 1, "nothing is read after the signal");
  let resolved = false;
  t.done.then(() => resolved = true);
  await Promise.resolve();
  assert.equal(resolved, false);
  t.last().finishClose();
  await t.done;
  assert.equal(t.metrics.connectionState, "stopped");
  assert.equal(t.clock.pending, 0, "no timer left behind");
});

Deno.test("abort during backoff resolves without dialling again", async () => {
  const t = setup();
  t.last().finishClose(1006);
  t.controller.abort();
  await t.done;
  t.clock.tick(60_000);
  assert.equal(t.sockets.length, 1);
  assert.equal(t.clock.pending, 0);
});

/** A coverage listener that records what it is told, with the times. */
function coverageLog() {
  const events: string[] = [];
  const coverage = {
    subscribed: (id: string, symbols: readonly string[], at: number) =>
      events.push(`subscribed ${id} ${symbols.length} @${at}`),
    lost: (cause: string, at: number) => events.push(`lost ${cause} @${at}`),
    refused: () => events.push("refused"),
  };
  return { events, coverage };
}

Deno.test("the client tells the coverage listener when a connection subscribed, ended and why, and of refusals", async () => {
  const { events, coverage } = coverageLog();
  const t = setup({ coverage });
  const t0 = t.clock.now();
  t.last().refuse(429); // never subscribed: no loss
  t.clock.tick(60_000);
  t.last().accept();
  t.clock.tick(1_000);
  t.last().finishClose(1006); // the feed closed it: lost at the close
  t.clock.tick(250);
  t.last().accept();
  t.clock.tick(2_000);
  t.last().message('{"type":"ping"}');
  t.clock.tick(10_000); // the watchdog: lost at the last frame
  t.clock.tick(500);
  t.last().finishClose(4000);
  t.clock.tick(250);
  t.last().accept();
  await t.stop(); // a shutdown is not a loss: the producer marks it itself
  assert.deepEqual(events, [
    "refused",
    `subscribed abcd1234-1 3 @${t0 + 60_000}`,
    `lost reconnect @${t0 + 61_000}`,
    `subscribed abcd1234-2 3 @${t0 + 61_250}`,
    `lost watchdog @${t0 + 63_250}`,
    `subscribed abcd1234-3 3 @${t0 + 74_000}`,
  ]);
});

Deno.test("a socket closed after a frame the WebSocket layer refused is a reconnect loss at its close", async () => {
  const { events, coverage } = coverageLog();
  const t = setup({ coverage, closeTimeoutMs: 5_000 });
  const t0 = t.clock.now();
  t.last().accept();
  t.last().onerror?.(new ErrorEvent("error", { message: "invalid utf-8 sequence" }));
  // The layer refused a frame: Deno closes the socket; the close arrives a little later.
  t.last().close(1007, "unreadable");
  t.clock.tick(40);
  t.last().finishClose(1007);
  await t.stop();
  assert.deepEqual(events, [`subscribed abcd1234-1 3 @${t0}`, `lost reconnect @${t0 + 40}`]);
});
