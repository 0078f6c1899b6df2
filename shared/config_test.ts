import assert from "node:assert/strict";
import {
  type Config,
  CONFIG_VARIABLES,
  configEnv,
  isolatedNames,
  loadConfig,
  secretEnv,
  secretsOf,
} from "./config.ts";
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
    [
      { KAFKA_GROUP_INSTANCE_ID: "box 1" },
      /^KAFKA_GROUP_INSTANCE_ID must be auto, host, off or a name/,
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
    [{ SILVER_MIN_PRICE: "0" }, /^SILVER_MIN_PRICE must be a finite number greater than 0/],
    [{ SILVER_MAX_VOLUME: "Infinity" }, /^SILVER_MAX_VOLUME must be a finite number greater/],
    [{ SILVER_MAX_PRICE: "cheap" }, /^SILVER_MAX_PRICE must be a finite number greater than 0/],
    [
      { SILVER_MIN_PRICE: "10", SILVER_MAX_PRICE: "1" },
      /^SILVER_MAX_PRICE must not be below SILVER_MIN_PRICE=10, got 1/,
    ],
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

Deno.test("SCHEMA_REGISTRY_URL: the local Apicurio by default, trailing slashes dropped", () => {
  const config = loadConfig({});
  assert.equal(config.registry.url, "http://127.0.0.1:8081/apis/ccompat/v7");
  assert.equal(config.registry.username, "");
  assert.equal(config.registry.password.isSet, false);
  assert.equal(
    loadConfig({ SCHEMA_REGISTRY_URL: "https://sr.example:8443/" }).registry.url,
    "https://sr.example:8443",
  );
});

Deno.test("SCHEMA_REGISTRY_* errors name the variable and never echo a password", () => {
  assert.match(
    errorFor({ SCHEMA_REGISTRY_URL: "ftp://sr.example" }),
    /^SCHEMA_REGISTRY_URL must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/sr\.example"/,
  );
  assert.match(
    errorFor({ SCHEMA_REGISTRY_URL: "http://sr.example/?x=1" }),
    /^SCHEMA_REGISTRY_URL must be a base URL without query or fragment/,
  );
  const withCredentials = errorFor({ SCHEMA_REGISTRY_URL: "https://key:pa55word@sr.example" });
  assert.match(withCredentials, /^SCHEMA_REGISTRY_URL must not hold credentials/);
  assert.doesNotMatch(withCredentials, /pa55word/);
  assert.match(
    errorFor({ SCHEMA_REGISTRY_PASSWORD: "pa55word" }),
    /^SCHEMA_REGISTRY_PASSWORD is set but SCHEMA_REGISTRY_USERNAME is empty/,
  );
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

/** Every secret variable set (and the registry user name, which is not a secret). */
const SECRETS_SET = {
  FINNHUB_API_KEY: "sk-live-123456",
  CASSANDRA_PASSWORD: "hunter2-pw",
  STATUS_TOKEN: "tok-987",
  SCHEMA_REGISTRY_USERNAME: "sr-user",
  SCHEMA_REGISTRY_PASSWORD: "sr-secret-42",
};

Deno.test("secrets never show in String, JSON or inspect of the config", () => {
  const config = loadConfig(SECRETS_SET);
  const shown = [
    JSON.stringify(config),
    Deno.inspect(config, { depth: 10 }),
    String(config.finnhub.apiKey),
    `${config.cassandra.password}`,
  ].join("\n");
  for (const secret of ["sk-live-123456", "hunter2-pw", "tok-987", "sr-secret-42"]) {
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

/** `config` without its secrets, which `configEnv()` leaves out. */
function withoutSecrets(config: Config) {
  const { finnhub, cassandra, registry, status } = config;
  const { apiKey: _apiKey, ...finnhubRest } = finnhub;
  const { password: _password, ...cassandraRest } = cassandra;
  const { password: _registryPassword, ...registryRest } = registry;
  const { token: _token, ...statusRest } = status;
  return {
    ...config,
    finnhub: finnhubRest,
    cassandra: cassandraRest,
    registry: registryRest,
    status: statusRest,
  };
}

function assertRoundTrip(env: Record<string, string>): void {
  const config = loadConfig(env);
  const back = loadConfig(configEnv(config));
  assert.deepEqual(withoutSecrets(back), withoutSecrets(config));
  assert.equal(back.finnhub.apiKey.isSet, false);
  assert.equal(back.cassandra.password.isSet, false);
  assert.equal(back.status.token.isSet, false);
}

Deno.test("loadConfig(configEnv(c)) gives back the defaults", () => {
  assertRoundTrip({});
});

Deno.test("loadConfig(configEnv(c)) gives back NetworkTopologyStrategy with two data centres", () => {
  assertRoundTrip({ CASSANDRA_REPLICATION: "NetworkTopologyStrategy:dc1=3,dc-west.2=2" });
});

Deno.test("loadConfig(configEnv(c)) gives back a non-default value of every variable", () => {
  const env: Record<string, string> = {
    FINNHUB_API_KEY: "sk-live-123456",
    FINNHUB_WS_URL: "ws://127.0.0.1:9999/feed?x=1",
    FINNHUB_SYMBOLS: "aapl, BINANCE:BTCUSDT ,OANDA:EUR_USD,BRK.B",
    FINNHUB_SYMBOL_LIMIT: "4",
    FINNHUB_WATCHDOG_MS: "1234",
    FINNHUB_RECONNECT_BASE_MS: "7",
    FINNHUB_RECONNECT_MAX_MS: "70",
    FINNHUB_AUTH_BACKOFF_MS: "0",
    PRODUCER_BUFFER_MAX_TRADES: "333",
    PRODUCER_BATCH_MAX_TRADES: "33",
    PRODUCER_LEASE: "kafka",
    PRODUCER_LEASE_SESSION_MS: "9000",
    KAFKA_BROKERS: "kafka-1:9093, kafka-2,[::1]:19092",
    KAFKA_CLIENT_ID: "client.x-1",
    KAFKA_TOPIC_RAW: "t.raw",
    KAFKA_TOPIC_SILVER: "t.silver",
    KAFKA_TOPIC_DEAD_LETTER: "t.dlq",
    KAFKA_TOPIC_METRICS: "t.metrics",
    KAFKA_TOPIC_CANDLES: "t.candles",
    KAFKA_TOPIC_GAPS: "t.gaps",
    KAFKA_TOPIC_FEED_COVERAGE: "t.coverage",
    KAFKA_PARTITIONS: "12",
    KAFKA_REPLICATION_FACTOR: "3",
    KAFKA_RETENTION_HOURS: "5",
    KAFKA_GROUP_PREFIX: "grp_1",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_INTERVAL_MS: "2000",
    KAFKA_GROUP_INSTANCE_ID: "rack2-a",
    CASSANDRA_CONTACT_POINTS: "db-1,db-2:19042",
    CASSANDRA_LOCAL_DC: "eu-west",
    CASSANDRA_KEYSPACE: "ks_1",
    CASSANDRA_REPLICATION: "SimpleStrategy:3",
    CASSANDRA_USERNAME: "pipeline",
    CASSANDRA_PASSWORD: "hunter2-pw",
    CASSANDRA_MAX_CONCURRENCY: "8",
    SCHEMA_REGISTRY_URL: "https://psrc-abc.eu-west-1.aws.confluent.cloud",
    SCHEMA_REGISTRY_USERNAME: "SR-KEY-1",
    SCHEMA_REGISTRY_PASSWORD: "sr-secret-42",
    SILVER_MAX_FUTURE_MS: "0",
    SILVER_MIN_EVENT_TIME: "2010-06-15T12:30:00.250+02:00",
    SILVER_MIN_PRICE: "0.0001",
    SILVER_MAX_PRICE: "5e6",
    SILVER_MAX_VOLUME: "123456.5",
    GOLD_ALLOWED_LATENESS_MS: "0",
    GOLD_FLUSH_INTERVAL_MS: "10",
    STATUS_HOST: "0.0.0.0",
    STATUS_PORT: "0",
    STATUS_TOKEN: "tok-987",
    STATUS_EXPECTED_WORKERS: "gold,silver",
    STATUS_ALLOWED_HOSTS: "status,grafana.example.com,[fd00::1]",
    STATUS_MAX_CONNECTIONS: "10",
    STATUS_ACCESS_LOG: "true",
    SIMULATOR_PORT: "1",
    GRAFANA_URL: "https://grafana.example:3000/d/x",
    LOG_LEVEL: "debug",
  };
  const defaults = configEnv(loadConfig({}));
  const config = loadConfig(env);
  const written = configEnv(config);
  for (const variable of CONFIG_VARIABLES) {
    assert.ok(variable.name in env, `the test sets no value of ${variable.name}`);
    if (variable.secret) continue;
    assert.notEqual(written[variable.name], defaults[variable.name], `${variable.name} is default`);
  }
  assert.equal(config.finnhub.apiKey.isSet, true);
  assertRoundTrip(env);
});

Deno.test("loadConfig(configEnv(c)) gives back an empty list of expected workers", () => {
  assert.deepEqual(loadConfig({ STATUS_EXPECTED_WORKERS: "," }).status.expectedWorkers, []);
  assertRoundTrip({ STATUS_EXPECTED_WORKERS: "," });
});

Deno.test("configEnv() sets every variable but the secrets", () => {
  const env = configEnv(
    loadConfig({ FINNHUB_API_KEY: "k", CASSANDRA_PASSWORD: "p", STATUS_TOKEN: "t" }),
  );
  assert.deepEqual(
    Object.keys(env).sort(),
    CONFIG_VARIABLES.filter((v) => !v.secret).map((v) => v.name).sort(),
  );
  assert.ok(!Object.values(env).some((value) => ["k", "p", "t"].includes(value)));
});

Deno.test("isolatedNames() derives every topic, the group prefix and the keyspace", () => {
  assert.deepEqual(isolatedNames("test", "3f9c0a"), {
    KAFKA_TOPIC_RAW: "test.3f9c0a.raw",
    KAFKA_TOPIC_SILVER: "test.3f9c0a.silver",
    KAFKA_TOPIC_DEAD_LETTER: "test.3f9c0a.dlq",
    KAFKA_TOPIC_METRICS: "test.3f9c0a.metrics",
    KAFKA_TOPIC_CANDLES: "test.3f9c0a.candles",
    KAFKA_TOPIC_GAPS: "test.3f9c0a.gaps",
    KAFKA_TOPIC_FEED_COVERAGE: "test.3f9c0a.coverage",
    KAFKA_GROUP_PREFIX: "test.3f9c0a",
    CASSANDRA_KEYSPACE: "test_3f9c0a",
  });
  const config = loadConfig(isolatedNames("bench_2", "x1"));
  assert.equal(config.cassandra.keyspace, "bench_2_x1");
  assert.equal(config.kafka.topics.deadLetter, "bench_2.x1.dlq");
});

Deno.test("isolatedNames() refuses a prefix or id that makes no CQL keyspace, saying why", () => {
  for (const prefix of ["Bench", "1test", "", "te-st", "te.st", "test "]) {
    assert.throws(
      () => isolatedNames(prefix, "abc"),
      (error: unknown) =>
        error instanceof RangeError &&
        error.message.startsWith(
          `isolatedNames() prefix must start with a lower-case letter and hold only a-z, 0-9 and _ (it begins the Cassandra keyspace "<prefix>_<id>"), got ${
            JSON.stringify(prefix)
          }`,
        ),
      prefix,
    );
  }
  for (const id of ["", "ABC", "a-b"]) {
    assert.throws(() => isolatedNames("test", id), {
      name: "RangeError",
      message: /^isolatedNames\(\) id must hold only a-z, 0-9 and _/,
    });
  }
  assert.throws(
    () => isolatedNames("p".repeat(40), "0123456789"),
    {
      name: "RangeError",
      message: /is longer than the 48 characters a Cassandra keyspace may have/,
    },
  );
  assert.equal(isolatedNames("p".repeat(37), "0123456789").CASSANDRA_KEYSPACE!.length, 48);
});

Deno.test("secretsOf() returns every secret variable's value, and only those", () => {
  const config = loadConfig(SECRETS_SET);
  const secrets = secretsOf(config);
  assert.equal(secrets.length, CONFIG_VARIABLES.filter((v) => v.secret).length);
  assert.ok(secrets.every((s) => s instanceof Secret));
  assert.deepEqual(secrets.map((s) => s.reveal()).sort(), [
    "hunter2-pw",
    "sk-live-123456",
    "sr-secret-42",
    "tok-987",
  ]);
});

Deno.test("secretEnv() names each secret that is set, so a child gets what configEnv() leaves out", () => {
  const config = loadConfig({ FINNHUB_API_KEY: "sk-live-123456", STATUS_TOKEN: "tok-987" });
  assert.deepEqual(secretEnv(config), {
    FINNHUB_API_KEY: "sk-live-123456",
    STATUS_TOKEN: "tok-987",
  });
  assert.deepEqual(
    loadConfig({ ...configEnv(config), ...secretEnv(config) }).finnhub.apiKey.reveal(),
    "sk-live-123456",
  );
  assert.deepEqual(secretEnv(loadConfig({})), {});
});
