/**
 * What an export is asked for, from `deno task export`'s flags or `/api/candles`'s query:
 * `symbol`, `interval`, `from`, `to` (all required) and `format` (`csv` or `parquet`). Pure, so
 * every rule is unit-tested; each throws a `RangeError` naming the parameter, which the CLI
 * answers with exit code 2 and the route with a 400.
 *
 * Unlike the JSON route there is no span limit and no `limit`: an export streams every candle of
 * the range (times from 2000 to 2099, as everywhere).
 *
 * @module
 */
import { SERVED_INTERVALS, type ServedInterval } from "../shared/gold_table.ts";
import type { ServedSpan } from "../shared/served_candles.ts";
import { parseSymbol, parseTime } from "../status/market/params.ts";

/** The file formats of an export. */
export const EXPORT_FORMATS = ["csv", "parquet"] as const;

/** A file format of an export. */
export type ExportFormat = typeof EXPORT_FORMATS[number];

/** A validated export. */
export interface ExportRequest extends ServedSpan {
  readonly format: ExportFormat;
}

/** The parameters of an export. */
export const EXPORT_PARAMETERS = ["symbol", "interval", "from", "to", "format"] as const;

/** The HTTP Content-Type of each format. */
export const CONTENT_TYPE: Readonly<Record<ExportFormat, string>> = {
  csv: "text/csv; charset=utf-8; header=present",
  parquet: "application/vnd.apache.parquet",
};

/** A served interval: one of {@linkcode SERVED_INTERVALS} (15m and 4h rolled up from stored rows). */
export function parseExportInterval(value: string | undefined): ServedInterval {
  if (value === undefined || value === "") {
    throw new RangeError(`parameter 'interval' is required: one of ${SERVED_INTERVALS.join(", ")}`);
  }
  if (!(SERVED_INTERVALS as readonly string[]).includes(value)) {
    throw new RangeError(
      `parameter 'interval' must be one of ${SERVED_INTERVALS.join(", ")}, got ${
        JSON.stringify(value.slice(0, 20))
      }`,
    );
  }
  return value as ServedInterval;
}

/** A format: `csv` or `parquet`. */
export function parseExportFormat(value: string | undefined): ExportFormat {
  if (!(EXPORT_FORMATS as readonly (string | undefined)[]).includes(value)) {
    throw new RangeError(
      `parameter 'format' must be one of ${EXPORT_FORMATS.join(", ")}, got ${
        value === undefined ? "nothing" : JSON.stringify(value.slice(0, 20))
      }`,
    );
  }
  return value as ExportFormat;
}

function requiredTime(name: string, value: string | undefined): number {
  if (value === undefined || value === "") {
    throw new RangeError(
      `parameter '${name}' is required: epoch milliseconds or an ISO 8601 time like 2026-12-01T00:00:00Z`,
    );
  }
  return parseTime(name, value);
}

/**
 * The export that `params` (one value a name) asks for. Unknown names are refused, so a typo is
 * not silently ignored.
 */
export function parseExportRequest(
  params: Readonly<Record<string, string | undefined>>,
): ExportRequest {
  for (const name of Object.keys(params)) {
    if (!(EXPORT_PARAMETERS as readonly string[]).includes(name)) {
      throw new RangeError(
        `unknown parameter ${JSON.stringify(name.slice(0, 40))}: an export takes ${
          EXPORT_PARAMETERS.map((n) => `'${n}'`).join(", ")
        }`,
      );
    }
  }
  const symbol = parseSymbol(params.symbol);
  const interval = parseExportInterval(params.interval);
  const from = requiredTime("from", params.from);
  const to = requiredTime("to", params.to);
  if (from >= to) {
    throw new RangeError(
      `parameter 'from' (${new Date(from).toISOString()}) must be before 'to' (${
        new Date(to).toISOString()
      })`,
    );
  }
  return { symbol, interval, from, to, format: parseExportFormat(params.format) };
}

/** A query's parameters, each given once; a repeated one is refused. */
export function singleValues(
  params: Readonly<Record<string, readonly string[]>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, values] of Object.entries(params)) {
    if (values.length !== 1) throw new RangeError(`parameter '${name}' is given more than once`);
    out[name] = values[0]!;
  }
  return out;
}

function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
}

/**
 * The file name of an export, e.g. `BINANCE_BTCUSDT_5m_20261201T000000Z_20261202T000000Z.csv`:
 * characters other than letters, digits, `.`, `_` and `-` become `_`.
 */
export function exportFileName(request: ExportRequest): string {
  const symbol = request.symbol.replace(/[^A-Za-z0-9._-]/g, "_");
  return `${symbol}_${request.interval}_${compactTime(request.from)}_${
    compactTime(request.to)
  }.${request.format}`;
}
