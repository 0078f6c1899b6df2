/**
 * What the parts of one running simulator share: its settings (the options with their defaults
 * applied once), its connections, its counters, the state of injected faults, and the one way a
 * frame leaves. `send` numbers every frame per connection from 1 (pings and errors included) as
 * the client will, which is what the ground-truth log's frame numbers rest on; a trade or fault
 * frame is logged only once the socket took it. A connection enters through `register` at the
 * upgrade (so two handshakes racing for one token see each other) and leaves through `forget`,
 * which clears its timers.
 *
 * @module
 */
import { silentLogger } from "../shared/log.ts";
import type { FaultFrame } from "./faults.ts";
import type { TradeGenerator } from "./generator.ts";
import { type GroundTruthSink, openGroundTruth } from "./ground_truth.ts";
import { recordedDelays } from "./replay.ts";
import type { SimulatorOptions } from "./server.ts";

/** The options of `startSimulator` with their defaults applied (see `SimulatorOptions`). */
export type Settings = Readonly<ReturnType<typeof resolveSettings>>;

/** One client, from its upgrade until it is forgotten. */
export interface Connection {
  readonly id: number;
  readonly token: string;
  readonly socket: WebSocket;
  readonly generator: TradeGenerator;
  readonly subscriptions: Set<string>;
  /** `subscriptions` as an array, for the generator. */
  symbols: string[];
  open: boolean;
  /** Frames sent so far, which is also the number of the last one. */
  frameSeq: number;
  /** Fraction of a trade owed from earlier ticks. */
  carry: number;
  /** `performance.now()` of the last generation tick. */
  lastTick: number;
  timers: ReturnType<typeof setTimeout>[];
  dropTimer: ReturnType<typeof setTimeout> | undefined;
  replayStarted: boolean;
}

/** What the injected faults left in force (see `fault_injection.ts`). */
export interface FaultState {
  paused: boolean;
  /** `Date.now()` until which nothing at all is sent. */
  silentUntil: number;
  /** Trade frames still to be delivered twice. */
  duplicatePending: number;
  /** Handshakes still to be refused, and how. */
  refusal: { status: 401 | 429; count: number } | undefined;
  /** Close each connection this long after it opened, ms; 0: never. */
  dropEveryMs: number;
  readonly periodic: Partial<Record<FaultKind, ReturnType<typeof setInterval>>>;
  /** The next frame of each catalogue to send. */
  readonly next: Record<FaultKind, number>;
}

/**
 * One moment of the simulator's connection timeline, its own record of when the feed stopped
 * and started for a client (what a test checks the producer's feed gaps against): a connection
 * closed (`by` the simulator: a drop fault, a duplicate token, shutdown; or by the client), or a
 * client subscribed a symbol. `atMs` is the simulator's `Date.now()` at that moment.
 */
export type TimelineEvent =
  | {
    readonly type: "closed";
    readonly connection: number;
    readonly atMs: number;
    readonly by: "simulator" | "client";
    readonly reason: string;
  }
  | {
    readonly type: "subscribed";
    readonly connection: number;
    readonly atMs: number;
    readonly symbol: string;
  };

/** Most timeline events kept (the oldest are forgotten past it). */
export const TIMELINE_MAX_EVENTS = 10_000;

/** Appends an event to the timeline, forgetting the oldest past {@linkcode TIMELINE_MAX_EVENTS}. */
export function recordEvent(state: SimulatorState, event: TimelineEvent) {
  state.timeline.push(event);
  if (state.timeline.length > TIMELINE_MAX_EVENTS) state.timeline.shift();
}

/** The two catalogues of fault frames. */
export type FaultKind = "malformed" | "hostile";

/** Counters of `SimulatorStats`, the ones the simulator keeps itself. */
export type Counters = ReturnType<typeof newCounters>;

/** One running simulator's shared state. */
export interface SimulatorState {
  readonly settings: Settings;
  readonly groundTruth: GroundTruthSink | undefined;
  readonly connections: Set<Connection>;
  readonly byToken: Map<string, Set<Connection>>;
  readonly counters: Counters;
  readonly faults: FaultState;
  /** When connections closed and subscribed, oldest first (`GET /control/timeline`). */
  readonly timeline: TimelineEvent[];
  /** Trades per second per connection. */
  rate: number;
  nextConnectionId: number;
}

