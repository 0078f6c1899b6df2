import assert from "node:assert/strict";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import type { CandleWithSum } from "../shared/gold_table.ts";
import { EXPORT_COLUMNS, type ExportColumn } from "./columns.ts";
import { createParquetEncoder, parquetSchema, parquetValue } from "./parquet.ts";
import { testCandle, testCandles } from "./test_candles.ts";

function fileOf(candles: readonly CandleWithSum[], rowGroupRows?: number): ArrayBuffer {
  const encoder = createParquetEncoder(rowGroupRows === undefined ? {} : { rowGroupRows });
  const parts = [...candles.map((c) => encoder.push(c)), encoder.end()];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out.buffer;
}

Deno.test("parquetSchema() types each column: text decimals, UTC millisecond timestamps, doubles", () => {
  const schema = parquetSchema();
  assert.deepEqual(schema[0], { name: "root", num_children: EXPORT_COLUMNS.length });
  const byName = Object.fromEntries(schema.slice(1).map((e) => [e.name, e]));
  assert.deepEqual(byName["window_start"], {
    name: "window_start",
    type: "INT64",
    converted_type: "TIMESTAMP_MILLIS",
    logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
    repetition_type: "REQUIRED",
  });
  for (const name of ["volume", "pv_sum", "vwap", "symbol", "interval"]) {
    assert.equal(byName[name]!.type, "BYTE_ARRAY", name);
    assert.deepEqual(byName[name]!.logical_type, { type: "STRING" }, name);
  }
  assert.equal(byName["vwap"]!.repetition_type, "OPTIONAL");
  assert.equal(byName["volume"]!.repetition_type, "REQUIRED");
  for (const name of ["open", "high", "low", "close"]) assert.equal(byName[name]!.type, "DOUBLE");
  assert.equal(byName["trade_count"]!.type, "INT64");
  assert.equal(byName["is_final"]!.type, "BOOLEAN");
});

Deno.test("parquetValue() refuses a null in a required column, a wrong type and an unsafe integer", () => {
  const column = (kind: ExportColumn["kind"], nullable = false): ExportColumn => ({
    field: "volume",
    name: "c",
    kind,
    nullable,
  });
  assert.equal(parquetValue(5, column("int64")), 5n);
  assert.equal(parquetValue(null, column("decimal", true)), null);
  assert.throws(() => parquetValue(null, column("decimal")), /Column 'c' must not be null/);
  assert.throws(() => parquetValue(0.1, column("decimal")), /cannot hold number 0.1/);
  assert.throws(() => parquetValue(2 ** 60, column("int64")), /cannot hold number/);
  assert.throws(() => parquetValue(1.5, column("timestamp")), /cannot hold number 1.5/);
});

Deno.test("createParquetEncoder() writes a file hyparquet reads back value for value", async () => {
  const candles = [
    ...testCandles(25),
    testCandle({ symbol: "OANDA:EUR_USD", windowStart: Date.UTC(2026, 11, 2), vwap: null }),
  ];
  const file = fileOf(candles, 10);
  const metadata = parquetMetadata(file);
  assert.equal(metadata.num_rows, 26n);
  assert.deepEqual(metadata.row_groups.map((g) => Number(g.num_rows)), [10, 10, 6]);
  const rows = await parquetReadObjects({ file });
  assert.equal(rows.length, candles.length);
  rows.forEach((row, i) => {
    const c = candles[i]!;
    assert.deepEqual(row, {
      symbol: c.symbol,
      interval: c.interval,
      window_start: new Date(c.windowStart),
      window_end: new Date(c.windowEnd),
      open: c.open,
      high: c.high,
      low: c.low,
      close: c.close,
      volume: c.volume,
      pv_sum: c.pvSum,
      vwap: c.vwap,
      trade_count: BigInt(c.tradeCount),
      is_final: c.isFinal,
      gap_ms: BigInt(c.gapMs),
      gap_count: BigInt(c.gapCount),
      coverage: c.coverage,
    }, `row ${i}`);
  });
});

Deno.test("createParquetEncoder() hands out a row group as it fills, and an empty file is valid", async () => {
  const encoder = createParquetEncoder({ rowGroupRows: 3 });
  const sizes = testCandles(7).map((c) => encoder.push(c).length);
  assert.deepEqual(sizes.map((n) => n > 0), [false, false, true, false, false, true, false]);
  assert.ok(encoder.end().length > 0);

  const empty = fileOf([]);
  assert.equal(parquetMetadata(empty).num_rows, 0n);
  assert.deepEqual(await parquetReadObjects({ file: empty }), []);
});
