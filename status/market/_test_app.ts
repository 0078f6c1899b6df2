/**
 * The status app with the market page mounted as `status/main.ts` mounts it, over a store of
 * the test's own and no Kafka, Cassandra or workers behind it (every source idle and up): for
 * the market page's unit tests and the browser login test.
 *
 * @module
 */
import type { Hono } from "hono";
import { silentLogger } from "../../shared/log.ts";
import { Secret } from "../../shared/secret.ts";
import { createStatusApp } from "../app.ts";
import { healthOf } from "./health.ts";
import { createMarketHub, type MarketHub } from "./hub.ts";
import { mountMarket } from "./market.ts";
import type { MarketStore } from "./store.ts";

/** Options of {@linkcode marketTestApp}. */
export interface MarketTestAppOptions {
  readonly store: MarketStore;
  /** The status token (`""`: none). */
  readonly token: string;
  readonly symbols: readonly string[];
  /** The clock of the app, the market routes and health. Default `Date.now`. */
  readonly now?: () => number;
  /** Default the hub's. */
  readonly healthIntervalMs?: number;
}

/** The app and its hub; close the hub when done. */
export function marketTestApp(options: MarketTestAppOptions): { app: Hono; hub: MarketHub } {
  const now = options.now ?? Date.now;
  const health = () => Promise.resolve(healthOf([], [], { groups: {}, now: now() }));
  const hub = createMarketHub({
    health,
    log: silentLogger(),
    ...(options.healthIntervalMs === undefined
      ? {}
      : { healthIntervalMs: options.healthIntervalMs }),
  });
  const app = createStatusApp({
    sources: {
      workers: () => [],
      lag: () => Promise.resolve([]),
      kafkaUp: () => Promise.resolve(true),
      cassandraUp: () => Promise.resolve(true),
    },
    token: new Secret(options.token),
    expectedWorkers: [],
    ...(options.now ? { now: options.now } : {}),
    extend: (app) =>
      mountMarket(app, {
        store: options.store,
        hub,
        symbols: options.symbols,
        health,
        live: () => true,
        log: silentLogger(),
        ...(options.now ? { now: options.now } : {}),
      }),
  });
  return { app, hub };
}
