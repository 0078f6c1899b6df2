/**
 * What a person watching the market page sees: how long after its ingest a trade first shows in
 * its candle on the page. The bench opens the page's event stream (`GET /api/stream`, every
 * symbol) as a browser would and notes when each `update` event arrives and, for each 1m candle
 * in it, the window and its trade count and close. Afterwards each window's silver rows are read
 * and put in the order gold folds one symbol's trades in: raw offset order (the silver topic is
 * keyed by symbol and published in raw-offset order; the bench's topics never grow, so a symbol's
 * trades all come from one raw partition). A candle showing `n` trades holds the window's first
 * `n` rows in that order: the trades counted between two events of a window showed first in the
 * later one, and each one's latency is that event's arrival minus its `ingest_time`. An event
 * whose close is not the close of those `n` rows (the price of the latest by event time, raw
 * partition and offset, as gold picks it) is counted as unmatched and left out.
 *
 * Not Cassandra's clustering order (event time first): about 2% of the simulator's prints come
 * up to 250 ms before the previous one, and every candle state folded before such a print but
 * after the trades it precedes in event time then missed its `n`-th row. On a busy symbol (a
 * late print every 100 ms or so) most states missed, and their trades were timed to a later
 * state. Both ways on the same run (bench:pipeline --rates 5000 --duration-s 60 --warmup-s 15
 * --live-page, load 3-7): ingest -> gold's row p50/p99 352/1,776 ms with 2,554 states unmatched
 * in event-time order, 251/768 ms with none in fold order; gold itself, timing each trade from
 * its ingest to the start of its row's write, saw a p99 of 368-819 ms per 10 s.
 *
 * The path measured: producer, raw topic, bronze, silver, gold's fold and flush (its rows
 * written, then the candle published), the status process's candle feed, the hub's per-client
 * throttle (an event at most every 100 ms), and the stream to the client. To say where the time
 * goes, the same trades are timed on two points of that path, from the candle-updates topic read
 * by a consumer of the bench's own ({@linkcode watchCandleUpdates}): the update's `updatedAt`
 * (gold's write of the row, stamped as it starts) and its arrival at that consumer (published
 * and fetched, as the status process's feed fetches it).
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Kafka } from "kafkajs";
import { delay } from "../shared/delay.ts";
import type { Logger } from "../shared/log.ts";
import type { WireCodec } from "../shared/wire.ts";
import { createCandleFeed } from "../status/market/feed.ts";
import { sampleSummary } from "./pipeline_stats.ts";

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
  /** Times the stream ended or failed and was opened again. */
  reconnects(): number;
  /** Closes the stream. */
  stop(): Promise<void>;
}

/** One `update` event's data, as far as the watcher reads it. */
interface UpdateData {
  readonly candles: {
    readonly symbol: string;
    readonly interval: string;
    readonly time: number;
    readonly close: number;
    readonly trades: number;
  }[];
}

/**
 * Opens `${baseUrl}/api/stream` and records every 1m candle of every `update` event. A stream
 * that ends or fails is opened again after `retryMs` (default 2000, the `retry:` the hub sends),
 * as the page's `EventSource` does; a failure never escapes (it used to reject a promise nobody
 * awaited until the step's end, which ends a Deno process).
 */
