/**
 * The one reader of the environment. `loadConfig(env)` turns variables into a frozen, typed
 * config once, at start, and throws a `RangeError` naming the variable that is missing or bad.
 * Secrets are wrapped in {@linkcode Secret} so no log line can print them.
 *
 * Each variable is declared once, in {@linkcode CONFIG_SPEC}: its name, default, description,
 * how its text becomes a value and how a value is written back. Everything else is derived from
 * that one declaration: the {@linkcode Config} type, the loader, {@linkcode configEnv} (the
 * environment of a child process on the same settings), {@linkcode secretsOf} (what every log
 * line redacts), {@linkcode CONFIG_VARIABLES}, and through it `.env.example` and the README's
 * table (`admin/env_example.ts`; a test keeps them in step).
 *
 * @module
 */
import { Secret } from "./secret.ts";
import type { WorkerRole } from "./types.ts";

/** Every worker role. */
export const WORKER_ROLES: readonly WorkerRole[] = ["producer", "bronze", "silver", "gold"];

/** One environment variable the pipeline reads, as documented. */
export interface ConfigVariable {
  readonly name: string;
  /** The value used when the variable is unset or empty; `""` means "none". */
  readonly default: string;
  readonly description: string;
  readonly secret?: boolean;
}

/** A variable and the two halves of its meaning: text to value, value to text. */
export interface Variable<T> extends ConfigVariable {
  /** The value of `text` (the default when unset or empty); throws a `RangeError` if bad. */
  parse(text: string): T;
  /** The text that parses back to `value`. */
  format(value: T): string;
}

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Keyspace replication settings. */
export type Replication =
  | { readonly class: "SimpleStrategy"; readonly replicationFactor: number }
  | {
    readonly class: "NetworkTopologyStrategy";
    readonly dataCenters: Readonly<Record<string, number>>;
  };

/** A symbol: a stock ticker (`AAPL`, `BRK.B`) or `EXCHANGE:PAIR` (`BINANCE:BTCUSDT`). */
export const SYMBOL_PATTERN = /^(?:[A-Z][A-Z0-9]{0,19}:)?[A-Z0-9][A-Z0-9._\-/]{0,31}$/;

/** A CQL identifier we accept for keyspaces: lower-case, so no quoting is ever needed. */
const IDENTIFIER = /^[a-z][a-z0-9_]{0,47}$/;
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

// -- Kinds of variable ------------------------------------------------------------------------

interface Described {
  readonly name: string;
  readonly default: string;
  readonly description: string;
}

function variable<T>(v: Described & Omit<Variable<T>, keyof Described>): Variable<T> {
  return v;
}

function nonEmpty(name: string, text: string): string {
  if (text === "") throw new RangeError(`${name} must not be empty`);
  return text;
}

/** Free text; `""` allowed (it means "none"). */
function text(v: Described): Variable<string> {
  return variable({ ...v, parse: (t) => t, format: (value) => value });
}

/** Text matching `pattern`, described as `what` in the error. */
function matching(v: Described, pattern: RegExp, what: string): Variable<string> {
  return variable({
    ...v,
    parse(t) {
      if (!pattern.test(nonEmpty(v.name, t))) {
        throw new RangeError(`${v.name} must be ${what}, got ${JSON.stringify(t)}`);
      }
      return t;
    },
    format: (value) => value,
  });
}

function topic(v: Described): Variable<string> {
  return matching(v, TOPIC, "a Kafka topic name");
}

/** A whole number from `min` to `max`. */
function int(v: Described, min: number, max: number): Variable<number> {
  return variable({
    ...v,
    parse(t) {
      const value = Number(nonEmpty(v.name, t));
      if (!/^-?\d+$/.test(t) || !Number.isSafeInteger(value) || value < min || value > max) {
        throw new RangeError(
          `${v.name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(t)}`,
        );
      }
      return value;
    },
    format: String,
  });
}

