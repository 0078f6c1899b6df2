/**
 * The one reader of the environment. `loadConfig(env)` turns variables into a frozen, typed
 * config once, at start, and throws a `RangeError` naming the variable that is missing or bad.
 * Secrets are wrapped in {@linkcode Secret} so no log line can print them.
 *
 * Every variable is described in {@linkcode CONFIG_VARIABLES}; `.env.example` and the README's
 * table list the same, and a test keeps them in step.
 *
 * @module
 */
import { Secret } from "./secret.ts";
import type { WorkerRole } from "./types.ts";

/** Every worker role. */
export const WORKER_ROLES: readonly WorkerRole[] = ["producer", "bronze", "silver", "gold"];

/** One environment variable the pipeline reads. */
export interface ConfigVariable {
  readonly name: string;
  /** The value used when the variable is unset or empty; `""` means "none". */
  readonly default: string;
  readonly description: string;
  readonly secret?: boolean;
}

/** Every variable `loadConfig` reads, with its default. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  {
    name: "FINNHUB_API_KEY",
    default: "",
    secret: true,
    description:
      "Finnhub API key. Empty: `deno task start` runs the bundled simulator instead of Finnhub.",
  },
  {
    name: "FINNHUB_WS_URL",
    default: "wss://ws.finnhub.io",
    description: "WebSocket URL of the trade feed (Finnhub, or the simulator).",
  },
  {
    name: "FINNHUB_SYMBOLS",
    default: "AAPL,MSFT,AMZN,NVDA,TSLA,BINANCE:BTCUSDT,BINANCE:ETHUSDT,OANDA:EUR_USD",
    description: "Comma-separated symbols to subscribe to (stocks, and EXCHANGE:PAIR crypto/FX).",
  },
  {
    name: "FINNHUB_SYMBOL_LIMIT",
    default: "50",
    description: "Most symbols one connection may subscribe to (Finnhub free tier: 50).",
  },
  {
    name: "FINNHUB_WATCHDOG_MS",
    default: "90000",
    description: "Reconnect when no frame (ping included) arrived for this long.",
  },
  {
    name: "FINNHUB_RECONNECT_BASE_MS",
    default: "500",
    description: "First reconnect delay; doubles per failed attempt, with jitter.",
  },
  {
    name: "FINNHUB_RECONNECT_MAX_MS",
    default: "30000",
    description: "Cap on the reconnect delay.",
  },
  {
    name: "FINNHUB_AUTH_BACKOFF_MS",
    default: "60000",
    description: "Delay after a 401 or 429 at the handshake (back off hard).",
  },
  {
    name: "PRODUCER_BUFFER_MAX_TRADES",
    default: "200000",
    description:
      "Trades the producer holds in memory while Kafka is slow or down; more are dropped and counted. At most 311,296 under the producer's default heap bound (see Scaling).",
  },
  {
    name: "PRODUCER_BATCH_MAX_TRADES",
    default: "10000",
    description: "Most trades in one Kafka send.",
  },
  {
    name: "PRODUCER_LINGER_MS",
    default: "20",
    description: "How long the producer waits to fill a batch before sending.",
  },
  {
    name: "KAFKA_BROKERS",
    default: "127.0.0.1:9092",
    description: "Comma-separated Kafka bootstrap servers. The default starts the local Kafka.",
  },
  { name: "KAFKA_CLIENT_ID", default: "market-pipeline", description: "Kafka client id prefix." },
  {
    name: "KAFKA_TOPIC_RAW",
    default: "market.trades.raw",
    description: "Topic of raw trades (Avro Trade, keyed by symbol).",
  },
  {
    name: "KAFKA_TOPIC_SILVER",
    default: "market.trades.silver",
    description: "Topic of cleaned trades (Avro SilverTrade, keyed by symbol).",
  },
  {
    name: "KAFKA_TOPIC_DEAD_LETTER",
    default: "market.trades.dead-letter",
    description: "Topic of rejected input with the reason (Avro DeadLetter).",
  },
  {
    name: "KAFKA_TOPIC_METRICS",
    default: "market.pipeline.metrics",
    description: "Topic of worker reports (Avro WorkerReport) the status endpoint reads.",
  },
  {
    name: "KAFKA_TOPIC_CANDLES",
    default: "market.candles.updates",
    description:
      "Topic of gold candle updates (Avro CandleUpdate) the status endpoint's market page reads live.",
  },
  {
    name: "KAFKA_PARTITIONS",
    default: "6",
    description:
      "Partitions of each topic `deno task topics` creates (the most instances one stage can use).",
  },
  {
    name: "KAFKA_REPLICATION_FACTOR",
    default: "1",
    description: "Replication factor of created topics (3 on a real cluster).",
  },
  {
    name: "KAFKA_RETENTION_HOURS",
    default: "168",
    description: "Retention of created topics, in hours.",
  },
  {
    name: "KAFKA_GROUP_PREFIX",
    default: "market",
    description: "Consumer groups are <prefix>.bronze, <prefix>.silver and <prefix>.gold.",
  },
  {
    name: "KAFKA_SESSION_TIMEOUT_MS",
    default: "30000",
    description:
      "A stage instance that stops heartbeating (killed) keeps its partitions this long (6000 to 1800000).",
  },
  {
    name: "KAFKA_HEARTBEAT_INTERVAL_MS",
    default: "3000",
    description:
      "How often a stage instance heartbeats its group; at most a third of KAFKA_SESSION_TIMEOUT_MS.",
  },
  {
    name: "CASSANDRA_CONTACT_POINTS",
    default: "127.0.0.1:9042",
    description: "Comma-separated Cassandra host:port. The default starts the local Cassandra.",
  },
  {
    name: "CASSANDRA_LOCAL_DC",
    default: "datacenter1",
    description: "The Cassandra data centre the driver treats as local.",
  },
  { name: "CASSANDRA_KEYSPACE", default: "market", description: "Keyspace of all tables." },
  {
    name: "CASSANDRA_REPLICATION",
    default: "SimpleStrategy:1",
    description:
      "Keyspace replication: `SimpleStrategy:N`, or `NetworkTopologyStrategy:dc1=3,dc2=3` on a cluster.",
  },
  { name: "CASSANDRA_USERNAME", default: "", description: "Cassandra user (empty: no auth)." },
  {
    name: "CASSANDRA_PASSWORD",
    default: "",
    secret: true,
    description: "Cassandra password.",
  },
  {
    name: "CASSANDRA_MAX_CONCURRENCY",
    default: "64",
    description: "Most Cassandra writes one worker has in flight.",
  },
  {
    name: "SILVER_MAX_FUTURE_MS",
    default: "60000",
    description: "Silver rejects a trade whose event time is this far past its ingest time.",
  },
  {
    name: "SILVER_MIN_EVENT_TIME",
    default: "2000-01-01T00:00:00Z",
    description:
      "Silver rejects a trade with an earlier event time (catches seconds sent as milliseconds).",
  },
  {
    name: "GOLD_ALLOWED_LATENESS_MS",
    default: "10000",
    description:
      "A window is final once the watermark (latest event time minus this) passes its end.",
  },
  {
    name: "GOLD_FLUSH_INTERVAL_MS",
    default: "500",
    description: "How often gold upserts open windows (at most 1000 keeps dashboards live).",
  },
  {
    name: "STATUS_HOST",
    default: "127.0.0.1",
    description: "Address the status endpoint binds to.",
  },
  { name: "STATUS_PORT", default: "8080", description: "Port of the status endpoint." },
  {
    name: "STATUS_TOKEN",
    default: "",
    secret: true,
    description: "Bearer token that protects every status route but /healthz (empty: open).",
  },
  {
    name: "STATUS_EXPECTED_WORKERS",
    default: "producer,bronze,silver,gold",
    description: "Worker roles that must be reporting for /readyz to say ready.",
  },
  {
    name: "STATUS_ALLOWED_HOSTS",
    default: "",
    description:
      "Host names the status endpoint answers to besides loopback and STATUS_HOST (comma-separated, no port); others get 421 (DNS rebinding). Compose adds `status`.",
  },
  {
    name: "STATUS_MAX_CONNECTIONS",
    default: "256",
    description:
      "Most connections the status endpoint keeps open (a market page holds one for live updates); more are closed at once and counted.",
  },
  {
    name: "STATUS_ACCESS_LOG",
    default: "false",
    description:
      "true: the status endpoint logs one line per request (method, path with any token removed, status, milliseconds).",
  },
  {
    name: "SIMULATOR_PORT",
    default: "8765",
    description:
      "Port (on 127.0.0.1) of the simulator `deno task start` runs when FINNHUB_API_KEY is empty; `deno task smoke` sends its trades there.",
  },
  {
    name: "GRAFANA_URL",
    default: "",
    description:
      "Grafana's address, shown by `deno task start` (empty: none; docker compose: http://127.0.0.1:3000).",
  },
  {
    name: "LOG_LEVEL",
    default: "info",
    description: "debug, info, warn or error.",
  },
];

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Keyspace replication settings. */
export type Replication =
  | { readonly class: "SimpleStrategy"; readonly replicationFactor: number }
  | {
    readonly class: "NetworkTopologyStrategy";
    readonly dataCenters: Readonly<Record<string, number>>;
  };

