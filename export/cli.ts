/**
 * The flags of `deno task export`: `--symbol S --interval I --from T --to T --format csv|parquet
 * --out FILE` (`--out -` writes to stdout, CSV only: a terminal is no place for Parquet). Pure;
 * a `RangeError` is a usage error (exit code 2).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { EXPORT_PARAMETERS, type ExportRequest, parseExportRequest } from "./request.ts";

/** The usage text. */
export const USAGE = `Usage: deno task export --symbol S --interval I --from TIME --to TIME \\
         --format csv|parquet --out FILE

  --symbol    AAPL or EXCHANGE:PAIR (BINANCE:BTCUSDT)
  --interval  a stored interval (5m, 1h)
  --from      first window start, inclusive: epoch ms or ISO 8601 UTC (2026-12-01T00:00:00Z)
  --to        last window start, exclusive
  --format    csv or parquet
  --out       the file to write (replaced only once complete), or - for stdout (csv only)`;

/** What the command line asks for. */
export interface ExportCommand {
  readonly request: ExportRequest;
  /** A file path, or `-` for stdout. */
  readonly out: string;
}

/** `--help` given: print {@linkcode USAGE}. */
export const HELP = Symbol("help");

/** The export the arguments ask for, or {@linkcode HELP}. Throws a `RangeError` on misuse. */
export function parseExportArgs(args: readonly string[]): ExportCommand | typeof HELP {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        ...Object.fromEntries(EXPORT_PARAMETERS.map((name) => [name, { type: "string" }])),
        out: { type: "string" },
        help: { type: "boolean" },
      } as const,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new RangeError((error as Error).message);
  }
  if (values.help) return HELP;
  const { out, help: _, ...params } = values as Record<string, string | undefined>;
  const request = parseExportRequest(params);
  if (out === undefined || out === "") {
    throw new RangeError("parameter 'out' is required: a file path, or - for stdout");
  }
  if (out === "-" && request.format === "parquet") {
    throw new RangeError("parameter 'out' must be a file for parquet: - (stdout) is for csv");
  }
  return { request, out };
}
