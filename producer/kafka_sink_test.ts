import protocolErrors from "kafkajs/src/protocol/error.js";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type Message, type PartitionerArgs, Partitioners } from "kafkajs";
import { FakeClock } from "../shared/clock.ts";
import { createLogger } from "../shared/log.ts";
import { BUFFERED_TRADE_VALUE_BYTES } from "./heap_budget.ts";
import {
  cachingPartitioner,
  DEAD_LETTER_MAX_BYTES,
  isFencedError,
  KafkaSink,
  SinkStoppedError,
  transactionalSender,
} from "./kafka_sink.ts";
import { createProducerMetrics } from "./metrics.ts";
import { FakeProducer } from "./test_doubles.ts";
import { SEND_SPACING_MS, TradeBuffer } from "./trade_buffer.ts";

function kafkaError(name: string, retriable: boolean): Error {
  return Object.assign(new Error(`${name} happened`), { name, retriable });
}

async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

function setup(
  options: { maxItems?: number; batchMaxItems?: number; deadLetterMax?: number } = {},
) {
  const clock = new FakeClock();
  const producer = new FakeProducer();
  const lines: string[] = [];
  const metrics = createProducerMetrics(options.maxItems ?? 100);
  const buffer = new TradeBuffer<Message>({
    maxItems: options.maxItems ?? 100,
    batchMaxItems: options.batchMaxItems ?? 10,
    clock,
  });
  const sink = new KafkaSink({
    producer,
    rawTopic: "raw",
    deadLetterTopic: "dlq",
    gapsTopic: "gaps",
    buffer,
    metrics,
    log: createLogger("test", { write: (line) => lines.push(line) }),
    clock,
    deadLetterMaxRecords: options.deadLetterMax ?? 1_000,
  });
  return { clock, producer, lines, metrics, buffer, sink, running: sink.run() };
}

/** Offers trade `n`; its value is the text `t<n>`. */
function offer(sink: KafkaSink, n: number, symbol = "AAPL"): boolean {
  return sink.offerTrade(symbol, 1_700_000_000_000 + n, () => Buffer.from(`t${n}`));
}

Deno.test("KafkaSink sends batches in buffer order with acks=all, uncompressed, never one send per trade", async () => {
  const t = setup({ batchMaxItems: 10 });
  for (let i = 0; i < 25; i++) offer(t.sink, i, i % 2 ? "AAPL" : "MSFT");
  await settle();
  t.clock.tick(20);
  await settle();
  t.sink.close();
  await t.running;
  assert.deepEqual(t.producer.sends.map((s) => s.messages.length), [10, 10, 5]);
  assert.ok(
    t.producer.sends.every((s) => s.acks === -1 && s.compression === 0 && s.topic === "raw"),
  );
  assert.deepEqual(t.producer.delivered("raw"), Array.from({ length: 25 }, (_, i) => `t${i}`));
  const messages = t.producer.sends.flatMap((s) => s.messages);
  assert.equal(messages[0]!.timestamp, "1700000000000", "record time is the ingest time");
  assert.equal(String(messages[0]!.key), "MSFT");
  assert.equal(messages[0]!.key, messages[2]!.key, "one key Buffer per symbol, reused");
  const snap = t.metrics.snapshot();
  assert.equal(snap.tradesProduced, 25);
  assert.equal(snap.batchesProduced, 3);
  assert.equal(snap.bufferDepth, 0);
  assert.equal(snap.produceLatencyMs.count, 3);
});

