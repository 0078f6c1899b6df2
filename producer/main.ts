/**
 * `deno task producer`: reads the config, checks the topics exist, runs the producer until
 * SIGINT or SIGTERM, flushes, and exits 0 (1 if trades accepted from the feed could not be
 * confirmed by Kafka, or on a start-up error). A signal more than a second after the first exits at
 * once with 130; repeats within that second are the same Ctrl-C (see `shared/shutdown.ts`).
 *
 * With `PRODUCER_LEASE=kafka` (the default is `none`: no lease, no transactions) it first joins
 * its API key's lease group (`lease.ts`) and reads the feed only while it holds the lease,
 * writing in transactions whose id fences any older holder; while another producer holds it, it
 * stands by. A term as the active producer ends when the lease is lost (the feed is closed and
 * what was read is flushed, if Kafka still takes it) or when Kafka fences it (it steps down and
 * rejoins as a standby); either way it logs why. Alone, it wins the lease at once.
 *
 * @module
 */
import "../shared/kafkajs_fixes.ts"; // before kafkajs: its producers must not drop nor give up a commit
import { Partitioners } from "kafkajs";
import { getHeapStatistics } from "node:v8";
import { prepareLocal } from "../shared/provision.ts";
import { createKafka } from "../shared/kafka.ts";
import { type MainContext, runMain } from "../shared/main.ts";
import { startReporter } from "../shared/reporter.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { writtenSchemas } from "../shared/topology.ts";
import { openWire } from "../shared/wire.ts";
import { checkBufferFitsHeap } from "./heap_budget.ts";
import { startMallocTrim } from "./malloc_trim.ts";
import { createKafkaCoverageStore, feedIdOf } from "./coverage_store.ts";
import { feedUrls } from "./finnhub_client.ts";
import { SinkStoppedError } from "./kafka_sink.ts";
import { KafkaLease, leaseNames, transactionalIdOf } from "./lease.ts";
import { createProducerMetrics } from "./metrics.ts";
import { createProducer, type ProducerReport } from "./producer.ts";
import { producerMetricsSnapshot } from "./prometheus.ts";

async function main({ env, config, log, signal }: MainContext): Promise<number> {
  // On this machine's own services: start them, create topics and schema, when needed.
  await prepareLocal(env, config, log);
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: "producer" });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const { raw, deadLetter, gaps, coverage } = config.kafka.topics;
    const missing = [raw, deadLetter, gaps, coverage].filter((t) => !existing.has(t));
    if (missing.length > 0) {
      log.error("cannot start: Kafka topics are missing; run `deno task topics` first", {
        missing,
      });
      return 1;
    }
    if (config.producer.lease === "kafka") {
      // The lease topic holds nothing; any producer of the key may create it (idempotent). The
      // lease's join waits for its leader, retrying.
      await admin.createTopics({
        waitForLeaders: false,
        topics: [{
          topic: leaseNames(config).topic,
          numPartitions: 1,
          replicationFactor: config.kafka.replicationFactor,
        }],
      });
    }
  } finally {
    await admin.disconnect();
  }

  let wire;
  try {
    wire = await openWire(
      createSchemaRegistryClient(config.registry),
      writtenSchemas(config, "producer"),
      { log: log.child("registry"), signal },
    );
  } catch (error) {
    if (signal.aborted) return 0; // stopped while waiting for the registry
    throw error;
  }

  // Metrics go to the status endpoint through the metrics topic, as the stages' do; a report
  // that fails is logged and never stops the producer. The coverage marks go on it too.
  const reportProducer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await reportProducer.connect();
  // The feed's identity (no secret in it): the key of its coverage marks and part of gap ids.
  const feedId = await feedIdOf(
    feedUrls(config.finnhub.url, config.finnhub.apiKey).display,
    config.finnhub.apiKey,
  );
  log.info("starting", {
    lease: config.producer.lease,
    url: new URL(config.finnhub.url).origin,
    symbols: config.finnhub.symbols.length,
    brokers: config.kafka.brokers.join(","),
    topic: config.kafka.topics.raw,
    registry: config.registry.url,
    feedId,
  });
  const coverageStore = createKafkaCoverageStore({
    kafka,
    producer: reportProducer,
    topic: config.kafka.topics.coverage,
    feedId,
    wire,
    groupPrefix: config.kafka.groupPrefix,
    log: log.child("coverage"),
  });
  const metrics = createProducerMetrics(config.producer.bufferMaxTrades);
  const lease = config.producer.lease === "kafka"
    ? new KafkaLease({
      kafka,
      names: leaseNames(config),
      sessionMs: config.producer.leaseSessionMs,
      log: log.child("lease"),
    })
    : undefined;
  const reporter = startReporter({
    producer: reportProducer,
    topic: config.kafka.topics.metrics,
    wire,
    role: "producer",
    snapshot: () => producerMetricsSnapshot(metrics.snapshot(), lease?.state),
    log: log.child("reporter"),
  });
  // Native memory freed after a flood goes back to the system (see malloc_trim.ts).
  const stopTrim = startMallocTrim({ log: log.child("memory") });
  let report: ProducerReport | undefined;
  let unflushed = 0;
  try {
    // No client passed: the producer sends from this thread on a client of its own.
    if (lease === undefined) {
      report = await createProducer({ config, log, signal, wire, metrics, feedId, coverageStore })
        .run();
      unflushed = report.unflushed;
    } else {
      await lease.start();
      const names = leaseNames(config);
      while (!signal.aborted) {
        // The term's signal exists before the term: `lost` aborts it once it is known.
        const term = new AbortController();
        const producer = createProducer({
          config,
          log,
          signal: AbortSignal.any([signal, term.signal]),
          wire,
          metrics,
          feedId,
          // Read and written by the active term only (`run()`): a new leader's first
          // subscription ends a producer_down gap from the last leader's last mark.
          coverageStore,
          transactionalId: transactionalIdOf(names),
        });
        // A standby connects to Kafka ahead: taking over then costs only fencing.
        producer.prepare();
        const lost = await lease.whenActive(signal);
        if (lost === undefined) {
          producer.discard();
          break;
        }
        if (lost.aborted) term.abort();
        else lost.addEventListener("abort", () => term.abort(), { once: true });
        try {
          report = await producer.run();
          unflushed += report.unflushed;
        } catch (error) {
          const cause = (error as Error).cause;
          if (!(cause instanceof SinkStoppedError)) throw error;
          log.warn(
            cause.fenced
              ? "standing by: Kafka fenced this producer (another one holds the lease and writes now)"
              : "standing by: this producer's Kafka transaction state is lost; rejoining the lease",
            { error: cause.message },
          );
          await lease.stepDown(cause.message);
        }
      }
    }
  } finally {
    stopTrim();
    await lease?.stop();
    await reporter.stop();
    await reportProducer.disconnect().catch(() => {});
  }
  const m = report?.metrics ?? metrics.snapshot();
  log.info("stopped", { ...m, produceLatencyMs: m.produceLatencyMs });
  return unflushed > 0 ? 1 : 0;
}
await runMain("producer", main, {
  check: (config) =>
    checkBufferFitsHeap(config.producer.bufferMaxTrades, getHeapStatistics().heap_size_limit),
  skipped: "without flushing",
});
