/**
 * Fans candle updates and the health strip out to the market page's server-sent-event clients.
 *
 * Each client has its own throttle (`throttle.ts`): updates are coalesced per candle (symbol,
 * interval and window, so the final state of a closing window is never replaced by the next
 * window's first), health under one key, and a client gets one `update` event at most every
 * `minIntervalMs` (100 ms: at most 10 events a second) whatever the feed's rate. A client that
 * does not read is not buffered for: its stream holds a few events, then its throttle keeps only
 * the newest value per key until it reads again.
 *
 * Health is computed once a second while at least one client is connected, never otherwise. A
 * stream that had no event for `keepAliveMs` (health failing, no candles) gets a comment line,
 * so the server's idle timeout never cuts a live stream.
 *
 * Bounded whatever the feed carries (a flood of 200,000 distinct symbols took the status
 * process from 168 to 330 MB and sent a client without a symbol a 64 MB first event): the hub
 * remembers the newest candles of at most `maxSymbols` symbols, forgetting the least recently
 * updated first (`pipeline_status_market_symbols_evicted_total`); each client holds at most two
 * pending candles per stored interval per symbol, `8 * maxSymbols` with four intervals (beyond,
 * the oldest pending is dropped and counted in
 * `pipeline_status_market_stream_candles_dropped_total`) and gets at most `maxCandlesPerEvent`
 * candles an event, the rest in the following ones.
 *
 * @module
 */
import { type Clock, systemClock } from "../../shared/clock.ts";
import { describeError, type Logger } from "../../shared/log.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import type { CandleUpdate } from "../../shared/types.ts";
import { INTERVALS } from "../../shared/gold_table.ts";
import type { MarketHealth } from "./health.ts";
import { type CandleJson, candleJsonOf } from "./store.ts";
import { createThrottle, type Throttle } from "./throttle.ts";

/** A candle in an SSE event: a {@linkcode CandleJson} with its symbol and interval. */
export interface LiveCandle extends CandleJson {
  readonly symbol: string;
  readonly interval: string;
}

/** The data of one `update` event. */
export interface UpdateEvent {
  readonly candles: LiveCandle[];
  readonly health?: MarketHealth;
}

/** Options of {@linkcode createMarketHub}. */
export interface MarketHubOptions {
  readonly health: () => Promise<MarketHealth>;
  readonly log: Logger;
  /**
   * Least time between two events to one client. Default 100 ms: an update waits for it 50 ms on
   * average and 100 ms at most, on a path whose budget is a second from trade to page at 5,000
   * trades/s (bench:pipeline --live-page); 250 ms cost 125 and 250 ms of it.
   */
  readonly minIntervalMs?: number;
  /** How often health is computed while clients are connected. Default 1000 ms. */
  readonly healthIntervalMs?: number;
  /** Events a client's stream holds before its throttle keeps values instead. Default 8. */
  readonly clientBufferEvents?: number;
  /** Symbols whose newest candles the hub remembers. Default {@linkcode MAX_SYMBOLS}. */
  readonly maxSymbols?: number;
  /** Most candles in one event. Default {@linkcode MAX_CANDLES_PER_EVENT}. */
  readonly maxCandlesPerEvent?: number;
  /** A stream with no event for this long gets a keep-alive comment. Default 15000 ms. */
  readonly keepAliveMs?: number;
  /** Where the bounds count what they drop. Default a registry of its own. */
  readonly metrics?: MetricsRegistry;
  /** Default {@linkcode systemClock}. */
  readonly clock?: Clock;
}

/** The hub. */
export interface MarketHub {
  /** Takes in one candle update from the feed. */
  publish(update: CandleUpdate): void;
  /** A new client's event stream: one symbol's candles, or all; health either way. */
  connect(filter: { readonly symbol?: string }): ReadableStream<Uint8Array>;
  /** Clients connected now. */
  clients(): number;
  /** Symbols seen on the feed, at most `maxSymbols`: the most recently updated. */
  symbolsSeen(): string[];
  /** Ends every client's stream and stops the health timer. */
  close(): void;
}

/** The JSON of a candle update, as the routes give candles. */
export function liveCandleOf(update: CandleUpdate): LiveCandle {
  return { symbol: update.symbol, interval: update.interval, ...candleJsonOf(update) };
}

/** Symbols the hub remembers by default: 20 times Finnhub's 50-symbol limit. */
export const MAX_SYMBOLS = 1000;

/** Candles in one event by default (about 250 bytes each). */
export const MAX_CANDLES_PER_EVENT = 200;

type Item = { kind: "candle"; candle: LiveCandle } | { kind: "health"; health: MarketHealth };

interface Client {
  readonly symbol: string | undefined;
  readonly throttle: Throttle<Item>;
  readonly end: () => void;
  /** Sends a keep-alive comment if the stream has room. */
  readonly keepAlive: () => void;
  lastSent: number;
}

const encoder = new TextEncoder();

/** A comment line: EventSource ignores it, the connection sees bytes. */
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");