/** The whole resolved configuration. */
export interface Config {
  readonly finnhub: {
    readonly apiKey: Secret;
    readonly url: string;
    readonly symbols: readonly string[];
    readonly symbolLimit: number;
    readonly watchdogMs: number;
    readonly reconnectBaseMs: number;
    readonly reconnectMaxMs: number;
    readonly authBackoffMs: number;
  };
  readonly producer: {
    readonly bufferMaxTrades: number;
    readonly batchMaxTrades: number;
    readonly lingerMs: number;
  };
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly topics: {
      readonly raw: string;
      readonly silver: string;
      readonly deadLetter: string;
      readonly metrics: string;
      readonly candles: string;
    };
    readonly partitions: number;
    readonly replicationFactor: number;
    readonly retentionHours: number;
    readonly groupPrefix: string;
    /** Consumer group session timeout of the stages, ms. */
    readonly sessionTimeoutMs: number;
    /** Consumer group heartbeat interval of the stages, ms. */
    readonly heartbeatIntervalMs: number;
  };
  readonly cassandra: {
    readonly contactPoints: readonly string[];
    readonly localDataCenter: string;
    readonly keyspace: string;
    readonly replication: Replication;
    readonly username: string;
    readonly password: Secret;
    readonly maxConcurrency: number;
  };
  readonly silver: { readonly maxFutureMs: number; readonly minEventTime: number };
  readonly gold: { readonly allowedLatenessMs: number; readonly flushIntervalMs: number };
  readonly status: {
    readonly host: string;
    readonly port: number;
    readonly token: Secret;
    readonly expectedWorkers: readonly WorkerRole[];
    /** Lower-case host names (`[...]` for IPv6) answered besides loopback and `host`. */
    readonly allowedHosts: readonly string[];
    readonly maxConnections: number;
    readonly accessLog: boolean;
  };
  /** The simulator `deno task start` runs without a Finnhub key. */
  readonly simulator: { readonly port: number };
  /** Grafana's address for people (`""`: none). */
  readonly grafana: { readonly url: string };
  readonly logLevel: LogLevel;
}