/** Applies the defaults of `options` and opens the ground-truth log, if one is asked for. */
export function createState(options: SimulatorOptions): SimulatorState {
  const groundTruth = options.groundTruthPath === undefined
    ? undefined
    : openGroundTruth(options.groundTruthPath);
  return {
    settings: resolveSettings(options),
    groundTruth,
    connections: new Set(),
    byToken: new Map(),
    counters: newCounters(),
    timeline: [],
    faults: {
      paused: false,
      silentUntil: 0,
      duplicatePending: 0,
      refusal: undefined,
      dropEveryMs: 0,
      periodic: {},
      next: { malformed: 0, hostile: 0 },
    },
    rate: options.rate ?? 100,
    nextConnectionId: 1,
  };
}

function resolveSettings(options: SimulatorOptions) {
  const replay = options.replay;
  return {
    log: options.log ?? silentLogger(),
    tokens: new Set(options.tokens ?? []) as ReadonlySet<string>,
    symbolLimit: options.symbolLimit ?? 50,
    pingIntervalMs: options.pingIntervalMs ?? 60_000,
    seed: options.seed ?? 1,
    maxTradesPerFrame: options.maxTradesPerFrame ?? 50,
    tickMs: options.tickMs ?? 10,
    maxTrades: options.maxTrades ?? Infinity,
    maxBufferedBytes: options.maxBufferedBytes ?? 16 * 1024 * 1024,
    policy: options.duplicateConnections ?? "drop-both",
    replay,
    /** The delay before each replayed frame, ms. */
    replayDelays: replay
      ? (replay.pace === "recorded"
        ? recordedDelays(replay.frames, replay.maxGapMs ?? 1_000)
        : replay.frames.map(() => 0))
      : [],
  };
}

function newCounters() {
  return {
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
}

/** Whether a `silence` fault is in force. */
export function isSilent(state: SimulatorState): boolean {
  return Date.now() < state.faults.silentUntil;
}

/** Sends one frame; returns its frame number, or 0 when the socket is gone. */
export function send(
  state: SimulatorState,
  connection: Connection,
  data: string | Uint8Array,
): number {
  if (!connection.open || connection.socket.readyState !== WebSocket.OPEN) return 0;
  try {
    connection.socket.send(data);
  } catch {
    return 0;
  }
  state.counters.framesSent++;
  return ++connection.frameSeq;
}

/** Sends a trade frame, twice while a `duplicate` fault is pending, and logs its trades. */
export function sendTrades(
  state: SimulatorState,
  connection: Connection,
  trades: readonly unknown[],
  text: string,
) {
  const { counters, faults } = state;
  let deliveries = 1;
  if (faults.duplicatePending > 0) {
    faults.duplicatePending--;
    deliveries = 2;
  }
  for (let i = 0; i < deliveries; i++) {
    const frame = send(state, connection, text);
    if (frame === 0) return;
    counters.tradeFramesSent++;
    counters.tradesSent += trades.length;
    if (i > 0) counters.duplicateFramesSent++;
    if (trades.length === 0) continue;
    state.groundTruth?.trades(connection.id, frame, trades);
  }
}

/** Sends a malformed or hostile frame and logs what a correct producer does with it. */
export function sendFault(state: SimulatorState, connection: Connection, fault: FaultFrame) {
  const frame = send(state, connection, fault.frame);
  if (frame === 0) return;
  state.counters.faultFramesSent++;
  state.groundTruth?.fault(connection.id, frame, fault.name, fault.expect);
}

/** Adds a connection to every registry; returns how many its token now has. */
export function register(state: SimulatorState, connection: Connection): number {
  state.connections.add(connection);
  const same = state.byToken.get(connection.token) ?? new Set();
  same.add(connection);
  state.byToken.set(connection.token, same);
  return same.size;
}

/** Forgets a connection and closes its socket. */
export function closeConnection(
  state: SimulatorState,
  connection: Connection,
  code: number,
  reason: string,
) {
  if (!state.connections.has(connection)) return;
  forget(state, connection);
  recordEvent(state, {
    type: "closed",
    connection: connection.id,
    atMs: Date.now(),
    by: "simulator",
    reason,
  });
  try {
    connection.socket.close(code, reason);
  } catch {
    // Already closing.
  }
}

/** Takes a connection out of every registry; the server counts it as gone from here on. */
export function forget(state: SimulatorState, connection: Connection) {
  connection.open = false;
  for (const id of connection.timers) clearTimeout(id);
  connection.timers = [];
  if (connection.dropTimer !== undefined) clearTimeout(connection.dropTimer);
  connection.dropTimer = undefined;
  state.connections.delete(connection);
  const same = state.byToken.get(connection.token);
  same?.delete(connection);
  if (same?.size === 0) state.byToken.delete(connection.token);
}
