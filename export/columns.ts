/**
 * The columns of a candle export, one list for CSV and Parquet: one entry per field of a stored
 * candle ({@linkcode CandleWithSum} of `shared/gold_table.ts`), so a field added to the candle
 * is a compile error here until its column is added, in one line.
 *
 * Value kinds:
 * - `string`: text;
 * - `timestamp`: epoch milliseconds UTC (CSV: ISO 8601 `2026-12-01T14:05:00.000Z`; Parquet:
 *   INT64 TIMESTAMP(MILLIS, adjusted to UTC));
 * - `double`: a binary double (CSV: its shortest round-trip text; Parquet: DOUBLE);
 * - `decimal`: an exact decimal held as text (CSV and Parquet: that text, never a float);
 * - `int64`: a whole number (Parquet: INT64);
 * - `boolean`: `true` / `false`.
 *
 * @module
 */
import type { CandleWithSum } from "../shared/gold_table.ts";

/** How a column's values are written. */
export type ColumnKind = "string" | "timestamp" | "double" | "decimal" | "int64" | "boolean";

/** A column of the export. */
export interface ExportColumn {
  /** The candle field it holds. */
  readonly field: keyof CandleWithSum;
  /** Its name in the file (the Cassandra column's). */
  readonly name: string;
  readonly kind: ColumnKind;
  /** Whether a value may be null (empty in CSV). */
  readonly nullable: boolean;
}

type ColumnSpec = Omit<ExportColumn, "field">;

/** Every field of a candle, in file order (the compiler refuses a field left out). */
const COLUMN_OF: { readonly [K in keyof CandleWithSum]-?: ColumnSpec } = {
  symbol: { name: "symbol", kind: "string", nullable: false },
  interval: { name: "interval", kind: "string", nullable: false },
  windowStart: { name: "window_start", kind: "timestamp", nullable: false },
  windowEnd: { name: "window_end", kind: "timestamp", nullable: false },
  open: { name: "open", kind: "double", nullable: false },
  high: { name: "high", kind: "double", nullable: false },
  low: { name: "low", kind: "double", nullable: false },
  close: { name: "close", kind: "double", nullable: false },
  volume: { name: "volume", kind: "decimal", nullable: false },
  pvSum: { name: "pv_sum", kind: "decimal", nullable: false },
  vwap: { name: "vwap", kind: "decimal", nullable: true },
  tradeCount: { name: "trade_count", kind: "int64", nullable: false },
  isFinal: { name: "is_final", kind: "boolean", nullable: false },
  gapMs: { name: "gap_ms", kind: "int64", nullable: false },
  gapCount: { name: "gap_count", kind: "int64", nullable: false },
  coverage: { name: "coverage", kind: "double", nullable: false },
};

/** The columns of an export, in file order. */
export const EXPORT_COLUMNS: readonly ExportColumn[] = Object.freeze(
  (Object.entries(COLUMN_OF) as [keyof CandleWithSum, ColumnSpec][]).map(([field, spec]) =>
    Object.freeze({ field, ...spec })
  ),
);

/** The value of `column` in `candle`, `null` when absent. */
export function valueOf(candle: CandleWithSum, column: ExportColumn): unknown {
  return candle[column.field] ?? null;
}
