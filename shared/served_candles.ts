/**
 * Candles of every served interval (`SERVED_INTERVALS` of `gold_table.ts`) read from Cassandra:
 * a stored interval straight from its gold table, a roll-up (15m, 4h) from the rows of the
 * stored interval it is made of, added up by {@linkcode rollUp} (`rollup.ts`).
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import {
  type CandleRow,
  INTERVAL_MS,
  isStored,
  readCandles,
  readSummedCandles,
  ROLLUP_SOURCE,
  type ServedInterval,
  windowStart,
} from "./gold_table.ts";
import { constituentsPerWindow, rollUp, type RollUpOptions } from "./rollup.ts";

/** What {@linkcode readServedCandles} reads. */
export interface ServedRange {
  readonly symbol: string;
  readonly interval: ServedInterval;
  /** Windows starting at or after this (rounded down to a window start), epoch ms. */
  readonly from: number;
  /** Windows starting before this, epoch ms. */
  readonly to: number;
  /** The newest this many of the range. */
  readonly limit: number;
}

/**
 * The newest `limit` candles of the range, oldest first. A roll-up reads the stored rows of its
 * windows (the last window whole, though it ends after `to`) and one window's worth more than
 * `limit` windows can hold: when the read stops at its limit, the oldest roll-up may be missing
 * constituents and is left out.
 */
export async function readServedCandles(
  session: cassandra.Client,
  keyspace: string,
  range: ServedRange,
  options: RollUpOptions,
): Promise<CandleRow[]> {
  const { interval } = range;
  if (isStored(interval)) return await readCandles(session, keyspace, { ...range, interval });
  const per = constituentsPerWindow(interval);
  const readLimit = (range.limit + 1) * per;
  const rows = await readSummedCandles(session, keyspace, {
    symbol: range.symbol,
    interval: ROLLUP_SOURCE[interval],
    from: windowStart(range.from, interval),
    to: windowStart(range.to - 1, interval) + INTERVAL_MS[interval],
    limit: readLimit,
  });
  const rolled = rollUp(rows, interval, options);
  if (rows.length >= readLimit) rolled.shift();
  return rolled.slice(-range.limit);
}
