import assert from "node:assert/strict";
import type { Producer } from "kafkajs";
import { silentLogger } from "../../shared/log.ts";
import { memoryWire } from "../../shared/memory_registry.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import type { CandleUpdate, SilverTrade } from "../../shared/types.ts";
import { foldTrade } from "./candle.ts";
import { candleUpdateOf, createCandlePublisher } from "./candle_publisher.ts";

type SendArgs = Parameters<Producer["send"]>[0];

const wire = await memoryWire();

const T0 = Date.parse("2026-11-24T15:00:00Z");

function trade(overrides: Partial<SilverTrade> = {}): SilverTrade {
  return {
    symbol: "AAPL",
    price: 100.5,
    eventTime: T0 + 1000,
    volume: 0.1,
    priceOnly: false,
    conditions: [],
    session: "REGULAR",
    ingestTime: T0 + 1000,
    rawTopic: "raw",
    rawPartition: 0,
    rawOffset: 1,
    ...overrides,
  };
}

function update(symbol: string, close: number, start = T0): CandleUpdate {
  return {
    symbol,
    interval: "5m",
    windowStart: start,
    windowEnd: start + 300_000,
    open: 1,
    high: Math.max(1, close),
    low: 1,
    close,
    volume: "1",
    vwap: "1",
    tradeCount: 1,
    isFinal: false,
    updatedAt: T0,
  };
}

/** A producer whose sends wait until the test releases them. */
function gatedProducer() {
  const sends: { args: SendArgs; release: (error?: Error) => void }[] = [];
  const producer: Pick<Producer, "send"> = {
    send(args) {
      const { promise, resolve, reject } = Promise.withResolvers<[]>();
      sends.push({ args, release: (error) => error ? reject(error) : resolve([]) });
      return promise;
    },
  };
  return { producer, sends };
}

function decoded(args: SendArgs): CandleUpdate[] {
  return args.messages.map((m) => wire.decode("CandleUpdate", m.value as Uint8Array));
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  throw new Error(`never happened: ${what}`);
}

Deno.test("candleUpdateOf() carries exact decimals as text and a null VWAP for zero volume", () => {
  const candle = foldTrade(
    foldTrade(undefined, trade(), "5m"),
    trade({ price: 101, volume: 0.2, rawOffset: 2 }),
    "5m",
  );
  const u = candleUpdateOf(candle, T0 + 5000);
  assert.equal(u.volume, "0.3");
  assert.equal(u.vwap, "100.8333333333");
  assert.equal(u.tradeCount, 2);
  assert.equal(u.windowStart, T0);
  assert.equal(u.updatedAt, T0 + 5000);
  const priceOnly = foldTrade(undefined, trade({ priceOnly: true, volume: 0 }), "1h");
  assert.equal(candleUpdateOf(priceOnly, T0).vwap, null);
  assert.equal(candleUpdateOf(priceOnly, T0).volume, "0");
});

Deno.test("publish() returns at once and sends Avro CandleUpdates keyed by symbol", async () => {
  const { producer, sends } = gatedProducer();
  const metrics = new MetricsRegistry();
  const publisher = createCandlePublisher({
    producer,
    topic: "c",
    wire,
    metrics,
    log: silentLogger(),
  });
  publisher.publish([update("AAPL", 2), update("MSFT", 3)]);
  await until("one send", () => sends.length === 1);
  assert.equal(sends[0]!.args.topic, "c");
  assert.deepEqual(sends[0]!.args.messages.map((m) => String(m.key)), ["AAPL", "MSFT"]);
  assert.deepEqual(decoded(sends[0]!.args).map((u) => u.close), [2, 3]);
  sends[0]!.release();
  await publisher.drain(1000);
  const counter = metrics.counter("pipeline_gold_candle_updates_published_total", "");
  assert.equal(counter.get({ stage: "gold" }), 2);
});

Deno.test("while a send is in flight, later states of one candle are coalesced to the newest", async () => {
  const { producer, sends } = gatedProducer();
  const publisher = createCandlePublisher({
    producer,
    topic: "c",
    wire,
    metrics: new MetricsRegistry(),
    log: silentLogger(),
  });
  publisher.publish([update("AAPL", 1)]);
  await until("first send", () => sends.length === 1);
  publisher.publish([update("AAPL", 2)]);
  publisher.publish([update("AAPL", 3), update("AAPL", 9, T0 + 300_000)]);
  publisher.publish([update("AAPL", 4)]);
  assert.equal(sends.length, 1, "one send in flight at a time");
  sends[0]!.release();
  await until("second send", () => sends.length === 2);
  assert.deepEqual(decoded(sends[1]!.args).map((u) => [u.windowStart - T0, u.close]), [
    [300_000, 9],
    [0, 4],
  ]);
  sends[1]!.release();
  await publisher.drain(1000);
  assert.equal(sends.length, 2);
});

Deno.test("a failed send is counted and dropped, never thrown, and publishing goes on", async () => {
  const { producer, sends } = gatedProducer();
  const metrics = new MetricsRegistry();
  const publisher = createCandlePublisher({
    producer,
    topic: "c",
    wire,
    metrics,
    log: silentLogger(),
  });
  publisher.publish([update("AAPL", 1), update("MSFT", 1)]);
  await until("first send", () => sends.length === 1);
  sends[0]!.release(new Error("broker down"));
  await publisher.drain(1000);
  const failed = metrics.counter("pipeline_gold_candle_updates_failed_total", "");
  assert.equal(failed.get({ stage: "gold", reason: "send" }), 2);
  publisher.publish([update("AAPL", 2)]);
  await until("second send", () => sends.length === 2);
  sends[1]!.release();
  await publisher.drain(1000);
  const published = metrics.counter("pipeline_gold_candle_updates_published_total", "");
  assert.equal(published.get({ stage: "gold" }), 1);
});

Deno.test("past maxPending the oldest waiting candle is dropped and counted", async () => {
  const { producer, sends } = gatedProducer();
  const metrics = new MetricsRegistry();
  const publisher = createCandlePublisher({
    producer,
    topic: "c",
    wire,
    metrics,
    log: silentLogger(),
    maxPending: 2,
  });
  publisher.publish([update("A", 1)]);
  await until("first send", () => sends.length === 1);
  publisher.publish([update("B", 1), update("C", 1), update("D", 1)]);
  const failed = metrics.counter("pipeline_gold_candle_updates_failed_total", "");
  assert.equal(failed.get({ stage: "gold", reason: "overflow" }), 1);
  sends[0]!.release();
  await until("second send", () => sends.length === 2);
  assert.deepEqual(decoded(sends[1]!.args).map((u) => u.symbol), ["C", "D"]);
  sends[1]!.release();
  await publisher.drain(1000);
});

Deno.test("drain() gives up after its timeout while a send hangs", async () => {
  const { producer, sends } = gatedProducer();
  const publisher = createCandlePublisher({
    producer,
    topic: "c",
    wire,
    metrics: new MetricsRegistry(),
    log: silentLogger(),
  });
  publisher.publish([update("AAPL", 1)]);
  const started = performance.now();
  await publisher.drain(30);
  assert.ok(performance.now() - started < 1000);
  sends[0]!.release();
  await publisher.drain(1000);
});
