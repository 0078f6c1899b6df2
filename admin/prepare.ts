/**
 * What every runnable does before its real work when it runs on this machine's own services:
 * start the local Kafka and Cassandra when nothing answers, then create the topics and apply the
 * schema (both idempotent), so `deno task processor` or `deno task producer` works on a fresh
 * clone with nothing else typed first. Against external servers (docker compose, a cluster)
 * nothing is started or created: there `deno task topics` and `deno task schema` are explicit
 * steps (compose runs them as one-shot jobs).
 *
 * @module
 */
import { ensureServices, localServices } from "../local_services/services.ts";
import { applySchema, createCassandraClient } from "../shared/cassandra.ts";
import type { Config } from "../shared/config.ts";
import { createKafka, ensureTopics } from "../shared/kafka.ts";
import type { Logger } from "../shared/log.ts";

/** Prepares the local services for `config`; a no-op for external ones. */
export async function prepareLocal(
  env: Record<string, string | undefined>,
  config: Config,
  log: Logger,
): Promise<void> {
  const local = localServices(env);
  if (local.length === 0) return;
  await ensureServices(env, { log: (line) => log.info(line) });
  if (local.includes("kafka")) {
    const admin = createKafka(config.kafka, log, { clientIdSuffix: "prepare" }).admin();
    await admin.connect();
    try {
      await ensureTopics(admin, config.kafka);
    } finally {
      await admin.disconnect();
    }
  }
  if (local.includes("cassandra")) {
    const client = createCassandraClient(config.cassandra, { applicationName: "market-prepare" });
    try {
      await applySchema(client, config.cassandra);
    } finally {
      await client.shutdown();
    }
  }
}
