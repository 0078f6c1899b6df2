/**
 * Test doubles for the status endpoint's tests: a worker as the report collector shows it, a
 * candle update as gold publishes it, and the status app with the market page mounted as
 * `status/main.ts` mounts it, over a store of the test's own and no Kafka, Cassandra or workers
 * behind it (every source idle and up; also used by the browser login test).
 *
 * @module
 */
import type { Hono } from "hono";
import { silentLogger } from "../shared/log.ts";
import type { WorkerView } from "../shared/report_collector.ts";
import { Secret } from "../shared/secret.ts";
import type { CandleUpdate } from "../shared/types.ts";
import { createStatusApp } from "./app.ts";
import { healthOf } from "./market/health.ts";
import { createMarketHub, type MarketHub } from "./market/hub.ts";
import { mountMarket } from "./market/market.ts";
import type { MarketStore } from "./market/store.ts";

/**
 * A worker `role-1` that is up and running, started a minute before `now` and last reporting a
 * second before it, with no metrics; `overrides` replace any of that.
 */
export function workerView(
  role: WorkerView["role"],
  now: number,
  overrides: Partial<WorkerView> = {},
): WorkerView {
  return {
    workerId: `${role}-1`,
    role,
    host: "h",
    pid: 1,
    startedAt: now - 60_000,
    lastReport: now - 1000,
    state: "running",
    up: true,
    snapshot: { families: [] },
    rates: {},
    ...overrides,
  };
}

/**
 * An update of the forming AAPL 5m candle of 2026-12-01 12:00 UTC, written at 12:03;
 * `overrides` replace any of it.
 */
export function candleUpdate(overrides: Partial<CandleUpdate> = {}): CandleUpdate {
  return {
    symbol: "AAPL",
    interval: "5m",
    windowStart: Date.parse("2026-12-01T12:00:00Z"),
    windowEnd: Date.parse("2026-12-01T12:05:00Z"),
    open: 100,
    high: 101,
    low: 99,
    close: 100.5,
    volume: "12.5",
    vwap: "100.1",
    tradeCount: 3,
    isFinal: false,
    updatedAt: Date.parse("2026-12-01T12:03:00Z"),
    ...overrides,
  };
}

/** Options of {@linkcode marketTestApp}. */
export interface MarketTestAppOptions {
  /** The status token (`""`: none). */
  readonly token: string;
  readonly symbols: readonly string[];
  /** The clock of the app, the market routes and health. Default `Date.now`. */
  readonly now?: () => number;
  /** Default the hub's. */
  readonly healthIntervalMs?: number;
}

/** The app over `store`, and its hub; close the hub when done. */
export function marketTestApp(
  store: MarketStore,
  options: MarketTestAppOptions,
): { app: Hono; hub: MarketHub } {
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
        store,
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
