/**
 * One of the producer's Kafka workers (see `worker_sink.ts`): builds its own kafkajs client and
 * idempotent producer from the config it is sent, reports the raw topic's partition count, runs
 * a {@linkcode KafkaSink} on the trades (partition pinned) and dead letters it receives, reports
 * the sink's counters after every send, and on `close` flushes, disconnects and reports a last
 * time. Given a `transactionalId`, the producer is transactional: it initialises the id before
 * it reports ready (which fences any older producer with that id) and sends each batch as one
 * transaction; a sink that stops (fenced) is reported as `failed`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { Buffer } from "node:buffer";
import type { Kafka, Message } from "kafkajs";
import { createKafka, hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { createLogger, describeError } from "../shared/log.ts";
import {
  KafkaSink,
  PRODUCER_CONFIG,
  type SendingProducer,
  SinkStoppedError,
  transactionalConfig,
  transactionalSender,
  withoutConcurrentTransactionNoise,
} from "./kafka_sink.ts";
import { createProducerMetrics } from "./metrics.ts";
import { TradeBuffer } from "./trade_buffer.ts";
import { unpackTrades } from "./trade_packing.ts";
import type { FromWorker, SinkCounters, ToWorker } from "./worker_sink.ts";

let sink: KafkaSink | undefined;
let activate: () => void = () => {};
const activated = new Promise<void>((resolve) => activate = resolve);
/** Encoded bytes of the trades and dead letters received, for the main side's bytes bound. */
let tradeBytesIn = 0;
let deadLetterBytesIn = 0;

function post(message: FromWorker): void {
  self.postMessage(message);
}

async function start(message: Extract<ToWorker, { type: "start" }>): Promise<void> {
  hideKafkajsTimeoutWarning();
  const log = createLogger(`producer.kafka${message.index}`, { level: message.logLevel });
  const kafka = createKafka(message.kafka, withoutConcurrentTransactionNoise(log), {
    clientIdSuffix: `producer-${message.index}`,
  });
  const { transactionalId } = message;
  const producer = kafka.producer(
    transactionalId === undefined ? PRODUCER_CONFIG : transactionalConfig(transactionalId),
  );
  let partitions: number;
  let sender: SendingProducer = producer;
  try {
    await producer.connect();
    partitions = await partitionCount(kafka, message.kafka.topics.raw);
    if (transactionalId !== undefined) {
      // A standby connects ahead and waits; taking over, the first transaction initialises the
      // id: from here any older producer with it is fenced, and an open transaction of one that
      // died is aborted.
      post({ type: "connected" });
      await activated;
      await (await producer.transaction()).commit();
      log.info("transactional id initialised: fenced any older producer of this key", {
        transactionalId,
      });
      sender = transactionalSender(producer);
    }
  } catch (error) {
    post({
      type: "failed",
      error: `cannot connect to Kafka: ${describeError(error)}`,
      fenced: false,
    });
    await producer.disconnect().catch(() => {});
    return;
  }
  const metrics = createProducerMetrics(message.producer.bufferMaxTrades);
  let latencies: number[] = [];
  const record = metrics.recordProduceLatency;
  metrics.recordProduceLatency = (ms) => {
    latencies.push(ms);
    record(ms);
  };
  const report = (type: "progress" | "closed") => {
    const counters: SinkCounters = {
      tradesProduced: metrics.tradesProduced,
      tradesFailed: metrics.tradesFailed,
      tradesDropped: metrics.tradesDropped,
      deadLettersProduced: metrics.deadLettersProduced,
      deadLettersDropped: metrics.deadLettersDropped,
      feedGapsPublished: metrics.feedGapsPublished,
      feedGapsDropped: metrics.feedGapsDropped,
      batchesProduced: metrics.batchesProduced,
      kafkaErrors: metrics.kafkaErrors,
      lastError: metrics.lastError,
      tradeBytesDone: tradeBytesIn - (sink?.bufferedBytes ?? 0),
      deadLetterBytesDone: deadLetterBytesIn - (sink?.deadLetterBytes ?? 0),
    };
    post({ type, counters, latencies });
    latencies = [];
  };
  const buffer = new TradeBuffer<Message>({
    maxItems: message.producer.bufferMaxTrades,
    batchMaxItems: message.producer.batchMaxTrades,
  });
  sink = new KafkaSink({
    producer: sender,
    rawTopic: message.kafka.topics.raw,
    deadLetterTopic: message.kafka.topics.deadLetter,
    gapsTopic: message.kafka.topics.gaps,
    buffer,
    metrics,
    log,
    onSent: () => report("progress"),
  });
  sink.run().catch((error) => {
    // Stopped (fenced): counted as failed by the main side, which stops the producer.
    log.error("the Kafka sink stopped", { error });
    post({
      type: "failed",
      error: describeError(error),
      fenced: error instanceof SinkStoppedError && error.fenced,
    });
  }).then(async () => {
    await Promise.race([
      producer.disconnect().catch((error) =>
        log.warn("Kafka producer did not disconnect cleanly", { error })
      ),
      new Promise((resolve) => setTimeout(resolve, 5_000)),
    ]);
    report("closed");
  });
  post({ type: "ready", partitions });
}

async function partitionCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const count = metadata.topics[0]?.partitions.length ?? 0;
    if (count === 0) throw new Error(`topic ${topic} has no partitions`);
    return count;
  } finally {
    await admin.disconnect();
  }
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      start(message);
      return;
    case "activate":
      activate();
      return;
    case "trades": {
      const target = sink;
      if (!target) return;
      unpackTrades(message.buffer, (symbol, ingestTime, value, partition) => {
        tradeBytesIn += value.length;
        target.offerTrade(symbol, ingestTime, () => value, partition);
      });
      return;
    }
    case "deadLetter":
      if (!sink) return;
      deadLetterBytesIn += message.value.length;
      sink.offerDeadLetter(
        message.key,
        Buffer.from(message.value.buffer, message.value.byteOffset, message.value.length),
      );
      return;
    case "gap":
      if (!sink) return;
      deadLetterBytesIn += message.value.length;
      sink.offerGap(
        message.key,
        Buffer.from(message.value.buffer, message.value.byteOffset, message.value.length),
      );
      return;
    case "close":
      sink?.close();
      return;
  }
};

export {};
