import assert from "node:assert/strict";
import { INTERVAL_MS, SERVED_INTERVALS } from "../../shared/gold_table.ts";
import {
  DEFAULT_LIMIT,
  DEFAULT_SPAN_MS,
  MAX_GAPS,
  MAX_LIMIT,
  MAX_SPAN_MS,
  parseCandleQuery,
  parseGapQuery,
  parseLatestQuery,
  parseNoQuery,
  parseStreamQuery,
  parseTime,
  queryOf,
} from "./params.ts";

const NOW = Date.parse("2026-12-01T12:03:00Z");

function query(search: string) {
  return queryOf(`http://x/api/candles?${search}`);
}

Deno.test("parseCandleQuery() defaults to 5m and the last two days, forming candle included", () => {
  const q = parseCandleQuery(query("symbol=AAPL"), NOW);
  assert.deepEqual(q, {
    symbol: "AAPL",
    interval: "5m",
    from: NOW + 300_000 - DEFAULT_SPAN_MS["5m"],
    to: NOW + 300_000,
    limit: DEFAULT_LIMIT,
  });
  const hourly = parseCandleQuery(query("symbol=BINANCE:BTCUSDT&interval=1h"), NOW);
  assert.equal(hourly.interval, "1h");
  assert.equal(hourly.to - hourly.from, DEFAULT_SPAN_MS["1h"]);
});

Deno.test("parseCandleQuery() takes every served interval, the forming candle included", () => {
  for (const interval of SERVED_INTERVALS) {
    const q = parseCandleQuery(query(`symbol=AAPL&interval=${interval}`), NOW);
    assert.equal(q.interval, interval);
    assert.equal(q.to, NOW + INTERVAL_MS[interval], interval);
    assert.equal(q.to - q.from, DEFAULT_SPAN_MS[interval], interval);
    assert.ok(DEFAULT_SPAN_MS[interval] <= MAX_SPAN_MS[interval], interval);
    // At most 10,080 candles (a week of minutes) a request, whatever the interval.
    assert.ok(MAX_SPAN_MS[interval] / INTERVAL_MS[interval] <= 10_080, interval);
  }
  const days = parseCandleQuery(
    query("symbol=AAPL&interval=1d&from=2017-01-01&to=2026-12-01"),
    NOW,
  );
  assert.equal(days.interval, "1d");
  assert.throws(
    () => parseCandleQuery(query("symbol=AAPL&interval=1m&from=2026-11-01&to=2026-11-09"), NOW),
    /at most 7 days for interval 1m, got 8.0 days/,
  );
});

Deno.test("parseCandleQuery() takes epoch milliseconds and ISO 8601 times with a zone", () => {
  const q = parseCandleQuery(
    query("symbol=OANDA:EUR_USD&interval=1h&from=2026-11-01&to=2026-12-01T10:30:00%2B01:00"),
    NOW,
  );
  assert.equal(q.from, Date.parse("2026-11-01T00:00:00Z"));
  assert.equal(q.to, Date.parse("2026-12-01T09:30:00Z"));
  const ms = parseCandleQuery(query(`symbol=AAPL&from=${NOW - 3_600_000}&to=${NOW}&limit=5`), NOW);
  assert.deepEqual([ms.from, ms.to, ms.limit], [NOW - 3_600_000, NOW, 5]);
});

