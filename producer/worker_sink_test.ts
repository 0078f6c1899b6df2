import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Partitioners } from "kafkajs";
import { FakeClock } from "../shared/clock.ts";
import { loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { BUFFERED_TRADE_VALUE_BYTES } from "./heap_budget.ts";
import { DEAD_LETTER_MAX_BYTES, DEAD_LETTER_MAX_RECORDS } from "./kafka_sink.ts";
import { createProducerMetrics } from "./metrics.ts";
import { FakeWorker } from "./test_doubles.ts";
import { partitionFor, type ToWorker, WorkerSink, ZERO_COUNTERS } from "./worker_sink.ts";

async function setup(options: { bufferMax?: number; workers?: number; partitions?: number } = {}) {
  const bufferMax = options.bufferMax ?? 2_000;
  const config = loadConfig({
    PRODUCER_BUFFER_MAX_TRADES: String(bufferMax),
    PRODUCER_BATCH_MAX_TRADES: "1000",
    KAFKA_TOPIC_RAW: "raw",
  });
  const clock = new FakeClock();
  const workers: FakeWorker[] = [];
  const metrics = createProducerMetrics(bufferMax);
  const lines: string[] = [];
  const sink = new WorkerSink({
    config,
    metrics,
    log: createLogger("test", { write: (l) => lines.push(l) }),
    clock,
    workers: options.workers ?? 1,
    worker: () => {
      const worker = new FakeWorker();
      workers.push(worker);
      return worker;
    },
  });
  const started = sink.start();
  for (const worker of workers) {
    assert.equal(worker.received[0]?.type, "start");
    worker.reply({ type: "ready", partitions: options.partitions ?? 6 });
  }
  await started;
  const worker = workers[0]!;
  const offer = (n: number, symbol = "AAPL") =>
    sink.offerTrade(symbol, n, () => Buffer.from(`t${n}`));
  return { config, clock, workers, worker, metrics, lines, sink, offer };
}

Deno.test("partitionFor() agrees with kafkajs's default partitioner", () => {
  const partitioner = Partitioners.DefaultPartitioner();
  for (const symbol of ["AAPL", "MSFT", "BINANCE:BTCUSDT", "OANDA:EUR_USD", "X"]) {
    for (const n of [1, 3, 6, 12]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({
        partitionId: i,
        leader: 1,
        replicas: [1],
        isr: [1],
        partitionErrorCode: 0,
      }));
      assert.equal(
        partitionFor(symbol, n),
        partitioner({ topic: "t", partitionMetadata, message: { key: symbol, value: null } }),
      );
    }
  }
});

Deno.test("WorkerSink starts its workers with the Kafka and producer config, and fails if one cannot connect", async () => {
  const t = await setup({ workers: 2 });
  const start = t.worker.received[0] as Extract<ToWorker, { type: "start" }>;
  assert.equal(start.kafka.topics.raw, "raw");
  assert.equal(start.producer.batchMaxTrades, 1000);
  assert.equal(start.logLevel, "info");
  assert.deepEqual(t.workers.map((w) => (w.received[0] as { index: number }).index), [0, 1]);
  assert.ok(!("finnhub" in start), "no feed settings or secrets cross over");

  const workers: FakeWorker[] = [];
  const sink = new WorkerSink({
    config: t.config,
    metrics: createProducerMetrics(),
    log: createLogger("test", { write: () => {} }),
    workers: 2,
    worker: () => {
      workers.push(new FakeWorker());
      return workers.at(-1)!;
    },
  });
  const started = sink.start();
  workers[0]!.reply({ type: "ready", partitions: 6 });
  workers[1]!.reply({ type: "failed", error: "cannot connect to Kafka: refused", fenced: false });
  await assert.rejects(started, /cannot connect to Kafka/);
  assert.ok(workers.every((w) => w.terminated));
});

Deno.test("WorkerSink hands trades over in packed batches, after a short wait or every 1000 trades", async () => {
  const t = await setup();
  t.offer(1);
  t.offer(2);
  assert.equal(t.worker.trades().length, 0);
  t.clock.tick(2);
  const p = partitionFor("AAPL", 6);
  assert.deepEqual(t.worker.trades(), [`AAPL@1:t1#${p}`, `AAPL@2:t2#${p}`]);
  for (let i = 3; i < 1_003; i++) t.offer(i);
  assert.equal(t.worker.trades().length, 1_002, "a full pack goes at once");
  assert.equal(t.metrics.bufferDepth, 1_002);
});

