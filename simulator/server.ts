/**
 * A local WebSocket server that speaks Finnhub's trades protocol, so the pipeline runs and is
 * tested without the internet. `startSimulator(options)` listens (port 0 picks a free one) and
 * returns a handle with the URL, runtime fault injection, counters and `close()`.
 *
 * Protocol, as Finnhub: `ws://host:port/?token=KEY`; a refused token gets HTTP 401 before the
 * upgrade; one connection per token (a second one drops both, like Finnhub, unless configured
 * otherwise); `{"type":"subscribe","symbol":S}` and `unsubscribe`; past the symbol limit the
 * reply is Finnhub's own `{"type":"error","msg":"Subscribing to too many symbols"}`; trades come
 * as `{"data":[...],"type":"trade"}` for subscribed symbols only; `{"type":"ping"}` keeps alive.
 *
 * Control routes on the same port (JSON; for tests, benchmarks and people):
 * - `POST /control/fault` with a {@linkcode Fault}, e.g. `{"type":"drop"}`;
 * - `POST /control/rate` with `{"rate": 50000}` (trades per second per connection);
 * - `POST /control/send` with a frame as the body: sent verbatim to every open connection (the
 *   smoke test's known trades); answers `{"ok":true,"connections":N}`;
 * - `GET /control/stats`: the counters of {@linkcode SimulatorStats}.
 *
 * @module
 */
import { type Logger, silentLogger } from "../shared/log.ts";
import {
  type Fault,
  type FaultFrame,
  hostileFrames,
  MALFORMED_FRAMES,
  parseFault,
} from "./faults.ts";
import { createTradeGenerator, type GeneratedTrade, type TradeGenerator } from "./generator.ts";
import { type GroundTruthSink, openGroundTruth } from "./ground_truth.ts";
import { recordedDelays, replayedTrades, type ReplayFrame } from "./replay.ts";

/** Finnhub's error message past the symbol limit. */
export const TOO_MANY_SYMBOLS = "Subscribing to too many symbols";

/** What happens when a second connection arrives for a token that has one open. */
export type DuplicateConnectionPolicy = "drop-both" | "refuse" | "allow";

/** Options of {@linkcode startSimulator}; every one has a default. */
export interface SimulatorOptions {
  /** Default 0: a free port. */
  readonly port?: number;
  /** Default `127.0.0.1`. */
  readonly hostname?: string;
  /** Known tokens; when given, any other token is refused with 401. Default: any token. */
  readonly tokens?: readonly string[];
  /** Most symbols one connection may subscribe to. Default 50. */
  readonly symbolLimit?: number;
  /** Ping every connection this often, ms. Default 60 000 (Finnhub: about a minute). */
  readonly pingIntervalMs?: number;
  /** Trades per second per connection (0: none). Default 100. */
  readonly rate?: number;
  /** Seed of the trade generator. Default 1. */
  readonly seed?: number;
  /** Most trades per frame. Default 50. */
  readonly maxTradesPerFrame?: number;
  /** Generation tick, ms. Default 10. */
  readonly tickMs?: number;
  /** Stop generating after this many trades in all (all connections). Default: never. */
  readonly maxTrades?: number;
  /** Replay these frames to each connection after its first subscribe, instead of generating. */
  readonly replay?: {
    readonly frames: readonly ReplayFrame[];
    /** `recorded`: the recorded gaps (capped); `fast`: as fast as the socket takes them. */
    readonly pace: "recorded" | "fast";
    /** Cap on one recorded gap, ms. Default 1 000. */
    readonly maxGapMs?: number;
    /** Start over at the end. Default false. */
    readonly loop?: boolean;
  };
  /** Write the ground-truth log (see `ground_truth.ts`) to this file. Default: none. */
  readonly groundTruthPath?: string;
  /** Faults in force from the start (e.g. `drop-every`, `refuse`). */
  readonly faults?: readonly Fault[];
  /** Default `drop-both`, as Finnhub. */
  readonly duplicateConnections?: DuplicateConnectionPolicy;
  /** Skip generation while a socket has more than this many bytes unsent. Default 16 MiB. */
  readonly maxBufferedBytes?: number;
  /** Default: silent. */
  readonly log?: Logger;
}

