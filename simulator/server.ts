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
 * - `GET /control/timeline`: `{"events": [...]}`, the simulator's own record of when each
 *   connection closed and each subscribe arrived ({@linkcode TimelineEvent}), oldest first.
 *
 * This file holds the server: the handshake, the client protocol and the control routes. The
 * shared state and the one send path are in `state.ts`, when trades go out in `pacing.ts`, what
 * a fault does in `fault_injection.ts`.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import { armDrop, inject, stopPeriodicFaults, takeRefusal } from "./fault_injection.ts";
import { type Fault, parseFault } from "./faults.ts";
import { createTradeGenerator } from "./generator.ts";
import { generateTick, startReplay } from "./pacing.ts";
import type { ReplayFrame } from "./replay.ts";
import {
  closeConnection,
  type Connection,
  createState,
  forget,
  isSilent,
  recordEvent,
  register,
  send,
  type SimulatorState,
  type TimelineEvent,
} from "./state.ts";

export type { TimelineEvent };

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
  /** When connections closed and subscribes arrived, oldest first (a copy). */
  timeline(): TimelineEvent[];
  /** Closes every connection and the server, and flushes the ground-truth log. */
  close(): Promise<void>;
}

/** Starts the simulator; resolves once it listens. */
export function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const state = createState(options);
  for (const fault of options.faults ?? []) inject(state, fault);
  return new Promise((resolve) => {
    const server = Deno.serve({
      port: options.port ?? 0,
      hostname: options.hostname ?? "127.0.0.1",
      onListen: (addr) => {
        const tick = setInterval(() => generateTick(state), state.settings.tickMs);
        resolve(simulatorHandle(state, addr, () => {
          clearInterval(tick);
          return server.shutdown();
        }));
      },
    }, (request) => route(state, request));
  });
}

/** The handle of a listening simulator; `stopServing` ends generation and the HTTP server. */
function simulatorHandle(
  state: SimulatorState,
  addr: Deno.NetAddr,
  stopServing: () => Promise<void>,
): Simulator {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  let closing: Promise<void> | undefined;
  return {
    url: `ws://${host}:${addr.port}/`,
    port: addr.port,
    controlUrl: `http://${host}:${addr.port}/control/`,
    inject: (fault) => inject(state, fault),
    setRate: (rate) => setRate(state, rate),
    sendFrame: (frame) => sendFrame(state, frame),
    stats: () => stats(state),
    timeline: () => [...state.timeline],
    close() {
      closing ??= (async () => {
        stopPeriodicFaults(state.faults);
        for (const connection of [...state.connections]) {
          closeConnection(state, connection, 1001, "simulator shutting down");
        }
        await stopServing();
        state.groundTruth?.close();
      })();
      return closing;
    },
  };
}

function route(state: SimulatorState, request: Request): Response | Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname.startsWith("/control/")) return control(state, request, url);
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
    return handshake(state, request, url);
  }
  return new Response(
    "Finnhub simulator: connect a WebSocket to ws://<this host>/?token=<any>\n",
    { headers: { "content-type": "text/plain; charset=utf-8" } },
  );
}

/** Refuses the upgrade as Finnhub would (a `refuse` fault, an unknown token, a second
 * connection for a token), or accepts it. */
function handshake(state: SimulatorState, request: Request, url: URL): Response {
  const { counters, settings: { tokens, policy, log } } = state;
  const refused = takeRefusal(state.faults);
  if (refused !== undefined) {
    counters.handshakesRefused++;
    return new Response(refused === 401 ? "Invalid API key\n" : "Too Many Requests\n", {
      status: refused,
    });
  }
  const token = url.searchParams.get("token") ?? "";
  if (tokens.size > 0 && !tokens.has(token)) {
    counters.handshakesRefused++;
    return new Response("Invalid API key\n", { status: 401 });
  }
  const open = state.byToken.get(token);
  if (open && open.size > 0 && policy !== "allow") {
    counters.duplicateConnectionAttempts++;
    counters.handshakesRefused++;
    log.warn("second connection for one token", { policy });
    if (policy === "drop-both") {
      for (const connection of [...open]) {
        closeConnection(state, connection, 1008, "another connection with the same token");
      }
    }
    return new Response("Too Many Requests: one connection per API key\n", { status: 429 });
  }
  return accept(state, request, token);
}

