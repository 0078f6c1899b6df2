/**
 * End-to-end check of the local servers with the project's own clients: one message produced and
 * consumed with kafkajs on a fresh topic, and one row written with a TTL in a fresh Cassandra
 * keyspace and read back with `TTL(col)`. Everything it creates is deleted again.
 *
 * Nothing runs at import; `deno run -A local_services/cli.ts smoke` calls {@link smokeCheck}.
 *
 * @module
 */

import "../shared/kafkajs_fixes.ts"; // before kafkajs: its producers must not drop nor give up a commit
import { Kafka, logLevel } from "kafkajs";
import { Client as CassandraClient } from "cassandra-driver";

/** Options of {@link smokeCheck}. */
export interface SmokeCheckOptions {
  /** Receives one line per step. Default: write to stderr. */
  log?: (line: string) => void;
  /** Kafka bootstrap brokers. Default `["127.0.0.1:9092"]`. */
  brokers?: string[];
  /** Cassandra contact points. Default `["127.0.0.1:9042"]`. */
  contactPoints?: string[];
  /** Deadline for the Kafka round trip. Default 30 s. */
  timeoutMs?: number;
}

/** What {@link smokeCheck} measured. */
export interface SmokeCheckResult {
  topic: string;
  consumedValue: string;
  kafkaMs: number;
  keyspace: string;
  ttlSeconds: number;
  cassandraMs: number;
}

/**
 * Produces and consumes one message on a fresh topic, and round-trips a TTL'd row through a fresh
 * keyspace. @throws Error naming the step that failed.
 */
export async function smokeCheck(options: SmokeCheckOptions = {}): Promise<SmokeCheckResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  const kafka = await kafkaRoundTrip(
    options.brokers ?? ["127.0.0.1:9092"],
    `local_services_smoke_${suffix}`,
    options.timeoutMs ?? 30_000,
  );
  log(
    `kafka: produced and consumed "${kafka.consumedValue}" on fresh topic ${kafka.topic} ` +
      `in ${(kafka.kafkaMs / 1000).toFixed(1)} s (topic deleted)`,
  );
  const cassandra = await cassandraTtlRoundTrip(
    options.contactPoints ?? ["127.0.0.1:9042"],
    `local_services_smoke_${suffix}`,
  );
  log(
    `cassandra: wrote a row USING TTL 3600 in fresh keyspace ${cassandra.keyspace}, read back ` +
      `TTL(v) = ${cassandra.ttlSeconds} in ${(cassandra.cassandraMs / 1000).toFixed(1)} s ` +
      "(keyspace dropped)",
  );
  return { ...kafka, ...cassandra };
}

async function kafkaRoundTrip(brokers: string[], topic: string, timeoutMs: number) {
  const t0 = performance.now();
  const kafka = new Kafka({
    clientId: "local-services-smoke",
    brokers,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: `${topic}_group` });
  const value = `hello ${new Date().toISOString()}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await admin.connect();
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    if (!created) throw new Error(`Kafka smoke check: topic ${topic} already existed`);
    await producer.connect();
    await producer.send({ topic, messages: [{ key: "smoke", value }] });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const consumed = await new Promise<string>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Kafka smoke check: no message consumed within ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer.run({
        eachMessage: ({ message }) => {
          resolve(message.value?.toString() ?? "");
          return Promise.resolve();
        },
      }).catch(reject);
    });
    if (consumed !== value) {
      throw new Error(`Kafka smoke check: consumed ${JSON.stringify(consumed)}, sent ${value}`);
    }
    return { topic, consumedValue: consumed, kafkaMs: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.deleteGroups([`${topic}_group`]).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

async function cassandraTtlRoundTrip(contactPoints: string[], keyspace: string) {
  const t0 = performance.now();
  const client = new CassandraClient({ contactPoints, localDataCenter: "datacenter1" });
  try {
    await client.connect();
    await client.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = ` +
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    );
    await client.execute(`CREATE TABLE ${keyspace}.smoke (id text PRIMARY KEY, v text)`);
    await client.execute(
      `INSERT INTO ${keyspace}.smoke (id, v) VALUES (?, ?) USING TTL 3600`,
      ["a", "x"],
      { prepare: true },
    );
    const rs = await client.execute(`SELECT TTL(v) AS ttl FROM ${keyspace}.smoke WHERE id = ?`, [
      "a",
    ], { prepare: true });
    const ttl: unknown = rs.first()?.get("ttl");
    if (typeof ttl !== "number" || ttl <= 3500 || ttl > 3600) {
      throw new Error(`Cassandra smoke check: TTL(v) is ${String(ttl)}, expected about 3600`);
    }
    return { keyspace, ttlSeconds: ttl, cassandraMs: performance.now() - t0 };
  } finally {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
    await client.shutdown().catch(() => {});
  }
}
