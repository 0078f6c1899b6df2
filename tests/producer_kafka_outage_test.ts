/**
 * Kafka away, with the real broker: this test's Kafka client reaches the broker through a socket
 * factory that can cut every connection and refuse new ones, so only this producer sees an outage
 * (other work on the shared broker is untouched). The producer must buffer, drop and count when
 * the buffer is full with memory bounded, resume when Kafka is back, and, with the idempotent
 * producer retrying underneath, write no trade twice.
 */
import assert from "node:assert/strict";
import net from "node:net";
import "../shared/kafkajs_produce_retry.ts"; // before kafkajs: its producers must not drop
import "../shared/kafkajs_endtxn_retry.ts"; // before kafkajs: nor give up a commit
import { Kafka, logLevel } from "kafkajs";
import { createProducer } from "../producer/producer.ts";
import { readGroundTruth, tradeEntries } from "../simulator/ground_truth.ts";
import { startSimulator } from "../simulator/server.ts";
import { testLogger, waitFor } from "./helpers.ts";
import {
  deleteTopics,
  kafkaTestOptions,
  producerTestConfig,
  rawTrades,
  readTopic,
} from "./producer_support.ts";

/** A kafkajs socket factory with an off switch. */
function switchableSockets() {
  const open = new Set<net.Socket>();
  let down = false;
  return {
    factory: ({ host, port, onConnect }: { host: string; port: number; onConnect: () => void }) => {
      // While "down", dial a closed port: kafkajs sees ECONNREFUSED, as from a dead broker.
      const socket = down
        ? net.connect({ host: "127.0.0.1", port: 1 }, onConnect)
        : net.connect({ host, port }, onConnect);
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      return socket;
    },
    setDown(value: boolean) {
      down = value;
      if (down) { for (const socket of open) socket.destroy(new Error("simulated Kafka outage")); }
    },
  };
}

Deno.test({
  name:
    "the producer rides out a Kafka outage: buffers, drops and counts when full, resumes, duplicates nothing",
  ...kafkaTestOptions,
  async fn() {
    const dir = await Deno.makeTempDir();
    const truthPath = `${dir}/truth.ndjson`;
    const sim = await startSimulator({ rate: 5_000, groundTruthPath: truthPath });
    const config = await producerTestConfig(sim.url, {
      FINNHUB_SYMBOLS: "AAPL,MSFT,TSLA,BINANCE:BTCUSDT,OANDA:EUR_USD",
      PRODUCER_BUFFER_MAX_TRADES: "10000",
      PRODUCER_BATCH_MAX_TRADES: "1000",
    });
    const sockets = switchableSockets();
    const log = testLogger("producer");
    const kafka = new Kafka({
      clientId: `${config.kafka.clientId}-outage-test`,
      brokers: [...config.kafka.brokers],
      connectionTimeout: 1_000,
      requestTimeout: 5_000,
      retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 1_000 },
      logLevel: logLevel.NOTHING,
      socketFactory: sockets.factory as never,
    });
    const controller = new AbortController();
    const producer = createProducer({
      config,
      kafka,
      log,
      signal: controller.signal,
      statsIntervalMs: 0,
    });
    const running = producer.run();
    running.catch(() => {});
    const metrics = producer.metrics;
    try {
      await waitFor("trades flowing", () => metrics.tradesProduced > 3_000);
      sockets.setDown(true);
      const producedAtOutage = metrics.tradesProduced;
      await waitFor("the buffer full and trades dropped", () => metrics.tradesDropped > 2_000, {
        timeoutMs: 30_000,
      });
      assert.equal(metrics.bufferDepth, 10_000, "memory stays bounded");
      assert.ok(
        metrics.tradesProduced - producedAtOutage <= 1_000,
        "at most a batch in flight got through",
      );
      assert.equal(metrics.connectionState, "open", "the feed is still read during the outage");
      sockets.setDown(false);
      await waitFor("the buffer drained", () => metrics.bufferDepth < 2_000, { timeoutMs: 60_000 });
      const droppedAfterOutage = metrics.tradesDropped;
      await waitFor(
        "trades flowing again",
        () => metrics.tradesProduced > producedAtOutage + 15_000,
        {
          timeoutMs: 60_000,
        },
      );
      sim.inject({ type: "pause" });
      await waitFor(
        "every trade accounted for",
        () =>
          metrics.tradesReceived === sim.stats().tradesSent &&
          metrics.tradesProduced + metrics.tradesDropped === metrics.tradesReceived,
        { timeoutMs: 60_000 },
      );
      controller.abort();
      const report = await running;
      assert.equal(report.unflushed, 0);
      assert.equal(report.metrics.tradesFailed, 0);
      assert.equal(
        report.metrics.tradesDropped,
        droppedAfterOutage,
        "no drops once Kafka was back",
      );
      await sim.close();

      const sent = tradeEntries(await readGroundTruth(truthPath));
      const trades = rawTrades(
        await readTopic(config, config.kafka.topics.raw, report.metrics.tradesProduced),
      );
      const seen = new Set<string>();
      for (const t of trades) {
        const id = `${t.frameSeq}/${t.tradeIndex}`;
        assert.ok(!seen.has(id), `trade ${id} written twice`);
        seen.add(id);
      }
      const missing = sent.filter((e) => !seen.has(`${e.frame}/${e.index}`));
      assert.equal(
        missing.length,
        report.metrics.tradesDropped,
        "exactly the dropped trades are missing",
      );
    } finally {
      sockets.setDown(false);
      controller.abort();
      await running.catch(() => {});
      await sim.close();
      await deleteTopics(config);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
