import assert from "node:assert/strict";
import type cassandra from "cassandra-driver";
import { goldBucket, type Interval, INTERVAL_MS } from "./gold_table.ts";
import { readServedCandles, readServedCandlesStream } from "./served_candles.ts";

const T0 = Date.parse("2026-11-30T22:00:00Z");
const LATER = { now: T0 + 30 * 86_400_000, allowedLatenessMs: 10_000 };

interface StoredRow {
  readonly interval: Interval;
  readonly start: number;
  readonly price: number;
}

/**
 * A session that answers the range reads of `gold_table.ts` from `rows` as Cassandra would:
 * the bucket, the window range, newest first, the limit. Records every read.
 */
function fakeSession(rows: readonly StoredRow[]) {
  const reads: { table: string; bucket: string; limit: number }[] = [];
  const session = {
    execute(query: string, params: unknown[]) {
      const table = /FROM \w+\.(\w+)/.exec(query)![1]!;
      if (table === "feed_gaps") return Promise.resolve({ rows: [] });
      const interval = table.replace("trades_gold_", "") as Interval;
      const [, bucket, from, to, limit] = params as [
        string,
        { toString(): string },
        Date,
        Date,
        number,
      ];
      reads.push({ table, bucket: bucket.toString(), limit });
      const found = rows
        .filter((r) =>
          r.interval === interval && goldBucket(r.start, interval) === bucket.toString() &&
          r.start >= from.getTime() && r.start < to.getTime()
        )
        .sort((a, b) => b.start - a.start)
        .slice(0, limit)
        .map((r) => rowOf(r));
      return Promise.resolve({ rows: found });
    },
  };
  return { session: session as unknown as cassandra.Client, reads };
}

function rowOf(r: StoredRow) {
  const values: Record<string, unknown> = {
    symbol: "AAPL",
    window_start: new Date(r.start),
    window_end: new Date(r.start + INTERVAL_MS[r.interval]),
    open: r.price,
    high: r.price,
    low: r.price,
    close: r.price,
    volume: "1",
    vwap: String(r.price),
    trade_count: 1n,
    is_final: true,
    pv_sum: String(r.price),
    price_only_count: 0n,
    late_count: 0n,
  };
  return { get: (name: string) => values[name] };
}

/** One 5m row for each of `count` windows from T0. */
function fiveMinuteRows(count: number): StoredRow[] {
  return Array.from({ length: count }, (_, i) => ({
    interval: "5m" as const,
    start: T0 + i * 300_000,
    price: i + 1,
  }));
}

Deno.test("readServedCandles() reads a stored interval straight from its table", async () => {
  const { session, reads } = fakeSession([{ interval: "1m", start: T0, price: 7 }]);
  const out = await readServedCandles(session, "ks", {
    symbol: "AAPL",
    interval: "1m",
    from: T0,
    to: T0 + 60_000,
    limit: 10,
  }, LATER);
  assert.deepEqual(out.map((c) => [c.interval, c.windowStart, c.open]), [["1m", T0, 7]]);
  assert.deepEqual(reads, [{ table: "trades_gold_1m", bucket: "2026-11-30", limit: 10 }]);
});

Deno.test("readServedCandles() rolls 15m up from 5m rows across a bucket boundary", async () => {
  // 22:00 to 02:00 UTC: 48 five-minute rows over two monthly buckets (November, December).
  const { session, reads } = fakeSession(fiveMinuteRows(48));
  const out = await readServedCandles(session, "ks", {
    symbol: "AAPL",
    interval: "15m",
    from: T0,
    to: T0 + 4 * 3_600_000,
    limit: 100,
  }, LATER);
  assert.equal(out.length, 16);
  out.forEach((c, i) => {
    assert.equal(c.interval, "15m");
    assert.equal(c.windowStart, T0 + i * 900_000);
    assert.deepEqual([c.open, c.close, c.tradeCount, c.volume], [3 * i + 1, 3 * i + 3, 3, "3"]);
  });
  assert.deepEqual(reads.map((r) => r.bucket), ["2026-12-01", "2026-11-01"]);
});

