/**
 * The one way the pipeline's topics and schema come to exist: {@linkcode provisionTopics} and
 * {@linkcode provisionSchema}, both idempotent, used by `deno task topics` / `schema`, by
 * `deno task start`, and through {@linkcode prepareLocal} by every worker.
 *
 * On this machine's own services a worker prepares what it needs before its real work: start
 * the local Kafka and Cassandra when nothing answers, then create the topics and apply the
 * schema, so `deno task processor` or `deno task producer` works on a fresh clone with nothing
 * else typed first. Against external servers (docker compose, a cluster) a worker starts and
 * creates nothing: there `deno task topics` and `deno task schema` are explicit steps (compose
 * runs them as one-shot jobs).
 *
 * @module
 */
import { ensureServices, localServices } from "../local_services/services.ts";
import { applySchema, createCassandraClient } from "./cassandra.ts";
import type { Config } from "./config.ts";
import { createKafka, ensureTopics, pipelineTopics, type TopicOutcome } from "./kafka.ts";
import { describeError, type Logger, silentLogger } from "./log.ts";
import { createSchemaRegistryClient } from "./schema_registry.ts";
import { subjectOf } from "./wire.ts";

/**
 * Creates every topic that is missing and reports what it found. Kafka not answering is an
 * error naming `KAFKA_BROKERS`.
 */
export async function provisionTopics(
  config: Config,
  log: Logger = silentLogger(),
): Promise<TopicOutcome[]> {
  const admin = createKafka(config.kafka, log, { clientIdSuffix: "provision" }).admin();
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `cannot reach Kafka at ${config.kafka.brokers.join(",")} (KAFKA_BROKERS): ${
        describeError(error)
      }. Check that Kafka runs there, or leave KAFKA_BROKERS unset to use (and start) the local one`,
    );
  }
  try {
    return await ensureTopics(admin, config.kafka);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Creates the keyspace and every missing table; returns the statements run. Cassandra not
 * answering is an error naming `CASSANDRA_CONTACT_POINTS`.
 */
export async function provisionSchema(config: Config): Promise<string[]> {
  const client = createCassandraClient(config.cassandra, { applicationName: "market-provision" });
  try {
    try {
      await client.connect();
    } catch (error) {
      throw new Error(
        `cannot reach Cassandra at ${config.cassandra.contactPoints.join(",")} ` +
          `(CASSANDRA_CONTACT_POINTS): ${describeError(error)}. Check that Cassandra runs ` +
          "there, or leave CASSANDRA_CONTACT_POINTS unset to use (and start) the local one",
      );
    }
    return await applySchema(client, config.cassandra);
  } finally {
    await client.shutdown().catch(() => {});
  }
}

/**
 * The set-up of an isolated run (a test, a benchmark step) on names of its own
 * (`isolatedNames`): starts what `env` leaves on the local servers, then creates the topics and
 * applies the schema, local or not.
 */
export async function provision(
  config: Config,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<void> {
  await ensureServices(env);
  await provisionTopics(config);
  await provisionSchema(config);
}

/** Prepares the local services for `config`; a no-op for external ones. */
export async function prepareLocal(
  env: Record<string, string | undefined>,
  config: Config,
  log: Logger,
): Promise<void> {
  const local = localServices(env);
  if (local.length === 0) return;
  await ensureServices(env, { log: (line) => log.info(line) });
  if (local.includes("kafka")) await provisionTopics(config, log);
  if (local.includes("cassandra")) await provisionSchema(config);
}

/**
 * Drops the keyspace, the topics and their registry subjects (`<topic>-value`) of `config`, best
 * effort: the end of an isolated run (a
 * test, a benchmark step) on names of its own (`isolatedNames`). Never point it at a real
 * installation.
 */
export async function deprovision(config: Config): Promise<void> {
  const client = createCassandraClient(config.cassandra);
  try {
    await client.execute(`DROP KEYSPACE IF EXISTS ${config.cassandra.keyspace}`);
  } catch {
    /* best effort */
  } finally {
    await client.shutdown();
  }
  const admin = createKafka(config.kafka, silentLogger()).admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: pipelineTopics(config.kafka) });
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect();
  }
  const registry = createSchemaRegistryClient(config.registry, { timeoutMs: 15_000 });
  await Promise.all(
    pipelineTopics(config.kafka).map((topic) =>
      registry.deleteSubject(subjectOf(topic), { permanent: true }).catch(() => {})
    ),
  );
}