Deno.test("KafkaSink retries a batch after a retriable error, with backoff, and loses nothing", async () => {
  const t = setup({ batchMaxItems: 5 });
  t.producer.failures.push(kafkaError("KafkaJSConnectionError", true));
  t.producer.failures.push(kafkaError("KafkaJSConnectionError", true));
  for (let i = 0; i < 5; i++) offer(t.sink, i);
  await settle();
  assert.equal(t.producer.sends.length, 0);
  t.clock.tick(200);
  await settle();
  assert.equal(t.producer.sends.length, 0, "second attempt failed too");
  t.clock.tick(400);
  await settle();
  t.sink.close();
  await t.running;
  assert.deepEqual(t.producer.delivered("raw"), ["t0", "t1", "t2", "t3", "t4"]);
  assert.equal(t.metrics.kafkaErrors, 2);
  assert.equal(t.metrics.tradesProduced, 5);
  assert.equal(t.lines.filter((l) => l.includes("retrying the batch")).length, 2);
});

Deno.test("KafkaSink gives up a batch on a non-retriable error, counts it, and carries on", async () => {
  const t = setup({ batchMaxItems: 3 });
  t.producer.failures.push(kafkaError("KafkaJSProtocolError", false));
  for (let i = 0; i < 6; i++) offer(t.sink, i);
  t.sink.close();
  await t.running;
  assert.deepEqual(t.producer.delivered("raw"), ["t3", "t4", "t5"]);
  assert.equal(t.metrics.tradesFailed, 3);
  assert.equal(t.metrics.tradesProduced, 3);
  assert.ok(t.lines.some((l) => l.includes("ERROR") && l.includes("refused a batch for good")));
});

Deno.test("KafkaSink drops and counts every trade past a full buffer, without building it, logging in aggregate", async () => {
  const t = setup({ maxItems: 10, batchMaxItems: 10 });
  t.producer.hang = true;
  for (let i = 0; i < 10; i++) assert.equal(offer(t.sink, i), true);
  await settle();
  let built = 0;
  let refused = 0;
  const offerCounting = (i: number) => {
    if (!t.sink.offerTrade("AAPL", i, () => (built++, Buffer.from(`t${i}`)))) refused++;
  };
  for (let i = 10; i < 1_010; i++) offerCounting(i);
  t.clock.tick(5_000);
  for (let i = 0; i < 500; i++) offerCounting(i);
  assert.equal(refused, 1_500);
  assert.equal(built, 0, "a dropped trade is never encoded");
  assert.equal(t.metrics.tradesDropped, 1_500);
  assert.equal(t.metrics.bufferDepth, 10, "memory stays bounded");
  const dropLines = () => t.lines.filter((l) => l.includes("dropp"));
  assert.equal(dropLines().length, 2, dropLines().join("\n"));
  assert.match(dropLines()[1]!, /dropped=1000 sinceMs=5000 droppedTotal=1001/);
  t.producer.hang = false;
  assert.equal(t.sink.abandon(), 10);
  await t.running;
  assert.equal(dropLines().length, 3);
  assert.match(dropLines()[2]!, /has room again.*droppedThisEpisode=1500/);
});

Deno.test("KafkaSink does not log a new episode for every batch while drops go on", async () => {
  const t = setup({ maxItems: 4, batchMaxItems: 4 });
  t.producer.hang = true;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 8; i++) offer(t.sink, i);
    t.buffer.commit(4);
    t.clock.tick(100);
  }
  assert.equal(t.lines.filter((l) => l.includes("dropp")).length, 1, t.lines.join("\n"));
  t.clock.tick(5_000);
  t.buffer.commit(4);
  offer(t.sink, 1);
  assert.equal(t.lines.filter((l) => l.includes("has room again")).length, 1);
  t.sink.abandon();
  await t.running;
});

Deno.test("KafkaSink sends dead letters separately, at once, and bounds their queue", async () => {
  const t = setup({ deadLetterMax: 2 });
  offer(t.sink, 1);
  t.sink.offerDeadLetter(null, Buffer.from([1]));
  t.sink.offerDeadLetter("AAPL", Buffer.from([2]));
  t.sink.offerDeadLetter(null, Buffer.from([3]));
  await settle();
  // The trade was offered first and went at once; the letters follow in a send of their own.
  assert.deepEqual(t.producer.sends.map((s) => [s.topic, s.messages.length]), [
    ["raw", 1],
    ["dlq", 2],
  ]);
  assert.equal(t.metrics.deadLettersProduced, 2);
  assert.equal(t.metrics.deadLettersDropped, 1);
  t.sink.close();
  await t.running;
  assert.deepEqual(t.producer.sends.map((s) => s.topic), ["raw", "dlq"]);
});

