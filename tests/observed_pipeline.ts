/**
 * The whole pipeline running in the test process, observed the way production observes it: the
 * simulator feeds the producer, the bronze, silver and gold stages run as workers, every worker
 * reports through the metrics topic, and the status endpoint (`status/app.ts` on
 * `status/server.ts`, wired as `status/main.ts` wires it) serves `/metrics` on a free port.
 * Fresh topics and keyspace.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import "../shared/kafkajs_fixes.ts"; // before kafkajs: its producers must not drop nor give up a commit
import { Partitioners, type Producer as KafkaProducer } from "kafkajs";
import { createCassandraClient } from "../shared/cassandra.ts";
import type { Config } from "../shared/config.ts";
import { createKafka } from "../shared/kafka.ts";
import { silentLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { startReporter } from "../shared/reporter.ts";
import { Secret } from "../shared/secret.ts";
import type { RawTrade } from "../shared/types.ts";
import { createProducer } from "../producer/producer.ts";
import { producerMetricsSnapshot } from "../producer/prometheus.ts";
import { type Simulator, startSimulator } from "../simulator/server.ts";
import { createStatusApp } from "../status/app.ts";
import { createMarketService } from "../status/market/market.ts";
import { createCollector } from "../shared/report_collector.ts";
import { serveStatus } from "../status/server.ts";
import {
  cleanup,
  provision,
  startStage,
  testConfig,
  testLogger,
  testWire,
  waitFor,
  writerWire,
} from "./helpers.ts";
import { randomId } from "../shared/random.ts";
import { parseExposition, rolesUp } from "./prometheus_text.ts";
import { type StageName, STAGES, stageSubscriptions } from "../shared/topology.ts";
import { consumerLag } from "../shared/lag.ts";

/** kafkajs keeps timers and sockets past `disconnect()`. */
export const observedTestOptions = { sanitizeOps: false, sanitizeResources: false };

/** Logs: silent unless TEST_LOG_LEVEL is set (debug, info, warn, error). */
/** A running pipeline; `stop()` in `finally`. */
export interface ObservedPipeline {
  readonly config: Config;
  readonly simulator: Simulator;
  /** `http://127.0.0.1:<port>` of the status endpoint. */
  readonly statusUrl: string;
  readonly statusPort: number;
  /** GET /metrics of the status endpoint. */
  metrics(): Promise<string>;
  /** Writes trades to the raw topic exactly as the producer writes them. */
  produceRaw(trades: readonly RawTrade[]): Promise<void>;
  /** Stops one stage's worker (its reporter's last report says `stopped`). */
  stopStage(stage: StageName): Promise<void>;
  /** Stops everything, then drops the keyspace and topics. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startObservedPipeline}. */
export interface ObservedPipelineOptions {
  /** Trades per second the simulator sends. Default 200. */
  readonly rate?: number;
  /** Extra configuration variables. */
  readonly env?: Record<string, string>;
  /** Serve the market page (`status/market/`) too, as status/main.ts does. Default false. */
  readonly market?: boolean;
}

/**
 * Starts the simulator, the status endpoint, the three stages and the producer (in that order,
 * so the collector, which reads the metrics topic from its end, sees every first report), and
 * waits until `/metrics` shows every expected worker up.
 */
export async function startObservedPipeline(
  options: ObservedPipelineOptions = {},
): Promise<ObservedPipeline> {
  const closers: { what: string; close: () => Promise<unknown> }[] = [];
  async function stop(): Promise<void> {
    const errors: string[] = [];
    for (const { what, close } of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        errors.push(`${what}: ${(error as Error).message}`);
      }
    }
    closers.length = 0;
    if (errors.length > 0) console.error(`observed pipeline: stop: ${errors.join("; ")}`);
  }