Deno.test("WorkerSink routes each symbol to the worker that owns its partition, pinning the partition", async () => {
  const t = await setup({ workers: 2, partitions: 6 });
  const symbols = Array.from({ length: 40 }, (_, i) => `SYM${i}`);
  for (const [i, symbol] of symbols.entries()) t.offer(i, symbol);
  t.clock.tick(2);
  const seen = t.workers.map((w) => w.trades());
  assert.ok(seen.every((list) => list.length > 0), "both workers get trades");
  seen.forEach((list, index) => {
    for (const entry of list) {
      const [, symbol, partition] = /^(\w+)@\d+:t\d+#(\d+)$/.exec(entry)!;
      assert.equal(Number(partition), partitionFor(symbol!, 6));
      assert.equal(
        Number(partition) % 2,
        index,
        `${symbol} goes to the worker owning its partition`,
      );
    }
  });
});

Deno.test("WorkerSink bounds what is unacknowledged over all workers, dropping and counting past it", async () => {
  const t = await setup({ bufferMax: 2_000, workers: 2 });
  for (let i = 0; i < 2_500; i++) t.offer(i, `S${i % 10}`);
  assert.equal(t.metrics.tradesDropped, 500);
  assert.equal(t.metrics.bufferDepth, 2_000);
  t.workers[0]!.reply({
    type: "progress",
    counters: {
      ...ZERO_COUNTERS,
      tradesProduced: 1_000,
      batchesProduced: 1,
      lastError: "kafka: oops",
    },
    latencies: [12],
  });
  t.workers[1]!.reply({
    type: "progress",
    counters: { ...ZERO_COUNTERS, tradesProduced: 500, batchesProduced: 1 },
    latencies: [30],
  });
  assert.equal(t.metrics.tradesProduced, 1_500);
  assert.equal(t.metrics.batchesProduced, 2);
  assert.equal(t.metrics.bufferDepth, 500);
  assert.equal(t.metrics.lastError, "kafka: oops");
  assert.equal(t.metrics.snapshot().produceLatencyMs.max, 30);
  assert.equal(t.offer(9), true);
  assert.ok(t.lines.some((l) => l.includes("buffer full")));
});

Deno.test("WorkerSink bounds the encoded bytes of what is unacknowledged too: large trades are dropped and counted before the trade bound", async () => {
  const t = await setup({ bufferMax: 2_000 });
  const large = Buffer.alloc(6_000);
  let accepted = 0;
  for (let i = 0; i < 2_000; i++) if (t.sink.offerTrade("AAPL", i, () => large)) accepted++;
  const bound = 2_000 * BUFFERED_TRADE_VALUE_BYTES;
  assert.equal(accepted, Math.ceil(bound / 6_000), "the trade that crosses the bound is the last");
  assert.equal(t.metrics.tradesDropped, 2_000 - accepted);
  t.clock.tick(2);
  assert.equal(t.worker.trades().length, accepted);
  const packs = t.worker.received.filter((m) => m.type === "trades");
  assert.ok(packs.length > 1, "large trades cross in several packs, not one of 1,000 trades");
  t.worker.reply({
    type: "progress",
    counters: { ...ZERO_COUNTERS, tradesProduced: accepted, tradeBytesDone: accepted * 6_000 },
    latencies: [],
  });
  assert.equal(t.sink.offerTrade("AAPL", 1, () => large), true, "acknowledged bytes free room");
});

Deno.test("WorkerSink bounds the dead letters waiting for its worker, in bytes and in letters, dropping and counting past it", async () => {
  const t = await setup();
  const letters = () => t.worker.received.filter((m) => m.type === "deadLetter").length;
  // A worker that does not keep up: nothing is acknowledged, so letters would queue in it.
  for (let i = 0; i < 100; i++) t.sink.offerDeadLetter(null, Buffer.alloc(512 * 1024));
  const fits = DEAD_LETTER_MAX_BYTES / (512 * 1024);
  assert.equal(letters(), fits);
  assert.equal(t.metrics.deadLettersDropped, 100 - fits);
  assert.equal(t.sink.pending, fits);
  assert.ok(t.lines.some((l) => l.includes("dead-letter queue full")));
  t.worker.reply({
    type: "progress",
    counters: {
      ...ZERO_COUNTERS,
      deadLettersProduced: fits,
      deadLetterBytesDone: fits * 512 * 1024,
    },
    latencies: [],
  });
  assert.equal(t.sink.pending, 0);
  for (let i = 0; i < DEAD_LETTER_MAX_RECORDS + 1; i++) {
    t.sink.offerDeadLetter("AAPL", Buffer.from([i % 256]));
  }
  assert.equal(letters(), fits + DEAD_LETTER_MAX_RECORDS);
  assert.equal(t.metrics.deadLettersDropped, 100 - fits + 1);
});