Deno.test("parseCandleQuery() refuses bad input with a message naming the parameter", () => {
  const cases: [string, RegExp][] = [
    ["", /parameter 'symbol' is required/],
    ["symbol=", /parameter 'symbol' is required/],
    ["symbol=aapl", /parameter 'symbol' must be a ticker like AAPL/],
    ["symbol=AAPL';DROP TABLE x;--", /parameter 'symbol' must be a ticker/],
    ["symbol=" + "A".repeat(60), /parameter 'symbol' must be a ticker/],
    ["symbol=AAPL&symbol=MSFT", /parameter 'symbol' is given more than once/],
    ["symbol=AAPL&interval=1w", /must be one of 1m, 5m, 15m, 1h, 4h, 1d, got "1w"/],
    ["symbol=AAPL&interval=5M", /parameter 'interval' must be one of .*, got "5M"/],
    ["symbol=AAPL&interval=", /parameter 'interval' must be one of .*, got ""/],
    ["symbol=AAPL&from=yesterday", /parameter 'from' must be epoch milliseconds or an ISO 8601/],
    ["symbol=AAPL&to=2026-12-01T10:00:00", /parameter 'to' must be epoch milliseconds or an ISO/],
    ["symbol=AAPL&from=2026-02-30", /parameter 'from' must be epoch milliseconds/],
    ["symbol=AAPL&from=-5", /parameter 'from' must be epoch milliseconds/],
    ["symbol=AAPL&from=1.5e12", /parameter 'from' must be epoch milliseconds/],
    ["symbol=AAPL&from=1999-12-31", /parameter 'from' must be from 2000-01-01 to 2099-12-31/],
    ["symbol=AAPL&from=5", /parameter 'from' must be from 2000-01-01/],
    ["symbol=AAPL&from=2026-12-01&to=2026-12-01", /'from' \(2026-12-01T00:00:00.000Z\) must be/],
    ["symbol=AAPL&from=2026-12-02&to=2026-12-01", /parameter 'from' .* must be before 'to'/],
    ["symbol=AAPL&from=2026-01-01&to=2026-03-01", /at most 31 days for interval 5m, got 59.0/],
    ["symbol=AAPL&interval=1h&from=2024-01-01&to=2026-01-01", /at most 366 days for interval 1h/],
    ["symbol=AAPL&limit=0", /parameter 'limit' must be a whole number from 1 to 5000/],
    [`symbol=AAPL&limit=${MAX_LIMIT + 1}`, /parameter 'limit' must be a whole number/],
    ["symbol=AAPL&limit=ten", /parameter 'limit' must be a whole number/],
    ["symbol=AAPL&form=1", /unknown parameter "form": expected 'symbol', 'interval', 'from'/],
  ];
  for (const [search, message] of cases) {
    assert.throws(() => parseCandleQuery(query(search), NOW), message, search);
    assert.throws(() => parseCandleQuery(query(search), NOW), RangeError, search);
  }
});

Deno.test("parseTime() reads dates as UTC midnight and keeps milliseconds", () => {
  assert.equal(parseTime("from", "2026-12-01"), Date.UTC(2026, 11, 1));
  assert.equal(parseTime("from", "2026-12-01T12:00:00.250Z"), Date.UTC(2026, 11, 1, 12, 0, 0, 250));
  assert.equal(parseTime("from", "1764590400000"), 1764590400000);
});

Deno.test("the latest, stream and parameterless routes validate their queries too", () => {
  assert.deepEqual(parseLatestQuery(query("symbol=MSFT")), { symbol: "MSFT" });
  assert.throws(() => parseLatestQuery(query("")), /parameter 'symbol' is required/);
  assert.throws(() => parseLatestQuery(query("symbol=MSFT&x=1")), /unknown parameter "x"/);
  assert.deepEqual(parseStreamQuery(query("")), {});
  assert.deepEqual(parseStreamQuery(query("symbol=BINANCE:ETHUSDT")), {
    symbol: "BINANCE:ETHUSDT",
  });
  assert.throws(() => parseStreamQuery(query("symbol=%00")), /parameter 'symbol' must be/);
  parseNoQuery(query(""));
  assert.throws(() => parseNoQuery(query("a=b")), /unknown parameter "a": expected $/);
});

Deno.test("parseGapQuery() defaults to the last two days and at most 1,000 gaps", () => {
  assert.deepEqual(parseGapQuery(query("symbol=AAPL"), NOW), {
    symbol: "AAPL",
    from: NOW - 2 * 86_400_000,
    to: NOW,
    limit: MAX_GAPS,
  });
  assert.deepEqual(
    parseGapQuery(query("symbol=BINANCE:BTCUSDT&from=2026-11-01&to=1796126400000&limit=5"), NOW),
    {
      symbol: "BINANCE:BTCUSDT",
      from: Date.parse("2026-11-01T00:00:00Z"),
      to: 1796126400000,
      limit: 5,
    },
  );
});

Deno.test("parseGapQuery() refuses bad input with a message naming the parameter", () => {
  const cases: [string, RegExp][] = [
    ["", /parameter 'symbol' is required/],
    ["symbol=aapl", /parameter 'symbol' must be a ticker/],
    ["symbol=AAPL&from=yesterday", /parameter 'from' must be epoch milliseconds/],
    ["symbol=AAPL&to=2026-02-30", /parameter 'to' must be epoch milliseconds/],
    ["symbol=AAPL&from=2026-12-02&to=2026-12-01", /parameter 'from' .* must be before 'to'/],
    ["symbol=AAPL&from=2024-01-01&to=2026-01-01", /at most 366 days, got 731.0/],
    ["symbol=AAPL&limit=0", /parameter 'limit' must be a whole number from 1 to 1000/],
    ["symbol=AAPL&limit=1001", /parameter 'limit' must be a whole number from 1 to 1000/],
    ["symbol=AAPL&limit=1e3", /parameter 'limit' must be a whole number/],
    ["symbol=AAPL&interval=5m", /unknown parameter "interval"/],
  ];
  for (const [search, message] of cases) {
    assert.throws(() => parseGapQuery(query(search), NOW), message, search);
    assert.throws(() => parseGapQuery(query(search), NOW), RangeError, search);
  }
});