  try {
    const simulator = await startSimulator({ rate: options.rate ?? 200, pingIntervalMs: 1000 });
    closers.push({ what: "simulator", close: () => simulator.close() });
    const config = testConfig({
      FINNHUB_WS_URL: simulator.url,
      FINNHUB_API_KEY: `test-key-${randomId()}`,
      FINNHUB_RECONNECT_BASE_MS: "50",
      FINNHUB_RECONNECT_MAX_MS: "1000",
      GOLD_ALLOWED_LATENESS_MS: "1000",
      ...options.env,
    });
    await provision(config);
    closers.push({ what: "cleanup", close: () => cleanup(config) });
    // The producer's reports and the test's own raw records, as the producer encodes them.
    const wire = await writerWire(config, ["raw", "metrics"]);

    // The status endpoint, as status/main.ts builds it.
    const log = testLogger("status");
    const kafka = createKafka(config.kafka, log, { clientIdSuffix: "status" });
    const admin = kafka.admin();
    await admin.connect();
    closers.push({ what: "status admin", close: () => admin.disconnect() });
    const session = createCassandraClient(config.cassandra, { applicationName: "market-status" });
    closers.push({ what: "status session", close: () => session.shutdown() });
    const statusMetrics = new MetricsRegistry();
    const collector = createCollector({
      kafka,
      topic: config.kafka.topics.metrics,
      groupId: `${config.kafka.groupPrefix}.status-${randomId()}`,
      wire: testWire(),
      log,
      metrics: statusMetrics,
    });
    await collector.start();
    closers.push({ what: "collector", close: () => collector.stop() });
    const subscriptions = stageSubscriptions(config);
    const sources = {
      workers: () => collector.workers(),
      lag: () => consumerLag(admin, subscriptions),
      kafkaUp: async () => (await admin.describeCluster()).brokers.length > 0,
      cassandraUp: async () => {
        await session.execute("SELECT release_version FROM system.local");
        return true;
      },
    };
    const market = options.market
      ? createMarketService({
        config,
        kafka,
        session,
        sources,
        wire: testWire(),
        log: log.child("market"),
        metrics: statusMetrics,
      })
      : undefined;
    market?.start();
    const app = createStatusApp({
      token: new Secret(""),
      expectedWorkers: config.status.expectedWorkers,
      sources,
      metrics: statusMetrics,
      ...(market ? { extend: market.mount } : {}),
    });
    const server = await serveStatus({
      hostname: "127.0.0.1",
      port: 0,
      handler: app.fetch,
      metrics: statusMetrics,
    });
    closers.push({ what: "status server", close: () => server.shutdown() });
    // Before the server: its event streams never end by themselves.
    if (market) closers.push({ what: "market", close: () => market.stop() });
    const statusPort = server.addr.port;
    const statusUrl = `http://127.0.0.1:${statusPort}`;

    // The stages, each with its own stop signal.
    const stages = new Map(STAGES.map((stage) => [stage, startStage(config, stage)]));
    const stopStage = async (stage: StageName): Promise<void> => {
      const running = stages.get(stage);
      if (!running) return;
      stages.delete(stage);
      await running.stop();
    };
    closers.push({
      what: "stages",
      close: () => Promise.all(STAGES.map((stage) => stopStage(stage))),
    });

    // The producer, and its reports to the status endpoint, wired as producer/main.ts does.
    const producerLog = testLogger("producer");
    const producerKafka = createKafka(config.kafka, producerLog, { clientIdSuffix: "producer" });
    const feedController = new AbortController();
    const producer = createProducer({
      config,
      kafka: producerKafka,
      log: producerLog,
      signal: feedController.signal,
      statsIntervalMs: 0,
    });
    const reportProducer: KafkaProducer = producerKafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await reportProducer.connect();
    closers.push({ what: "report producer", close: () => reportProducer.disconnect() });
    const running = producer.run();
    running.catch(() => {});
    closers.push({
      what: "producer",
      close: async () => {
        feedController.abort();
        await running;
      },
    });
    const reporter = startReporter({
      producer: reportProducer,
      topic: config.kafka.topics.metrics,
      wire,
      role: "producer",
      snapshot: () => producerMetricsSnapshot(producer.metrics.snapshot()),
      log: producerLog,
    });
    closers.push({ what: "producer reporter", close: () => reporter.stop() });

    // Raw records written by the test itself (invalid and late trades).
    const rawProducer = createKafka(config.kafka, silentLogger()).producer();
    await rawProducer.connect();
    closers.push({ what: "raw producer", close: () => rawProducer.disconnect() });

    const metrics = async (): Promise<string> => {
      const response = await fetch(`${statusUrl}/metrics`);
      const text = await response.text();
      if (!response.ok) throw new Error(`GET /metrics: ${response.status} ${text}`);
      return text;
    };

    await waitFor(
      `every expected worker (${config.status.expectedWorkers.join(", ")}) up on /metrics`,
      async () => {
        const up = rolesUp(parseExposition(await metrics()));
        const missing = config.status.expectedWorkers.filter((role) => !up.has(role));
        if (missing.length > 0) throw new Error(`not up yet: ${missing.join(", ")}`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );

    return {
      config,
      simulator,
      statusUrl,
      statusPort,
      metrics,
      async produceRaw(trades) {
        await rawProducer.send({
          topic: config.kafka.topics.raw,
          acks: -1,
          messages: trades.map((trade) => ({
            key: Buffer.from(trade.s),
            value: wire.encode("Trade", trade),
          })),
        });
      },
      stopStage,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Trades that exercise the labelled failure counters: one per silver rejection rule reachable
 * from a well-formed record (bad price, negative volume, bad symbol, seconds for milliseconds, a
 * day in the future), and a trade for `symbol` ten minutes old, late for its already-final
 * 5-minute window once the symbol's watermark moved past it.
 */
export function troublesomeTrades(symbol: string, now: number): RawTrade[] {
  const base: RawTrade = {
    s: symbol,
    p: 100,
    t: now,
    v: 1,
    c: [],
    ingestTime: now,
    connectionId: "test-extras",
    frameSeq: 1,
    tradeIndex: 0,
  };
  return [
    { ...base, p: 0, tradeIndex: 0 },
    { ...base, v: -1, tradeIndex: 1 },
    { ...base, s: "aapl;DROP", tradeIndex: 2 },
    { ...base, t: Math.floor(now / 1000), tradeIndex: 3 },
    { ...base, t: now + 86_400_000, tradeIndex: 4 },
    { ...base, t: now - 600_000, tradeIndex: 5 },
  ];
}
