/**
 * The live market page on the status endpoint:
 * - `GET /`: the page (symbol picker, 5m/1h candlesticks with volume, latest price, health
 *   strip), its files under `/assets/`;
 * - `GET /api/symbols`: `{ symbols }`, the configured symbols and any others seen live;
 * - `GET /api/candles?symbol=&interval=5m|1h&from=&to=&limit=`: `{ symbol, interval, from, to,
 *   candles }`, oldest first (see `params.ts` for the rules and defaults, `store.ts` for the
 *   JSON of a candle);
 * - `GET /api/gaps?symbol=&from=&to=&limit=`: `{ symbol, from, to, limit, gaps }`, the symbol's
 *   feed gaps overlapping the range by start (`gapId`, `from`, `to`, `cause`, `symbols`), at most
 *   1,000;
 * - `GET /api/latest?symbol=`: the latest trade price, or 404 when none was seen;
 * - `GET /api/health`: the health strip as JSON, plus whether live updates flow;
 * - `GET /api/stream?symbol=`: server-sent `update` events (see `hub.ts`), at most 4 a second.
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
import { createAssets } from "./assets.ts";
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
import { groupIdOf, STAGES } from "../../shared/topology.ts";
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

  for (
    const route of ["/", "/assets/app.js", "/assets/style.css", "/assets/lightweight-charts.mjs"]
  ) {
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
    let query;
    try {
      query = parseCandleQuery(queryOf(c.req.url), now());
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
  const store = createMarketStore(session, config.cassandra.keyspace);
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
