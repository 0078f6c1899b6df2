/**
 * The market page's reads from Cassandra: candles of every served interval from the gold tables
 * (`readServedCandles` of `shared/served_candles.ts`: 15m and 4h rolled up from 5m and 1h rows)
 * and the latest price. Every statement is prepared, with the whole
 * partition key bound.
 *
 * JSON shape of a candle: times epoch ms; prices (Cassandra `double`) as numbers; `volume` and
 * `vwap` (Cassandra `decimal`, exact) as decimal strings; counts as numbers; `coverage` (0..1, the
 * share of the window's trading time the feed covered) and `gapCount` (feed gaps touching it).
 * Live updates from the fold carry no coverage: the page keeps the coverage /api/candles gave the
 * candle, and takes a missing one as 1 and 0 gaps.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import { readFeedGaps } from "../../shared/feed_gap_table.ts";
import type { CandleRow } from "../../shared/gold_table.ts";
import { readServedCandles } from "../../shared/served_candles.ts";
import type { CandleUpdate } from "../../shared/types.ts";
import type { CandleQuery, GapQuery } from "./params.ts";
import { exportCandles } from "../../export/export.ts";
import type { ExportRequest } from "../../export/request.ts";

/** One candle as the JSON routes give it. */
export interface CandleJson {
  readonly time: number;
  readonly end: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** Exact decimal. */
  readonly volume: string;
  /** Exact decimal; null when the volume is 0. */
  readonly vwap: string | null;
  readonly trades: number;
  readonly final: boolean;
  /** `1 - gap ms / trading ms` of the window (`shared/gap_coverage.ts`); absent on live updates. */
  readonly coverage?: number;
  /** Distinct feed gaps touching the window in trading hours; absent on live updates. */
  readonly gapCount?: number;
}

/** A feed gap as `/api/gaps` gives it. */
export interface GapJson {
  readonly gapId: string;
  /** Epoch ms: the last moment the feed was known good. */
  readonly from: number;
  /** Epoch ms: the first moment it was good again. */
  readonly to: number;
  readonly cause: string;
  readonly symbols: readonly string[];
}

/** The latest price of a symbol. */
export interface LatestJson {
  readonly symbol: string;
  readonly price: number;
  readonly volume: number | null;
  /** Event time of the trade, epoch ms. */
  readonly time: number | null;
  readonly session: string | null;
}

/** What the routes read. */
export interface MarketStore {
  /** Candles of the query, oldest first (the newest `limit` of the range). */
  candles(query: CandleQuery): Promise<CandleJson[]>;
  /** The symbol's feed gaps overlapping the range, by start, at most `limit`. */
  gaps(query: GapQuery): Promise<GapJson[]>;
  latest(symbol: string): Promise<LatestJson | null>;
  /** The bytes of an export, streamed (absent: the route answers 501). */
  exportCandles?(request: ExportRequest): AsyncGenerator<Uint8Array>;
}

/** The JSON of a candle row (or a live update, without coverage), as the routes give candles. */
export function candleJsonOf(candle: CandleRow | CandleUpdate): CandleJson {
  return {
    time: candle.windowStart,
    end: candle.windowEnd,
    open: candle.open,
    high: candle.high,
    low: candle.low,
    close: candle.close,
    volume: candle.volume,
    vwap: candle.vwap,
    trades: candle.tradeCount,
    final: candle.isFinal,
    ...("coverage" in candle ? { coverage: candle.coverage, gapCount: candle.gapCount } : {}),
  };
}

/** What decides whether a rolled-up candle is final. */
export interface MarketStoreOptions {
  /** Gold's allowed lateness (`GOLD_ALLOWED_LATENESS_MS`). */
  readonly allowedLatenessMs: number;
  /** Clock. Default `Date.now`. */
  readonly now?: () => number;
}

/** A store over `session`, reading tables of `keyspace`. */
export function createMarketStore(
  session: cassandra.Client,
  keyspace: string,
  options: MarketStoreOptions,
): MarketStore {
  const now = options.now ?? Date.now;
  const latestQuery =
    `SELECT symbol, price, volume, event_time, session FROM ${keyspace}.latest_prices WHERE symbol = ?`;
  return {
    async candles(query) {
      return (await readServedCandles(session, keyspace, query, {
        now: now(),
        allowedLatenessMs: options.allowedLatenessMs,
      })).map(candleJsonOf);
    },
    exportCandles: (request) =>
      exportCandles(session, keyspace, request, {
        allowedLatenessMs: options.allowedLatenessMs,
        now,
      }),
    async gaps(query) {
      const gaps = await readFeedGaps(session, keyspace, query);
      return gaps.map(({ gapId, from, to, cause, symbols }) => ({
        gapId,
        from,
        to,
        cause,
        symbols,
      }));
    },
    async latest(symbol) {
      const result = await session.execute(latestQuery, [symbol], { prepare: true });
      const row = result.first();
      if (!row) return null;
      const time = row.get("event_time") as Date | null;
      return {
        symbol,
        price: row.get("price"),
        volume: row.get("volume") ?? null,
        time: time ? time.getTime() : null,
        session: row.get("session") ?? null,
      };
    },
  };
}