/** Upgrades to a WebSocket with its own trade stream; pings and `drop-every` start on open. */
function accept(state: SimulatorState, request: Request, token: string): Response {
  const { counters, settings } = state;
  const { socket, response } = Deno.upgradeWebSocket(request);
  const id = state.nextConnectionId++;
  const connection: Connection = {
    id,
    token,
    socket,
    // Each connection its own stream, the same on every run with the same seed.
    generator: createTradeGenerator({
      seed: (settings.seed + Math.imul(id, 0x9e3779b9)) >>> 0,
      maxTradesPerFrame: settings.maxTradesPerFrame,
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
  const sameToken = register(state, connection);
  counters.connectionsAccepted++;
  counters.peakConnectionsPerToken = Math.max(counters.peakConnectionsPerToken, sameToken);
  socket.onopen = () => {
    if (!state.connections.has(connection)) return;
    connection.open = true;
    connection.lastTick = performance.now();
    const ping = setInterval(() => {
      if (!isSilent(state) && send(state, connection, '{"type":"ping"}') > 0) counters.pingsSent++;
    }, settings.pingIntervalMs);
    connection.timers.push(ping);
    armDrop(state, connection);
    settings.log.info("connection opened", { connection: connection.id });
  };
  socket.onmessage = (event) => onClientMessage(state, connection, event.data);
  socket.onclose = (event) => {
    if (state.connections.has(connection)) {
      recordEvent(state, {
        type: "closed",
        connection: connection.id,
        atMs: Date.now(),
        by: "client",
        reason: event.reason,
      });
    }
    forget(state, connection);
    settings.log.info("connection closed", { connection: connection.id });
  };
  socket.onerror = () => {};
  return response;
}

/** Subscribes and unsubscribes, up to the symbol limit; anything else is ignored. */
function onClientMessage(state: SimulatorState, connection: Connection, data: unknown) {
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
    recordEvent(state, { type: "subscribed", connection: connection.id, atMs: Date.now(), symbol });
    if (!connection.subscriptions.has(symbol)) {
      if (connection.subscriptions.size >= state.settings.symbolLimit) {
        state.counters.subscriptionsRefused++;
        if (send(state, connection, JSON.stringify({ type: "error", msg: TOO_MANY_SYMBOLS })) > 0) {
          state.counters.errorsSent++;
        }
        return;
      }
      connection.subscriptions.add(symbol);
      connection.symbols = [...connection.subscriptions];
      if (connection.subscriptions.size === 1) {
        state.settings.log.info("first subscription", { connection: connection.id });
      }
    }
    startReplay(state, connection);
  } else if (message.type === "unsubscribe") {
    connection.subscriptions.delete(symbol);
    connection.symbols = [...connection.subscriptions];
  }
}

/** The control routes (see the module doc); a bad request gets 400 with the reason. */
async function control(state: SimulatorState, request: Request, url: URL): Promise<Response> {
  try {
    if (url.pathname === "/control/stats" && request.method === "GET") {
      return Response.json(stats(state));
    }
    if (url.pathname === "/control/timeline" && request.method === "GET") {
      return Response.json({ events: state.timeline });
    }
    if (url.pathname === "/control/fault" && request.method === "POST") {
      inject(state, parseFault(await request.json()));
      return Response.json({ ok: true });
    }
    if (url.pathname === "/control/send" && request.method === "POST") {
      return Response.json({ ok: true, connections: sendFrame(state, await request.text()) });
    }
    if (url.pathname === "/control/rate" && request.method === "POST") {
      const body = await request.json();
      setRate(state, body?.rate);
      return Response.json({ ok: true, rate: state.rate });
    }
    return new Response("Not found\n", { status: 404 });
  } catch (error) {
    return Response.json({ ok: false, error: (error as Error).message }, { status: 400 });
  }
}

function setRate(state: SimulatorState, value: unknown) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`rate must be a number of trades per second, at least 0, got ${value}`);
  }
  state.rate = value;
}

function sendFrame(state: SimulatorState, frame: string): number {
  let delivered = 0;
  for (const connection of state.connections) {
    if (send(state, connection, frame) > 0) delivered++;
  }
  state.settings.log.info("frame sent on request", { connections: delivered, bytes: frame.length });
  return delivered;
}

function stats(state: SimulatorState): SimulatorStats {
  const { counters, connections, faults } = state;
  return {
    ...counters,
    connectionsOpen: connections.size,
    rate: state.rate,
    paused: faults.paused,
    silent: isSilent(state),
    generationDone: counters.tradesGenerated >= state.settings.maxTrades,
    connections: [...connections].map((c) => ({
      id: c.id,
      subscriptions: c.subscriptions.size,
      framesSent: c.frameSeq,
    })),
  };
}
