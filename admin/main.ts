/**
 * `deno task topics` creates the Kafka topics; `deno task schema` applies
 * `schemas/cassandra/*.cql`. Both are idempotent: run them again and nothing changes.
 *
 * @module
 */
import { ensureServices } from "../local_services/services.ts";
import { applySchema, createCassandraClient } from "../shared/cassandra.ts";
import { loadConfig } from "../shared/config.ts";
import { createKafka, ensureTopics, hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { createLogger, describeError } from "../shared/log.ts";

const USAGE = "Usage: deno task topics | deno task schema";

async function main(command: string | undefined): Promise<number> {
  if (command !== "topics" && command !== "schema") {
    console.error(USAGE);
    return 2;
  }
  hideKafkajsTimeoutWarning();
  const env = Deno.env.toObject();
  const config = loadConfig(env);
  const log = createLogger(`admin.${command}`, {
    level: config.logLevel,
    secrets: [config.finnhub.apiKey, config.cassandra.password, config.status.token],
  });
  await ensureServices(env, { log: (line) => log.info(line) });
  if (command === "topics") {
    const admin = createKafka(config.kafka, log, { clientIdSuffix: "admin" }).admin();
    await admin.connect();
    try {
      for (const outcome of await ensureTopics(admin, config.kafka)) {
        log.info(`topic ${outcome.topic}: ${outcome.action}`, { partitions: outcome.partitions });
      }
    } finally {
      await admin.disconnect();
    }
    return 0;
  }
  const client = createCassandraClient(config.cassandra, { applicationName: "market-admin" });
  try {
    const statements = await applySchema(client, config.cassandra);
    log.info(`schema applied to keyspace ${config.cassandra.keyspace}`, {
      statements: statements.length,
    });
  } finally {
    await client.shutdown();
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args[0]));
  } catch (error) {
    console.error(`admin: ${describeError(error)}`);
    Deno.exit(1);
  }
}
