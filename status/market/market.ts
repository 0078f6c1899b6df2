/**
 * The live market page on the status endpoint:
 * - `GET /`: the page (a watchlist, then a symbol's candlesticks with volume, VWAP, a crosshair
 *   legend and the feed gaps, latest price, health strip: see `page/app.js`), its files under
 *   `/assets/`;
 * - `GET /api/symbols`: `{ symbols }`, the configured symbols and any others seen live;
 * - `GET /api/candles?symbol=&interval=1m|5m|15m|1h|4h|1d&from=&to=&limit=`: `{ symbol,
 *   interval, from, to, candles }`, oldest first (see `params.ts` for the rules and defaults,
 *   `store.ts` for the JSON of a candle; 15m and 4h are rolled up from 5m and 1h rows, and have
 *   no live updates: the stream carries gold's 1m, 5m, 1h and 1d); with `format=csv|parquet`
 *   (and `symbol`, `interval`, `from`, `to`, all required) every candle of the range as a file
 *   download, streamed (`export/`);
 * - `GET /api/gaps?symbol=&from=&to=&limit=`: `{ symbol, from, to, limit, gaps }`, the symbol's
 *   feed gaps overlapping the range by start (`gapId`, `from`, `to`, `cause`, `symbols`), at most
 *   1,000;
 * - `GET /api/latest?symbol=`: the latest trade price, or 404 when none was seen;
 * - `GET /api/health`: the health strip as JSON, plus whether live updates flow;
 * - `GET /api/stream?symbol=`: server-sent `update` events (see `hub.ts`), at most 10 a second;
 * - `GET /api/watchlist`: `{ time, interval, rows, omitted }`, a row per symbol (the symbols of
 *   `/api/symbols`, at most `MAX_WATCHLIST_SYMBOLS`; `omitted` counts the rest) with its last
 *   price, change since the session's open, the day's volume and windows (see `watchlist.ts`),
 *   read from the day's 5m candles, at most 8 symbols at a time, and computed at most once every
 *   2 s whatever the number of clients (a request within 2 s of the last gets its answer).
 *
 * A bad parameter is a 400 `{ error }` naming it; Cassandra unavailable is a 503. The routes sit
 * behind the status endpoint's token check (`app.ts`), which the page passes with a cookie.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Context, Hono } from "hono";
import type { Kafka } from "kafkajs";
import type { Config } from "../../shared/config.ts";
import { describeError, type Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { StatusSources } from "../app.ts";
import { ASSET_ROUTES, createAssets } from "./assets.ts";
import { createCandleFeed } from "./feed.ts";
import { healthOf, type MarketHealth } from "./health.ts";
import { createMarketHub, type MarketHub } from "./hub.ts";
import {
  parseCandleQuery,
  parseGapQuery,
  parseLatestQuery,
  parseNoQuery,
  parseStreamQuery,
  queryOf,
} from "./params.ts";
import { createMarketStore, type MarketStore } from "./store.ts";
import {
  CONTENT_TYPE,
  exportFileName,
  parseExportRequest,
  singleValues,
} from "../../export/request.ts";
import { groupIdOf, STAGES } from "../../shared/topology.ts";
import { INTERVAL_MS } from "../../shared/gold_table.ts";
import {
  tradingDayOf,
  WATCHLIST_INTERVAL,
  type WatchlistRow,
  watchlistRow,
  watchlistSymbols,
} from "./watchlist.ts";
import type { WireCodec } from "../../shared/wire.ts";

/** Options of {@linkcode mountMarket}. */
export interface MarketRoutesOptions {
  readonly store: MarketStore;
  readonly hub: MarketHub;
  /** The configured symbols, listed first. */
  readonly symbols: readonly string[];
  readonly health: () => Promise<MarketHealth>;
  /** Whether live updates flow (the feed joined its group). */
  readonly live: () => boolean;
  readonly log: Logger;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
  /** How long a computed watchlist is served again. Default 2000 ms. */
  readonly watchlistCacheMs?: number;
}

/** The JSON of `/api/watchlist`. */
export interface WatchlistJson {
  /** When it was computed, epoch ms. */
  readonly time: number;
  /** The interval of the candles it was read from (and of the live updates that amend it). */
  readonly interval: string;
  readonly rows: WatchlistRow[];
  /** Symbols known but left out (beyond `MAX_WATCHLIST_SYMBOLS`). */
  readonly omitted: number;
}