Deno.test("KafkaSink sends feed gaps to the gaps topic through the dead letters' queue and bound, counted apart", async () => {
  const t = setup({ deadLetterMax: 3 });
  t.producer.hang = true;
  t.sink.offerDeadLetter(null, Buffer.from([1]));
  t.sink.offerGap("f:reconnect:1", Buffer.from([2]));
  t.sink.offerGap("f:reconnect:2", Buffer.from([3]));
  t.sink.offerGap("f:reconnect:3", Buffer.from([4])); // the queue holds 3: dropped, counted
  t.sink.offerDeadLetter(null, Buffer.from([5]));
  assert.equal(t.metrics.feedGapsDropped, 1);
  assert.equal(t.metrics.deadLettersDropped, 1);
  t.producer.hang = false;
  t.sink.abandon(); // the hung send of the first letter is given up; what waits is counted
  await t.running;
  assert.equal(t.metrics.feedGapsDropped, 3);
  assert.equal(t.metrics.deadLettersDropped, 2);
});

Deno.test("KafkaSink sends each letter to its own topic, in order, gaps keyed by id", async () => {
  const t = setup();
  t.sink.offerGap("f:watchdog:7", Buffer.from("g1"));
  t.sink.offerDeadLetter(null, Buffer.from("d1"));
  t.sink.offerGap("f:watchdog:9", Buffer.from("g2"));
  t.sink.close();
  await t.running;
  assert.deepEqual(t.producer.sends.map((s) => [s.topic, s.messages.length]), [
    ["gaps", 1],
    ["dlq", 1],
    ["gaps", 1],
  ]);
  assert.deepEqual(t.producer.delivered("gaps"), ["g1", "g2"]);
  assert.equal(String(t.producer.sends[0]!.messages[0]!.key), "f:watchdog:7");
  assert.equal(t.metrics.feedGapsPublished, 2);
  assert.equal(t.metrics.deadLettersProduced, 1);
});

Deno.test("KafkaSink bounds its dead-letter queue in bytes, so oversized frames cannot pile up", async () => {
  const t = setup();
  t.producer.hang = true;
  // A refused oversized frame makes a letter of up to 512 KiB: 1,000 of them would be 512 MiB.
  for (let i = 0; i < 100; i++) t.sink.offerDeadLetter(null, Buffer.alloc(512 * 1024));
  await settle();
  const fits = DEAD_LETTER_MAX_BYTES / (512 * 1024);
  assert.equal(t.metrics.deadLettersDropped, 100 - fits);
  assert.equal(t.sink.deadLetterBytes, fits * 512 * 1024);
  assert.ok(t.lines.some((l) => l.includes("dead-letter queue full")));
  assert.equal(t.sink.abandon(), 0);
  await t.running;
  assert.equal(t.sink.deadLetterBytes, 0);
});

Deno.test("KafkaSink lets one dead letter in when none waits, whatever its size", async () => {
  const t = setup();
  t.sink.offerDeadLetter(null, Buffer.alloc(DEAD_LETTER_MAX_BYTES + 1));
  await settle();
  assert.deepEqual(t.producer.sends.map((s) => s.topic), ["dlq"]);
  assert.equal(t.metrics.deadLettersDropped, 0);
  assert.equal(t.sink.deadLetterBytes, 0, "sent letters no longer count");
  t.sink.close();
  await t.running;
});