Deno.test("WorkerSink hands feed gaps to its first worker within the dead letters' bounds, counting them apart", async () => {
  const t = await setup({ workers: 2 });
  for (let i = 0; i < DEAD_LETTER_MAX_RECORDS - 1; i++) {
    t.sink.offerDeadLetter(null, Buffer.from([1]));
  }
  t.sink.offerGap("f:reconnect:5", Buffer.from("gap"));
  t.sink.offerGap("f:reconnect:9", Buffer.from("gap")); // the bound is reached: dropped, counted
  assert.equal(t.metrics.feedGapsDropped, 1);
  assert.equal(t.metrics.deadLettersDropped, 0);
  const gap = t.worker.received.at(-1) as Extract<ToWorker, { type: "gap" }>;
  assert.equal(gap.type, "gap");
  assert.equal(gap.key, "f:reconnect:5");
  assert.deepEqual(t.workers[1]!.received.map((m) => m.type), ["start", "activate"]);
  assert.equal(t.sink.pending, DEAD_LETTER_MAX_RECORDS);
  t.worker.reply({
    type: "progress",
    counters: {
      ...ZERO_COUNTERS,
      deadLettersProduced: DEAD_LETTER_MAX_RECORDS - 1,
      feedGapsPublished: 1,
      deadLetterBytesDone: DEAD_LETTER_MAX_RECORDS - 1 + 3,
    },
    latencies: [],
  });
  assert.equal(t.sink.pending, 0);
  assert.equal(t.metrics.feedGapsPublished, 1);
});

Deno.test("WorkerSink transfers a dead letter's bytes to its worker when the letter owns its buffer, else copies them once", async () => {
  const t = await setup();
  const owning = Buffer.from(new Uint8Array([1, 2, 3]).buffer);
  t.sink.offerDeadLetter(null, owning);
  assert.deepEqual(t.worker.transferred.at(-1), [owning.buffer]);
  const shared = new Uint8Array([9, 9, 4, 5, 6]);
  const view = Buffer.from(shared.buffer, 2, 3);
  t.sink.offerDeadLetter("AAPL", view);
  const sent = t.worker.received.at(-1) as Extract<ToWorker, { type: "deadLetter" }>;
  assert.deepEqual([...sent.value], [4, 5, 6]);
  assert.deepEqual(t.worker.transferred.at(-1), [sent.value.buffer]);
  assert.notEqual(sent.value.buffer, shared.buffer, "a view into a larger buffer is copied");
});

Deno.test("WorkerSink.close() flushes, and run() resolves once every worker reports it closed", async () => {
  const t = await setup({ workers: 2 });
  t.offer(1);
  t.sink.offerDeadLetter("AAPL", Buffer.from([1, 2]));
  const running = t.sink.run();
  t.sink.close();
  assert.equal(t.sink.pending, 2);
  let resolved = false;
  running.then(() => resolved = true);
  t.workers[0]!.reply({
    type: "closed",
    counters: { ...ZERO_COUNTERS, deadLettersProduced: 1 },
    latencies: [],
  });
  await Promise.resolve();
  assert.equal(resolved, false, "one worker is still flushing");
  t.workers[1]!.reply({
    type: "closed",
    counters: { ...ZERO_COUNTERS, tradesProduced: 1 },
    latencies: [],
  });
  await running;
  assert.equal(t.sink.pending, 0);
  assert.equal(t.metrics.deadLettersProduced, 1);
  assert.ok(t.workers.every((w) => w.terminated && w.received.at(-1)?.type === "close"));
});

Deno.test("WorkerSink.abandon() counts what was not acknowledged and stops the workers", async () => {
  const t = await setup({ workers: 2 });
  for (let i = 0; i < 10; i++) t.offer(i);
  const owner = t.workers[partitionFor("AAPL", 6) % 2]!;
  owner.reply({
    type: "progress",
    counters: { ...ZERO_COUNTERS, tradesProduced: 4 },
    latencies: [],
  });
  const running = t.sink.run();
  assert.equal(t.sink.abandon(), 6);
  await running;
  assert.equal(t.metrics.tradesFailed, 6);
  assert.ok(t.workers.every((w) => w.terminated));
});

Deno.test("WorkerSink.run() rejects when a worker dies", async () => {
  const t = await setup({ workers: 2 });
  const running = t.sink.run();
  t.workers[1]!.onerror?.(new ErrorEvent("error", { message: "Uncaught boom" }));
  await assert.rejects(running, /Kafka worker 1 failed: Uncaught boom/);
});
