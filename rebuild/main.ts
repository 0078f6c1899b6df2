/**
 * `deno task rebuild --from <time> --to <time> [--symbols A,B] [--layers silver,gold]`:
 * re-derives silver and gold for a span of event time from the raw topic (or bronze) while the
 * pipeline runs, and prints what changed. See `--help` and README "Rebuilding silver and gold".
 * Progress goes to stderr, the report to stdout; exit 0 when done, 1 on an error, 130 when
 * stopped by Ctrl-C.
 *
 * @module
 */
import { createCassandraClient } from "../shared/cassandra.ts";
import { createKafka } from "../shared/kafka.ts";
import { type MainContext, runMain } from "../shared/main.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { createWireCodec } from "../shared/wire.ts";
import { rebuild, RebuildStopped } from "./rebuild.ts";
import { formatReport, progressLine } from "./report.ts";
import { parseRebuildArgs, type RebuildArgs, USAGE } from "./span.ts";

/** Progress lines at most this often, ms. */
const PROGRESS_EVERY_MS = 2000;

async function main(args: RebuildArgs, { config, log, signal }: MainContext): Promise<number> {
  const session = createCassandraClient(config.cassandra, {
    applicationName: "market-rebuild",
    keyspace: config.cassandra.keyspace,
  });
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: "rebuild" });
  const wire = createWireCodec(createSchemaRegistryClient(config.registry));
  const started = performance.now();
  let shown = 0;
  try {
    const outcome = await rebuild({
      config,
      session,
      kafka,
      wire,
      signal,
      say: (line) => console.error(line),
      progress: (read, total) => {
        const at = performance.now();
        if (at - shown < PROGRESS_EVERY_MS && read !== total) return;
        shown = at;
        console.error(progressLine(read, total, at - started));
      },
    }, args);
    for (const line of formatReport(outcome, args.verbose)) console.log(line);
    return 0;
  } catch (error) {
    if (error instanceof RebuildStopped) {
      console.error(`rebuild: ${error.message}`);
      return 130;
    }
    throw error;
  } finally {
    await session.shutdown();
  }
}

if (import.meta.main) {
  let args: RebuildArgs;
  try {
    args = parseRebuildArgs(Deno.args);
  } catch (error) {
    console.error(`rebuild: ${(error as Error).message}`);
    Deno.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  await runMain("rebuild", (context) => main(args, context));
}
