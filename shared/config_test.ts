import assert from "node:assert/strict";
import { CONFIG_VARIABLES, loadConfig } from "./config.ts";
import { Secret } from "./secret.ts";

function errorFor(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof RangeError, `expected a RangeError, got ${error}`);
    return error.message;
  }
  assert.fail("loadConfig() accepted a bad environment");
}

Deno.test("loadConfig() applies every documented default", () => {
  const config = loadConfig({});
  assert.deepEqual(config.kafka.brokers, ["127.0.0.1:9092"]);
  assert.deepEqual(config.cassandra.contactPoints, ["127.0.0.1:9042"]);
  assert.equal(config.kafka.topics.raw, "market.trades.raw");
  assert.equal(config.finnhub.url, "wss://ws.finnhub.io");
  assert.equal(config.finnhub.symbolLimit, 50);
  assert.deepEqual(config.cassandra.replication, {
    class: "SimpleStrategy",
    replicationFactor: 1,
  });
  assert.equal(config.silver.minEventTime, Date.UTC(2000, 0, 1));
  assert.equal(config.status.host, "127.0.0.1");
  assert.equal(config.finnhub.apiKey.isSet, false);
});

Deno.test("loadConfig() returns a deeply frozen config", () => {
  const config = loadConfig({});
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.kafka.topics));
  assert.ok(Object.isFrozen(config.finnhub.symbols));
  assert.throws(() => {
    (config.kafka as { partitions: number }).partitions = 1;
  }, TypeError);
});

Deno.test("loadConfig() reads lists, numbers and replication", () => {
  const config = loadConfig({
    FINNHUB_SYMBOLS: " aapl, BINANCE:BTCUSDT ,OANDA:EUR_USD",
    KAFKA_BROKERS: "kafka-1:9092,kafka-2",
    KAFKA_PARTITIONS: "12",
    CASSANDRA_REPLICATION: "NetworkTopologyStrategy:dc1=3,dc2=2",
  });
  assert.deepEqual(config.finnhub.symbols, ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]);
  assert.deepEqual(config.kafka.brokers, ["kafka-1:9092", "kafka-2:9092"]);
  assert.equal(config.kafka.partitions, 12);
  assert.equal(config.kafka.sessionTimeoutMs, 30_000);
  assert.equal(config.kafka.heartbeatIntervalMs, 3_000);
  assert.deepEqual(config.cassandra.replication, {
    class: "NetworkTopologyStrategy",
    dataCenters: { dc1: 3, dc2: 2 },
  });
});

