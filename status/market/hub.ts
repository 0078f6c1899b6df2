/**
 * Fans candle updates and the health strip out to the market page's server-sent-event clients.
 *
 * Each client has its own throttle (`throttle.ts`): updates are coalesced per candle (symbol,
 * interval and window, so the final state of a closing window is never replaced by the next
 * window's first), health under one key, and a client gets one `update` event at most every
 * `minIntervalMs` (250 ms: at most 4 events a second) whatever the feed's rate. A client that
 * does not read is not buffered for: its stream holds a few events, then its throttle keeps only
 * the newest value per key until it reads again.
 *
 * Health is computed once a second while at least one client is connected, never otherwise.
 *
 * @module
 */
import { describeError, type Logger } from "../../shared/log.ts";
import type { CandleUpdate } from "../../shared/types.ts";
import type { MarketHealth } from "./health.ts";
import type { CandleJson } from "./store.ts";
import { createThrottle, REAL_TIMERS, type Throttle, type Timers } from "./throttle.ts";

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
  /** Least time between two events to one client. Default 250 ms. */
  readonly minIntervalMs?: number;
  /** How often health is computed while clients are connected. Default 1000 ms. */
  readonly healthIntervalMs?: number;
  /** Events a client's stream holds before its throttle keeps values instead. Default 8. */
  readonly clientBufferEvents?: number;
  /** Default real timers. */
  readonly timers?: Timers;
}

/** The hub. */
export interface MarketHub {
  /** Takes in one candle update from the feed. */
  publish(update: CandleUpdate): void;
  /** A new client's event stream: one symbol's candles, or all; health either way. */
  connect(filter: { readonly symbol?: string }): ReadableStream<Uint8Array>;
  /** Clients connected now. */
  clients(): number;
  /** Symbols seen on the feed since start. */
  symbolsSeen(): string[];
  /** Ends every client's stream and stops the health timer. */
  close(): void;
}

/** The JSON of a candle update, as the routes give candles. */
export function liveCandleOf(update: CandleUpdate): LiveCandle {
  return {
    symbol: update.symbol,
    interval: update.interval,
    time: update.windowStart,
    end: update.windowEnd,
    open: update.open,
    high: update.high,
    low: update.low,
    close: update.close,
    volume: update.volume,
    vwap: update.vwap,
    trades: update.tradeCount,
    final: update.isFinal,
  };
}

type Item = { kind: "candle"; candle: LiveCandle } | { kind: "health"; health: MarketHealth };

interface Client {
  readonly symbol: string | undefined;
  readonly throttle: Throttle<Item>;
  readonly end: () => void;
}

const encoder = new TextEncoder();

/** Encodes one server-sent event. */
export function sseEvent(event: string, data: unknown): Uint8Array {
  return encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** Creates a hub; its health timer runs only while clients are connected. */
export function createMarketHub(options: MarketHubOptions): MarketHub {
  const timers = options.timers ?? REAL_TIMERS;
  const minIntervalMs = options.minIntervalMs ?? 250;
  const healthIntervalMs = options.healthIntervalMs ?? 1000;
  const bufferEvents = options.clientBufferEvents ?? 8;
  const clients = new Set<Client>();
  /** The newest candle of each symbol and interval, for a client that just connected. */
  const newest = new Map<string, LiveCandle>();
  let healthTimer: unknown;
  let lastHealth: MarketHealth | undefined;
  let healthBusy = false;
  let healthFailures = 0;

  function refreshHealth(): void {
    healthTimer = undefined;
    if (clients.size === 0) return;
    healthTimer = timers.setTimeout(refreshHealth, healthIntervalMs);
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

  return {
    publish(update) {
      const candle = liveCandleOf(update);
      const key = `${candle.interval}|${candle.symbol}`;
      const known = newest.get(key);
      if (!known || known.time <= candle.time) newest.set(key, candle);
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
            timers,
            emit(items) {
              if ((controller.desiredSize ?? 1) <= 0) return false;
              const data: { candles: LiveCandle[]; health?: MarketHealth } = { candles: [] };
              for (const item of items) {
                if (item.kind === "candle") data.candles.push(item.candle);
                else data.health = item.health;
              }
              controller.enqueue(sseEvent("update", data));
              return true;
            },
          });
          client = {
            symbol: filter.symbol,
            throttle,
            end: () => {
              try {
                controller.close();
              } catch { /* already closed */ }
            },
          };
          clients.add(client);
          controller.enqueue(encoder.encode("retry: 2000\n\n"));
          for (const candle of newest.values()) {
            if (filter.symbol === undefined || filter.symbol === candle.symbol) {
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
    symbolsSeen: () => [...new Set([...newest.values()].map((c) => c.symbol))].sort(),
    close() {
      for (const client of clients) {
        client.throttle.close();
        client.end();
      }
      clients.clear();
      if (healthTimer !== undefined) timers.clearTimeout(healthTimer);
      healthTimer = undefined;
    },
  };
}