Deno.test("readServedCandles() keeps the newest `limit` roll-ups whole when the read is cut", async () => {
  const { session } = fakeSession(fiveMinuteRows(48));
  for (const limit of [1, 2, 5, 15, 16, 17]) {
    const out = await readServedCandles(session, "ks", {
      symbol: "AAPL",
      interval: "15m",
      from: T0,
      to: T0 + 4 * 3_600_000,
      limit,
    }, LATER);
    assert.equal(out.length, Math.min(limit, 16), `limit ${limit}`);
    for (const c of out) assert.equal(c.tradeCount, 3, `limit ${limit}: every roll-up whole`);
    assert.equal(out.at(-1)!.windowStart, T0 + 15 * 900_000, `limit ${limit}: the newest last`);
  }
});

Deno.test("readServedCandles() takes the whole last roll-up window, though it ends after `to`", async () => {
  const { session } = fakeSession(fiveMinuteRows(3));
  const [c] = await readServedCandles(session, "ks", {
    symbol: "AAPL",
    interval: "15m",
    from: T0 + 60_000,
    to: T0 + 300_001,
    limit: 10,
  }, LATER);
  assert.deepEqual([c!.windowStart, c!.tradeCount, c!.close], [T0, 3, 3]);
});

/**
 * A session that answers the paged, ascending reads of `readCandlesStream` from `rows`: an async
 * iterable result per bucket, as the driver gives with `fetchSize`.
 */
function fakeStreamSession(rows: readonly StoredRow[]) {
  const session = {
    execute(query: string, params: unknown[]) {
      const table = /FROM \w+\.(\w+)/.exec(query)![1]!;
      if (table === "feed_gaps") return Promise.resolve({ rows: [] });
      const interval = table.replace("trades_gold_", "") as Interval;
      const [, bucket, from, to] = params as [string, { toString(): string }, Date, Date];
      const found = rows
        .filter((r) =>
          r.interval === interval && goldBucket(r.start, interval) === bucket.toString() &&
          r.start >= from.getTime() && r.start < to.getTime()
        )
        .sort((a, b) => a.start - b.start)
        .map((r) => rowOf(r));
      return Promise.resolve({
        async *[Symbol.asyncIterator]() {
          yield* found;
        },
      });
    },
  };
  return session as unknown as cassandra.Client;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

Deno.test("readServedCandlesStream() rolls up as readServedCandles() does, across buckets and holes", async () => {
  // 22:00 to 02:00 UTC over two monthly buckets, with windows missing: a whole 15m window
  // (rows 9-11), the first of one (row 15) and the last of another (row 23).
  const stored = fiveMinuteRows(48).filter((_, i) => ![9, 10, 11, 15, 23].includes(i));
  for (
    const [from, to] of [[T0, T0 + 4 * 3_600_000], [T0 + 60_000, T0 + 300_001], [
      T0 + 3_600_000,
      T0 + 7_300_000,
    ]]
  ) {
    const range = { symbol: "AAPL", interval: "15m" as const, from: from!, to: to! };
    const streamed = await collect(
      readServedCandlesStream(fakeStreamSession(stored), "ks", range, LATER),
    );
    const paged = await readServedCandles(fakeSession(stored).session, "ks", {
      ...range,
      limit: 1_000,
    }, LATER);
    assert.deepEqual(
      streamed,
      paged,
      `${new Date(from!).toISOString()} to ${new Date(to!).toISOString()}`,
    );
  }
});

Deno.test("readServedCandlesStream() streams a stored interval straight from its table", async () => {
  const stored = fiveMinuteRows(30);
  const range = { symbol: "AAPL", interval: "5m" as const, from: T0, to: T0 + 3 * 3_600_000 };
  const streamed = await collect(
    readServedCandlesStream(fakeStreamSession(stored), "ks", range, LATER),
  );
  assert.deepEqual(streamed.map((c) => c.windowStart), stored.map((r) => r.start));
});