Deno.test("KafkaSink bounds the encoded bytes of the trades it buffers, dropping and counting past it", async () => {
  const t = setup({ maxItems: 100, batchMaxItems: 10 });
  t.producer.hang = true;
  const bound = 100 * BUFFERED_TRADE_VALUE_BYTES;
  const large = () => Buffer.alloc(1_000);
  let accepted = 0;
  for (let i = 0; i < 100; i++) if (t.sink.offerTrade("AAPL", i, large)) accepted++;
  assert.equal(accepted, Math.ceil(bound / 1_000), "the trade that crosses the bound is the last");
  assert.equal(t.sink.bufferedBytes, accepted * 1_000);
  assert.equal(t.metrics.tradesDropped, 100 - accepted);
  t.sink.abandon();
  await t.running;
  assert.equal(t.sink.bufferedBytes, 0);
});

Deno.test("KafkaSink counts bytes out as batches are acknowledged", async () => {
  const t = setup({ batchMaxItems: 5 });
  for (let i = 0; i < 12; i++) offer(t.sink, i);
  assert.equal(t.sink.bufferedBytes, "t0".length * 10 + "t10".length * 2);
  await settle();
  t.clock.tick(2 * SEND_SPACING_MS); // the last two trades are a partial batch
  await settle();
  assert.equal(t.metrics.tradesProduced, 12);
  assert.equal(t.sink.bufferedBytes, 0);
  t.sink.close();
  await t.running;
});

Deno.test("KafkaSink.abandon() ends run() while a send hangs, counting what was not confirmed", async () => {
  const t = setup({ batchMaxItems: 4 });
  t.producer.hang = true;
  for (let i = 0; i < 6; i++) offer(t.sink, i);
  await settle();
  t.sink.close();
  assert.equal(t.sink.abandon(), 6);
  await t.running;
  assert.equal(t.metrics.tradesFailed, 6);
  assert.equal(t.metrics.tradesProduced, 0);
});

Deno.test("cachingPartitioner() gives the wrapped partitioner's partition, hashing each key object once", () => {
  let calls = 0;
  const inner = () => (args: PartitionerArgs) => {
    calls++;
    return args.message.key === null ? 0 : args.message.key!.length % args.partitionMetadata.length;
  };
  const partition = cachingPartitioner(inner)();
  const metadata = (n: number) =>
    Array.from(
      { length: n },
      (_, i) => ({ partitionId: i, leader: 1 }),
    ) as PartitionerArgs["partitionMetadata"];
  const key = Buffer.from("AAPL");
  const args = (message: Message, n = 6, topic = "raw") => ({
    topic,
    partitionMetadata: metadata(n),
    message,
  });
  assert.equal(partition(args({ key, value: null })), 4);
  assert.equal(partition(args({ key, value: null })), 4);
  assert.equal(calls, 1);
  assert.equal(
    partition(args({ key, value: null }, 3)),
    1,
    "a new partition count is hashed again",
  );
  assert.equal(partition(args({ key, value: null }, 3, "other")), 1);
  assert.equal(calls, 3);
  assert.equal(partition(args({ key: "AAPL", value: null })), 4, "string keys are not cached");
  assert.equal(
    partition(args({ key, value: null, partition: 5 })),
    5,
    "an explicit partition wins",
  );
  assert.equal(calls, 4);
});

Deno.test("cachingPartitioner() agrees with kafkajs's DefaultPartitioner for every key", () => {
  const plain = Partitioners.DefaultPartitioner();
  const cached = cachingPartitioner(Partitioners.DefaultPartitioner)();
  const partitionMetadata = Array.from(
    { length: 6 },
    (_, i) => ({ partitionId: i, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }),
  );
  for (const symbol of ["AAPL", "MSFT", "BINANCE:BTCUSDT", "OANDA:EUR_USD", "BRK.B", "X"]) {
    const key = Buffer.from(symbol);
    for (let i = 0; i < 2; i++) {
      assert.equal(
        cached({ topic: "t", partitionMetadata, message: { key, value: null } }),
        plain({ topic: "t", partitionMetadata, message: { key: symbol, value: null } }),
        symbol,
      );
    }
  }
});