/** A finite number > 0, in any JavaScript number syntax (`1e-10`, `0.5`). */
function positive(v: Described): Variable<number> {
  return variable({
    ...v,
    parse(t) {
      const value = Number(nonEmpty(v.name, t));
      if (!Number.isFinite(value) || value <= 0) {
        throw new RangeError(
          `${v.name} must be a finite number greater than 0, got ${JSON.stringify(t)}`,
        );
      }
      return value;
    },
    format: String,
  });
}

function secret(v: Omit<Described, "default">): Variable<Secret> {
  return variable({
    ...v,
    default: "",
    secret: true,
    parse: (t) => new Secret(t),
    format: (value) => value.reveal(),
  });
}

function oneOf<T extends string>(v: Described, values: readonly T[]): Variable<T> {
  return variable({
    ...v,
    parse(t) {
      if (!(values as readonly string[]).includes(nonEmpty(v.name, t))) {
        throw new RangeError(
          `${v.name} must be one of ${values.join(", ")}, got ${JSON.stringify(t)}`,
        );
      }
      return t as T;
    },
    format: (value) => value,
  });
}

function items(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** `host:port[,host:port]`, each host given the default port when it has none. */
function hostPorts(v: Described, defaultPort: number): Variable<readonly string[]> {
  return variable({
    ...v,
    parse(t) {
      const list = items(nonEmpty(v.name, t));
      if (list.length === 0) throw new RangeError(`${v.name} must name at least one host`);
      return list.map((item) => {
        const match = /^([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(item);
        const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
        if (!match || port < 1 || port > 65_535) {
          throw new RangeError(
            `${v.name} must be host:port[,host:port], got ${JSON.stringify(item)}`,
          );
        }
        return `${match[1]}:${port}`;
      });
    },
    format: (value) => value.join(","),
  });
}

/** A URL of one of `schemes`, described as `what` in the error; `""` allowed when `optional`. */
function url(
  v: Described,
  { schemes, what, optional = false }: {
    schemes: readonly string[];
    what: string;
    optional?: boolean;
  },
): Variable<string> {
  return variable({
    ...v,
    parse(t) {
      if (t === "" && optional) return t;
      const scheme = /^([a-z]+):\/\//.exec(t)?.[1];
      if (scheme === undefined || !schemes.includes(scheme) || !URL.canParse(t)) {
        throw new RangeError(`${v.name} must be ${what}, got ${JSON.stringify(t)}`);
      }
      return t;
    },
    format: (value) => value,
  });
}

/**
 * The base URL of a Confluent-compatible schema registry, without trailing slashes. Credentials
 * in the URL are refused without echoing it (it would carry the password into an error).
 */
function registryUrl(v: Described): Variable<string> {
  const plain = url(v, { schemes: ["http", "https"], what: "an http:// or https:// URL" });
  return variable({
    ...v,
    parse(t) {
      if (/^[a-z]+:\/\/[^/?#]*@/i.test(t)) {
        throw new RangeError(
          `${v.name} must not hold credentials (user:password@host): put them in ` +
            "SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD",
        );
      }
      if (/[?#]/.test(t)) {
        throw new RangeError(
          `${v.name} must be a base URL without query or fragment, got ${JSON.stringify(t)}`,
        );
      }
      return plain.parse(t).replace(/\/+$/, "");
    },
    format: (value) => value,
  });
}

function symbols(v: Described): Variable<readonly string[]> {
  return variable({
    ...v,
    parse(t) {
      const list = items(t).map((s) => s.toUpperCase());
      if (list.length === 0) throw new RangeError(`${v.name} must name at least one symbol`);
      for (const symbol of list) {
        if (!SYMBOL_PATTERN.test(symbol)) {
          throw new RangeError(
            `${v.name} has a malformed symbol ${
              JSON.stringify(symbol)
            }: expected a ticker like AAPL or EXCHANGE:PAIR like BINANCE:BTCUSDT`,
          );
        }
      }
      if (new Set(list).size !== list.length) {
        throw new RangeError(`${v.name} lists a symbol twice`);
      }
      return list;
    },
    format: (value) => value.join(","),
  });
}

function replication(v: Described): Variable<Replication> {
  return variable({
    ...v,
    parse(t) {
      const bad = () =>
        new RangeError(
          `${v.name} must be SimpleStrategy:N or NetworkTopologyStrategy:dc=N[,dc=N], got ${
            JSON.stringify(t)
          }`,
        );
      const [strategy, spec = ""] = t.split(":", 2) as [string, string?];
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
    },
    format(value) {
      if (value.class === "SimpleStrategy") return `SimpleStrategy:${value.replicationFactor}`;
      const dataCenters = Object.entries(value.dataCenters).map(([dc, n]) => `${dc}=${n}`);
      return `NetworkTopologyStrategy:${dataCenters.join(",")}`;
    },
  });
}

/** An ISO 8601 time, as epoch milliseconds. */
function isoTime(v: Described): Variable<number> {
  return variable({
    ...v,
    parse(t) {
      const value = Date.parse(t);
      if (!Number.isFinite(value) || !/^\d{4}-\d\d-\d\dT/.test(t)) {
        throw new RangeError(
          `${v.name} must be an ISO 8601 time like 2000-01-01T00:00:00Z, got ${JSON.stringify(t)}`,
        );
      }
      return value;
    },
    format: (value) => new Date(value).toISOString(),
  });
}

/** `true` or `false`. */
function flag(v: Described): Variable<boolean> {
  const text = oneOf(v, ["true", "false"] as const);
  return variable({ ...v, parse: (t) => text.parse(t) === "true", format: String });
}

/** Host names without a port, lower-cased; `""` is none. */
function hostNames(v: Described): Variable<readonly string[]> {
  return variable({
    ...v,
    parse: (t) =>
      items(t).map((h) => h.toLowerCase()).map((h) => {
        if (!/^[a-z0-9.\-]{1,253}$|^\[[0-9a-f:.]{2,45}\]$/.test(h)) {
          throw new RangeError(
            `${v.name} must list host names like status or grafana.example.com, or [IPv6], without a port, got ${
              JSON.stringify(h)
            }`,
          );
        }
        return h;
      }),
    format: (value) => value.join(","),
  });
}

function roles(v: Described): Variable<readonly WorkerRole[]> {
  return variable({
    ...v,
    parse: (t) =>
      items(t).map((role) => {
        if (!(WORKER_ROLES as readonly string[]).includes(role)) {
          throw new RangeError(
            `${v.name} must list roles of ${WORKER_ROLES.join(", ")}, got ${JSON.stringify(role)}`,
          );
        }
        return role as WorkerRole;
      }),
    // Unset or empty means the default roles, so an empty list is written as a lone comma.
    format: (value) => value.length === 0 ? "," : value.join(","),
  });
}

// -- The declaration ----------------------------------------------------------------------------

/**
 * Every variable the pipeline reads, where it goes in {@linkcode Config}, and in the order the
 * README and `.env.example` list them.
 */
export const CONFIG_SPEC = {
  finnhub: {
    apiKey: secret({
      name: "FINNHUB_API_KEY",
      description:
        "Finnhub API key. Empty: `deno task start` runs the bundled simulator instead of Finnhub.",
    }),
    url: url({
      name: "FINNHUB_WS_URL",
      default: "wss://ws.finnhub.io",
      description: "WebSocket URL of the trade feed (Finnhub, or the simulator).",
    }, { schemes: ["ws", "wss"], what: "a ws:// or wss:// URL" }),
    symbols: symbols({
      name: "FINNHUB_SYMBOLS",
      default: "AAPL,MSFT,AMZN,NVDA,TSLA,BINANCE:BTCUSDT,BINANCE:ETHUSDT,OANDA:EUR_USD",
      description: "Comma-separated symbols to subscribe to (stocks, and EXCHANGE:PAIR crypto/FX).",
    }),
    symbolLimit: int(
      {
        name: "FINNHUB_SYMBOL_LIMIT",
        default: "50",
        description: "Most symbols one connection may subscribe to (Finnhub free tier: 50).",
      },
      1,
      10_000,
    ),
    watchdogMs: int(
      {
        name: "FINNHUB_WATCHDOG_MS",
        default: "90000",
        description: "Reconnect when no frame (ping included) arrived for this long.",
      },
      100,
      3_600_000,
    ),
    reconnectBaseMs: int(
      {
        name: "FINNHUB_RECONNECT_BASE_MS",
        default: "500",
        description: "First reconnect delay; doubles per failed attempt, with jitter.",
      },
      1,
      3_600_000,
    ),
    reconnectMaxMs: int(
      {
        name: "FINNHUB_RECONNECT_MAX_MS",
        default: "30000",
        description: "Cap on the reconnect delay.",
      },
      1,
      3_600_000,
    ),
    authBackoffMs: int(
      {
        name: "FINNHUB_AUTH_BACKOFF_MS",
        default: "60000",
        description: "Delay after a 401 or 429 at the handshake (back off hard).",
      },
      0,
      3_600_000,
    ),
  },
  producer: {
    bufferMaxTrades: int(
      {
        name: "PRODUCER_BUFFER_MAX_TRADES",
        default: "200000",
        description:
          "Trades the producer holds in memory while Kafka is slow or down; more are dropped and counted. At most 311,296 under the producer's default heap bound (see Scaling).",
      },
      1,
      100_000_000,
    ),
    batchMaxTrades: int(
      {
        name: "PRODUCER_BATCH_MAX_TRADES",
        default: "10000",
        description: "Most trades in one Kafka send.",
      },
      1,
      1_000_000,
    ),
    lease: oneOf(
      {
        name: "PRODUCER_LEASE",
        default: "none",
        description:
          "`none`: one producer, no lease, no transactions; it buffers through a Kafka outage. `kafka`: producers of one API key elect the one that reads the feed through a Kafka consumer group and write in transactions that fence an old leader (run two for failover); the active one gives the feed up when Kafka has answered none of its heartbeats for three PRODUCER_LEASE_SESSION_MS.",
      },
      ["kafka", "none"] as const,
    ),
    leaseSessionMs: int(
      {
        name: "PRODUCER_LEASE_SESSION_MS",
        default: "6000",
        description:
          "A killed active producer keeps the lease this long before a standby takes over (the broker's group.min.session.timeout.ms, 6000 by default, is the floor).",
      },
      1_000,
      300_000,
    ),
  },
  kafka: {
    brokers: hostPorts({
      name: "KAFKA_BROKERS",
      default: "127.0.0.1:9092",
      description: "Comma-separated Kafka bootstrap servers. The default starts the local Kafka.",
    }, 9092),
    clientId: matching(
      {
        name: "KAFKA_CLIENT_ID",
        default: "market-pipeline",
        description: "Kafka client id prefix.",
      },
      NAME,
      "letters, digits, . _ -",
    ),
    topics: {
      raw: topic({
        name: "KAFKA_TOPIC_RAW",
        default: "market.trades.raw",
        description: "Topic of raw trades (Avro Trade, keyed by symbol).",
      }),
      silver: topic({
        name: "KAFKA_TOPIC_SILVER",
        default: "market.trades.silver",
        description: "Topic of cleaned trades (Avro SilverTrade, keyed by symbol).",
      }),
      deadLetter: topic({
        name: "KAFKA_TOPIC_DEAD_LETTER",
        default: "market.trades.dead-letter",
        description: "Topic of rejected input with the reason (Avro DeadLetter).",
      }),
      metrics: topic({
        name: "KAFKA_TOPIC_METRICS",
        default: "market.pipeline.metrics",
        description: "Topic of worker reports (Avro WorkerReport) the status endpoint reads.",
      }),
      candles: topic({
        name: "KAFKA_TOPIC_CANDLES",
        default: "market.candles.updates",
        description:
          "Topic of gold candle updates (Avro CandleUpdate) the status endpoint's market page reads live.",
      }),
      gaps: topic({
        name: "KAFKA_TOPIC_GAPS",
        default: "market.feed.gaps",
        description:
          "Topic of feed gaps (Avro FeedGap, keyed by gap id): spans the producer did not receive the feed for some symbols.",
      }),
      coverage: topic({
        name: "KAFKA_TOPIC_FEED_COVERAGE",
        default: "market.feed.coverage",
        description:
          "Compacted topic of the producer's coverage marks (Avro FeedCoverage, keyed by feed id): how a restarted producer learns its own downtime.",
      }),
    },
    partitions: int(
      {
        name: "KAFKA_PARTITIONS",
        default: "6",
        description:
          "Partitions of each topic `deno task topics` creates (the most instances one stage can use).",
      },
      1,
      10_000,
    ),
    replicationFactor: int(
      {
        name: "KAFKA_REPLICATION_FACTOR",
        default: "1",
        description: "Replication factor of created topics (3 on a real cluster).",
      },
      1,
      100,
    ),
    retentionHours: int(
      {
        name: "KAFKA_RETENTION_HOURS",
        default: "168",
        description: "Retention of created topics, in hours.",
      },
      1,
      1_000_000,
    ),
    groupPrefix: matching(
      {
        name: "KAFKA_GROUP_PREFIX",
        default: "market",
        description: "Consumer groups are <prefix>.bronze, <prefix>.silver and <prefix>.gold.",
      },
      NAME,
      "letters, digits, . _ -",
    ),
    /**
     * Consumer group session timeout of the stages, ms (the broker's bounds by default). A
     * stage restarted after a crash takes its partitions back at once (static membership,
     * `groupInstanceId`); this bounds the stall only when nothing restarts it (a lost machine),
     * and stays long so that a process starved of CPU for seconds keeps its place.
     */
    sessionTimeoutMs: int(
      {
        name: "KAFKA_SESSION_TIMEOUT_MS",
        default: "30000",
        description:
          "A stage instance that stops heartbeating and is not restarted (a lost machine) keeps its partitions this long (6000 to 1800000).",
      },
      6_000,
      1_800_000,
    ),
    /**
     * How a stage process names itself in its group across restarts (`processor/group_instance.ts`):
     * `auto`, `host`, `off`, or a name of the process's own.
     */
    groupInstanceId: matching(
      {
        name: "KAFKA_GROUP_INSTANCE_ID",
        default: "auto",
        description:
          "Static membership: a stage restarted under this name gets its partitions back at once. auto: named by its supervisor; host: by its host; off; or a unique name.",
      },
      NAME,
      "auto, host, off or a name of letters, digits, . _ -",
    ),
    /** Consumer group heartbeat interval of the stages, ms. */
    heartbeatIntervalMs: int(
      {
        name: "KAFKA_HEARTBEAT_INTERVAL_MS",
        default: "3000",
        description:
          "How often a stage instance heartbeats its group; at most a third of KAFKA_SESSION_TIMEOUT_MS.",
      },
      100,
      600_000,
    ),
  },
  cassandra: {
    contactPoints: hostPorts({
      name: "CASSANDRA_CONTACT_POINTS",
      default: "127.0.0.1:9042",
      description: "Comma-separated Cassandra host:port. The default starts the local Cassandra.",
    }, 9042),
    localDataCenter: matching(
      {
        name: "CASSANDRA_LOCAL_DC",
        default: "datacenter1",
        description: "The Cassandra data centre the driver treats as local.",
      },
      NAME,
      "a data centre name",
    ),
    keyspace: matching(
      { name: "CASSANDRA_KEYSPACE", default: "market", description: "Keyspace of all tables." },
      IDENTIFIER,
      "a lower-case CQL identifier",
    ),
    replication: replication({
      name: "CASSANDRA_REPLICATION",
      default: "SimpleStrategy:1",
      description:
        "Keyspace replication: `SimpleStrategy:N`, or `NetworkTopologyStrategy:dc1=3,dc2=3` on a cluster.",
    }),
    username: text({
      name: "CASSANDRA_USERNAME",
      default: "",
      description: "Cassandra user (empty: no auth).",
    }),
    password: secret({ name: "CASSANDRA_PASSWORD", description: "Cassandra password." }),
    maxConcurrency: int(
      {
        name: "CASSANDRA_MAX_CONCURRENCY",
        default: "64",
        description: "Most Cassandra writes one worker has in flight.",
      },
      1,
      4096,
    ),
  },
  /** The schema registry of the Avro topics (Confluent's REST API). */
  registry: {
    url: registryUrl({
      name: "SCHEMA_REGISTRY_URL",
      default: "http://127.0.0.1:8081/apis/ccompat/v7",
      description:
        "Base URL of a Confluent-compatible schema registry (Confluent, or Apicurio's /apis/ccompat/v7). The default starts the local Apicurio Registry.",
    }),
    username: text({
      name: "SCHEMA_REGISTRY_USERNAME",
      default: "",
      description: "Schema registry basic-auth user (empty: no auth).",
    }),
    password: secret({
      name: "SCHEMA_REGISTRY_PASSWORD",
      description: "Schema registry basic-auth password (or API secret).",
    }),
  },
  silver: {
    maxFutureMs: int(
      {
        name: "SILVER_MAX_FUTURE_MS",
        default: "60000",
        description: "Silver rejects a trade whose event time is this far past its ingest time.",
      },
      0,
      86_400_000,
    ),
    minEventTime: isoTime({
      name: "SILVER_MIN_EVENT_TIME",
      default: "2000-01-01T00:00:00Z",
      description:
        "Silver rejects a trade with an earlier event time (catches seconds sent as milliseconds).",
    }),
    minPrice: positive({
      name: "SILVER_MIN_PRICE",
      default: "1e-10",
      description:
        "Silver rejects a lower price (bad_price_range): VWAP has 10 decimals, and 5e-324 would make it 0.",
    }),
    maxPrice: positive({
      name: "SILVER_MAX_PRICE",
      default: "1e12",
      description: "Silver rejects a higher price (bad_price_range).",
    }),
    maxVolume: positive({
      name: "SILVER_MAX_VOLUME",
      default: "1e15",
      description:
        "Silver rejects a higher volume (bad_volume_range): 1.797e308 would make a 309-digit candle volume.",
    }),
  },
  gold: {
    allowedLatenessMs: int(
      {
        name: "GOLD_ALLOWED_LATENESS_MS",
        default: "10000",
        description:
          "A window is final once the watermark (latest event time minus this) passes its end.",
      },
      0,
      86_400_000,
    ),
    flushIntervalMs: int(
      {
        name: "GOLD_FLUSH_INTERVAL_MS",
        default: "500",
        description: "How often gold upserts open windows (at most 1000 keeps dashboards live).",
      },
      10,
      60_000,
    ),
  },
  status: {
    host: matching(
      {
        name: "STATUS_HOST",
        default: "127.0.0.1",
        description: "Address the status endpoint binds to.",
      },
      /^[A-Za-z0-9.:\-\[\]]{1,253}$/,
      "a host name or address",
    ),
    port: int(
      { name: "STATUS_PORT", default: "8080", description: "Port of the status endpoint." },
      0,
      65_535,
    ),
    token: secret({
      name: "STATUS_TOKEN",
      description: "Bearer token that protects every status route but /healthz (empty: open).",
    }),
    expectedWorkers: roles({
      name: "STATUS_EXPECTED_WORKERS",
      default: "producer,bronze,silver,gold",
      description: "Worker roles that must be reporting for /readyz to say ready.",
    }),
    /** Lower-case host names (`[...]` for IPv6) answered besides loopback and `host`. */
    allowedHosts: hostNames({
      name: "STATUS_ALLOWED_HOSTS",
      default: "",
      description:
        "Host names the status endpoint answers to besides loopback and STATUS_HOST (comma-separated, no port); others get 421 (DNS rebinding). Compose adds `status`.",
    }),
    maxConnections: int(
      {
        name: "STATUS_MAX_CONNECTIONS",
        default: "256",
        description:
          "Most connections the status endpoint keeps open (a market page holds one for live updates); more are closed at once and counted.",
      },
      1,
      100_000,
    ),
    accessLog: flag({
      name: "STATUS_ACCESS_LOG",
      default: "false",
      description:
        "true: the status endpoint logs one line per request (method, path with any token removed, status, milliseconds).",
    }),
  },
  /** The simulator `deno task start` runs without a Finnhub key. */
  simulator: {
    port: int(
      {
        name: "SIMULATOR_PORT",
        default: "8765",
        description:
          "Port (on 127.0.0.1) of the simulator `deno task start` runs when FINNHUB_API_KEY is empty; `deno task smoke` sends its trades there.",
      },
      1,
      65_535,
    ),
  },
  /** Grafana's address for people (`""`: none). */
  grafana: {
    url: url({
      name: "GRAFANA_URL",
      default: "",
      description:
        "Grafana's address, shown by `deno task start` (empty: none; docker compose: http://127.0.0.1:3000).",
    }, { schemes: ["http", "https"], what: "an http:// or https:// URL", optional: true }),
  },
  logLevel: oneOf({
    name: "LOG_LEVEL",
    default: "info",
    description: "debug, info, warn or error.",
  }, ["debug", "info", "warn", "error"] as const),
};

/** The value type a declaration resolves to: each variable replaced by its value. */
type Resolved<S> = S extends Variable<infer T> ? T : { readonly [K in keyof S]: Resolved<S[K]> };

/** The whole resolved configuration, shaped as {@linkcode CONFIG_SPEC}. */
export type Config = Resolved<typeof CONFIG_SPEC>;

/**
 * Rules between variables, checked once each has parsed; each throws a `RangeError` naming the
 * variable to change.
 */
const CROSS_CHECKS: readonly ((config: Config) => void)[] = [
  ({ finnhub }) => {
    if (finnhub.symbols.length > finnhub.symbolLimit) {
      throw new RangeError(
        `FINNHUB_SYMBOLS lists ${finnhub.symbols.length} symbols, more than FINNHUB_SYMBOL_LIMIT=${finnhub.symbolLimit} (Finnhub refuses the rest with "Subscribing to too many symbols")`,
      );
    }
  },
  ({ finnhub }) => {
    if (finnhub.reconnectMaxMs < finnhub.reconnectBaseMs) {
      throw new RangeError("FINNHUB_RECONNECT_MAX_MS must not be below FINNHUB_RECONNECT_BASE_MS");
    }
  },
  ({ producer }) => {
    if (producer.bufferMaxTrades < producer.batchMaxTrades) {
      throw new RangeError(
        "PRODUCER_BUFFER_MAX_TRADES must not be below PRODUCER_BATCH_MAX_TRADES",
      );
    }
  },
  ({ silver }) => {
    if (silver.maxPrice < silver.minPrice) {
      throw new RangeError(
        `SILVER_MAX_PRICE must not be below SILVER_MIN_PRICE=${silver.minPrice}, got ${silver.maxPrice}`,
      );
    }
  },
  ({ registry }) => {
    if (registry.password.isSet && registry.username === "") {
      throw new RangeError(
        "SCHEMA_REGISTRY_PASSWORD is set but SCHEMA_REGISTRY_USERNAME is empty: basic auth needs both",
      );
    }
  },
  ({ kafka }) => {
    if (kafka.heartbeatIntervalMs * 3 > kafka.sessionTimeoutMs) {
      throw new RangeError(
        `KAFKA_HEARTBEAT_INTERVAL_MS must be at most a third of KAFKA_SESSION_TIMEOUT_MS=${kafka.sessionTimeoutMs}, got ${kafka.heartbeatIntervalMs}`,
      );
    }
  },
];

// -- What is derived from it --------------------------------------------------------------------

type Env = Readonly<Record<string, string | undefined>>;
type Spec = { readonly [key: string]: Spec | Variable<unknown> };

function isVariable(node: Spec | Variable<unknown>): node is Variable<unknown> {
  return typeof (node as Variable<unknown>).parse === "function";
}

/** Every variable of `spec` with its path, in declaration order. */
function leaves(
  spec: Spec,
  path: readonly string[] = [],
): [readonly string[], Variable<unknown>][] {
  return Object.entries(spec).flatMap(([key, node]) =>
    isVariable(node) ? [[[...path, key], node]] : leaves(node, [...path, key])
  );
}

const LEAVES = leaves(CONFIG_SPEC as unknown as Spec);

function valueAt(config: Config, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], config);
}

/** Every variable `loadConfig` reads, with its default, in the documented order. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = LEAVES.map(([, v]) => ({
  name: v.name,
  default: v.default,
  description: v.description,
  ...(v.secret ? { secret: true } : {}),
}));

/**
 * Reads the configuration from `env` (in `main.ts`: `Deno.env.toObject()`), applying the
 * defaults of {@linkcode CONFIG_SPEC}. Throws a `RangeError` naming the first bad variable.
 */
export function loadConfig(env: Env): Config {
  const root: Record<string, unknown> = {};
  for (const [path, v] of LEAVES) {
    const given = env[v.name]?.trim();
    let node = root;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path.at(-1)!] = v.parse(given === undefined || given === "" ? v.default : given);
  }
  const config = root as unknown as Config;
  for (const check of CROSS_CHECKS) check(config);
  return deepFreeze(config);
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
  return Object.fromEntries(
    LEAVES.filter(([, v]) => !v.secret).map((
      [path, v],
    ) => [v.name, v.format(valueAt(config, path))]),
  );
}

/** Every secret of `config`, set or not: what each process's log lines redact. */
export function secretsOf(config: Config): Secret[] {
  return LEAVES.filter(([, v]) => v.secret).map(([path]) => valueAt(config, path) as Secret);
}

/**
 * The secrets of `config` that are set, as the variables that set them: what a parent passes on
 * to a child by name, since {@linkcode configEnv} writes no secret.
 */
export function secretEnv(config: Config): Record<string, string> {
  return Object.fromEntries(
    LEAVES.filter(([, v]) => v.secret)
      .map(([path, v]) => [v.name, valueAt(config, path) as Secret] as const)
      .filter(([, secret]) => secret.isSet)
      .map(([name, secret]) => [name, secret.reveal()]),
  );
}

/**
 * The topic, consumer group and keyspace variables of an isolated pipeline, every name made of
 * `prefix` and `id`, so that runs with different ids (a test, a benchmark step) share nothing:
 * `isolatedNames("test", "3f9c")` sets `KAFKA_TOPIC_RAW=test.3f9c.raw` (and `.silver`, `.dlq`,
 * `.metrics`, `.candles`, `.gaps`, `.coverage`), `KAFKA_GROUP_PREFIX=test.3f9c` and `CASSANDRA_KEYSPACE=test_3f9c`.
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
    KAFKA_TOPIC_GAPS: `${prefix}.${id}.gaps`,
    KAFKA_TOPIC_FEED_COVERAGE: `${prefix}.${id}.coverage`,
    KAFKA_GROUP_PREFIX: `${prefix}.${id}`,
    CASSANDRA_KEYSPACE: keyspace,
  };
}
