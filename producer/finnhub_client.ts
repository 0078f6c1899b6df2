/**
 * The WebSocket side of the producer: one connection to Finnhub (or the simulator) at a time,
 * every symbol subscribed on every connection, a watchdog that replaces a silent socket, and
 * reconnects with exponential backoff, jitter and a cap. A handshake refused with 401 or 429
 * backs off hard and says why. Frames are handed on untouched with where they came from; what
 * they mean is the producer's business.
 *
 * The backoff starts over only once a connection has proved healthy: a frame arrives after it
 * has been open for `healthyAfterMs` (default 2 s). A feed that accepts, sends a frame and drops
 * therefore meets growing delays up to the cap (about two handshakes a minute at the default
 * 30 s cap), never a reconnect every few hundred milliseconds: Finnhub allows one connection per
 * key and answers too many requests with 429s. Why 2 s and not a minute: a connection that
 * streamed trades for a few seconds before it dropped or went silent is worth getting back at
 * once (the fault suite requires resubscribing within 2 s when the feed drops every 10 s, or goes
 * silent after 3 s), and even a feed that always drops right after 2 s is dialled at most once per
 * 2.25 s, under 27 handshakes a minute, below Finnhub's 60 requests a minute.
 *
 * Never two open connections for one key: a new connection is only opened once the previous one
 * has closed (or did not finish closing within `closeTimeoutMs`, which only a dead peer does).
 *
 * The API key is sent in the URL, as Finnhub requires; every URL or error text that reaches a
 * log line has the key removed.
 *
 * @module
 */
import { type Clock, systemClock, type TimerId } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { redact, type Secret } from "../shared/secret.ts";
import { type BackoffOptions, reconnectDelay, refusedHandshakeDelay } from "./backoff.ts";
import type { ProducerMetrics } from "./metrics.ts";