Deno.test("KafkaSink.abandon() ends run() even while it is waiting for trades", async () => {
  const t = setup();
  await settle();
  assert.equal(t.sink.abandon(), 0);
  await t.running;
});

/** A transactional producer double: records each step; `fail` makes the named step throw. */
function fakeTransactional(fail: Partial<Record<"begin" | "send" | "commit" | "abort", Error>>) {
  const steps: string[] = [];
  const step = (name: "begin" | "send" | "commit" | "abort") => {
    steps.push(name);
    const error = fail[name];
    return error ? Promise.reject(error) : Promise.resolve();
  };
  return {
    steps,
    producer: {
      transaction: () =>
        step("begin").then(() => ({
          send: () => step("send"),
          commit: () => step("commit"),
          abort: () => step("abort"),
        })),
    },
  };
}

const { createErrorFromCode } = protocolErrors;
const fencedError = () =>
  Object.assign(new Error("epoch"), { type: "INVALID_PRODUCER_EPOCH", code: 47, retriable: false });
const record = { topic: "raw", messages: [{ value: "v" }] };

Deno.test("isFencedError: a stale epoch, here or in a cause; nothing else", () => {
  assert.equal(isFencedError(fencedError()), true);
  assert.equal(isFencedError({ type: "PRODUCER_FENCED" }), true);
  assert.equal(isFencedError({ code: 90 }), true);
  // PRODUCER_FENCED as kafkajs 2.2.4 builds it from a response: an unknown code.
  assert.equal(isFencedError(createErrorFromCode(90)), true);
  assert.equal(isFencedError(createErrorFromCode(91)), false);
  assert.equal(isFencedError(new Error("retries exceeded", { cause: fencedError() })), true);
  assert.equal(isFencedError(kafkaError("KafkaJSConnectionError", true)), false);
  assert.equal(isFencedError(null), false);
  assert.equal(isFencedError("INVALID_PRODUCER_EPOCH"), false);
});

Deno.test("transactionalSender: one transaction per batch, aborted when it fails", async () => {
  const ok = fakeTransactional({});
  await transactionalSender(ok.producer).send(record);
  assert.deepEqual(ok.steps, ["begin", "send", "commit"]);

  const retriable = kafkaError("KafkaJSConnectionError", true);
  const failed = fakeTransactional({ commit: retriable });
  await assert.rejects(transactionalSender(failed.producer).send(record), (e) => e === retriable);
  assert.deepEqual(failed.steps, ["begin", "send", "commit", "abort"], "aborted, error passed on");
});

Deno.test("transactionalSender: fenced, or a failed abort, stops the sink", async () => {
  for (
    const [name, fail, fenced] of [
      ["fenced at send", { send: fencedError() }, true],
      ["fenced at commit", { commit: fencedError() }, true],
      ["fenced at begin", { begin: fencedError() }, true],
      ["abort failed", { send: kafkaError("X", true), abort: kafkaError("Y", false) }, false],
    ] as const
  ) {
    const t = fakeTransactional(fail);
    const error = await transactionalSender(t.producer).send(record).then(() => null, (e) => e);
    assert.ok(error instanceof SinkStoppedError, name);
    assert.equal(error.fenced, fenced, name);
    assert.ok(!t.steps.includes("abort") || !fenced, `${name}: a fenced producer aborts nothing`);
  }
});

Deno.test("KafkaSink: a stopped send rejects run() instead of dropping the batch and going on", async () => {
  const t = setup();
  t.producer.failures.push(new SinkStoppedError("fenced", { fenced: true }));
  offer(t.sink, 1);
  t.clock.tick(20);
  await assert.rejects(t.running, (e) => e instanceof SinkStoppedError && e.fenced);
  assert.equal(t.metrics.tradesFailed, 0, "not counted as given up: the producer stops");
});
