import assert from "node:assert/strict";
import { parseFrame } from "../producer/frame_parser.ts";
import { hostileFrames, MALFORMED_FRAMES } from "./faults.ts";
import { readGroundTruth, tradeEntries } from "./ground_truth.ts";
import { parseReplay } from "./replay.ts";
import { type SimulatorOptions, startSimulator, TOO_MANY_SYMBOLS } from "./server.ts";
import { waitFor } from "../tests/helpers.ts";

/** Local sockets answer in milliseconds: poll often, give up after 10 s. */
const FAST = { timeoutMs: 10_000, intervalMs: 5 };

interface Client {
  readonly socket: WebSocket;
  readonly frames: (string | ArrayBuffer)[];
  readonly closed: Promise<CloseEvent>;
  readonly failure: Promise<string>;
  texts(): string[];
}

function connect(url: string, symbols: readonly string[], token = "t0k3n"): Client {
  const socket = new WebSocket(`${url}?token=${token}`);
  socket.binaryType = "arraybuffer";
  const frames: (string | ArrayBuffer)[] = [];
  let failed: (message: string) => void = () => {};
  const failure = new Promise<string>((resolve) => failed = resolve);
  socket.onopen = () => {
    for (const symbol of symbols) socket.send(JSON.stringify({ type: "subscribe", symbol }));
  };
  socket.onmessage = (event) => frames.push(event.data);
  socket.onerror = (event) => failed((event as ErrorEvent).message);
  const closed = new Promise<CloseEvent>((resolve) => socket.addEventListener("close", resolve));
  return {
    socket,
    frames,
    closed,
    failure,
    texts: () => frames.filter((f): f is string => typeof f === "string"),
  };
}

async function withSimulator(
  options: SimulatorOptions,
  body: (sim: Awaited<ReturnType<typeof startSimulator>>) => Promise<void>,
): Promise<void> {
  const sim = await startSimulator(options);
  try {
    await body(sim);
  } finally {
    await sim.close();
  }
}

