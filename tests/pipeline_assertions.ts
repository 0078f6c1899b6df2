/**
 * Reading the pipeline's tables and dead-letter topic back, and comparing them with the
 * independent reference: shared by the processor end-to-end and fault tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import type { Config } from "../shared/config.ts";
import { hourBucket } from "../shared/buckets.ts";
import { createKafka } from "../shared/kafka.ts";
import { silentLogger } from "../shared/log.ts";
import type { DeadLetter } from "../shared/types.ts";
import {
  candleRowOf,
  GOLD_TABLE,
  goldBucketsBetween,
  hasCandle,
  type Interval,
  INTERVALS,
} from "../shared/gold_table.ts";
import { testWire, waitFor } from "./helpers.ts";
import { randomId } from "../shared/random.ts";
import type { Reference } from "./reference.ts";
import type { SentTrade } from "./trade_feed.ts";

/** Gold rows as the reference prints them: symbol -> window start (ms, as text) -> candle. */
export type GoldRows = Record<string, Record<string, Record<string, unknown>>>;

/** Every gold row of the reference's symbols in [from, to), as comparable candles. */
export async function readGold(
  client: cassandra.Client,
  interval: Interval,
  symbols: readonly string[],
  from: number,
  to: number,
): Promise<GoldRows> {
  const out: GoldRows = {};
  for (const symbol of symbols) {
    for (const bucket of goldBucketsBetween(from, to, interval)) {
      const result = await client.execute(
        `SELECT * FROM ${GOLD_TABLE[interval]} WHERE symbol = ? AND bucket = ?`,
        [symbol, cassandra.types.LocalDate.fromString(bucket)],
        { prepare: true, fetchSize: 10_000 },
      );
      for (const row of result.rows) {
        if (!hasCandle(row)) continue; // only a feed gap's columns: a window without trades
        const c = candleRowOf(row, interval);
        (out[symbol] ??= {})[String(c.windowStart)] = {
          open: c.open,
          close: c.close,
          high: c.high,
          low: c.low,
          volume: c.volume,
          vwap: c.vwap,
          count: c.tradeCount,
        };
      }
    }
  }
  return out;
}

/** The sum of `trade_count` over gold rows. */
export function goldTradeCount(rows: GoldRows): number {
  let total = 0;
  for (const windows of Object.values(rows)) {
    for (const candle of Object.values(windows)) total += candle["count"] as number;
  }
  return total;
}

/** The first clustering column of each hour-bucketed table: the cheapest column to page through. */
const FIRST_CLUSTERING = {
  trades_bronze: "source_partition",
  trades_silver: "event_time",
} as const;

/**
 * Counts rows of an hour-bucketed table per symbol over the given hours. Pages through one
 * clustering column instead of `SELECT COUNT(*)`: a count is one request that must finish within
 * Cassandra's read timeout, and a symbol-hour at load rates holds close to a million rows; a page
 * of 10,000 keys is a request of its own.
 */
export async function countRows(
  client: cassandra.Client,
  table: "trades_bronze" | "trades_silver",
  symbols: readonly string[],
  hours: readonly number[],
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const query = `SELECT ${FIRST_CLUSTERING[table]} FROM ${table} WHERE symbol = ? AND bucket = ?`;
  for (const symbol of symbols) {
    for (const hour of hours) {
      let n = 0;
      let pageState: string | undefined;
      do {
        const result = await client.execute(query, [symbol, new Date(hour)], {
          prepare: true,
          fetchSize: 10_000,
          readTimeout: 60_000,
          ...(pageState === undefined ? {} : { pageState }),
        });
        n += result.rowLength;
        pageState = result.pageState ?? undefined;
      } while (pageState);
      if (n > 0) counts.set(symbol, (counts.get(symbol) ?? 0) + n);
    }
  }
  return counts;
}

/** The sum of a count map's values. */
export function total(counts: ReadonlyMap<string, number>): number {
  return [...counts.values()].reduce((a, b) => a + b, 0);
}

/**
 * Reads the config's dead-letter topic from the beginning until `expected` letters arrived, or
 * until `done(letters)` holds when given (at-least-once stages may repeat a letter).
 */
export async function readDeadLetters(
  config: Config,
  expected: number,
  options: { readonly done?: (letters: readonly DeadLetter[]) => boolean } = {},
): Promise<DeadLetter[]> {
  const kafka = createKafka(config.kafka, silentLogger());
  const consumer = kafka.consumer({
    groupId: `${config.kafka.groupPrefix}.dlq-reader-${randomId()}`,
  });
  const letters: DeadLetter[] = [];
  const done = options.done ?? ((all) => all.length >= expected);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topics.deadLetter, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        letters.push(await testWire().decodeAsync("DeadLetter", message.value!));
      },
    });
    await waitFor(`${expected} dead letters`, () => done(letters), { timeoutMs: 60_000 });
  } finally {
    await consumer.disconnect();
  }
  return letters;
}

/** Hours (bucket starts) spanned by the feed's event times. */
export function eventHours(feed: readonly SentTrade[]): number[] {
  const hours = new Set<number>();
  for (const { trade } of feed) {
    if (Number.isSafeInteger(trade.t)) hours.add(hourBucket(trade.t));
  }
  return [...hours];
}

/** Asserts gold equals the reference, candle by candle, for every stored interval. */
export async function assertGoldMatches(
  client: cassandra.Client,
  reference: Reference,
  from: number,
  to: number,
): Promise<void> {
  for (const interval of INTERVALS) {
    const expected = reference.candles[interval];
    const actual = await readGold(client, interval, Object.keys(expected), from, to);
    assert.deepEqual(actual, expected, `${interval} candles differ from the reference`);
  }
}