/** A symbol: a stock ticker (`AAPL`, `BRK.B`) or `EXCHANGE:PAIR` (`BINANCE:BTCUSDT`). */
export const SYMBOL_PATTERN = /^(?:[A-Z][A-Z0-9]{0,19}:)?[A-Z0-9][A-Z0-9._\-/]{0,31}$/;

/** A CQL identifier we accept for keyspaces: lower-case, so no quoting is ever needed. */
const IDENTIFIER = /^[a-z][a-z0-9_]{0,47}$/;
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads the configuration from `env` (in `main.ts`: `Deno.env.toObject()`), applying the
 * defaults of {@linkcode CONFIG_VARIABLES}. Throws a `RangeError` naming the first bad variable.
 */
export function loadConfig(env: Env): Config {
  const read = reader(env);
  const symbols = read.list("FINNHUB_SYMBOLS").map((s) => s.toUpperCase());
  const symbolLimit = read.int("FINNHUB_SYMBOL_LIMIT", 1, 10_000);
  if (symbols.length === 0) throw new RangeError("FINNHUB_SYMBOLS must name at least one symbol");
  for (const symbol of symbols) {
    if (!SYMBOL_PATTERN.test(symbol)) {
      throw new RangeError(
        `FINNHUB_SYMBOLS has a malformed symbol ${
          JSON.stringify(symbol)
        }: expected a ticker like AAPL or EXCHANGE:PAIR like BINANCE:BTCUSDT`,
      );
    }
  }
  if (new Set(symbols).size !== symbols.length) {
    throw new RangeError("FINNHUB_SYMBOLS lists a symbol twice");
  }
  if (symbols.length > symbolLimit) {
    throw new RangeError(
      `FINNHUB_SYMBOLS lists ${symbols.length} symbols, more than FINNHUB_SYMBOL_LIMIT=${symbolLimit} (Finnhub refuses the rest with "Subscribing to too many symbols")`,
    );
  }
  const url = read.string("FINNHUB_WS_URL");
  if (!/^wss?:\/\//.test(url) || !URL.canParse(url)) {
    throw new RangeError(
      `FINNHUB_WS_URL must be a ws:// or wss:// URL, got ${JSON.stringify(url)}`,
    );
  }
  const reconnectBaseMs = read.int("FINNHUB_RECONNECT_BASE_MS", 1, 3_600_000);
  const reconnectMaxMs = read.int("FINNHUB_RECONNECT_MAX_MS", 1, 3_600_000);
  if (reconnectMaxMs < reconnectBaseMs) {
    throw new RangeError("FINNHUB_RECONNECT_MAX_MS must not be below FINNHUB_RECONNECT_BASE_MS");
  }
  const batchMaxTrades = read.int("PRODUCER_BATCH_MAX_TRADES", 1, 1_000_000);
  const bufferMaxTrades = read.int("PRODUCER_BUFFER_MAX_TRADES", 1, 100_000_000);
  if (bufferMaxTrades < batchMaxTrades) {
    throw new RangeError("PRODUCER_BUFFER_MAX_TRADES must not be below PRODUCER_BATCH_MAX_TRADES");
  }
  // The broker refuses a member whose session timeout is outside its group.min/max bounds
  // (Kafka's defaults: 6 s and 30 min).
  const sessionTimeoutMs = read.int("KAFKA_SESSION_TIMEOUT_MS", 6_000, 1_800_000);
  const heartbeatIntervalMs = read.int("KAFKA_HEARTBEAT_INTERVAL_MS", 100, 600_000);
  if (heartbeatIntervalMs * 3 > sessionTimeoutMs) {
    throw new RangeError(
      `KAFKA_HEARTBEAT_INTERVAL_MS must be at most a third of KAFKA_SESSION_TIMEOUT_MS=${sessionTimeoutMs}, got ${heartbeatIntervalMs}`,
    );
  }
  const minEventTimeText = read.string("SILVER_MIN_EVENT_TIME");
  const minEventTime = Date.parse(minEventTimeText);
  if (!Number.isFinite(minEventTime) || !/^\d{4}-\d\d-\d\dT/.test(minEventTimeText)) {
    throw new RangeError(
      `SILVER_MIN_EVENT_TIME must be an ISO 8601 time like 2000-01-01T00:00:00Z, got ${
        JSON.stringify(minEventTimeText)
      }`,
    );
  }
  const grafanaUrl = read.raw("GRAFANA_URL");
  if (grafanaUrl !== "" && (!/^https?:\/\//.test(grafanaUrl) || !URL.canParse(grafanaUrl))) {
    throw new RangeError(
      `GRAFANA_URL must be an http:// or https:// URL, got ${JSON.stringify(grafanaUrl)}`,
    );
  }
  const config: Config = {
    finnhub: {
      apiKey: new Secret(read.raw("FINNHUB_API_KEY")),
      url,
      symbols,
      symbolLimit,
      watchdogMs: read.int("FINNHUB_WATCHDOG_MS", 100, 3_600_000),
      reconnectBaseMs,
      reconnectMaxMs,
      authBackoffMs: read.int("FINNHUB_AUTH_BACKOFF_MS", 0, 3_600_000),
    },
    producer: {
      bufferMaxTrades,
      batchMaxTrades,
      lingerMs: read.int("PRODUCER_LINGER_MS", 0, 60_000),
    },
    kafka: {
      brokers: read.hostPorts("KAFKA_BROKERS", 9092),
      clientId: read.matching(
        "KAFKA_CLIENT_ID",
        /^[A-Za-z0-9._-]{1,100}$/,
        "letters, digits, . _ -",
      ),
      topics: {
        raw: read.matching("KAFKA_TOPIC_RAW", TOPIC, "a Kafka topic name"),
        silver: read.matching("KAFKA_TOPIC_SILVER", TOPIC, "a Kafka topic name"),
        deadLetter: read.matching("KAFKA_TOPIC_DEAD_LETTER", TOPIC, "a Kafka topic name"),
        metrics: read.matching("KAFKA_TOPIC_METRICS", TOPIC, "a Kafka topic name"),
        candles: read.matching("KAFKA_TOPIC_CANDLES", TOPIC, "a Kafka topic name"),
      },
      partitions: read.int("KAFKA_PARTITIONS", 1, 10_000),
      replicationFactor: read.int("KAFKA_REPLICATION_FACTOR", 1, 100),
      retentionHours: read.int("KAFKA_RETENTION_HOURS", 1, 1_000_000),
      groupPrefix: read.matching(
        "KAFKA_GROUP_PREFIX",
        /^[A-Za-z0-9._-]{1,100}$/,
        "letters, digits, . _ -",
      ),
      sessionTimeoutMs,
      heartbeatIntervalMs,
    },
    cassandra: {
      contactPoints: read.hostPorts("CASSANDRA_CONTACT_POINTS", 9042),
      localDataCenter: read.matching(
        "CASSANDRA_LOCAL_DC",
        /^[A-Za-z0-9._-]{1,100}$/,
        "a data centre name",
      ),
      keyspace: read.matching("CASSANDRA_KEYSPACE", IDENTIFIER, "a lower-case CQL identifier"),
      replication: parseReplication(read.string("CASSANDRA_REPLICATION")),
      username: read.raw("CASSANDRA_USERNAME"),
      password: new Secret(read.raw("CASSANDRA_PASSWORD")),
      maxConcurrency: read.int("CASSANDRA_MAX_CONCURRENCY", 1, 4096),
    },
    silver: {
      maxFutureMs: read.int("SILVER_MAX_FUTURE_MS", 0, 86_400_000),
      minEventTime,
    },
    gold: {
      allowedLatenessMs: read.int("GOLD_ALLOWED_LATENESS_MS", 0, 86_400_000),
      flushIntervalMs: read.int("GOLD_FLUSH_INTERVAL_MS", 10, 60_000),
    },
    status: {
      host: read.matching("STATUS_HOST", /^[A-Za-z0-9.:\-\[\]]{1,253}$/, "a host name or address"),
      port: read.int("STATUS_PORT", 0, 65_535),
      token: new Secret(read.raw("STATUS_TOKEN")),
      expectedWorkers: read.list("STATUS_EXPECTED_WORKERS").map((role) => {
        if (!(WORKER_ROLES as readonly string[]).includes(role)) {
          throw new RangeError(
            `STATUS_EXPECTED_WORKERS must list roles of ${WORKER_ROLES.join(", ")}, got ${
              JSON.stringify(role)
            }`,
          );
        }
        return role as WorkerRole;
      }),
      allowedHosts: read.raw("STATUS_ALLOWED_HOSTS").split(",").map((h) => h.trim().toLowerCase())
        .filter((h) => h !== "").map((h) => {
          if (!/^[a-z0-9.\-]{1,253}$|^\[[0-9a-f:.]{2,45}\]$/.test(h)) {
            throw new RangeError(
              `STATUS_ALLOWED_HOSTS must list host names like status or grafana.example.com, or [IPv6], without a port, got ${
                JSON.stringify(h)
              }`,
            );
          }
          return h;
        }),
      maxConnections: read.int("STATUS_MAX_CONNECTIONS", 1, 100_000),
      accessLog: read.oneOf("STATUS_ACCESS_LOG", ["true", "false"] as const) === "true",
    },
    simulator: { port: read.int("SIMULATOR_PORT", 1, 65_535) },
    grafana: { url: grafanaUrl },
    logLevel: read.oneOf("LOG_LEVEL", ["debug", "info", "warn", "error"] as const),
  };
  return deepFreeze(config);
}

function parseReplication(text: string): Replication {
  const bad = () =>
    new RangeError(
      `CASSANDRA_REPLICATION must be SimpleStrategy:N or NetworkTopologyStrategy:dc=N[,dc=N], got ${
        JSON.stringify(text)
      }`,
    );
  const [strategy, spec = ""] = text.split(":", 2) as [string, string?];
  if (strategy === "SimpleStrategy") {
    if (!/^[1-9]\d?$/.test(spec)) throw bad();
    return { class: "SimpleStrategy", replicationFactor: Number(spec) };
  }
  if (strategy === "NetworkTopologyStrategy") {
    const dataCenters: Record<string, number> = {};
    for (const part of spec.split(",")) {
      const match = /^([A-Za-z0-9._-]+)=([1-9]\d?)$/.exec(part.trim());
      if (!match) throw bad();
      dataCenters[match[1]!] = Number(match[2]);
    }
    return { class: "NetworkTopologyStrategy", dataCenters };
  }
  throw bad();
}

function reader(env: Env) {
  const known = new Map(CONFIG_VARIABLES.map((v) => [v.name, v]));
  function raw(name: string): string {
    const variable = known.get(name);
    if (!variable) throw new Error(`Bug: ${name} is not in CONFIG_VARIABLES`);
    const value = env[name]?.trim();
    return value === undefined || value === "" ? variable.default : value;
  }
  function string(name: string): string {
    const value = raw(name);
    if (value === "") throw new RangeError(`${name} must not be empty`);
    return value;
  }
  return {
    raw,
    string,
    list(name: string): string[] {
      return string(name).split(",").map((s) => s.trim()).filter((s) => s !== "");
    },
    int(name: string, min: number, max: number): number {
      const text = string(name);
      const value = Number(text);
      if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
        throw new RangeError(
          `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
        );
      }
      return value;
    },
    matching(name: string, pattern: RegExp, what: string): string {
      const value = string(name);
      if (!pattern.test(value)) {
        throw new RangeError(`${name} must be ${what}, got ${JSON.stringify(value)}`);
      }
      return value;
    },
    oneOf<T extends string>(name: string, values: readonly T[]): T {
      const value = string(name);
      if (!(values as readonly string[]).includes(value)) {
        throw new RangeError(
          `${name} must be one of ${values.join(", ")}, got ${JSON.stringify(value)}`,
        );
      }
      return value as T;
    },
    hostPorts(name: string, defaultPort: number): string[] {
      const items = string(name).split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (items.length === 0) throw new RangeError(`${name} must name at least one host`);
      return items.map((item) => {
        const match = /^([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(item);
        const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
        if (!match || port < 1 || port > 65_535) {
          throw new RangeError(
            `${name} must be host:port[,host:port], got ${JSON.stringify(item)}`,
          );
        }
        return `${match[1]}:${port}`;
      });
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !(value instanceof Secret)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * The environment that makes {@linkcode loadConfig} resolve to `config`: one variable for every
 * entry of {@linkcode CONFIG_VARIABLES} except the secrets, which stay out (a caller that must
 * pass one on adds it explicitly). Use it to start a child process on the same settings.
 */
export function configEnv(config: Config): Record<string, string> {
  const { finnhub, producer, kafka, cassandra, silver, gold, status } = config;
  return {
    FINNHUB_WS_URL: finnhub.url,
    FINNHUB_SYMBOLS: finnhub.symbols.join(","),
    FINNHUB_SYMBOL_LIMIT: String(finnhub.symbolLimit),
    FINNHUB_WATCHDOG_MS: String(finnhub.watchdogMs),
    FINNHUB_RECONNECT_BASE_MS: String(finnhub.reconnectBaseMs),
    FINNHUB_RECONNECT_MAX_MS: String(finnhub.reconnectMaxMs),
    FINNHUB_AUTH_BACKOFF_MS: String(finnhub.authBackoffMs),
    PRODUCER_BUFFER_MAX_TRADES: String(producer.bufferMaxTrades),
    PRODUCER_BATCH_MAX_TRADES: String(producer.batchMaxTrades),
    PRODUCER_LINGER_MS: String(producer.lingerMs),
    KAFKA_BROKERS: kafka.brokers.join(","),
    KAFKA_CLIENT_ID: kafka.clientId,
    KAFKA_TOPIC_RAW: kafka.topics.raw,
    KAFKA_TOPIC_SILVER: kafka.topics.silver,
    KAFKA_TOPIC_DEAD_LETTER: kafka.topics.deadLetter,
    KAFKA_TOPIC_METRICS: kafka.topics.metrics,
    KAFKA_TOPIC_CANDLES: kafka.topics.candles,
    KAFKA_PARTITIONS: String(kafka.partitions),
    KAFKA_REPLICATION_FACTOR: String(kafka.replicationFactor),
    KAFKA_RETENTION_HOURS: String(kafka.retentionHours),
    KAFKA_GROUP_PREFIX: kafka.groupPrefix,
    KAFKA_SESSION_TIMEOUT_MS: String(kafka.sessionTimeoutMs),
    KAFKA_HEARTBEAT_INTERVAL_MS: String(kafka.heartbeatIntervalMs),
    CASSANDRA_CONTACT_POINTS: cassandra.contactPoints.join(","),
    CASSANDRA_LOCAL_DC: cassandra.localDataCenter,
    CASSANDRA_KEYSPACE: cassandra.keyspace,
    CASSANDRA_REPLICATION: replicationText(cassandra.replication),
    CASSANDRA_USERNAME: cassandra.username,
    CASSANDRA_MAX_CONCURRENCY: String(cassandra.maxConcurrency),
    SILVER_MAX_FUTURE_MS: String(silver.maxFutureMs),
    SILVER_MIN_EVENT_TIME: new Date(silver.minEventTime).toISOString(),
    GOLD_ALLOWED_LATENESS_MS: String(gold.allowedLatenessMs),
    GOLD_FLUSH_INTERVAL_MS: String(gold.flushIntervalMs),
    STATUS_HOST: status.host,
    STATUS_PORT: String(status.port),
    // Unset or empty means the default roles, so an empty list is written as a lone comma.
    STATUS_EXPECTED_WORKERS: status.expectedWorkers.length === 0
      ? ","
      : status.expectedWorkers.join(","),
    STATUS_ALLOWED_HOSTS: status.allowedHosts.join(","),
    STATUS_MAX_CONNECTIONS: String(status.maxConnections),
    STATUS_ACCESS_LOG: String(status.accessLog),
    SIMULATOR_PORT: String(config.simulator.port),
    GRAFANA_URL: config.grafana.url,
    LOG_LEVEL: config.logLevel,
  };
}

function replicationText(replication: Replication): string {
  if (replication.class === "SimpleStrategy") {
    return `SimpleStrategy:${replication.replicationFactor}`;
  }
  const dataCenters = Object.entries(replication.dataCenters).map(([dc, n]) => `${dc}=${n}`);
  return `NetworkTopologyStrategy:${dataCenters.join(",")}`;
}

/**
 * The topic, consumer group and keyspace variables of an isolated pipeline, every name made of
 * `prefix` and `id`, so that runs with different ids (a test, a benchmark step) share nothing:
 * `isolatedNames("test", "3f9c")` sets `KAFKA_TOPIC_RAW=test.3f9c.raw` (and `.silver`, `.dlq`,
 * `.metrics`, `.candles`), `KAFKA_GROUP_PREFIX=test.3f9c` and `CASSANDRA_KEYSPACE=test_3f9c`.
 *
 * Throws a `RangeError` when the keyspace would not be a lower-case CQL identifier: `prefix`
 * must start with a lower-case letter, both hold only `a-z`, `0-9` and `_`, and the keyspace be
 * at most 48 characters.
 */
export function isolatedNames(prefix: string, id: string): Record<string, string> {
  if (!/^[a-z][a-z0-9_]*$/.test(prefix)) {
    throw new RangeError(
      `isolatedNames() prefix must start with a lower-case letter and hold only a-z, 0-9 and _ (it begins the Cassandra keyspace "<prefix>_<id>"), got ${
        JSON.stringify(prefix)
      }`,
    );
  }
  if (!/^[a-z0-9_]+$/.test(id)) {
    throw new RangeError(
      `isolatedNames() id must hold only a-z, 0-9 and _ (it ends the Cassandra keyspace "<prefix>_<id>"), got ${
        JSON.stringify(id)
      }`,
    );
  }
  const keyspace = `${prefix}_${id}`;
  if (!IDENTIFIER.test(keyspace)) {
    throw new RangeError(
      `isolatedNames() keyspace ${
        JSON.stringify(keyspace)
      } is longer than the 48 characters a Cassandra keyspace may have`,
    );
  }
  return {
    KAFKA_TOPIC_RAW: `${prefix}.${id}.raw`,
    KAFKA_TOPIC_SILVER: `${prefix}.${id}.silver`,
    KAFKA_TOPIC_DEAD_LETTER: `${prefix}.${id}.dlq`,
    KAFKA_TOPIC_METRICS: `${prefix}.${id}.metrics`,
    KAFKA_TOPIC_CANDLES: `${prefix}.${id}.candles`,
    KAFKA_GROUP_PREFIX: `${prefix}.${id}`,
    CASSANDRA_KEYSPACE: keyspace,
  };
}