/** The part of the WebSocket API the client uses, so tests can pass a fake. */
export interface WebSocketLike {
  binaryType: BinaryType;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Opens a WebSocket to `url`. Default: Deno's native `WebSocket`. */
export type WebSocketFactory = (url: string) => WebSocketLike;

/** Where a frame came from. */
export interface FrameMeta {
  /** `<run id>-<connection number>`, the connection number counting opened connections from 1. */
  readonly connectionId: string;
  /** Frame number on this connection, from 1, pings and errors included. */
  readonly frameSeq: number;
  /** When the frame was received, epoch ms. */
  readonly receivedAt: number;
}

/**
 * Told when the feed's coverage starts and ends (see `feed_gaps.ts`): a connection has sent its
 * subscriptions; a subscribed connection ended, the feed last known good at `lastGoodMs` (the
 * close, or the last frame before the watchdog gave up); a handshake was refused. Must not throw.
 */
export interface CoverageListener {
  subscribed(connectionId: string, symbols: readonly string[], atMs: number): void;
  lost(cause: "reconnect" | "watchdog", lastGoodMs: number): void;
  refused(): void;
}

/** Options of {@linkcode runFinnhubClient}. */
export interface FinnhubClientOptions {
  /** `ws://` or `wss://` URL without the token. */
  readonly url: string;
  /** Sent as `?token=`; omitted when empty. */
  readonly apiKey: Secret;
  readonly symbols: readonly string[];
  /** Replace the connection when no frame (ping included) arrived for this long, ms. */
  readonly watchdogMs: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  /** Base delay after a 401 or 429 at the handshake, ms. */
  readonly authBackoffMs: number;
  readonly log: Logger;
  readonly metrics: ProducerMetrics;
  /** Called for every frame, in order. Must not throw. */
  readonly onFrame: (data: string | ArrayBuffer, meta: FrameMeta) => void;
  /**
   * Called when the WebSocket layer itself refused a frame (a text frame that is not UTF-8, or
   * one over its 64 MiB limit): the frame's bytes never reach JavaScript and the socket closes.
   * `error` is the layer's message. Numbered as a frame. Must not throw. Default: only logged.
   */
  readonly onUnreadableFrame?: (error: string, meta: FrameMeta) => void;
  /** Stops the client: no more frames are read, the socket is closed. */
  readonly signal: AbortSignal;
  /** Told when coverage starts and ends. Default: nobody. */
  readonly coverage?: CoverageListener;
  /** Prefix of connection ids. Default: 8 random hex digits. */
  readonly runId?: string;
  /** Give up on a handshake after this long, ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** Wait this long for a socket we closed to finish closing, ms. Default 5 000. */
  readonly closeTimeoutMs?: number;
  /**
   * A connection counts as healthy, and the backoff starts over, when a frame arrives after it
   * has been open this long, ms. Default {@linkcode DEFAULT_HEALTHY_AFTER_MS}.
   */
  readonly healthyAfterMs?: number;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
  /** Default `Math.random` (backoff jitter). */
  readonly random?: () => number;
  /** Default: `new WebSocket(url)`. */
  readonly webSocket?: WebSocketFactory;
}

/** A random 8-hex-digit id for one producer run. */
export function newRunId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The URL with the token set (what is dialled) and without it (what may be logged). */
export function feedUrls(url: string, apiKey: Secret): { dial: string; display: string } {
  const parsed = new URL(url);
  parsed.searchParams.delete("token");
  const display = parsed.href;
  if (apiKey.isSet) parsed.searchParams.set("token", apiKey.reveal());
  return { dial: parsed.href, display };
}

/** Default of {@linkcode FinnhubClientOptions.healthyAfterMs}: 2 s (see the module doc). */
export const DEFAULT_HEALTHY_AFTER_MS = 2_000;

/** Deno's WebSocket errors for a frame it refuses to deliver (then it closes the socket). */
const UNREADABLE_FRAME = /invalid utf-?8|frame too large/i;

const REFUSED_STATUS = /\b(?:status(?: code)?:?\s*)(401|429)\b/i;

/**
 * Connects, subscribes and keeps the connection alive until `signal` aborts. Resolves once the
 * last socket is closed. Never rejects: every failure becomes a reconnect.
 */
export function runFinnhubClient(options: FinnhubClientOptions): Promise<void> {
  const client = new FinnhubClient(options);
  return new Promise<void>((resolve) => client.run(resolve));
}

/** One socket, from dialling until it has closed. */
interface Connection {
  readonly socket: WebSocketLike;
  id: string | null;
  frameSeq: number;
  lastFrameAt: number;
  /** When the socket opened, epoch ms (when it was dialled, until then). */
  openedAt: number;
  open: boolean;
  /** Its subscriptions were sent: it covers the feed until it ends. */
  subscribed: boolean;
  closing: boolean;
  /** When we decided to close it ourselves, epoch ms. */
  closingAt: number | null;
  /** Why we are closing it ourselves, for the log. */
  closeReason: string | null;
  refusedStatus: number | null;
  errorText: string | null;
  /** The handshake timeout, then the watchdog, then the close timeout. */
  timer: TimerId | undefined;
}

/**
 * The steps of {@linkcode runFinnhubClient}: connect, subscribe on open, hand frames on, watch
 * for silence, close, and schedule the next connection with its backoff.
 */
class FinnhubClient {
  readonly #options: FinnhubClientOptions;
  readonly #clock: Clock;
  readonly #openSocket: WebSocketFactory;
  readonly #runId: string;
  readonly #connectTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #healthyAfterMs: number;
  readonly #secrets: readonly Secret[];
  readonly #dial: string;
  readonly #display: string;
  readonly #backoff: BackoffOptions;
  #attempts = 0;
  /** Ordinary failures since the last healthy connection: the backoff's exponent. */
  #failures = 0;
  /** Refused handshakes in a row. */
  #refusals = 0;
  /** Connections opened: the number in each connection id. */
  #opened = 0;
  #reconnectTimer: TimerId | undefined;
  #stopped = false;
  /** The one socket that exists, from dialling until it has closed. */
  #current: Connection | undefined;
  #resolve: () => void = () => {};
  /** Bound once, so the listener can be removed. */
  readonly #onAbort = () => this.#stop();

  constructor(options: FinnhubClientOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#openSocket = options.webSocket ?? ((url: string) => new WebSocket(url));
    this.#runId = options.runId ?? newRunId();
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
    this.#healthyAfterMs = options.healthyAfterMs ?? DEFAULT_HEALTHY_AFTER_MS;
    this.#secrets = [options.apiKey];
    ({ dial: this.#dial, display: this.#display } = feedUrls(options.url, options.apiKey));
    this.#backoff = {
      baseMs: options.reconnectBaseMs,
      maxMs: options.reconnectMaxMs,
      random: options.random ?? Math.random,
    };
  }

  /** Starts connecting; `resolve` is called once stopped and the last socket has closed. */
  run(resolve: () => void) {
    this.#resolve = resolve;
    const { signal } = this.#options;
    if (signal.aborted) {
      this.#finish();
      return;
    }
    signal.addEventListener("abort", this.#onAbort, { once: true });
    this.#connect();
  }

  /** Stops reconnecting and closes the socket; `#finish` once it has closed. */
  #stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (this.#current) {
      this.#closeConnection(this.#current, 1000, "producer shutting down");
    } else {
      this.#finish();
    }
  }