/** Runs `body` with the path of a ground-truth log in a temporary directory, removed after. */
async function withTruthFile(body: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await body(`${dir}/truth.ndjson`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function closeClient(client: Client): Promise<void> {
  if (
    client.socket.readyState === WebSocket.OPEN || client.socket.readyState === WebSocket.CONNECTING
  ) {
    client.socket.close();
  }
  await client.closed;
}

function tradesOf(texts: readonly string[]): { s: string }[] {
  return texts.map((t) => JSON.parse(t)).filter((f) => f.type === "trade").flatMap((f) => f.data);
}

Deno.test("the simulator streams trades of subscribed symbols only, in Finnhub's frame shape, with pings", async () => {
  await withSimulator({ rate: 5_000, maxTrades: 2_000, pingIntervalMs: 20 }, async (sim) => {
    const client = connect(sim.url, ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]);
    await waitFor("2000 trades", () => tradesOf(client.texts()).length === 2_000, FAST);
    await waitFor("a ping", () => client.texts().includes('{"type":"ping"}'), FAST);
    const symbols = new Set(tradesOf(client.texts()).map((t) => t.s));
    assert.deepEqual([...symbols].sort(), ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]);
    const subscribed = new Set(["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]);
    for (const text of client.texts()) {
      const frame = parseFrame(text, { subscribed });
      assert.ok(frame.kind === "trades" || frame.kind === "ping", text);
      if (frame.kind === "trades") {
        assert.equal(frame.rejected.length, 0);
        assert.ok(text.startsWith('{"data":[') && text.endsWith('],"type":"trade"}'));
      }
    }
    const stats = sim.stats();
    assert.equal(stats.tradesSent, 2_000);
    assert.equal(stats.generationDone, true);
    await closeClient(client);
  });
});

Deno.test("the simulator refuses an unknown token with 401 when tokens are configured", async () => {
  await withSimulator({ tokens: ["good"] }, async (sim) => {
    const bad = connect(sim.url, [], "bad");
    assert.match(await bad.failure, /401/);
    await bad.closed;
    const good = connect(sim.url, ["AAPL"], "good");
    await new Promise((resolve) => good.socket.addEventListener("open", resolve));
    await closeClient(good);
    assert.equal(sim.stats().handshakesRefused, 1);
  });
});

Deno.test("the simulator allows one connection per token: a second one drops both", async () => {
  await withSimulator({ rate: 0 }, async (sim) => {
    const first = connect(sim.url, ["AAPL"]);
    await new Promise((resolve) => first.socket.addEventListener("open", resolve));
    const second = connect(sim.url, ["AAPL"]);
    assert.match(await second.failure, /429/);
    assert.equal((await first.closed).code, 1008);
    assert.equal(sim.stats().duplicateConnectionAttempts, 1);
    assert.equal(sim.stats().peakConnectionsPerToken, 1);
    const other = connect(sim.url, ["AAPL"], "another-token");
    await new Promise((resolve) => other.socket.addEventListener("open", resolve));
    await closeClient(other);
  });
});

Deno.test("the simulator refuses subscriptions past the limit with Finnhub's own error", async () => {
  await withSimulator({ symbolLimit: 3, rate: 0 }, async (sim) => {
    const client = connect(sim.url, ["A", "B", "C", "D", "E"]);
    await waitFor("two error frames", () => client.texts().length === 2, FAST);
    assert.deepEqual(client.texts().map((t) => JSON.parse(t)), [
      { type: "error", msg: TOO_MANY_SYMBOLS },
      { type: "error", msg: TOO_MANY_SYMBOLS },
    ]);
    assert.equal(sim.stats().subscriptionsRefused, 2);
    assert.deepEqual(sim.stats().connections.map((c) => c.subscriptions), [3]);
    await closeClient(client);
  });
});

Deno.test("the ground-truth log holds every trade sent, numbered as the client saw it, a duplicated frame twice", () =>
  withTruthFile(async (path) => {
    await withSimulator({
      rate: 20_000,
      maxTrades: 3_000,
      groundTruthPath: path,
      pingIntervalMs: 15,
    }, async (sim) => {
      sim.inject({ type: "duplicate", count: 3 });
      const client = connect(sim.url, ["AAPL", "MSFT", "BINANCE:BTCUSDT"]);
      await waitFor("generation done", () => sim.stats().generationDone, FAST);
      await waitFor(
        "every frame received",
        () => client.frames.length === sim.stats().framesSent,
        FAST,
      );
      await closeClient(client);
      assert.equal(sim.stats().duplicateFramesSent, 3);
    });
    const client = tradeEntries(await readGroundTruth(path));
    assert.equal(client.length >= 3_000, true);
    const duplicated = client.length - 3_000;
    assert.ok(duplicated > 0, "the duplicated frames' trades are logged again");
    const byFrame = new Map<number, unknown[]>();
    for (const entry of client) {
      assert.equal(entry.connection, 1);
      const list = byFrame.get(entry.frame) ?? [];
      assert.equal(entry.index, list.length);
      list.push(entry.trade);
      byFrame.set(entry.frame, list);
    }
    const frames = [...byFrame.values()].map((l) => JSON.stringify(l));
    const repeats = frames.filter((f, i) => i > 0 && f === frames[i - 1]).length;
    assert.equal(repeats, 3);
  }));

Deno.test("the ground truth matches the frames the client received, frame number for frame number", () =>
  withTruthFile(async (path) => {
    const received: string[] = [];
    await withSimulator({
      rate: 10_000,
      maxTrades: 1_500,
      groundTruthPath: path,
      pingIntervalMs: 7,
    }, async (sim) => {
      const client = connect(sim.url, ["AAPL", "TSLA"]);
      await waitFor("generation done", () => sim.stats().generationDone, FAST);
      await waitFor(
        "every frame received",
        () => client.frames.length === sim.stats().framesSent,
        FAST,
      );
      received.push(...client.texts());
      await closeClient(client);
    });
    const truth = tradeEntries(await readGroundTruth(path));
    const expected = new Map<number, unknown[]>();
    for (const e of truth) expected.set(e.frame, [...(expected.get(e.frame) ?? []), e.trade]);
    received.forEach((text, i) => {
      const frame = JSON.parse(text);
      if (frame.type === "trade") {
        assert.deepEqual(frame.data, expected.get(i + 1), `frame ${i + 1}`);
      } else assert.equal(expected.has(i + 1), false);
    });
  }));

Deno.test("the simulator injects faults: silence, malformed and hostile frames, drops and refusals", () =>
  withTruthFile(async (path) => {
    await withSimulator({ rate: 1_000, pingIntervalMs: 10, groundTruthPath: path }, async (sim) => {
      const client = connect(sim.url, ["AAPL"]);
      await waitFor("first frames", () => client.frames.length > 5, FAST);
      sim.inject({ type: "silence", ms: 60_000 });
      const before = client.frames.length;
      await waitFor("silence", () => sim.stats().silent, FAST);
      const framesAtSilence = sim.stats().framesSent;
      await waitFor("in-flight frames", () => client.frames.length === framesAtSilence, FAST);
      assert.ok(client.frames.length >= before);
      sim.inject({ type: "malformed" });
      sim.inject({ type: "hostile" });
      const faults = MALFORMED_FRAMES.length + hostileFrames().length;
      await waitFor("fault frames", () => client.frames.length === framesAtSilence + faults, FAST);
      assert.equal(
        sim.stats().framesSent,
        framesAtSilence + faults,
        "nothing but faults while silent",
      );
      assert.ok(
        client.frames.some((f) => f instanceof ArrayBuffer),
        "binary garbage arrives as binary",
      );
      sim.inject({ type: "refuse", status: 429, count: 1 });
      sim.inject({ type: "drop" });
      assert.equal((await client.closed).code, 1001);
      const refused = connect(sim.url, ["AAPL"]);
      assert.match(await refused.failure, /429/);
      await refused.closed;
      const next = connect(sim.url, ["AAPL"]);
      await new Promise((resolve) => next.socket.addEventListener("open", resolve));
      await closeClient(next);
    });
    const entries = await readGroundTruth(path);
    const faultLines = entries.filter((e) => "fault" in e);
    assert.equal(faultLines.length, MALFORMED_FRAMES.length + hostileFrames().length);
  }));

Deno.test("the simulator drops each connection every N ms when told to", async () => {
  await withSimulator({ rate: 0, faults: [{ type: "drop-every", ms: 30 }] }, async (sim) => {
    const client = connect(sim.url, ["AAPL"]);
    const closed = await client.closed;
    assert.equal(closed.code, 1001);
    assert.equal(sim.stats().connectionsOpen, 0);
  });
});

Deno.test("the simulator replays a file of frames verbatim, as fast as possible", async () => {
  const text = await Deno.readTextFile(
    new URL("../tests/fixtures/finnhub_sample_frames.ndjson", import.meta.url),
  );
  const frames = parseReplay(text + "\nnot json\n");
  await withSimulator({ replay: { frames, pace: "fast" } }, async (sim) => {
    const client = connect(sim.url, ["AAPL"]);
    await waitFor("every replayed frame", () => client.frames.length === frames.length, FAST);
    assert.deepEqual(client.texts(), frames.map((f) => f.text));
    await closeClient(client);
  });
});

Deno.test("the simulator's control routes inject faults, change the rate and report stats", async () => {
  await withSimulator({ rate: 0 }, async (sim) => {
    const post = (path: string, body: unknown) =>
      fetch(`${sim.controlUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    const ok = await post("fault", { type: "pause" });
    assert.deepEqual(await ok.json(), { ok: true });
    assert.equal(sim.stats().paused, true);
    const bad = await post("fault", { type: "meteor" });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /unknown fault type "meteor"/);
    const rate = await post("rate", { rate: 50_000 });
    assert.deepEqual(await rate.json(), { ok: true, rate: 50_000 });
    const stats = await (await fetch(`${sim.controlUrl}stats`)).json();
    assert.equal(stats.rate, 50_000);
    const missing = await fetch(`${sim.controlUrl}nothing`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
});

Deno.test("POST /control/send delivers the body verbatim to every open connection", async () => {
  await withSimulator({ rate: 0, duplicateConnections: "allow" }, async (sim) => {
    const a = connect(sim.url, ["AAPL"], "a");
    const b = connect(sim.url, ["MSFT"], "b");
    try {
      await waitFor("two open connections", () => sim.stats().connectionsOpen === 2, FAST);
      await waitFor(
        "both clients open",
        () => a.socket.readyState === WebSocket.OPEN && b.socket.readyState === WebSocket.OPEN,
        FAST,
      );
      const frame = '{"data":[{"s":"SMOKE:X","p":1.5,"t":1,"v":2}],"type":"trade"}';
      const response = await fetch(`${sim.controlUrl}send`, { method: "POST", body: frame });
      assert.deepEqual(await response.json(), { ok: true, connections: 2 });
      await waitFor(
        "the frame at both clients",
        () => a.texts().includes(frame) && b.texts().includes(frame),
        FAST,
      );
    } finally {
      await closeClient(a);
      await closeClient(b);
    }
  });
});

Deno.test("the simulator's timeline records each subscribe and when it, or the client, closed a connection", async () => {
  await withSimulator({ rate: 0 }, async (sim) => {
    const before = Date.now();
    const first = connect(sim.url, ["AAPL", "MSFT"]);
    await waitFor("two subscribes", () => sim.timeline().length === 2, FAST);
    await (await fetch(`${sim.controlUrl}fault`, {
      method: "POST",
      body: JSON.stringify({ type: "drop" }),
    })).body?.cancel();
    await first.closed;
    const second = connect(sim.url, ["AAPL"]);
    await waitFor("the second subscribe", () => sim.timeline().length === 4, FAST);
    await closeClient(second);
    await waitFor("the client's close", () => sim.timeline().length === 5, FAST);
    const { events }: { events: Record<string, unknown>[] } =
      await (await fetch(`${sim.controlUrl}timeline`)).json();
    assert.deepEqual(events, sim.timeline() as unknown[]);
    assert.deepEqual(
      events.map((e) => [e.type, e.connection, e.symbol ?? e.by]),
      [
        ["subscribed", 1, "AAPL"],
        ["subscribed", 1, "MSFT"],
        ["closed", 1, "simulator"],
        ["subscribed", 2, "AAPL"],
        ["closed", 2, "client"],
      ],
    );
    assert.equal(events[2]!.reason, "simulated drop");
    const times = events.map((e) => e.atMs as number);
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
    assert.ok(times[0]! >= before && times.at(-1)! <= Date.now());
  });
});