/** Calls `fn` on every item, at most `limit` at a time; results in the items' order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Reads the day's candles of every listed symbol and builds the watchlist at `time`. */
export async function computeWatchlist(
  store: MarketStore,
  symbols: readonly string[],
  seen: readonly string[],
  time: number,
): Promise<WatchlistJson> {
  const listed = watchlistSymbols(symbols, seen);
  const known = new Set([...symbols, ...seen]).size;
  const size = INTERVAL_MS[WATCHLIST_INTERVAL];
  const rows = await mapLimited(listed, 8, async (symbol) => {
    const day = tradingDayOf(symbol, time);
    const candles = await store.candles({
      symbol,
      interval: WATCHLIST_INTERVAL,
      from: day.from,
      to: day.to,
      limit: Math.ceil((day.to - day.from) / size),
    });
    return watchlistRow(symbol, time, candles);
  });
  return { time, interval: WATCHLIST_INTERVAL, rows, omitted: known - listed.length };
}

function badRequest(c: Context, error: unknown): Response {
  if (error instanceof RangeError) return c.json({ error: error.message }, 400);
  throw error;
}

/** Mounts the page and the JSON routes on `app`. */
export function mountMarket(app: Hono, options: MarketRoutesOptions): void {
  const { store, hub, log } = options;
  const now = options.now ?? Date.now;
  const assets = createAssets();

  function unavailable(c: Context, error: unknown): Response {
    log.warn("market read failed", { path: c.req.path, error: describeError(error) });
    return c.json({ error: `Cassandra read failed: ${describeError(error)}` }, 503);
  }

  // X-Content-Type-Options: nosniff is set on every response by app.ts.
  app.use("*", async (c, next) => {
    await next();
    c.res.headers.set("Referrer-Policy", "no-referrer");
  });

  for (const route of ASSET_ROUTES) {
    app.get(route, async (c) => {
      const asset = await assets.get(route);
      if (!asset) return c.notFound();
      const headers: Record<string, string> = {
        ...asset.headers,
        "Content-Type": asset.contentType,
        "Cache-Control": asset.cacheControl,
      };
      // Compressed once at load rather than by Deno.serve on every request (200 kB of script).
      if (asset.gzip && /\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) {
        headers["Content-Encoding"] = "gzip";
        headers["Vary"] = "Accept-Encoding";
        return c.body(asset.gzip as Uint8Array<ArrayBuffer>, 200, headers);
      }
      return c.body(asset.body as Uint8Array<ArrayBuffer>, 200, headers);
    });
  }

  app.get("/api/symbols", (c) => {
    try {
      parseNoQuery(queryOf(c.req.url));
    } catch (error) {
      return badRequest(c, error);
    }
    const seen = hub.symbolsSeen().filter((s) => !options.symbols.includes(s));
    return c.json({ symbols: [...options.symbols, ...seen] });
  });

  app.get("/api/candles", async (c) => {
    const { format, ...params } = queryOf(c.req.url);
    if (format !== undefined && !(format.length === 1 && format[0] === "json")) {
      return await exportResponse(c, format);
    }
    let query;
    try {
      query = parseCandleQuery(params, now());
    } catch (error) {
      return badRequest(c, error);
    }
    try {
      const candles = await store.candles(query);
      return c.json({ ...query, candles });
    } catch (error) {
      return unavailable(c, error);
    }
  });

  /** `/api/candles?format=csv|parquet`: the export, streamed (`export/`). */
  async function exportResponse(c: Context, format: readonly string[]): Promise<Response> {
    let request;
    try {
      if (format.length > 1) throw new RangeError("parameter 'format' is given more than once");
      if (!["csv", "parquet"].includes(format[0]!)) {
        throw new RangeError(
          `parameter 'format' must be one of json, csv, parquet, got ${
            JSON.stringify(format[0]!.slice(0, 20))
          }`,
        );
      }
      request = parseExportRequest(singleValues(queryOf(c.req.url)));
    } catch (error) {
      return badRequest(c, error);
    }
    if (!store.exportCandles) return c.json({ error: "exports are not available here" }, 501);
    const chunks = store.exportCandles(request);
    let first: IteratorResult<Uint8Array>;
    try {
      // The first chunk is read before answering, so Cassandra down is a 503, not a cut file.
      first = await chunks.next();
    } catch (error) {
      return unavailable(c, error);
    }
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        if (!first.done) yield first.value;
        yield* chunks;
      } catch (error) {
        // Headers are sent: the connection is cut, so the client sees an incomplete transfer.
        log.warn("export failed after it started", { error: describeError(error) });
        throw error;
      } finally {
        await chunks.return(undefined);
      }
    }
    return new Response(ReadableStream.from(body()), {
      headers: {
        "Content-Type": CONTENT_TYPE[request.format],
        "Content-Disposition": `attachment; filename="${exportFileName(request)}"`,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
      },
    });
  }

  app.get("/api/gaps", async (c) => {
    let query;
    try {
      query = parseGapQuery(queryOf(c.req.url), now());
    } catch (error) {
      return badRequest(c, error);
    }
    try {
      const gaps = await store.gaps(query);
      return c.json({ ...query, gaps });
    } catch (error) {
      return unavailable(c, error);
    }
  });

  app.get("/api/latest", async (c) => {
    let symbol;
    try {
      symbol = parseLatestQuery(queryOf(c.req.url)).symbol;
    } catch (error) {
      return badRequest(c, error);
    }
    try {
      const latest = await store.latest(symbol);
      if (!latest) return c.json({ error: `no trade of ${symbol} seen yet` }, 404);
      return c.json(latest);
    } catch (error) {
      return unavailable(c, error);
    }
  });

  app.get("/api/health", async (c) => {
    try {
      parseNoQuery(queryOf(c.req.url));
    } catch (error) {
      return badRequest(c, error);
    }
    return c.json({ ...(await options.health()), live: options.live(), clients: hub.clients() });
  });

  const watchlistCacheMs = options.watchlistCacheMs ?? 2000;
  let watchlist: { at: number; json: Promise<WatchlistJson> } | undefined;
  app.get("/api/watchlist", async (c) => {
    try {
      parseNoQuery(queryOf(c.req.url));
    } catch (error) {
      return badRequest(c, error);
    }
    const at = now();
    if (!watchlist || at - watchlist.at >= watchlistCacheMs || at < watchlist.at) {
      const json = computeWatchlist(store, options.symbols, hub.symbolsSeen(), at);
      const entry = { at, json };
      watchlist = entry;
      json.catch(() => {
        if (watchlist === entry) watchlist = undefined;
      });
    }
    try {
      return c.json(await watchlist.json);
    } catch (error) {
      return unavailable(c, error);
    }
  });

  app.get("/api/stream", (c) => {
    let filter;
    try {
      filter = parseStreamQuery(queryOf(c.req.url));
    } catch (error) {
      return badRequest(c, error);
    }
    return new Response(hub.connect(filter), {
      headers: {
        "Content-Type": "text/event-stream; charset=utf-8",
        // no-transform: Deno.serve must not compress (and so buffer) the stream.
        "Cache-Control": "no-cache, no-transform",
        "X-Content-Type-Options": "nosniff",
      },
    });
  });

  app.all("/api/*", (c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
}

/** Options of {@linkcode createMarketService}. */
export interface MarketServiceOptions {
  readonly config: Config;
  readonly kafka: Kafka;
  readonly session: cassandra.Client;
  readonly sources: Pick<StatusSources, "workers" | "lag">;
  /** Decodes the candle updates (see `feed.ts`). */
  readonly wire: WireCodec;
  readonly log: Logger;
  /** The status endpoint's own metrics (the hub's bounds count there). */
  readonly metrics?: MetricsRegistry;
}

/** The market page with its live feed, wired from the status endpoint's clients. */
export interface MarketService {
  /** For `createStatusApp({ extend })`. */
  mount(app: Hono): void;
  /** Starts the live feed in the background. */
  start(): void;
  /** Whether live updates flow. */
  live(): boolean;
  stop(): Promise<void>;
}

/** Builds the market page over the status endpoint's Kafka and Cassandra clients. */
export function createMarketService(options: MarketServiceOptions): MarketService {
  const { config, kafka, session, sources, log } = options;
  const groups = Object.fromEntries(STAGES.map((stage) => [groupIdOf(config, stage), stage]));
  const health = async () =>
    healthOf(sources.workers(), await sources.lag().catch(() => undefined), {
      groups,
      now: Date.now(),
    });
  const hub = createMarketHub({
    health,
    log,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  const feed = createCandleFeed({
    kafka,
    topic: config.kafka.topics.candles,
    groupId: `${config.kafka.groupPrefix}.status-market-${crypto.randomUUID().slice(0, 8)}`,
    wire: options.wire,
    log,
    onUpdate: (update) => hub.publish(update),
  });
  const store = createMarketStore(session, config.cassandra.keyspace, {
    allowedLatenessMs: config.gold.allowedLatenessMs,
  });
  return {
    mount: (app) =>
      mountMarket(app, {
        store,
        hub,
        symbols: config.finnhub.symbols,
        health,
        live: () => feed.live(),
        log,
      }),
    start: () => feed.start(),
    live: () => feed.live(),
    async stop() {
      hub.close();
      await feed.stop();
    },
  };
}