/** Encodes one server-sent event. */
export function sseEvent(event: string, data: unknown): Uint8Array {
  return encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** Creates a hub; its health timer runs only while clients are connected. */
export function createMarketHub(options: MarketHubOptions): MarketHub {
  const clock = options.clock ?? systemClock;
  const minIntervalMs = options.minIntervalMs ?? 100;
  const healthIntervalMs = options.healthIntervalMs ?? 1000;
  const bufferEvents = options.clientBufferEvents ?? 8;
  const maxSymbols = options.maxSymbols ?? MAX_SYMBOLS;
  const maxCandlesPerEvent = options.maxCandlesPerEvent ?? MAX_CANDLES_PER_EVENT;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const metrics = options.metrics ?? new MetricsRegistry();
  const evicted = metrics.counter(
    "pipeline_status_market_symbols_evicted_total",
    `Symbols the market page's live hub forgot, least recently updated first, to remember at most ${maxSymbols}.`,
  );
  const dropped = metrics.counter(
    "pipeline_status_market_stream_candles_dropped_total",
    "Candle updates a live market stream dropped because it held too many pending for a client that did not keep up.",
  );
  const clients = new Set<Client>();
  /**
   * The newest candle of each interval of each symbol, for a client that just connected. Map
   * order is update order: the first symbol is the least recently updated.
   */
  const newest = new Map<string, Map<string, LiveCandle>>();
  let healthTimer: unknown;
  let lastHealth: MarketHealth | undefined;
  let healthBusy = false;
  let healthFailures = 0;

  function refreshHealth(): void {
    healthTimer = undefined;
    if (clients.size === 0) return;
    healthTimer = clock.setTimeout(refreshHealth, healthIntervalMs);
    const at = clock.now();
    for (const client of clients) if (at - client.lastSent >= keepAliveMs) client.keepAlive();
    if (healthBusy) return;
    healthBusy = true;
    options.health().then((health) => {
      lastHealth = health;
      healthFailures = 0;
      for (const client of clients) client.throttle.offer("health", { kind: "health", health });
    }, (error) => {
      if (healthFailures++ % 60 === 0) {
        options.log.warn("market health unavailable", { error: describeError(error) });
      }
    }).finally(() => healthBusy = false);
  }

  function candleKey(c: LiveCandle): string {
    return `${c.interval}|${c.symbol}|${c.time}`;
  }

  /** Remembers `candle` as its symbol's newest of its interval, unless a later one is known. */
  function remember(candle: LiveCandle): void {
    const intervals = newest.get(candle.symbol) ?? new Map<string, LiveCandle>();
    const known = intervals.get(candle.interval);
    if (known && known.time > candle.time) return;
    intervals.set(candle.interval, candle);
    newest.delete(candle.symbol); // to the end: the most recently updated
    newest.set(candle.symbol, intervals);
    while (newest.size > maxSymbols) {
      newest.delete(newest.keys().next().value as string);
      evicted.inc();
    }
  }

  return {
    publish(update) {
      const candle = liveCandleOf(update);
      remember(candle);
      for (const client of clients) {
        if (client.symbol !== undefined && client.symbol !== candle.symbol) continue;
        client.throttle.offer(candleKey(candle), { kind: "candle", candle });
      }
    },
    connect(filter) {
      let client: Client | undefined;
      return new ReadableStream<Uint8Array>({
        start(controller) {
          const throttle = createThrottle<Item>({
            minIntervalMs,
            clock,
            // A closing window and the next one's first update of each interval, and health.
            maxPending: 2 * INTERVALS.length * maxSymbols + 1,
            onDrop: () => dropped.inc(),
            maxBatch: maxCandlesPerEvent,
            emit(items) {
              if ((controller.desiredSize ?? 1) <= 0) return false;
              const data: { candles: LiveCandle[]; health?: MarketHealth } = { candles: [] };
              for (const item of items) {
                if (item.kind === "candle") data.candles.push(item.candle);
                else data.health = item.health;
              }
              controller.enqueue(sseEvent("update", data));
              client!.lastSent = clock.now();
              return true;
            },
          });
          client = {
            symbol: filter.symbol,
            throttle,
            lastSent: clock.now(),
            end: () => {
              try {
                controller.close();
              } catch { /* already closed */ }
            },
            keepAlive: () => {
              if ((controller.desiredSize ?? 1) <= 0) return;
              controller.enqueue(KEEP_ALIVE);
              client!.lastSent = clock.now();
            },
          };
          clients.add(client);
          controller.enqueue(encoder.encode("retry: 2000\n\n"));
          const known = filter.symbol === undefined
            ? [...newest.values()]
            : [newest.get(filter.symbol) ?? new Map<string, LiveCandle>()];
          for (const intervals of known) {
            for (const candle of intervals.values()) {
              throttle.offer(candleKey(candle), { kind: "candle", candle });
            }
          }
          if (lastHealth) throttle.offer("health", { kind: "health", health: lastHealth });
          if (healthTimer === undefined) refreshHealth();
        },
        cancel() {
          if (!client) return;
          client.throttle.close();
          clients.delete(client);
        },
      }, new CountQueuingStrategy({ highWaterMark: bufferEvents }));
    },
    clients: () => clients.size,
    symbolsSeen: () => [...newest.keys()].sort(),
    close() {
      for (const client of clients) {
        client.throttle.close();
        client.end();
      }
      clients.clear();
      if (healthTimer !== undefined) clock.clearTimeout(healthTimer);
      healthTimer = undefined;
    },
  };
}