/** The simulator's counters. */
export interface SimulatorStats {
  readonly connectionsAccepted: number;
  readonly connectionsOpen: number;
  readonly handshakesRefused: number;
  readonly duplicateConnectionAttempts: number;
  /** Most connections ever open at once for one token. */
  readonly peakConnectionsPerToken: number;
  readonly framesSent: number;
  readonly tradeFramesSent: number;
  /** Trades sent, counting a frame delivered twice twice. */
  readonly tradesSent: number;
  /** Trades generated (each once). */
  readonly tradesGenerated: number;
  readonly pingsSent: number;
  readonly errorsSent: number;
  readonly faultFramesSent: number;
  readonly duplicateFramesSent: number;
  readonly subscriptionsRefused: number;
  /** Ticks skipped because a client was not reading fast enough. */
  readonly backpressureSkips: number;
  readonly rate: number;
  readonly paused: boolean;
  readonly silent: boolean;
  /** `maxTrades` reached. */
  readonly generationDone: boolean;
  readonly connections: readonly {
    readonly id: number;
    readonly subscriptions: number;
    readonly framesSent: number;
  }[];
}

/** A running simulator. */
export interface Simulator {
  /** `ws://host:port/`, for `FINNHUB_WS_URL`. */
  readonly url: string;
  readonly port: number;
  /** `http://host:port/control/`. */
  readonly controlUrl: string;
  /** Injects a fault now (what `POST /control/fault` does). */
  inject(fault: Fault): void;
  /** Changes the trade rate, per connection per second. */
  setRate(rate: number): void;
  /** Sends `frame` verbatim to every open connection; returns how many got it. */
  sendFrame(frame: string): number;
  stats(): SimulatorStats;
  /** Closes every connection and the server, and flushes the ground-truth log. */
  close(): Promise<void>;
}

interface Connection {
  readonly id: number;
  readonly token: string;
  readonly socket: WebSocket;
  readonly generator: TradeGenerator;
  readonly subscriptions: Set<string>;
  symbols: string[];
  open: boolean;
  frameSeq: number;
  carry: number;
  lastTick: number;
  timers: ReturnType<typeof setTimeout>[];
  dropTimer: ReturnType<typeof setTimeout> | undefined;
  replayStarted: boolean;
}

