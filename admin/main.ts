/**
 * `deno task topics` creates the Kafka topics; `deno task schema` applies
 * `schemas/cassandra/*.cql`. Both are idempotent: run them again and nothing changes.
 * `deno task lag` prints each stage's consumer lag per partition, read from Kafka itself (log end
 * offset minus committed offset), so it works while the status endpoint or a worker is down.
 * `deno task cql "SELECT ..."` runs one CQL statement in the configured keyspace and prints each
 * row as a JSON line (bigints and decimals as strings).
 *
 * @module
 */
import { ensureServices } from "../local_services/services.ts";
import { createCassandraClient } from "../shared/cassandra.ts";
import { provisionSchema, provisionTopics } from "../shared/provision.ts";
import type { Config } from "../shared/config.ts";
import { createKafka } from "../shared/kafka.ts";
import type { Logger } from "../shared/log.ts";
import { type MainContext, runMain } from "../shared/main.ts";
import { inputTopicOf, STAGES, stageSubscriptions } from "../shared/topology.ts";
import { consumerLag } from "../shared/lag.ts";

const USAGE = 'Usage: deno task topics | deno task schema | deno task lag | deno task cql "<CQL>"';

type Command = "topics" | "schema" | "lag" | "cql";

async function main(
  command: Command,
  rest: string[],
  { env, config, log }: MainContext,
): Promise<number> {
  if (command === "lag") return await printLag(config, log);
  if (command === "cql") return await runCql(config, rest[0] ?? "");
  await ensureServices(env, { log: (line) => log.info(line) });
  if (command === "topics") {
    for (const outcome of await provisionTopics(config, log)) {
      log.info(`topic ${outcome.topic}: ${outcome.action}`, { partitions: outcome.partitions });
    }
    return 0;
  }
  const statements = await provisionSchema(config);
  log.info(`schema applied to keyspace ${config.cassandra.keyspace}`, {
    statements: statements.length,
  });
  return 0;
}

async function runCql(config: Config, statement: string): Promise<number> {
  const client = createCassandraClient(config.cassandra, {
    applicationName: "market-admin",
    keyspace: config.cassandra.keyspace,
  });
  try {
    const result = await client.execute(statement, [], { prepare: false });
    for (const row of result.rows ?? []) {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(row)) out[key] = row[key];
      console.log(JSON.stringify(out, (_k, v) => {
        if (typeof v === "bigint") return String(v);
        if (v instanceof Map) return Object.fromEntries(v);
        // Driver value types (BigDecimal, LocalDate, Uuid, InetAddress) print exactly as strings.
        if (
          v !== null && typeof v === "object" && !Array.isArray(v) &&
          Object.getPrototypeOf(v) !== Object.prototype
        ) return String(v);
        return v;
      }));
    }
    console.error(`${result.rows?.length ?? 0} row(s)`);
  } finally {
    await client.shutdown();
  }
  return 0;
}

async function printLag(config: Config, log: Logger): Promise<number> {
  const admin = createKafka(config.kafka, log, { clientIdSuffix: "admin" }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = STAGES.map((stage) => inputTopicOf(config, stage)).filter((t) =>
      !existing.has(t)
    );
    if (missing.length > 0) {
      console.error(
        `admin: topic(s) ${[...new Set(missing)].join(", ")} do not exist on ` +
          `${config.kafka.brokers.join(",")}: run \`deno task topics\` (or start the pipeline)`,
      );
      return 1;
    }
    const rows = await consumerLag(
      admin,
      stageSubscriptions(config),
    );
    console.log(["group", "topic", "partition", "log_end", "committed", "lag"].join("\t"));
    for (const r of rows) {
      console.log([r.group, r.topic, r.partition, r.logEnd, r.committed, r.lag].join("\t"));
    }
    const total = rows.reduce((sum, r) => sum + r.lag, 0);
    console.log(`total lag: ${total} record(s) across ${rows.length} partition(s)`);
  } finally {
    await admin.disconnect();
  }
  return 0;
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  if (
    !(command === "topics" || command === "schema" || command === "lag" || command === "cql") ||
    (command === "cql" && rest.length !== 1)
  ) {
    console.error(USAGE);
    Deno.exit(2);
  }
  // Nothing to finish: Ctrl-C exits at once.
  await runMain("admin", (context) => main(command, rest, context), {
    component: `admin.${command}`,
    signals: false,
  });
}
