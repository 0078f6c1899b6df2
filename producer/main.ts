/**
 * `deno task producer`: reads the config, checks the topics exist, runs the producer until
 * SIGINT or SIGTERM, flushes, and exits 0 (1 if trades accepted from the feed could not be
 * confirmed by Kafka, or on a start-up error). A signal more than a second after the first exits at
 * once with 130; repeats within that second are the same Ctrl-C (see `shared/shutdown.ts`).
 *
 * @module
 */
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
import { createProducer } from "./producer.ts";
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
  // No client passed: the producer sends from its Kafka worker (see producer/worker_sink.ts).
  const producer = createProducer({ config, log, signal, wire, feedId, coverageStore });
  const reporter = startReporter({
    producer: reportProducer,
    topic: config.kafka.topics.metrics,
    wire,
    role: "producer",
    snapshot: () => producerMetricsSnapshot(producer.metrics.snapshot()),
    log: log.child("reporter"),
  });
  // Native memory freed after a flood goes back to the system (see malloc_trim.ts).
  const stopTrim = startMallocTrim({ log: log.child("memory") });
  let report;
  try {
    report = await producer.run();
  } finally {
    stopTrim();
    await reporter.stop();
    await reportProducer.disconnect().catch(() => {});
  }
  log.info("stopped", { ...report.metrics, produceLatencyMs: report.metrics.produceLatencyMs });
  return report.unflushed > 0 ? 1 : 0;
}

await runMain("producer", main, {
  check: (config) =>
    checkBufferFitsHeap(config.producer.bufferMaxTrades, getHeapStatistics().heap_size_limit),
  skipped: "without flushing",
});
