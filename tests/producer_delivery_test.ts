/**
 * Simulator -> producer -> real Kafka: every trade the simulator sent (its ground-truth log)
 * arrives on the raw topic exactly once, each symbol's trades in send order on one partition,
 * every field exact, in the Confluent wire format with the id the registry holds under
 * `<raw topic>-value`, and the npm client `@kafkajs/confluent-schema-registry` (an independent
 * reader) decodes every record to the same trade.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { subjectOf } from "../shared/wire.ts";
import { readGroundTruth, tradeEntries } from "../simulator/ground_truth.ts";
import { waitFor } from "./helpers.ts";
import {
  asSent,
  kafkaTestOptions,
  rawTrades,
  readTopic,
  withProducer,
} from "./producer_support.ts";

const SYMBOLS = [
  ...Array.from({ length: 30 }, (_, i) => `S${String.fromCharCode(65 + (i % 26))}${i}`),
  "AAPL",
  "MSFT",
  "BRK.B",
  "BINANCE:BTCUSDT",
  "BINANCE:ETHUSDT",
  "COINBASE:SOL-USD",
  "OANDA:EUR_USD",
  "OANDA:USD_JPY",
];

Deno.test({
  name:
    "every trade the simulator sent reaches the raw topic exactly once, in order per symbol, fields exact",
  ...kafkaTestOptions,
  async fn() {
    const started = Date.now();
    await withProducer({
      simulator: { rate: 8_000, maxTrades: 12_000, seed: 20261124, pingIntervalMs: 50 },
      env: { FINNHUB_SYMBOLS: SYMBOLS.join(",") },
    }, async ({ sim, config, running, truthPath }) => {
      await waitFor(
        "the producer subscribed",
        () => sim.stats().connections[0]?.subscriptions === SYMBOLS.length,
      );
      sim.inject({ type: "duplicate", count: 2 });
      await waitFor("generation done", () => sim.stats().generationDone, { timeoutMs: 60_000 });
      await waitFor(
        "the producer to have every frame and every trade acknowledged",
        () => {
          const m = running.producer.metrics;
          return m.framesReceived === sim.stats().framesSent &&
            m.tradesProduced === sim.stats().tradesSent;
        },
        { timeoutMs: 60_000 },
      );
      const report = await running.stop();
      const ended = Date.now();
      await sim.close();

      const sent = tradeEntries(await readGroundTruth(truthPath));
      assert.ok(sent.length > 12_000, "the two duplicated frames were logged as sent twice");
      assert.equal(report.metrics.feedDuplicateFramesSuspected, 2);
      assert.equal(report.metrics.tradesDropped, 0);
      assert.equal(report.metrics.tradesRejected, 0);
      assert.equal(report.metrics.reconnects, 0);
      assert.ok(report.metrics.pings > 0, "pings were handled along the way");

      const records = await readTopic(config, config.kafka.topics.raw, sent.length);
      const confluent = new SchemaRegistry({ host: config.registry.url });
      const id = await confluent.getLatestSchemaId(subjectOf(config.kafka.topics.raw));
      for (const { value } of records) {
        assert.equal(value[0], 0, "Confluent wire format: magic byte 0");
        assert.equal(new DataView(value.buffer, value.byteOffset).getInt32(1), id);
      }
      const trades = rawTrades(records);
      // An independent client, resolving the id with the registry itself, reads the same trades.
      const theirs = [];
      for (const { value } of records) theirs.push(await confluent.decode(Buffer.from(value)));
      assert.deepEqual(
        theirs.map((t) => ({ ...t })),
        trades.map(({ record: _, ...trade }) => ({ ...trade })),
      );
      const partitionOf = new Map<string, number>();
      for (const trade of trades) {
        assert.equal(trade.record.key, trade.s, "keyed by symbol");
        assert.equal(trade.record.timestamp, trade.ingestTime, "record time is the ingest time");
        assert.ok(trade.ingestTime >= started && trade.ingestTime <= ended);
        assert.match(trade.connectionId, /^[0-9a-f]{8}-1$/);
        const partition = partitionOf.get(trade.s) ?? trade.record.partition;
        assert.equal(trade.record.partition, partition, `${trade.s} stays on one partition`);
        partitionOf.set(trade.s, partition);
      }
      assert.deepEqual([...partitionOf.keys()].sort(), [...SYMBOLS].sort(), "every symbol traded");

      // Per symbol, the topic (in offset order) must equal the ground truth (in send order).
      const expected = new Map<string, unknown[]>();
      for (const entry of sent) {
        const symbol = entry.trade.s as string;
        expected.set(symbol, [...(expected.get(symbol) ?? []), {
          trade: entry.trade,
          frameSeq: entry.frame,
          tradeIndex: entry.index,
        }]);
      }
      const actual = new Map<string, unknown[]>();
      for (const trade of trades) {
        actual.set(trade.s, [...(actual.get(trade.s) ?? []), {
          trade: asSent(trade),
          frameSeq: trade.frameSeq,
          tradeIndex: trade.tradeIndex,
        }]);
      }
      for (const symbol of SYMBOLS) {
        assert.deepEqual(actual.get(symbol), expected.get(symbol), symbol);
      }
    });
  },
});
