/**
 * The status endpoint's market routes over a real Cassandra store, without Kafka: what
 * tests/export_test.ts downloads exports from, in a process of its own so its memory can be
 * measured. Config from the environment (as every entry point), the token from
 * `EXPORT_TEST_TOKEN`; prints `listening <port>` once ready; stops on SIGTERM.
 *
 * @module
 */
import { createCassandraClient } from "../shared/cassandra.ts";
import { loadConfig } from "../shared/config.ts";
import { createMarketStore } from "../status/market/store.ts";
import { serveStatus } from "../status/server.ts";
import { marketTestApp } from "../status/test_doubles.ts";

const config = loadConfig(Deno.env.toObject());
const session = createCassandraClient(config.cassandra, { applicationName: "export-test" });
const store = createMarketStore(session, config.cassandra.keyspace, {
  allowedLatenessMs: config.gold.allowedLatenessMs,
});
const { app, hub } = marketTestApp(store, {
  token: Deno.env.get("EXPORT_TEST_TOKEN") ?? "",
  symbols: [],
});
const controller = new AbortController();
Deno.addSignalListener("SIGTERM", () => controller.abort());
const server = await serveStatus({
  hostname: "127.0.0.1",
  port: 0,
  handler: app.fetch,
  signal: controller.signal,
});
console.log(`listening ${server.addr.port}`);
await server.finished;
hub.close();
await session.shutdown();
