/**
 * `deno task status`: the status endpoint (Hono) on STATUS_HOST:STATUS_PORT. Reads worker
 * reports from the metrics topic and consumer lag from Kafka; see `app.ts` for the routes and
 * `server.ts` for the connection timeouts and cap. It also serves the live market page at `/`
 * (`market/market.ts`), fed by the candle-updates topic. It writes nothing to Kafka, so it
 * registers no schema: it asks the registry (SCHEMA_REGISTRY_URL) for each writer schema id it
 * meets, once, and starts whether or not the registry answers yet.
 *
 * @module
 */
import { prepareLocal } from "../shared/provision.ts";
import { createCassandraClient } from "../shared/cassandra.ts";
import { createKafka } from "../shared/kafka.ts";
import { describeError } from "../shared/log.ts";
import { type MainContext, runMain } from "../shared/main.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { redact } from "../shared/secret.ts";
import { allowedHostsOf, createStatusApp } from "./app.ts";
import { createCollector } from "../shared/report_collector.ts";
import { serveStatus } from "./server.ts";
import { createMarketService } from "./market/market.ts";
import { consumerLag } from "../shared/lag.ts";
import { stageSubscriptions } from "../shared/topology.ts";
import { createWireCodec } from "../shared/wire.ts";

/** Caches an async value for `ms`, so a burst of scrapes asks Kafka once. */
function cached<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  let at = 0;
  return () => {
    if (!value || Date.now() - at > ms) {
      at = Date.now();
      value = load();
      value.catch(() => (value = undefined));
    }
    return value;
  };
}

async function main({ env, config, secrets, log, signal }: MainContext): Promise<number> {
  await prepareLocal(env, config, log);
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: "status" });
  const admin = kafka.admin();
  const session = createCassandraClient(config.cassandra, { applicationName: "market-status" });
  const metrics = new MetricsRegistry();
  const wire = createWireCodec(createSchemaRegistryClient(config.registry));
  const collector = createCollector({
    kafka,
    topic: config.kafka.topics.metrics,
    wire,
    groupId: `${config.kafka.groupPrefix}.status-${crypto.randomUUID().slice(0, 8)}`,
    log,
    metrics,
  });
  await admin.connect();
  await collector.start();
  const subscriptions = stageSubscriptions(config);
  const sources = {
    workers: () => collector.workers(),
    lag: cached(1000, () => consumerLag(admin, subscriptions)),
    kafkaUp: cached(2000, async () => (await admin.describeCluster()).brokers.length > 0),
    // Up means the pipeline can write: a read of a pipeline table at LOCAL_QUORUM (the writes'
    // consistency) fails when fewer than a quorum of replicas are up, though every node still
    // up would answer system.local.
    cassandraUp: cached(2000, async () => {
      await session.execute(
        `SELECT symbol FROM ${config.cassandra.keyspace}.latest_prices LIMIT 1`,
      );
      return true;
    }),
  };
  const market = createMarketService({
    config,
    kafka,
    session,
    sources,
    wire,
    log: log.child("market"),
    metrics,
  });
  market.start();
  // Event streams never end by themselves: close them so the server can finish.
  signal.addEventListener("abort", () => void market.stop().catch(() => {}));
  const app = createStatusApp({
    token: config.status.token,
    expectedWorkers: config.status.expectedWorkers,
    sources,
    allowedHosts: allowedHostsOf(config.status),
    metrics,
    ...(config.status.accessLog ? { accessLog: log.child("access") } : {}),
    extend: market.mount,
  });
  const server = await serveStatus({
    hostname: config.status.host,
    port: config.status.port,
    maxConnections: config.status.maxConnections,
    metrics,
    signal,
    onError: (error) => {
      log.error("request failed", { error: describeError(error) });
      return new Response(redact("internal error", secrets), {
        status: 500,
        headers: { "X-Content-Type-Options": "nosniff" },
      });
    },
    handler: app.fetch,
  });
  const { hostname, port } = server.addr;
  log.info(`listening on http://${hostname}:${port}`);
  const shown = hostname === "0.0.0.0" || hostname === "::"
    ? "127.0.0.1"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  const hint = config.status.token.isSet ? "?token=<STATUS_TOKEN>" : "";
  log.info(`market page: http://${shown}:${port}/${hint}`);
  await server.finished;
  await market.stop().catch(() => {});
  await collector.stop().catch(() => {});
  await admin.disconnect().catch(() => {});
  await session.shutdown().catch(() => {});
  log.info("stopped");
  return 0;
}

if (import.meta.main) await runMain("status", main);
