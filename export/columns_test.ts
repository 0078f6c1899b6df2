import assert from "node:assert/strict";
import { EXPORT_COLUMNS, valueOf } from "./columns.ts";
import { testCandle } from "./test_candles.ts";

Deno.test("EXPORT_COLUMNS holds every field of a candle once, under its Cassandra name", () => {
  const candle = testCandle();
  assert.deepEqual(EXPORT_COLUMNS.map((c) => c.field).sort(), Object.keys(candle).sort());
  assert.deepEqual(EXPORT_COLUMNS.map((c) => c.name), [
    "symbol",
    "interval",
    "window_start",
    "window_end",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "pv_sum",
    "vwap",
    "trade_count",
    "is_final",
    "gap_ms",
    "gap_count",
    "coverage",
  ]);
  assert.deepEqual(EXPORT_COLUMNS.filter((c) => c.nullable).map((c) => c.name), ["vwap"]);
  assert.deepEqual(
    EXPORT_COLUMNS.filter((c) => c.kind === "decimal").map((c) => c.name),
    ["volume", "pv_sum", "vwap"],
  );
});

Deno.test("valueOf() reads the column's field, null for a null VWAP", () => {
  const volume = EXPORT_COLUMNS.find((c) => c.name === "volume")!;
  const vwap = EXPORT_COLUMNS.find((c) => c.name === "vwap")!;
  assert.equal(valueOf(testCandle(), volume), "0.30000000000000004");
  assert.equal(valueOf(testCandle({ vwap: null }), vwap), null);
});
