/**
 * What a person watching the market page sees: how long after its ingest a trade first shows in
 * its candle on the page. The bench opens the page's event stream (`GET /api/stream`, every
 * symbol) as a browser would and notes when each `update` event arrives and, for each 1m candle
 * in it, the window and its trade count and close. Afterwards each window's silver rows are read
 * in Cassandra's clustering order (event time, raw partition, raw offset), which is the order gold
 * folds one symbol's trades in, so a candle showing `n` trades holds the window's first `n` rows:
 * the trades counted between two events of a window showed first in the later one, and each one's
 * latency is that event's arrival minus its `ingest_time`. An event whose close is not the price
 * of its `n`-th row (a late or out-of-order trade) is counted as unmatched and left out.
 *
 * The path measured: producer, raw topic, bronze, silver, gold's fold and flush (its rows
 * written, then the candle published), the status process's candle feed, the hub's per-client
 * throttle (an event at most every 250 ms), and the stream to the client.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import { sampleQuantile } from "./pipeline_stats.ts";

/** One 1m candle as an `update` event showed it. */
export interface ShownCandle {
  /** When the event arrived, epoch ms. */
  readonly at: number;
  readonly symbol: string;
  /** Window start, epoch ms. */
  readonly time: number;
  readonly close: number;
  readonly trades: number;
}

/** A running watcher of the page's event stream. */
export interface LivePageWatcher {
  /** The 1m candles shown so far, in arrival order. */
  readonly shown: ShownCandle[];
  /** Events received. */
  events(): number;
  /** Closes the stream. */
  stop(): Promise<void>;
}

/** Opens `${baseUrl}/api/stream` and records every 1m candle of every `update` event. */
export function watchLivePage(baseUrl: string): LivePageWatcher {
  const controller = new AbortController();
  const shown: ShownCandle[] = [];
  let events = 0;
  const decoder = new TextDecoder();
  const done = (async () => {
    const response = await fetch(`${baseUrl}/api/stream`, { signal: controller.signal });
    if (!response.ok || !response.body) {
      throw new Error(`GET /api/stream answered ${response.status}`);
    }
    let text = "";
    for await (const chunk of response.body) {
      const at = Date.now();
      text += decoder.decode(chunk, { stream: true });
      for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        if (!block.startsWith("event: update\n")) continue;
        const data = block.slice(block.indexOf("data: ") + 6);
        const event = JSON.parse(data) as {
          candles: {
            symbol: string;
            interval: string;
            time: number;
            close: number;
            trades: number;
          }[];
        };
        events++;
        for (const c of event.candles) {
          if (c.interval !== "1m") continue;
          shown.push({ at, symbol: c.symbol, time: c.time, close: c.close, trades: c.trades });
        }
      }
    }
  })().catch((error) => {
    if (!controller.signal.aborted) throw error;
  });
  return {
    shown,
    events: () => events,
    async stop() {
      controller.abort();
      await done.catch(() => {});
    },
  };
}

/** Trade ingest to the event that first showed it on the page. */
export interface LivePageLatency {
  /** Trades ingested in the span and shown, each counted once. */
  readonly count: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Trades ingested in the span that no event showed before the watcher stopped. */
  readonly notShown: number;
  /** Events whose close did not match their `n`-th silver row (left out). */
  readonly unmatched: number;
  /** `update` events received over the whole step. */
  readonly events: number;
}

/**
 * The latency of every trade with an ingest time in `[from, to]` in the windows `shown` touched,
 * from the silver rows of `keyspace` (see the module doc).
 */
export async function livePageLatency(
  session: cassandra.Client,
  keyspace: string,
  watcher: LivePageWatcher,
  from: number,
  to: number,
): Promise<LivePageLatency> {
  const byWindow = new Map<string, ShownCandle[]>();
  for (const candle of watcher.shown) {
    const key = `${candle.symbol}|${candle.time}`;
    const list = byWindow.get(key) ?? [];
    list.push(candle);
    byWindow.set(key, list);
  }
  const query = `SELECT price, ingest_time FROM ${keyspace}.trades_silver
    WHERE symbol = ? AND bucket = ? AND event_time >= ? AND event_time < ?`;
  /** The silver rows of `symbol`'s 1m window at `time`, in fold order. */
  async function windowRows(symbol: string, time: number) {
    const rows: { price: number; ingest: number }[] = [];
    let pageState: string | undefined;
    do {
      const result: cassandra.types.ResultSet = await session.execute(
        query,
        [symbol, new Date(time - time % 3_600_000), new Date(time), new Date(time + 60_000)],
        { prepare: true, fetchSize: 5000, ...(pageState ? { pageState } : {}) },
      );
      for (const row of result.rows) {
        rows.push({
          price: row.get("price") as number,
          ingest: (row.get("ingest_time") as Date).getTime(),
        });
      }
      pageState = result.pageState ?? undefined;
    } while (pageState);
    return rows;
  }
  const delays: number[] = [];
  let notShown = 0;
  let unmatched = 0;
  const windows = [...byWindow.values()].filter((list) =>
    list[0]!.time + 60_000 >= from && list[0]!.time <= to
  );
  // A few windows at a time: at 5,000 trades/s a minute of windows holds 300,000 rows.
  for (let next = 0; next < windows.length;) {
    await Promise.all(
      windows.slice(next, next += 8).map(async (list) => {
        const { symbol, time } = list[0]!;
        const rows = await windowRows(symbol, time);
        const counts = firstShown(rows, list, from, to);
        for (const d of counts.delays) delays.push(d);
        notShown += counts.notShown;
        unmatched += counts.unmatched;
      }),
    );
  }
  delays.sort((x, y) => x - y);
  return {
    count: delays.length,
    p50Ms: sampleQuantile(delays, 0.5),
    p99Ms: sampleQuantile(delays, 0.99),
    maxMs: delays.at(-1) ?? null,
    notShown,
    unmatched,
    events: watcher.events(),
  };
}

/**
 * For one window: each trade's delay from its ingest to the first of `shown` (that window's
 * events) whose count reaches it, for the trades of `rows` (the window's silver rows in fold
 * order) ingested in `[from, to]`; the trades no event reached; the events whose close is not
 * their `n`-th row's price (skipped).
 */
export function firstShown(
  rows: readonly { price: number; ingest: number }[],
  shown: readonly ShownCandle[],
  from: number,
  to: number,
): { delays: number[]; notShown: number; unmatched: number } {
  const delays: number[] = [];
  let unmatched = 0;
  let counted = 0;
  for (const candle of [...shown].sort((x, y) => x.at - y.at)) {
    if (candle.trades <= counted) continue;
    if (candle.trades > rows.length || rows[candle.trades - 1]!.price !== candle.close) {
      unmatched++;
      continue;
    }
    for (let i = counted; i < candle.trades; i++) {
      const ingest = rows[i]!.ingest;
      if (ingest >= from && ingest <= to) delays.push(candle.at - ingest);
    }
    counted = candle.trades;
  }
  let notShown = 0;
  for (let i = counted; i < rows.length; i++) {
    const ingest = rows[i]!.ingest;
    if (ingest >= from && ingest <= to) notShown++;
  }
  return { delays, notShown, unmatched };
}
