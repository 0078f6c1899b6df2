/**
 * The market page's reads from Cassandra: candles from the gold tables and the latest price.
 * Every statement is prepared, with the whole partition key bound (gold: symbol and the bucket,
 * the UTC month for 5m and the UTC year for 1h; a range crossing buckets reads each, newest
 * first, until the limit is reached).
 *
 * JSON shape of a candle: times epoch ms; prices (Cassandra `double`) as numbers; `volume` and
 * `vwap` (Cassandra `decimal`, exact) as decimal strings; counts as numbers.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import type { CandleInterval } from "../../shared/types.ts";
import { formatDecimal, parseDecimal } from "../../processor/gold/decimal.ts";
import { GOLD_TABLE, goldBucketsBetween, windowStart } from "../../processor/gold/window.ts";
import type { CandleQuery } from "./params.ts";

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
  latest(symbol: string): Promise<LatestJson | null>;
}

function decimalText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return formatDecimal(parseDecimal(String(value)));
}

/** A store over `session`, reading tables of `keyspace`. */
export function createMarketStore(session: cassandra.Client, keyspace: string): MarketStore {
  const candleQuery = (interval: CandleInterval) =>
    `SELECT window_start, window_end, open, high, low, close, volume, vwap, trade_count, is_final
       FROM ${keyspace}.${GOLD_TABLE[interval]}
      WHERE symbol = ? AND bucket = ? AND window_start >= ? AND window_start < ?
      LIMIT ?`;
  const latestQuery =
    `SELECT symbol, price, volume, event_time, session FROM ${keyspace}.latest_prices WHERE symbol = ?`;
  return {
    async candles(query) {
      const from = windowStart(query.from, query.interval);
      const buckets = goldBucketsBetween(from, query.to, query.interval).reverse();
      const rows: CandleJson[] = [];
      for (const bucket of buckets) {
        const want = query.limit - rows.length;
        if (want <= 0) break;
        const result = await session.execute(candleQuery(query.interval), [
          query.symbol,
          cassandra.types.LocalDate.fromString(bucket),
          new Date(from),
          new Date(query.to),
          want,
        ], { prepare: true });
        // Rows come newest first (CLUSTERING ORDER BY window_start DESC).
        for (const row of result.rows) {
          rows.push({
            time: (row.get("window_start") as Date).getTime(),
            end: (row.get("window_end") as Date).getTime(),
            open: row.get("open"),
            high: row.get("high"),
            low: row.get("low"),
            close: row.get("close"),
            volume: decimalText(row.get("volume")) ?? "0",
            vwap: decimalText(row.get("vwap")),
            trades: Number(row.get("trade_count") ?? 0n),
            final: row.get("is_final") === true,
          });
        }
      }
      return rows.reverse();
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