  #finish() {
    this.#options.metrics.connectionState = "stopped";
    this.#options.signal.removeEventListener("abort", this.#onAbort);
    this.#resolve();
  }

  /** Dials, with a handshake timeout; the socket's events go to the `#on…` steps. */
  #connect() {
    this.#reconnectTimer = undefined;
    if (this.#stopped) return;
    const { metrics, log } = this.#options;
    this.#attempts++;
    if (this.#attempts > 1) metrics.reconnects++;
    metrics.connectionState = "connecting";
    let socket: WebSocketLike;
    try {
      socket = this.#openSocket(this.#dial);
    } catch (error) {
      log.error("cannot open the WebSocket", {
        url: this.#display,
        error: redact(String(error), this.#secrets),
      });
      this.#scheduleReconnect(null);
      return;
    }
    const connection: Connection = {
      socket,
      id: null,
      frameSeq: 0,
      lastFrameAt: this.#clock.now(),
      openedAt: this.#clock.now(),
      open: false,
      subscribed: false,
      closing: false,
      closingAt: null,
      closeReason: null,
      refusedStatus: null,
      errorText: null,
      timer: undefined,
    };
    this.#current = connection;
    socket.binaryType = "arraybuffer";
    connection.timer = this.#clock.setTimeout(() => {
      connection.timer = undefined;
      log.warn("handshake timed out; abandoning the connection", {
        url: this.#display,
        timeoutMs: this.#connectTimeoutMs,
      });
      this.#closeConnection(connection, 4000, "handshake timeout");
    }, this.#connectTimeoutMs);
    socket.onopen = () => this.#onOpen(connection);
    socket.onmessage = (event: MessageEvent) => this.#onMessage(connection, event);
    socket.onerror = (event: Event) => this.#onError(connection, event);
    socket.onclose = (event: CloseEvent) => {
      if (this.#current !== connection) return;
      this.#closed(connection, event.code, redact(event.reason ?? "", this.#secrets));
    };
  }

  /** Numbers the connection, subscribes every symbol and arms the watchdog. */
  #onOpen(connection: Connection) {
    if (this.#current !== connection || connection.closing) return;
    const { metrics, log, symbols } = this.#options;
    this.#opened++;
    connection.open = true;
    connection.id = `${this.#runId}-${this.#opened}`;
    connection.lastFrameAt = this.#clock.now();
    connection.openedAt = connection.lastFrameAt;
    this.#refusals = 0;
    metrics.connectionsOpened++;
    metrics.connectionState = "open";
    metrics.connectionId = connection.id;
    try {
      for (const symbol of symbols) {
        connection.socket.send(JSON.stringify({ type: "subscribe", symbol }));
      }
    } catch (error) {
      log.warn("subscribing failed; replacing the connection", {
        connectionId: connection.id,
        error: redact(String(error), this.#secrets),
      });
      this.#closeConnection(connection, 4000, "subscribe failed");
      return;
    }
    connection.subscribed = true;
    this.#options.coverage?.subscribed(connection.id, symbols, this.#clock.now());
    log.info("connected and subscribed", {
      url: this.#display,
      connectionId: connection.id,
      symbols: symbols.length,
    });
    this.#armWatchdog(connection, this.#options.watchdogMs);
  }

  /** Hands a frame on, numbered; a frame after `healthyAfterMs` open starts the backoff over. */
  #onMessage(connection: Connection, event: MessageEvent) {
    if (this.#current !== connection || this.#stopped || !connection.open) return;
    const now = this.#clock.now();
    connection.lastFrameAt = now;
    connection.frameSeq++;
    if (this.#failures > 0 && now - connection.openedAt >= this.#healthyAfterMs) this.#failures = 0;
    this.#options.metrics.lastFrameTime = now;
    this.#options.onFrame(event.data as string | ArrayBuffer, {
      connectionId: connection.id!,
      frameSeq: connection.frameSeq,
      receivedAt: now,
    });
  }

  /** Keeps the error for the close log; notes a refused handshake; reports an unreadable frame. */
  #onError(connection: Connection, event: Event) {
    const text = redact(
      (event as ErrorEvent).message ?? String((event as ErrorEvent).error ?? "error"),
      this.#secrets,
    );
    connection.errorText = text;
    const match = REFUSED_STATUS.exec(text);
    if (match && !connection.open) connection.refusedStatus = Number(match[1]);
    if (
      this.#current === connection && connection.open && !connection.closing && !this.#stopped &&
      UNREADABLE_FRAME.test(text)
    ) {
      connection.frameSeq++;
      const meta = {
        connectionId: connection.id!,
        frameSeq: connection.frameSeq,
        receivedAt: this.#clock.now(),
      };
      this.#options.log.warn("the WebSocket layer refused a frame; its bytes are lost", {
        connectionId: meta.connectionId,
        frameSeq: meta.frameSeq,
        error: text,
      });
      this.#options.onUnreadableFrame?.(text, meta);
    }
  }

  /** Replaces the connection once no frame arrived for `watchdogMs`. */
  #armWatchdog(connection: Connection, delay: number) {
    const { watchdogMs } = this.#options;
    if (connection.timer !== undefined) this.#clock.clearTimeout(connection.timer);
    connection.timer = this.#clock.setTimeout(() => {
      connection.timer = undefined;
      if (this.#current !== connection || connection.closing) return;
      const silentFor = this.#clock.now() - connection.lastFrameAt;
      if (silentFor < watchdogMs) {
        this.#armWatchdog(connection, watchdogMs - silentFor);
        return;
      }
      this.#options.metrics.watchdogTimeouts++;
      this.#options.log.warn("no frame from the feed for too long; replacing the connection", {
        connectionId: connection.id,
        silentMs: silentFor,
        watchdogMs,
      });
      this.#closeConnection(connection, 4000, "watchdog: feed silent");
    }, delay);
  }

  /** Closes a connection ourselves and waits (bounded) for it to finish closing. */
  #closeConnection(connection: Connection, code: number, reason: string) {
    if (connection.closing) return;
    connection.closing = true;
    connection.closingAt = this.#clock.now();
    connection.closeReason = reason;
    if (connection.timer !== undefined) this.#clock.clearTimeout(connection.timer);
    connection.timer = this.#clock.setTimeout(() => {
      connection.timer = undefined;
      if (this.#current !== connection) return;
      this.#options.log.warn("the socket did not finish closing; treating it as closed", {
        connectionId: connection.id,
        closeTimeoutMs: this.#closeTimeoutMs,
      });
      this.#closed(connection, 1006, "close timed out");
    }, this.#closeTimeoutMs);
    try {
      connection.socket.close(code, reason);
    } catch {
      // Closing an unopened or already closed socket: its close event still comes, or the
      // timeout above stands in for it.
    }
  }

  /** The connection is gone: clean up, then stop or schedule the next one. */
  #closed(connection: Connection, code: number, reason: string) {
    const { log } = this.#options;
    if (connection.timer !== undefined) this.#clock.clearTimeout(connection.timer);
    connection.timer = undefined;
    const { socket } = connection;
    socket.onopen = socket.onmessage = socket.onerror = null;
    socket.onclose = null;
    this.#current = undefined;
    if (connection.subscribed && !this.#stopped) {
      // Known good until: the last frame of a silent feed; the moment we gave up on a connection
      // ourselves; else the moment it closed.
      const watchdog = connection.closeReason?.startsWith("watchdog") ?? false;
      this.#options.coverage?.lost(
        watchdog ? "watchdog" : "reconnect",
        watchdog ? connection.lastFrameAt : connection.closingAt ?? this.#clock.now(),
      );
    }
    if (this.#stopped) {
      log.info("disconnected", { connectionId: connection.id });
      this.#finish();
      return;
    }
    if (connection.closeReason === null) {
      log.warn(connection.open ? "the feed closed the connection" : "could not connect", {
        url: this.#display,
        connectionId: connection.id,
        code,
        reason: reason || undefined,
        error: connection.errorText ?? undefined,
      });
    }
    this.#scheduleReconnect(connection.refusedStatus);
  }

  /** Waits the backoff (hard after a 401 or 429 at the handshake), then connects again. */
  #scheduleReconnect(refusedStatus: number | null) {
    const { metrics, log } = this.#options;
    metrics.connectionState = "backoff";
    let delay: number;
    if (refusedStatus !== null) {
      this.#refusals++;
      metrics.handshakeRefusals++;
      this.#options.coverage?.refused();
      delay = refusedHandshakeDelay(this.#refusals, this.#options.authBackoffMs, this.#backoff);
      const why = refusedStatus === 401
        ? "the API key was refused (HTTP 401): check FINNHUB_API_KEY"
        : "rate limited (HTTP 429): too many connections or requests for this key";
      metrics.lastError = `handshake refused: ${why}`;
      log.error(`Finnhub refused the handshake: ${why}; backing off hard`, {
        url: this.#display,
        status: refusedStatus,
        retryInMs: delay,
      });
    } else {
      delay = reconnectDelay(this.#failures, this.#backoff);
      this.#failures++;
      log.info("reconnecting after backoff", { retryInMs: delay, attempt: this.#failures });
    }
    this.#reconnectTimer = this.#clock.setTimeout(() => this.#connect(), delay);
  }
}
