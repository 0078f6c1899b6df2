/**
 * `deno task export`: one symbol's candles of one interval over a span, from the gold tables to
 * a CSV or Parquet file (flags: `cli.ts`), streamed: memory does not grow with the span. A file
 * is written beside its name (`FILE.partial`) and renamed once complete, so a failed or
 * interrupted export never leaves a file that looks whole. Prints a summary line to stderr.
 * Exit codes: 0 done, 1 failed (Cassandra, disk), 2 usage error, 130 interrupted.
 *
 * @module
 */
import { createCassandraClient } from "../shared/cassandra.ts";
import type { CandleWithSum } from "../shared/gold_table.ts";
import { readServedCandlesStream } from "../shared/served_candles.ts";
import { type MainContext, runMain } from "../shared/main.ts";
import { type ExportCommand, HELP, parseExportArgs, USAGE } from "./cli.ts";
import { encodeCandles } from "./export.ts";

async function* counted(
  candles: AsyncIterable<CandleWithSum>,
  count: { rows: number },
  signal: AbortSignal,
): AsyncGenerator<CandleWithSum> {
  for await (const candle of candles) {
    if (signal.aborted) throw new DOMException("export interrupted", "AbortError");
    count.rows++;
    yield candle;
  }
}

async function writeAll(
  file: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

async function run(command: ExportCommand, { config, signal }: MainContext): Promise<number> {
  const { request, out } = command;
  const started = performance.now();
  const session = createCassandraClient(config.cassandra, { applicationName: "market-export" });
  const count = { rows: 0 };
  const partial = `${out}.partial`;
  const file = out === "-"
    ? Deno.stdout
    : await Deno.open(partial, { write: true, create: true, truncate: true });
  let bytes = 0;
  let complete = false;
  try {
    const { format: _, ...span } = request;
    const candles = counted(
      readServedCandlesStream(session, config.cassandra.keyspace, span, {
        now: Date.now(),
        allowedLatenessMs: config.gold.allowedLatenessMs,
      }),
      count,
      signal,
    );
    for await (const chunk of encodeCandles(candles, request.format)) {
      await writeAll(file, chunk);
      bytes += chunk.length;
    }
    complete = true;
  } catch (error) {
    if (signal.aborted) {
      console.error(`export: interrupted after ${count.rows} candles; nothing written to ${out}`);
      return 130;
    }
    throw error;
  } finally {
    if (out !== "-") {
      file.close();
      if (complete) await Deno.rename(partial, out);
      else await Deno.remove(partial).catch(() => {});
    }
    await session.shutdown();
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.error(
    `export: ${count.rows} candles of ${request.symbol} ${request.interval} from ${
      new Date(request.from).toISOString()
    } to ${
      new Date(request.to).toISOString()
    } -> ${out} (${request.format}, ${bytes} bytes, ${seconds} s)`,
  );
  return 0;
}

if (import.meta.main) {
  let command: ExportCommand | typeof HELP;
  try {
    command = parseExportArgs(Deno.args);
  } catch (error) {
    console.error(`export: ${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (command === HELP) {
    console.log(USAGE);
    Deno.exit(0);
  }
  await runMain("export", (context) => run(command, context));
}
