/**
 * The simulator's record of what it sent, so a test can compute expected results without
 * trusting the pipeline. One NDJSON line per trade sent, in send order:
 *
 * `{"connection":3,"frame":17,"index":0,"trade":{"s":"AAPL","p":129.58,"t":1672348887666,"v":1,"c":["1"]}}`
 *
 * `connection` numbers the simulator's accepted connections from 1; `frame` numbers every frame
 * sent on that connection from 1 (pings and errors included, so it equals the producer's
 * `frameSeq`); `index` is the trade's place in the frame's `data`; `trade` is the object exactly
 * as sent (`c` absent when the key was left out). A frame delivered twice appears twice, with
 * two frame numbers. Fault frames (malformed or hostile) are one line each with no trade:
 * `{"connection":3,"frame":18,"fault":"price-as-string","expect":"bad_trade_shape"}`.
 *
 * @module
 */

/** One line of the ground-truth log. */
export type GroundTruthEntry =
  | {
    readonly connection: number;
    readonly frame: number;
    readonly index: number;
    readonly trade: Record<string, unknown>;
  }
  | {
    readonly connection: number;
    readonly frame: number;
    readonly fault: string;
    readonly expect: string;
  };

/** Where the log goes. */
export interface GroundTruthSink {
  /** Records the trades of one trade frame. */
  trades(connection: number, frame: number, trades: readonly unknown[]): void;
  /** Records one fault frame. */
  fault(connection: number, frame: number, name: string, expect: string): void;
  /** Writes what is buffered and closes the file. */
  close(): void;
}

const FLUSH_BYTES = 256 * 1024;

/** Appends the log to `path` (created or truncated), buffered; `close()` flushes it. */
export function openGroundTruth(path: string): GroundTruthSink {
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let chunks: string[] = [];
  let size = 0;
  let closed = false;

  function append(line: string) {
    if (closed) return;
    chunks.push(line);
    size += line.length;
    if (size >= FLUSH_BYTES) flush();
  }

  function flush() {
    if (chunks.length === 0) return;
    const bytes = encoder.encode(chunks.join(""));
    chunks = [];
    size = 0;
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
  }

  return {
    trades(connection, frame, trades) {
      const prefix = `{"connection":${connection},"frame":${frame},"index":`;
      for (let i = 0; i < trades.length; i++) {
        append(`${prefix}${i},"trade":${JSON.stringify(trades[i])}}\n`);
      }
    },
    fault(connection, frame, name, expect) {
      append(`${JSON.stringify({ connection, frame, fault: name, expect })}\n`);
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
      file.close();
    },
  };
}

/** Reads a ground-truth log back. */
export async function readGroundTruth(path: string): Promise<GroundTruthEntry[]> {
  const text = await Deno.readTextFile(path);
  const entries: GroundTruthEntry[] = [];
  for (const line of text.split("\n")) {
    if (line !== "") entries.push(JSON.parse(line));
  }
  return entries;
}

/** The trade lines of a log, leaving out fault frames. */
export function tradeEntries(
  entries: readonly GroundTruthEntry[],
): Extract<GroundTruthEntry, { trade: unknown }>[] {
  return entries.filter((e): e is Extract<GroundTruthEntry, { trade: unknown }> => "trade" in e);
}