export function watchLivePage(
  baseUrl: string,
  options: { readonly retryMs?: number } = {},
): LivePageWatcher {
  const retryMs = options.retryMs ?? 2000;
  const controller = new AbortController();
  const { signal } = controller;
  const shown: ShownCandle[] = [];
  let events = 0;
  let reconnects = 0;

  function onEvent(data: UpdateData, at: number): void {
    events++;
    for (const c of data.candles) {
      if (c.interval !== "1m") continue;
      shown.push({ at, symbol: c.symbol, time: c.time, close: c.close, trades: c.trades });
    }
  }

  /** Reads one connection's stream until it ends, fails or the watcher stops. */
  async function readOnce(): Promise<void> {
    const response = await fetch(`${baseUrl}/api/stream`, { signal });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`GET /api/stream answered ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const at = Date.now();
        text += decoder.decode(value, { stream: true });
        for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          if (!block.startsWith("event: update\n")) continue;
          onEvent(JSON.parse(block.slice(block.indexOf("data: ") + 6)) as UpdateData, at);
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  const done = (async () => {
    while (!signal.aborted) {
      try {
        await readOnce();
      } catch {
        // Stopped, or the stream failed: opened again below unless stopped.
      }
      if (signal.aborted) return;
      reconnects++;
      await delay(retryMs, signal);
    }
  })();
  return {
    shown,
    events: () => events,
    reconnects: () => reconnects,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

/** A running consumer of the candle-updates topic (see the module doc). */
export interface CandleUpdateWatcher {
  /** Each 1m update, at its `updatedAt` (gold's write of the row, stamped as it starts). */
  readonly written: ShownCandle[];
  /** Each 1m update, at its arrival here. */
  readonly consumed: ShownCandle[];
  stop(): Promise<void>;
}

/**
 * Reads `topic` from its end in a group of its own, as the status process's feed does, and
 * records every 1m update twice (see {@linkcode CandleUpdateWatcher}).
 */
export function watchCandleUpdates(
  options: {
    readonly kafka: Kafka;
    readonly topic: string;
    readonly groupId: string;
    readonly wire: WireCodec;
    readonly log: Logger;
  },
): CandleUpdateWatcher {
  const written: ShownCandle[] = [];
  const consumed: ShownCandle[] = [];
  const feed = createCandleFeed({
    ...options,
    onUpdate(update) {
      if (update.interval !== "1m") return;
      const candle = {
        symbol: update.symbol,
        time: update.windowStart,
        close: update.close,
        trades: update.tradeCount,
      };
      written.push({ at: update.updatedAt, ...candle });
      consumed.push({ at: Date.now(), ...candle });
    },
  });
  feed.start();
  return { written, consumed, stop: () => feed.stop() };
}

/** Trade ingest to the first of a series of candle states that counted it. */
export interface PathLatency {
  /** Trades ingested in the span and shown, each counted once. */
  readonly count: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Trades ingested in the span that no candle state counted before the watcher stopped. */
  readonly notShown: number;
  /** States whose close did not match their `n`-th silver row (left out). */
  readonly unmatched: number;
}

/** Trade ingest to the event that first showed it on the page, and to two points before it. */
export interface LivePageLatency extends PathLatency {
  /** `update` events received over the whole step. */
  readonly events: number;
  /** Times the page's stream ended or failed and was opened again. */
  readonly reconnects: number;
  /** To gold's write of the candle that first counted it (the update's `updatedAt`). */
  readonly goldWritten: PathLatency | null;
  /** To that update's arrival at a consumer of the candle-updates topic. */
  readonly updateConsumed: PathLatency | null;
}

/** The candle states of each point of the path, in arrival order. */
export interface PathSeries {
  readonly page: readonly ShownCandle[];
  readonly goldWritten?: readonly ShownCandle[];
  readonly updateConsumed?: readonly ShownCandle[];
}

/**
 * The latency of every trade with an ingest time in `[from, to]` in the windows the page showed,
 * to each point of `series`, from the silver rows of `keyspace` (see the module doc).
 */
export async function livePageLatency(
  session: cassandra.Client,
  keyspace: string,
  series: PathSeries & { readonly events: number; readonly reconnects: number },
  from: number,
  to: number,
): Promise<LivePageLatency> {
  const names = ["page", "goldWritten", "updateConsumed"] as const;
  type Name = typeof names[number];
  const byWindow = new Map<string, Record<Name, ShownCandle[]>>();
  for (const name of names) {
    for (const candle of series[name] ?? []) {
      const key = `${candle.symbol}|${candle.time}`;
      let lists = byWindow.get(key);
      if (!lists) byWindow.set(key, lists = { page: [], goldWritten: [], updateConsumed: [] });
      lists[name].push(candle);
    }
  }
  const query = `SELECT price, ingest_time, event_time, raw_partition, raw_offset
    FROM ${keyspace}.trades_silver
    WHERE symbol = ? AND bucket = ? AND event_time >= ? AND event_time < ?`;
  /** The silver rows of `symbol`'s 1m window at `time`, in fold order. */
  async function windowRows(symbol: string, time: number): Promise<SilverRow[]> {
    const rows: SilverRow[] = [];
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
          eventTime: (row.get("event_time") as Date).getTime(),
          rawPartition: row.get("raw_partition") as number,
          rawOffset: Number(row.get("raw_offset")),
        });
      }
      pageState = result.pageState ?? undefined;
    } while (pageState);
    return inFoldOrder(rows);
  }
  const totals = Object.fromEntries(
    names.map((name) => [name, { delays: [] as number[], notShown: 0, unmatched: 0 }]),
  ) as Record<Name, { delays: number[]; notShown: number; unmatched: number }>;
  // The windows the page showed: the other points are timed on the same trades.
  const windows = [...byWindow.values()].filter((lists) => {
    const first = lists.page[0];
    return first !== undefined && first.time + 60_000 >= from && first.time <= to;
  });
  // A few windows at a time: at 5,000 trades/s a minute of windows holds 300,000 rows.
  for (let next = 0; next < windows.length;) {
    await Promise.all(
      windows.slice(next, next += 8).map(async (lists) => {
        const { symbol, time } = lists.page[0]!;
        const rows = await windowRows(symbol, time);
        for (const name of names) {
          const counts = firstShown(rows, lists[name], from, to);
          const total = totals[name];
          for (const d of counts.delays) total.delays.push(d);
          total.notShown += counts.notShown;
          total.unmatched += counts.unmatched;
        }
      }),
    );
  }
  const figures = (name: Name): PathLatency => {
    const { delays, notShown, unmatched } = totals[name];
    return { ...sampleSummary(delays), notShown, unmatched };
  };
  return {
    ...figures("page"),
    events: series.events,
    reconnects: series.reconnects,
    goldWritten: series.goldWritten ? figures("goldWritten") : null,
    updateConsumed: series.updateConsumed ? figures("updateConsumed") : null,
  };
}

/** A silver row of a window, as the bench reads it. */
export interface SilverRow {
  readonly price: number;
  /** `ingest_time`, epoch ms. */
  readonly ingest: number;
  /** `event_time`, epoch ms. */
  readonly eventTime: number;
  readonly rawPartition: number;
  readonly rawOffset: number;
}

/** `rows` (one symbol's) in the order gold folds them: raw partition, then raw offset. */
export function inFoldOrder(rows: readonly SilverRow[]): SilverRow[] {
  return [...rows].sort((a, b) => a.rawPartition - b.rawPartition || a.rawOffset - b.rawOffset);
}

/**
 * For one window: each trade's delay from its ingest to the first of `shown` (that window's
 * events) whose count reaches it, for the trades of `rows` (the window's silver rows in fold
 * order, {@linkcode inFoldOrder}) ingested in `[from, to]`; the trades no event reached; the
 * events whose close is not the close of their first `n` rows (skipped).
 */
export function firstShown(
  rows: readonly SilverRow[],
  shown: readonly ShownCandle[],
  from: number,
  to: number,
): { delays: number[]; notShown: number; unmatched: number } {
  const closes = prefixCloses(rows);
  const delays: number[] = [];
  let unmatched = 0;
  let counted = 0;
  for (const candle of [...shown].sort((x, y) => x.at - y.at)) {
    if (candle.trades <= counted) continue;
    if (candle.trades > rows.length || closes[candle.trades - 1] !== candle.close) {
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

/**
 * The close of each prefix of `rows`: the price of its latest row by event time, raw partition
 * and raw offset (gold's close, `processor/gold/candle.ts`).
 */
function prefixCloses(rows: readonly SilverRow[]): number[] {
  const closes: number[] = [];
  let last: SilverRow | undefined;
  for (const row of rows) {
    if (
      last === undefined ||
      (row.eventTime - last.eventTime || row.rawPartition - last.rawPartition ||
          row.rawOffset - last.rawOffset) > 0
    ) {
      last = row;
    }
    closes.push(last.price);
  }
  return closes;
}