/** Starts the simulator; resolves once it listens. */
export function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const log = options.log ?? silentLogger();
  const tokens = new Set(options.tokens ?? []);
  const symbolLimit = options.symbolLimit ?? 50;
  const pingIntervalMs = options.pingIntervalMs ?? 60_000;
  const seed = options.seed ?? 1;
  const maxTradesPerFrame = options.maxTradesPerFrame ?? 50;
  const tickMs = options.tickMs ?? 10;
  const maxTrades = options.maxTrades ?? Infinity;
  const maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024;
  const policy = options.duplicateConnections ?? "drop-both";
  const groundTruth: GroundTruthSink | undefined = options.groundTruthPath === undefined
    ? undefined
    : openGroundTruth(options.groundTruthPath);
  const replay = options.replay;
  const replayDelays = replay
    ? (replay.pace === "recorded"
      ? recordedDelays(replay.frames, replay.maxGapMs ?? 1_000)
      : replay.frames.map(() => 0))
    : [];

  let rate = options.rate ?? 100;
  let paused = false;
  let silentUntil = 0;
  let duplicatePending = 0;
  let refusal: { status: 401 | 429; count: number } | undefined;
  let dropEveryMs = 0;
  const periodic: Partial<Record<"malformed" | "hostile", ReturnType<typeof setInterval>>> = {};
  let malformedNext = 0;
  let hostileNext = 0;
  let nextConnectionId = 1;
  const byToken = new Map<string, Set<Connection>>();
  const connections = new Set<Connection>();

  const counters = {
    connectionsAccepted: 0,
    handshakesRefused: 0,
    duplicateConnectionAttempts: 0,
    peakConnectionsPerToken: 0,
    framesSent: 0,
    tradeFramesSent: 0,
    tradesSent: 0,
    tradesGenerated: 0,
    pingsSent: 0,
    errorsSent: 0,
    faultFramesSent: 0,
    duplicateFramesSent: 0,
    subscriptionsRefused: 0,
    backpressureSkips: 0,
  };

  const silent = () => Date.now() < silentUntil;

  /** Sends one frame; returns its frame number, or 0 when the socket is gone. */
  function send(connection: Connection, data: string | Uint8Array): number {
    if (!connection.open || connection.socket.readyState !== WebSocket.OPEN) return 0;
    try {
      connection.socket.send(data);
    } catch {
      return 0;
    }
    counters.framesSent++;
    return ++connection.frameSeq;
  }

  function sendTrades(connection: Connection, trades: readonly unknown[], text: string) {
    let deliveries = 1;
    if (duplicatePending > 0) {
      duplicatePending--;
      deliveries = 2;
    }
    for (let i = 0; i < deliveries; i++) {
      const frame = send(connection, text);
      if (frame === 0) return;
      counters.tradeFramesSent++;
      counters.tradesSent += trades.length;
      if (i > 0) counters.duplicateFramesSent++;
      if (trades.length === 0) continue;
      groundTruth?.trades(connection.id, frame, trades);
    }
  }

  function sendFault(connection: Connection, fault: FaultFrame) {
    const frame = send(connection, fault.frame);
    if (frame === 0) return;
    counters.faultFramesSent++;
    groundTruth?.fault(connection.id, frame, fault.name, fault.expect);
  }

  function sendPing(connection: Connection) {
    if (silent()) return;
    if (send(connection, '{"type":"ping"}') > 0) counters.pingsSent++;
  }

  function generate() {
    if (paused || silent() || rate <= 0 || replay) {
      const now = performance.now();
      for (const connection of connections) connection.lastTick = now;
      return;
    }
    const now = performance.now();
    const wallNow = Date.now();
    for (const connection of connections) {
      const elapsed = now - connection.lastTick;
      connection.lastTick = now;
      if (!connection.open || connection.symbols.length === 0) continue;
      if (connection.socket.bufferedAmount > maxBufferedBytes) {
        counters.backpressureSkips++;
        connection.carry = 0;
        continue;
      }
      // At most one second's worth after a stall: a late tick must not become a flood.
      const owed = Math.min(connection.carry + (rate * elapsed) / 1000, Math.max(rate, 1));
      let count = Math.floor(owed);
      connection.carry = owed - count;
      count = Math.min(count, maxTrades - counters.tradesGenerated);
      if (count <= 0) continue;
      counters.tradesGenerated += count;
      for (const trades of connection.generator.frames(wallNow, count, connection.symbols)) {
        sendTrades(connection, trades, tradeFrameText(trades));
      }
    }
  }

  function startReplay(connection: Connection) {
    if (!replay || connection.replayStarted) return;
    connection.replayStarted = true;
    let index = 0;
    const step = () => {
      if (!connection.open) return;
      // Send every frame that is due now; yield to the event loop every 500 frames.
      for (let sent = 0; sent < 500; sent++) {
        if (index >= replay.frames.length) {
          if (!replay.loop) return;
          index = 0;
        }
        if (silent() || paused) {
          schedule(connection, step, tickMs);
          return;
        }
        const frame = replay.frames[index]!;
        sendTrades(connection, replayedTrades(frame.text), frame.text);
        index++;
        const delay = index < replayDelays.length ? replayDelays[index]! : 0;
        if (delay > 0) {
          schedule(connection, step, delay);
          return;
        }
      }
      schedule(connection, step, 0);
    };
    step();
  }

  function schedule(connection: Connection, callback: () => void, ms: number) {
    const id = setTimeout(() => {
      connection.timers = connection.timers.filter((t) => t !== id);
      callback();
    }, ms);
    connection.timers.push(id);
  }

  function armDrop(connection: Connection) {
    if (connection.dropTimer !== undefined) clearTimeout(connection.dropTimer);
    connection.dropTimer = undefined;
    if (dropEveryMs <= 0) return;
    connection.dropTimer = setTimeout(() => {
      log.info("fault: dropping the connection", { connection: connection.id });
      closeConnection(connection, 1001, "simulated drop");
    }, dropEveryMs);
  }

  function closeConnection(connection: Connection, code: number, reason: string) {
    if (!connections.has(connection)) return;
    forget(connection);
    try {
      connection.socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  /** Takes a connection out of every registry; the server counts it as gone from here on. */
  function forget(connection: Connection) {
    connection.open = false;
    for (const id of connection.timers) clearTimeout(id);
    connection.timers = [];
    if (connection.dropTimer !== undefined) clearTimeout(connection.dropTimer);
    connection.dropTimer = undefined;
    connections.delete(connection);
    const same = byToken.get(connection.token);
    same?.delete(connection);
    if (same?.size === 0) byToken.delete(connection.token);
  }

  function onClientMessage(connection: Connection, data: unknown) {
    if (typeof data !== "string") return;
    let message: { type?: unknown; symbol?: unknown };
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null || typeof message.symbol !== "string") {
      return;
    }
    const symbol = message.symbol;
    if (message.type === "subscribe") {
      if (!connection.subscriptions.has(symbol)) {
        if (connection.subscriptions.size >= symbolLimit) {
          counters.subscriptionsRefused++;
          if (send(connection, JSON.stringify({ type: "error", msg: TOO_MANY_SYMBOLS })) > 0) {
            counters.errorsSent++;
          }
          return;
        }
        connection.subscriptions.add(symbol);
        connection.symbols = [...connection.subscriptions];
      }
      startReplay(connection);
    } else if (message.type === "unsubscribe") {
      connection.subscriptions.delete(symbol);
      connection.symbols = [...connection.subscriptions];
    }
  }

  function accept(request: Request, token: string): Response {
    const { socket, response } = Deno.upgradeWebSocket(request);
    const id = nextConnectionId++;
    const connection: Connection = {
      id,
      token,
      socket,
      // Each connection its own stream, the same on every run with the same seed.
      generator: createTradeGenerator({
        seed: (seed + Math.imul(id, 0x9e3779b9)) >>> 0,
        maxTradesPerFrame,
      }),
      subscriptions: new Set(),
      symbols: [],
      open: false,
      frameSeq: 0,
      carry: 0,
      lastTick: performance.now(),
      timers: [],
      dropTimer: undefined,
      replayStarted: false,
    };
    // Registered from the upgrade on, so two handshakes racing for one token are seen.
    connections.add(connection);
    const same = byToken.get(token) ?? new Set();
    same.add(connection);
    byToken.set(token, same);
    counters.connectionsAccepted++;
    counters.peakConnectionsPerToken = Math.max(counters.peakConnectionsPerToken, same.size);
    socket.onopen = () => {
      if (!connections.has(connection)) return;
      connection.open = true;
      connection.lastTick = performance.now();
      const ping = setInterval(() => sendPing(connection), pingIntervalMs);
      connection.timers.push(ping);
      armDrop(connection);
      log.info("connection opened", { connection: connection.id });
    };
    socket.onmessage = (event) => onClientMessage(connection, event.data);
    socket.onclose = () => {
      forget(connection);
      log.info("connection closed", { connection: connection.id });
    };
    socket.onerror = () => {};
    return response;
  }

  function handshake(request: Request, url: URL): Response {
    if (refusal && refusal.count > 0) {
      const { status } = refusal;
      refusal.count--;
      if (refusal.count === 0) refusal = undefined;
      counters.handshakesRefused++;
      return new Response(status === 401 ? "Invalid API key\n" : "Too Many Requests\n", { status });
    }
    const token = url.searchParams.get("token") ?? "";
    if (tokens.size > 0 && !tokens.has(token)) {
      counters.handshakesRefused++;
      return new Response("Invalid API key\n", { status: 401 });
    }
    const open = byToken.get(token);
    if (open && open.size > 0 && policy !== "allow") {
      counters.duplicateConnectionAttempts++;
      counters.handshakesRefused++;
      log.warn("second connection for one token", { policy });
      if (policy === "drop-both") {
        for (const connection of [...open]) {
          closeConnection(connection, 1008, "another connection with the same token");
        }
      }
      return new Response("Too Many Requests: one connection per API key\n", { status: 429 });
    }
    return accept(request, token);
  }

  async function control(request: Request, url: URL): Promise<Response> {
    try {
      if (url.pathname === "/control/stats" && request.method === "GET") {
        return Response.json(stats());
      }
      if (url.pathname === "/control/fault" && request.method === "POST") {
        inject(parseFault(await request.json()));
        return Response.json({ ok: true });
      }
      if (url.pathname === "/control/send" && request.method === "POST") {
        return Response.json({ ok: true, connections: sendFrame(await request.text()) });
      }
      if (url.pathname === "/control/rate" && request.method === "POST") {
        const body = await request.json();
        setRate(body?.rate);
        return Response.json({ ok: true, rate });
      }
      return new Response("Not found\n", { status: 404 });
    } catch (error) {
      return Response.json({ ok: false, error: (error as Error).message }, { status: 400 });
    }
  }

  function setRate(value: unknown) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`rate must be a number of trades per second, at least 0, got ${value}`);
    }
    rate = value;
  }

  function sendFrame(frame: string): number {
    let delivered = 0;
    for (const connection of connections) {
      if (send(connection, frame) > 0) delivered++;
    }
    log.info("frame sent on request", { connections: delivered, bytes: frame.length });
    return delivered;
  }

  function inject(fault: Fault) {
    log.info("fault injected", { fault: JSON.stringify(fault) });
    switch (fault.type) {
      case "drop":
        for (const connection of [...connections]) {
          closeConnection(connection, 1001, "simulated drop");
        }
        return;
      case "drop-every":
        dropEveryMs = fault.ms;
        for (const connection of connections) armDrop(connection);
        return;
      case "silence":
        silentUntil = Date.now() + fault.ms;
        return;
      case "malformed":
      case "hostile":
        sendFaults(fault.type, fault.count ?? catalogueOf(fault.type).length);
        return;
      case "malformed-every":
      case "hostile-every": {
        const kind = fault.type === "malformed-every" ? "malformed" : "hostile";
        clearInterval(periodic[kind]);
        delete periodic[kind];
        if (fault.ms > 0) periodic[kind] = setInterval(() => sendFaults(kind, 1), fault.ms);
        return;
      }
      case "duplicate":
        duplicatePending += fault.count ?? 1;
        return;
      case "refuse":
        refusal = { status: fault.status, count: fault.count ?? 1 };
        return;
      case "pause":
        paused = true;
        return;
      case "resume":
        paused = false;
        return;
    }
  }

  function catalogueOf(kind: "malformed" | "hostile"): readonly FaultFrame[] {
    return kind === "malformed" ? MALFORMED_FRAMES : hostileFrames();
  }

  /** Sends the next `count` frames of a catalogue, in turn, to every open connection. */
  function sendFaults(kind: "malformed" | "hostile", count: number) {
    const catalogue = catalogueOf(kind);
    for (let i = 0; i < count; i++) {
      const index = kind === "malformed" ? malformedNext++ : hostileNext++;
      const frame = catalogue[index % catalogue.length]!;
      for (const connection of connections) sendFault(connection, frame);
    }
  }

  function stats(): SimulatorStats {
    return {
      ...counters,
      connectionsOpen: connections.size,
      rate,
      paused,
      silent: silent(),
      generationDone: counters.tradesGenerated >= maxTrades,
      connections: [...connections].map((c) => ({
        id: c.id,
        subscriptions: c.subscriptions.size,
        framesSent: c.frameSeq,
      })),
    };
  }

  for (const fault of options.faults ?? []) inject(fault);

  let closing: Promise<void> | undefined;
  return new Promise((resolve) => {
    const server = Deno.serve({
      port: options.port ?? 0,
      hostname: options.hostname ?? "127.0.0.1",
      onListen: (addr) => {
        const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
        const tick = setInterval(generate, tickMs);
        resolve({
          url: `ws://${host}:${addr.port}/`,
          port: addr.port,
          controlUrl: `http://${host}:${addr.port}/control/`,
          inject,
          setRate,
          sendFrame,
          stats,
          async close() {
            if (closing) return await closing;
            closing = (async () => {
              clearInterval(tick);
              clearInterval(periodic.malformed);
              clearInterval(periodic.hostile);
              for (const connection of [...connections]) {
                closeConnection(connection, 1001, "simulator shutting down");
              }
              await server.shutdown();
              groundTruth?.close();
            })();
            await closing;
          },
        });
      },
    }, (request) => {
      const url = new URL(request.url);
      if (url.pathname.startsWith("/control/")) return control(request, url);
      if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
        return handshake(request, url);
      }
      return new Response(
        "Finnhub simulator: connect a WebSocket to ws://<this host>/?token=<any>\n",
        { headers: { "content-type": "text/plain; charset=utf-8" } },
      );
    });
  });
}

/** A trade frame as Finnhub writes it: `data` first, then `type`. */
function tradeFrameText(trades: readonly GeneratedTrade[]): string {
  return `{"data":${JSON.stringify(trades)},"type":"trade"}`;
}
