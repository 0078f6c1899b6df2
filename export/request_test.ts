import assert from "node:assert/strict";
import { exportFileName, parseExportRequest, singleValues } from "./request.ts";

const OK = {
  symbol: "BINANCE:BTCUSDT",
  interval: "5m",
  from: "2026-12-01T00:00:00Z",
  to: "1796169600000",
  format: "csv",
};

Deno.test("parseExportRequest() takes ISO 8601 UTC and epoch ms times, csv and parquet", () => {
  assert.deepEqual(parseExportRequest(OK), {
    symbol: "BINANCE:BTCUSDT",
    interval: "5m",
    from: Date.UTC(2026, 11, 1),
    to: 1796169600000,
    format: "csv",
  });
  const hourly = parseExportRequest({ ...OK, interval: "1h", format: "parquet", symbol: "BRK.B" });
  assert.deepEqual([hourly.interval, hourly.format, hourly.symbol], ["1h", "parquet", "BRK.B"]);
});

Deno.test("parseExportRequest() refuses bad input with a message naming the parameter", () => {
  const cases: [Record<string, string | undefined>, RegExp][] = [
    [{ ...OK, symbol: undefined }, /parameter 'symbol' is required/],
    [{ ...OK, symbol: "btc" }, /parameter 'symbol' must be a ticker/],
    [
      { ...OK, interval: undefined },
      /parameter 'interval' is required: one of 1m, 5m, 15m, 1h, 4h, 1d/,
    ],
    [
      { ...OK, interval: "7m" },
      /parameter 'interval' must be one of 1m, 5m, 15m, 1h, 4h, 1d, got "7m"/,
    ],
    [{ ...OK, from: undefined }, /parameter 'from' is required/],
    [{ ...OK, to: "" }, /parameter 'to' is required/],
    [{ ...OK, from: "yesterday" }, /parameter 'from' must be epoch milliseconds or an ISO 8601/],
    [{ ...OK, to: "2026-12-01T10:00:00" }, /parameter 'to' must be epoch milliseconds/],
    [{ ...OK, from: "1999-01-01" }, /parameter 'from' must be from 2000-01-01/],
    [{ ...OK, to: OK.from }, /parameter 'from' \(2026-12-01T00:00:00.000Z\) must be before 'to'/],
    [{ ...OK, format: undefined }, /parameter 'format' must be one of csv, parquet, got nothing/],
    [{ ...OK, format: "xlsx" }, /parameter 'format' must be one of csv, parquet, got "xlsx"/],
    [{ ...OK, limit: "5" }, /unknown parameter "limit": an export takes 'symbol', 'interval'/],
  ];
  for (const [params, want] of cases) {
    assert.throws(() => parseExportRequest(params), want, JSON.stringify(params));
    assert.throws(() => parseExportRequest(params), RangeError);
  }
});

Deno.test("singleValues() refuses a parameter given twice", () => {
  assert.deepEqual(singleValues({ a: ["1"], b: ["2"] }), { a: "1", b: "2" });
  assert.throws(() => singleValues({ symbol: ["A", "B"] }), /parameter 'symbol' is given more/);
});

Deno.test("exportFileName() is safe for a download: ':' and '/' of a symbol become '_'", () => {
  assert.equal(
    exportFileName(parseExportRequest(OK)),
    "BINANCE_BTCUSDT_5m_20261201T000000Z_20261202T000000Z.csv",
  );
  assert.equal(
    exportFileName(parseExportRequest({ ...OK, symbol: "FX:EUR/USD", format: "parquet" })),
    "FX_EUR_USD_5m_20261201T000000Z_20261202T000000Z.parquet",
  );
});
