import assert from "node:assert/strict";
import { EXPORT_COLUMNS, type ExportColumn } from "./columns.ts";
import { csvField, csvHeader, csvLine, csvValue } from "./csv.ts";
import { testCandle } from "./test_candles.ts";

function column(kind: ExportColumn["kind"], nullable = false): ExportColumn {
  return { field: "symbol", name: "c", kind, nullable };
}

Deno.test("csvField() quotes only fields with a comma, quote, CR or LF, doubling quotes", () => {
  const cases: [string, string][] = [
    ["AAPL", "AAPL"],
    ["BINANCE:BTCUSDT", "BINANCE:BTCUSDT"],
    ["BRK.B", "BRK.B"],
    ["", ""],
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['"', '""""'],
    ["line\nbreak", '"line\nbreak"'],
    ["cr\rhere", '"cr\rhere"'],
    [" spaced ", " spaced "],
  ];
  for (const [text, want] of cases) assert.equal(csvField(text), want, JSON.stringify(text));
});

Deno.test("csvValue() writes each kind exactly: ISO UTC times, round-trip doubles, decimal text", () => {
  assert.equal(
    csvValue(Date.UTC(2026, 11, 1, 14, 5), column("timestamp")),
    "2026-12-01T14:05:00.000Z",
  );
  assert.equal(csvValue(0, column("timestamp")), "1970-01-01T00:00:00.000Z");
  assert.equal(csvValue(0.1 + 0.2, column("double")), "0.30000000000000004");
  assert.equal(csvValue(1e-7, column("double")), "1e-7");
  assert.equal(csvValue(123456.789, column("double")), "123456.789");
  assert.equal(Number(csvValue(Number.MAX_VALUE, column("double"))), Number.MAX_VALUE);
  const long = "12345678901234.5678901234567890";
  assert.equal(csvValue(long, column("decimal")), long);
  assert.equal(csvValue("0.0000000001", column("decimal")), "0.0000000001");
  assert.equal(csvValue(9_007_199_254_740_991, column("int64")), "9007199254740991");
  assert.equal(csvValue(2n ** 63n - 1n, column("int64")), "9223372036854775807");
  assert.equal(csvValue(true, column("boolean")), "true");
  assert.equal(csvValue(false, column("boolean")), "false");
  assert.equal(csvValue("x,y", column("string")), '"x,y"');
  assert.equal(csvValue(null, column("decimal", true)), "");
});

Deno.test("csvValue() refuses a null in a required column and a value of the wrong type", () => {
  assert.throws(() => csvValue(null, column("decimal")), /Column 'c' must not be null/);
  assert.throws(
    () => csvValue(0.3, column("decimal")),
    /Column 'c' \(decimal\) cannot hold number/,
  );
  assert.throws(() => csvValue("1", column("double")), /cannot hold string/);
  assert.throws(() => csvValue(Number.NaN, column("timestamp")), /cannot hold number NaN/);
  assert.throws(() => csvValue(1, column("boolean")), /cannot hold number/);
});

Deno.test("csvHeader() names every export column in order, CRLF-ended", () => {
  assert.equal(
    csvHeader(),
    "symbol,interval,window_start,window_end,open,high,low,close,volume,pv_sum,vwap,trade_count,is_final,gap_ms,gap_count,coverage\r\n",
  );
  assert.equal(csvHeader().split(",").length, EXPORT_COLUMNS.length);
});

Deno.test("csvLine() writes a candle, a null VWAP as an empty field", () => {
  assert.equal(
    csvLine(testCandle()),
    "BINANCE:BTCUSDT,5m,2026-12-01T14:05:00.000Z,2026-12-01T14:10:00.000Z,0.1,0.30000000000000004,0.1,0.2," +
      "0.30000000000000004,0.0700000000000000099999999999,0.2333333333,3,true,0,0,1\r\n",
  );
  assert.equal(
    csvLine(testCandle({ symbol: "BRK.B", volume: "0", pvSum: "0", vwap: null, tradeCount: 0 })),
    "BRK.B,5m,2026-12-01T14:05:00.000Z,2026-12-01T14:10:00.000Z,0.1,0.30000000000000004,0.1,0.2,0,0,,0,true,0,0,1\r\n",
  );
});
