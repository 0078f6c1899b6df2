/**
 * Candles as Parquet, written with `hyparquet-writer` (npm) a row group at a time: rows are
 * gathered into columns until {@linkcode DEFAULT_ROW_GROUP_ROWS}, encoded as one row group,
 * and the bytes handed out, so memory holds one row group however many rows the file has (the
 * footer keeps a few hundred bytes of metadata per row group).
 *
 * Types (one per kind of `columns.ts`):
 * - `string`: BYTE_ARRAY, STRING (UTF8);
 * - `timestamp`: INT64, TIMESTAMP(MILLIS, isAdjustedToUTC=true);
 * - `double`: DOUBLE;
 * - `decimal`: BYTE_ARRAY, STRING, the exact decimal text. Not the DECIMAL logical type: that
 *   has one scale per column, while Cassandra's `decimal` has none (a volume of 0.00000001
 *   times a price of 0.30000000000000004 is a pv_sum of scale 25), and DuckDB reads a DECIMAL
 *   of precision above 38 as a double. Text is exact for every stored value and every reader;
 *   `CAST(volume AS DECIMAL(38, 18))` or Python's `Decimal(text)` makes numbers of it;
 * - `int64`: INT64; `boolean`: BOOLEAN.
 * A non-nullable column is REQUIRED, a nullable one OPTIONAL.
 *
 * @module
 */
import { ByteWriter, ParquetWriter, type SchemaElement } from "hyparquet-writer";
import type { CandleWithSum } from "../shared/gold_table.ts";
import { type ColumnKind, EXPORT_COLUMNS, type ExportColumn, valueOf } from "./columns.ts";

/** Rows of a row group. */
export const DEFAULT_ROW_GROUP_ROWS = 10_000;

const ELEMENT_OF: Readonly<Record<ColumnKind, Omit<SchemaElement, "name">>> = {
  string: { type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" } },
  decimal: { type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" } },
  timestamp: {
    type: "INT64",
    converted_type: "TIMESTAMP_MILLIS",
    logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
  },
  double: { type: "DOUBLE" },
  int64: { type: "INT64" },
  boolean: { type: "BOOLEAN" },
};

/** The Parquet schema of `columns`: the root, then one element a column. */
export function parquetSchema(columns: readonly ExportColumn[] = EXPORT_COLUMNS): SchemaElement[] {
  return [
    { name: "root", num_children: columns.length },
    ...columns.map((c): SchemaElement => ({
      name: c.name,
      ...ELEMENT_OF[c.kind],
      repetition_type: c.nullable ? "OPTIONAL" : "REQUIRED",
    })),
  ];
}

/** The Parquet value of one value of `column`. Throws a `TypeError` for a wrong type. */
export function parquetValue(value: unknown, column: ExportColumn): unknown {
  if (value === null || value === undefined) {
    if (!column.nullable) throw new TypeError(`Column '${column.name}' must not be null`);
    return null;
  }
  switch (column.kind) {
    case "timestamp":
    case "int64":
      if (typeof value === "bigint") return value;
      if (typeof value !== "number" || !Number.isSafeInteger(value)) break;
      return BigInt(value);
    case "double":
      if (typeof value !== "number") break;
      return value;
    case "boolean":
      if (typeof value !== "boolean") break;
      return value;
    case "string":
    case "decimal":
      if (typeof value !== "string") break;
      return value;
  }
  throw new TypeError(
    `Column '${column.name}' (${column.kind}) cannot hold ${typeof value} ${String(value)}`,
  );
}

/** Options of {@linkcode createParquetEncoder}. */
export interface ParquetEncoderOptions {
  /** Rows a row group holds. Default {@linkcode DEFAULT_ROW_GROUP_ROWS}. */
  readonly rowGroupRows?: number;
  readonly columns?: readonly ExportColumn[];
}

/** Encodes candles into a Parquet file, handing out its bytes as row groups fill. */
export interface ParquetEncoder {
  /** Adds a candle: the file's next bytes when this completed a row group, else empty. */
  push(candle: CandleWithSum): Uint8Array;
  /** The last row group and the footer. The encoder is done after. */
  end(): Uint8Array;
}

/** A Parquet encoder of candles. */
export function createParquetEncoder(options: ParquetEncoderOptions = {}): ParquetEncoder {
  const rowGroupRows = options.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS;
  const columns = options.columns ?? EXPORT_COLUMNS;
  const bytes = new ByteWriter();
  const writer = new ParquetWriter({
    writer: bytes,
    schema: parquetSchema(columns),
    kvMetadata: [{
      key: "decimals",
      value: `${
        columns.filter((c) => c.kind === "decimal").map((c) => c.name).join(", ")
      } are exact decimals written as text`,
    }],
    createdBy: "market-data export (hyparquet-writer 0.17.0)",
  });
  let pending: unknown[][] = columns.map(() => []);
  let rows = 0;

  function drain(): Uint8Array {
    const out = bytes.getBytes().slice();
    bytes.index = 0;
    return out;
  }

  function writeGroup(): void {
    if (rows === 0) return;
    writer.write({
      columnData: columns.map((c, i) => ({ name: c.name, data: pending[i]! })),
      rowGroupSize: rows,
    });
    pending = columns.map(() => []);
    rows = 0;
  }

  return {
    push(candle) {
      columns.forEach((c, i) => pending[i]!.push(parquetValue(valueOf(candle, c), c)));
      rows++;
      if (rows < rowGroupRows) return new Uint8Array(0);
      writeGroup();
      return drain();
    },
    end() {
      writeGroup();
      writer.finish();
      return drain();
    },
  };
}
