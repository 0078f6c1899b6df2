import assert from "node:assert/strict";
import { marketTestApp } from "../test_doubles.ts";
import { MAX_WATCHLIST_SYMBOLS } from "./watchlist.ts";
import type { CandleQuery } from "./params.ts";
import type { CandleJson, MarketStore } from "./store.ts";

/** Friday 2026-12-04 10:02 New York (EST): the regular session. */
const NOW = Date.parse("2026-12-04T15:02:00Z");

function candle(iso: string, open: number, close: number, volume: string): CandleJson {
  const time = Date.parse(iso);
  return {
    time,
    end: time + 300_000,
    open,
    high: Math.max(open, close),
    low: Math.min(open, close),
    close,
    volume,
    vwap: null,
    trades: 1,
    final: false,
  };
}

const CANDLES: Record<string, CandleJson[]> = {
  AAPL: [
    candle("2026-12-04T09:00:00Z", 100, 100.2, "0.1"),
    candle("2026-12-04T14:30:00Z", 101.5, 101.9, "0.2"),
    candle("2026-12-04T15:00:00Z", 101.9, 102.1, "0.30000000000000004"),
  ],
  "BINANCE:BTCUSDT": [candle("2026-12-04T00:00:00Z", 90_000, 91_000, "0.5")],
};

function setup(options: { fail?: boolean } = {}) {
  const queries: CandleQuery[] = [];
  let now = NOW;
  const store: MarketStore = {
    gaps: () => Promise.resolve([]),
    candles(query) {
      queries.push(query);
      if (options.fail) return Promise.reject(new Error("NoHostAvailableError"));
      return Promise.resolve(
        (CANDLES[query.symbol] ?? []).filter((c) => c.time >= query.from && c.time < query.to),
      );
    },
    latest: () => Promise.resolve(null),
  };
  const { app, hub } = marketTestApp(store, {
    token: "",
    symbols: ["AAPL", "BINANCE:BTCUSDT", "MSFT"],
    now: () => now,
  });
  return { app, hub, queries, setNow: (t: number) => (now = t) };
}

Deno.test("GET /api/watchlist: a row per symbol read from the day's 5m candles, exact decimals", async () => {
  const { app, hub, queries } = setup();
  try {
    const response = await app.request("/api/watchlist");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    const body = await response.json();
    assert.equal(body.time, NOW);
    assert.equal(body.interval, "5m");
    assert.equal(body.omitted, 0);
    assert.deepEqual(body.rows.map((r: { symbol: string }) => r.symbol), [
      "AAPL",
      "BINANCE:BTCUSDT",
      "MSFT",
    ]);
    const [aapl, btc, msft] = body.rows;
    assert.equal(aapl.session, "REGULAR");
    assert.equal(aapl.open, 101.5);
    assert.equal(aapl.last, 102.1);
    assert.equal(aapl.change, "0.6");
    assert.equal(aapl.changePercent, "0.59");
    assert.equal(aapl.volume, "0.60000000000000004");
    assert.deepEqual(aapl.windows[2], [
      Date.parse("2026-12-04T15:00:00Z"),
      102.1,
      "0.30000000000000004",
      1,
    ]);
    assert.deepEqual(aapl.day, {
      date: "2026-12-04",
      from: Date.parse("2026-12-04T09:00:00Z"),
      to: Date.parse("2026-12-05T01:00:00Z"),
      openFrom: Date.parse("2026-12-04T14:30:00Z"),
    });
    assert.equal(btc.session, "OPEN");
    assert.equal(btc.change, "1000");
    assert.equal(btc.changePercent, "1.11");
    assert.equal(msft.last, null);
    assert.equal(msft.volume, "0");
    // Each symbol's day, whole partition key bound, enough rows for the whole day.
    assert.deepEqual(
      queries.map((q) => [q.symbol, q.interval, q.from, q.to, q.limit]),
      [
        ["AAPL", "5m", aapl.day.from, aapl.day.to, 192],
        ["BINANCE:BTCUSDT", "5m", btc.day.from, btc.day.to, 288],
        ["MSFT", "5m", msft.day.from, msft.day.to, 192],
      ],
    );
  } finally {
    hub.close();
  }
});

Deno.test("GET /api/watchlist is computed at most once every 2 s whatever the requests", async () => {
  const { app, hub, queries, setNow } = setup();
  try {
    const bodies = await Promise.all(
      Array.from({ length: 5 }, async () => (await app.request("/api/watchlist")).json()),
    );
    assert.equal(queries.length, 3, "one read per symbol for five requests");
    assert.ok(bodies.every((b) => b.time === NOW));
    setNow(NOW + 1999);
    await (await app.request("/api/watchlist")).body?.cancel();
    assert.equal(queries.length, 3);
    setNow(NOW + 2000);
    assert.equal((await (await app.request("/api/watchlist")).json()).time, NOW + 2000);
    assert.equal(queries.length, 6);
  } finally {
    hub.close();
  }
});

Deno.test("GET /api/watchlist: 400 on a parameter, 503 naming Cassandra when a read fails", async () => {
  const { app, hub } = setup({ fail: true });
  try {
    const bad = await app.request("/api/watchlist?symbol=AAPL");
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /unknown parameter "symbol"/);
    const failed = await app.request("/api/watchlist");
    assert.equal(failed.status, 503);
    assert.match((await failed.json()).error, /Cassandra read failed: .*NoHostAvailableError/);
    // A failure is not served again from the cache: the next request reads again.
    assert.equal((await app.request("/api/watchlist")).status, 503);
  } finally {
    hub.close();
  }
});

Deno.test("GET /api/watchlist lists at most MAX_WATCHLIST_SYMBOLS and counts the rest", async () => {
  const store: MarketStore = {
    gaps: () => Promise.resolve([]),
    candles: () => Promise.resolve([]),
    latest: () => Promise.resolve(null),
  };
  const symbols = Array.from({ length: MAX_WATCHLIST_SYMBOLS + 7 }, (_, i) => `S${i}`);
  const { app, hub } = marketTestApp(store, { token: "", symbols, now: () => NOW });
  try {
    const body = await (await app.request("/api/watchlist")).json();
    assert.equal(body.rows.length, MAX_WATCHLIST_SYMBOLS);
    assert.equal(body.omitted, 7);
  } finally {
    hub.close();
  }
});
