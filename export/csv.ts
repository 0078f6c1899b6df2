/**
 * Candles as CSV (RFC 4180): a header line of the column names, one line a candle, lines ended
 * by CRLF, a field quoted (with inner quotes doubled) only when it holds a comma, quote, CR or
 * LF. Values: timestamps ISO 8601 UTC with milliseconds; doubles as their shortest round-trip
 * text (`String(x)`, what `float()` of Python reads back to the same double); decimals as their
 * exact text; a null as an empty field. Pure: `export.ts` streams the lines.
 *
 * @module
 */
import type { CandleWithSum } from "../shared/gold_table.ts";
import { EXPORT_COLUMNS, type ExportColumn, valueOf } from "./columns.ts";

/** The line ending. */
export const CSV_EOL = "\r\n";

/** `text` as a CSV field: quoted when it holds a comma, a quote, CR or LF. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The text of one value of `column`; empty for null. Throws a `TypeError` for a wrong type. */
export function csvValue(value: unknown, column: ExportColumn): string {
  if (value === null || value === undefined) {
    if (!column.nullable) throw new TypeError(`Column '${column.name}' must not be null`);
    return "";
  }
  switch (column.kind) {
    case "timestamp":
      if (typeof value !== "number" || !Number.isFinite(value)) break;
      return new Date(value).toISOString();
    case "double":
      if (typeof value !== "number") break;
      return String(value);
    case "int64":
      if (typeof value !== "number" && typeof value !== "bigint") break;
      return String(value);
    case "boolean":
      if (typeof value !== "boolean") break;
      return String(value);
    case "string":
    case "decimal":
      if (typeof value !== "string") break;
      return csvField(value);
  }
  throw new TypeError(
    `Column '${column.name}' (${column.kind}) cannot hold ${typeof value} ${String(value)}`,
  );
}

/** The header line, CRLF included. */
export function csvHeader(columns: readonly ExportColumn[] = EXPORT_COLUMNS): string {
  return columns.map((c) => csvField(c.name)).join(",") + CSV_EOL;
}

/** The line of one candle, CRLF included. */
export function csvLine(
  candle: CandleWithSum,
  columns: readonly ExportColumn[] = EXPORT_COLUMNS,
): string {
  return columns.map((c) => csvValue(valueOf(candle, c), c)).join(",") + CSV_EOL;
}
