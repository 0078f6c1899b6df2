/**
 * An export as a stream of bytes: candles in, the file's bytes out, a chunk at a time, pulled by
 * the consumer (a file, stdout or an HTTP response), so a slow consumer slows the Cassandra reads
 * and memory holds one Cassandra page plus one chunk (CSV, about 64 KiB) or one row group
 * (Parquet) whatever the span.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { CandleWithSum } from "../shared/gold_table.ts";
import { readServedCandlesStream } from "../shared/served_candles.ts";
import { csvHeader, csvLine } from "./csv.ts";
import { createParquetEncoder, DEFAULT_ROW_GROUP_ROWS } from "./parquet.ts";
import type { ExportFormat, ExportRequest } from "./request.ts";

/** Options of {@linkcode encodeCandles} and {@linkcode exportCandles}. */
export interface ExportOptions {
  /** CSV: characters gathered before a chunk is handed out. Default 65,536. */
  readonly csvChunkChars?: number;
  /** Parquet: rows of a row group. Default {@linkcode DEFAULT_ROW_GROUP_ROWS}. */
  readonly rowGroupRows?: number;
  /** Rows a Cassandra page fetches. Default 1,000. */
  readonly fetchSize?: number;
}

/** What decides whether a rolled-up candle (15m, 4h) is final. */
export interface RollUpClock {
  /** Gold's allowed lateness (`GOLD_ALLOWED_LATENESS_MS`). */
  readonly allowedLatenessMs: number;
  /** Clock. Default `Date.now`. */
  readonly now?: () => number;
}

async function* csvBytes(
  candles: AsyncIterable<CandleWithSum>,
  chunkChars: number,
): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  let text = csvHeader();
  for await (const candle of candles) {
    text += csvLine(candle);
    if (text.length >= chunkChars) {
      yield encoder.encode(text);
      text = "";
    }
  }
  yield encoder.encode(text);
}

async function* parquetBytes(
  candles: AsyncIterable<CandleWithSum>,
  rowGroupRows: number,
): AsyncGenerator<Uint8Array> {
  const encoder = createParquetEncoder({ rowGroupRows });
  for await (const candle of candles) {
    const bytes = encoder.push(candle);
    if (bytes.length > 0) yield bytes;
  }
  yield encoder.end();
}

/** The bytes of `candles` (oldest first) as a file of `format`. */
export function encodeCandles(
  candles: AsyncIterable<CandleWithSum>,
  format: ExportFormat,
  options: ExportOptions = {},
): AsyncGenerator<Uint8Array> {
  return format === "csv"
    ? csvBytes(candles, options.csvChunkChars ?? 65_536)
    : parquetBytes(candles, options.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS);
}

/** The bytes of the export `request` asks for, read from the gold tables of `keyspace`. */
export function exportCandles(
  session: cassandra.Client,
  keyspace: string,
  request: ExportRequest,
  options: ExportOptions & RollUpClock,
): AsyncGenerator<Uint8Array> {
  const { format: _, ...span } = request;
  const candles = readServedCandlesStream(session, keyspace, span, {
    now: (options.now ?? Date.now)(),
    allowedLatenessMs: options.allowedLatenessMs,
    ...(options.fetchSize === undefined ? {} : { fetchSize: options.fetchSize }),
  });
  return encodeCandles(candles, request.format, options);
}