Deno.test("loadConfig() errors name the variable that is bad", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ KAFKA_PARTITIONS: "many" }, /^KAFKA_PARTITIONS must be a whole number from 1/],
    [{ KAFKA_PARTITIONS: "0" }, /^KAFKA_PARTITIONS must be a whole number/],
    [{ KAFKA_PARTITIONS: "1.5" }, /^KAFKA_PARTITIONS must be a whole number/],
    [{ STATUS_PORT: "70000" }, /^STATUS_PORT must be a whole number from 0 to 65535/],
    [{ KAFKA_SESSION_TIMEOUT_MS: "5000" }, /^KAFKA_SESSION_TIMEOUT_MS must be a whole number/],
    [
      { KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_INTERVAL_MS: "3000" },
      /^KAFKA_HEARTBEAT_INTERVAL_MS must be at most a third of KAFKA_SESSION_TIMEOUT_MS=6000/,
    ],
    [{ FINNHUB_WS_URL: "http://example" }, /^FINNHUB_WS_URL must be a ws:\/\/ or wss:\/\/ URL/],
    [{ FINNHUB_SYMBOLS: "AAPL,AA PL" }, /^FINNHUB_SYMBOLS has a malformed symbol "AA PL"/],
    [{ FINNHUB_SYMBOLS: "AAPL;DROP" }, /^FINNHUB_SYMBOLS has a malformed symbol "AAPL;DROP"/],
    [{ FINNHUB_SYMBOLS: "AAPL,AAPL" }, /^FINNHUB_SYMBOLS lists a symbol twice/],
    [{ FINNHUB_SYMBOLS: " , " }, /^FINNHUB_SYMBOLS must name at least one symbol/],
    [{ KAFKA_BROKERS: "a:b:c" }, /^KAFKA_BROKERS must be host:port/],
    [{ CASSANDRA_CONTACT_POINTS: "db:99999" }, /^CASSANDRA_CONTACT_POINTS must be host:port/],
    [{ CASSANDRA_KEYSPACE: "Market-Data" }, /^CASSANDRA_KEYSPACE must be a lower-case CQL/],
    [{ CASSANDRA_REPLICATION: "SimpleStrategy" }, /^CASSANDRA_REPLICATION must be/],
    [{ CASSANDRA_REPLICATION: "NetworkTopologyStrategy:dc1" }, /^CASSANDRA_REPLICATION must be/],
    [{ KAFKA_TOPIC_RAW: "bad topic" }, /^KAFKA_TOPIC_RAW must be a Kafka topic name/],
    [{ LOG_LEVEL: "loud" }, /^LOG_LEVEL must be one of debug, info, warn, error, got "loud"/],
    [{ SILVER_MIN_EVENT_TIME: "yesterday" }, /^SILVER_MIN_EVENT_TIME must be an ISO 8601/],
    [
      { FINNHUB_RECONNECT_BASE_MS: "5000", FINNHUB_RECONNECT_MAX_MS: "100" },
      /^FINNHUB_RECONNECT_MAX_MS must not be below FINNHUB_RECONNECT_BASE_MS/,
    ],
    [
      { PRODUCER_BATCH_MAX_TRADES: "500", PRODUCER_BUFFER_MAX_TRADES: "100" },
      /^PRODUCER_BUFFER_MAX_TRADES must not be below PRODUCER_BATCH_MAX_TRADES/,
    ],
  ];
  for (const [env, pattern] of cases) assert.match(errorFor(env), pattern);
});

Deno.test("loadConfig() refuses more symbols than the limit, naming both", () => {
  const symbols = Array.from({ length: 51 }, (_, i) => `S${i}`).join(",");
  assert.match(
    errorFor({ FINNHUB_SYMBOLS: symbols }),
    /^FINNHUB_SYMBOLS lists 51 symbols, more than FINNHUB_SYMBOL_LIMIT=50/,
  );
  assert.equal(
    loadConfig({ FINNHUB_SYMBOLS: symbols, FINNHUB_SYMBOL_LIMIT: "51" }).finnhub.symbols.length,
    51,
  );
});

Deno.test("secrets never show in String, JSON or inspect of the config", () => {
  const config = loadConfig({
    FINNHUB_API_KEY: "sk-live-123456",
    CASSANDRA_PASSWORD: "hunter2-pw",
    STATUS_TOKEN: "tok-987",
  });
  const shown = [
    JSON.stringify(config),
    Deno.inspect(config, { depth: 10 }),
    String(config.finnhub.apiKey),
    `${config.cassandra.password}`,
  ].join("\n");
  for (const secret of ["sk-live-123456", "hunter2-pw", "tok-987"]) {
    assert.ok(!shown.includes(secret), `${secret} leaked`);
  }
  assert.equal(config.finnhub.apiKey.reveal(), "sk-live-123456");
  assert.ok(config.cassandra.password instanceof Secret);
});

Deno.test("every variable is documented in .env.example with its default", async () => {
  const example = await Deno.readTextFile(new URL("../.env.example", import.meta.url));
  for (const variable of CONFIG_VARIABLES) {
    const line = example.split("\n").find((l) =>
      l.replace(/^#\s*/, "").startsWith(`${variable.name}=`)
    );
    assert.ok(line, `${variable.name} is missing from .env.example`);
    if (!variable.secret) {
      assert.equal(line!.replace(/^#\s*/, ""), `${variable.name}=${variable.default}`);
    }
  }
});
