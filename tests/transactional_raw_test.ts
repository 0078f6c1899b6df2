/**
 * The raw topic as the producer writes it by default (`PRODUCER_LEASE=kafka`): in transactions,
 * each commit leaving a marker that takes an offset, and an aborted transaction's records left in
 * the log. Against real Kafka and Cassandra, the bronze stage stores every committed trade and
 * none of the aborted ones, and its group's committed offsets reach the log end (lag 0): it
 * commits through the markers, not only up to its last message.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Producer } from "kafkajs";
import { hourBucket } from "../shared/buckets.ts";
import { createKafka } from "../shared/kafka.ts";
import { consumerLag } from "../shared/lag.ts";
import { silentLogger } from "../shared/log.ts";
import { groupIdOf } from "../shared/topology.ts";
import { createWireCodec } from "../shared/wire.ts";
import { transactionalConfig, transactionalSender } from "../producer/kafka_sink.ts";
import { session, testRegistry, waitFor, withStages } from "./helpers.ts";
import { countRows } from "./pipeline_assertions.ts";
import { generateFeed, produceFeed } from "./trade_feed.ts";

const SYMBOLS = ["AAPL", "MSFT", "TSLA", "BINANCE:BTCUSDT", "OANDA:EUR_USD"];

Deno.test({
  name:
    "bronze reads a transactional raw topic: committed trades stored, aborted ones not, lag reaches 0",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withStages({}, ["bronze"], async (config) => {
      const ingestTime = Date.now();
      const feed = generateFeed({
        seed: 21,
        count: 2_000,
        start: ingestTime,
        stepMs: 50,
        ingestTime,
      })
        .filter(({ trade }) => SYMBOLS.includes(trade.s));
      const kafka = createKafka(config.kafka, silentLogger());
      const producer = kafka.producer(transactionalConfig(`${config.kafka.groupPrefix}.tx-test`));
      const client = session(config);
      try {
        await producer.connect();
        const sender = transactionalSender(producer);
        // One transaction per send of produceFeed, as the producer's sink does per batch.
        await produceFeed(
          { send: (r) => sender.send(r) } as Producer,
          config.kafka.topics.raw,
          feed,
        );
        // An aborted transaction: its records stay in the log, the stages must never see them.
        const wire = createWireCodec(testRegistry());
        await wire.register({ Trade: config.kafka.topics.raw });
        const aborted = await producer.transaction();
        await aborted.send({
          topic: config.kafka.topics.raw,
          acks: -1,
          messages: feed.slice(0, 50).map(({ trade }) => ({
            key: Buffer.from("ABORTD"),
            value: wire.encode("Trade", { ...trade, s: "ABORTD" }),
          })),
        });
        await aborted.abort();
        await produceFeed({ send: (r) => sender.send(r) } as Producer, config.kafka.topics.raw, [
          { trade: { ...feed[0]!.trade, s: "LAST", frameSeq: 999_999 }, seq: 0 },
        ]);

        const hours = [hourBucket(ingestTime)];
        await waitFor("bronze to hold every committed trade", async () => {
          const counts = await countRows(client, "trades_bronze", [...SYMBOLS, "LAST"], hours);
          return [...counts.values()].reduce((a, b) => a + b, 0) === feed.length + 1;
        }, { timeoutMs: 120_000, intervalMs: 1000 });
        const aborts = await countRows(client, "trades_bronze", ["ABORTD"], hours);
        assert.equal(aborts.get("ABORTD") ?? 0, 0, "no trade of the aborted transaction");

        const admin = kafka.admin();
        await admin.connect();
        try {
          const group = groupIdOf(config, "bronze");
          const lag = await waitFor("bronze's committed offsets at the log end", async () => {
            const lag = await consumerLag(admin, [{ group, topic: config.kafka.topics.raw }]);
            return lag.every((l) => l.logEnd === 0 || l.lag === 0) && lag;
          }, { timeoutMs: 60_000, intervalMs: 1000 });
          assert.ok(lag.some((l) => l.logEnd > 0));
        } finally {
          await admin.disconnect();
        }
      } finally {
        await producer.disconnect().catch(() => {});
        await client.shutdown();
      }
    }),
});
