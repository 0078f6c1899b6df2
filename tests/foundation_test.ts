/**
 * Foundation, against the real local Kafka and Cassandra: keyed produce/consume, every table's
 * TTL, primary keys that keep identical prints apart, and idempotent topics and schema.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import cassandra from "cassandra-driver";
import { applySchema, createCassandraClient } from "../shared/cassandra.ts";
import { createKafka, ensureTopics, pipelineTopics } from "../shared/kafka.ts";
import { silentLogger } from "../shared/log.ts";
import type { RawTrade } from "../shared/types.ts";
import {
  cleanup,
  provision,
  testConfig,
  testWire,
  waitFor,
  withTestKeyspace,
  writerWire,
} from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "a keyed Avro trade produced to a fresh topic is consumed back with its key, exactly",
  ...opts,
  async fn() {
    const config = testConfig();
    await provision(config);
    const kafka = createKafka(config.kafka, silentLogger());
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = kafka.consumer({ groupId: `${config.kafka.groupPrefix}.probe` });
    try {
      const trade: RawTrade = {
        s: "BINANCE:BTCUSDT",
        p: 7296.89,
        t: 1575526691134,
        v: 0.011467,
        c: null,
        ingestTime: Date.now(),
        connectionId: "test-1",
        frameSeq: 1,
        tradeIndex: 0,
      };
      await producer.connect();
      const wire = await writerWire(config, ["raw"]);
      await producer.send({
        topic: config.kafka.topics.raw,
        acks: -1,
        messages: [{ key: Buffer.from(trade.s), value: wire.encode("Trade", trade) }],
      });
      await consumer.connect();
      await consumer.subscribe({ topic: config.kafka.topics.raw, fromBeginning: true });
      const received: { key: string; value: RawTrade; partition: number }[] = [];
      await consumer.run({
        eachMessage: async ({ message, partition }) => {
          received.push({
            key: message.key!.toString(),
            value: await testWire().decodeAsync("Trade", message.value!),
            partition,
          });
        },
      });
      await waitFor("the trade to come back", () => received.length > 0);
      assert.equal(received.length, 1);
      assert.equal(received[0]!.key, "BINANCE:BTCUSDT");
      assert.deepEqual({ ...received[0]!.value }, trade);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await cleanup(config);
    }
  },
});

const HOUR = new Date(Date.UTC(2026, 10, 24, 14));

Deno.test({
  name: "every table is written and read back, with its TTL",
  ...opts,
  fn: () =>
    withTestKeyspace({}, async (config, client) => {
      const date = cassandra.types.LocalDate.fromString("2026-11-01");
      const candleColumns = `(symbol, bucket, window_start, window_end, open, high, low, close,
        volume, pv_sum, vwap, trade_count, price_only_count, folded_offsets, is_final)
        VALUES (?, ?, ?, ?, 1.5, 2.5, 1.0, 2.0, 10.25, 20.5, 2.0, 3, 0, {0: 7}, false)`;
      const cases: [string, string, unknown[], number][] = [
        [
          "trades_bronze",
          `INSERT INTO trades_bronze (symbol, bucket, source_partition, source_offset, price,
            event_time, volume, conditions_kind) VALUES (?, ?, 0, 1, 1.0, 5, 1.0, 'absent')`,
          ["AAPL", HOUR],
          7 * 86_400,
        ],
        [
          "trades_silver",
          `INSERT INTO trades_silver (symbol, bucket, event_time, raw_partition, raw_offset, price,
            volume, price_only) VALUES (?, ?, ?, 0, 1, 1.0, 1.0, false)`,
          ["AAPL", HOUR, HOUR],
          30 * 86_400,
        ],
        [
          "trades_gold_5m",
          `INSERT INTO trades_gold_5m ${candleColumns}`,
          ["AAPL", date, HOUR, new Date(HOUR.getTime() + 300_000)],
          90 * 86_400,
        ],
        [
          "trades_gold_1h",
          `INSERT INTO trades_gold_1h ${candleColumns}`,
          [
            "AAPL",
            cassandra.types.LocalDate.fromString("2026-01-01"),
            HOUR,
            new Date(HOUR.getTime() + 3_600_000),
          ],
          365 * 86_400,
        ],
        [
          "feed_gaps",
          `INSERT INTO feed_gaps (symbol, bucket, gap_from, gap_id, gap_to, cause, symbols)
            VALUES (?, ?, ?, 'g', ?, 'reconnect', ['AAPL'])`,
          ["AAPL", date, HOUR, new Date(HOUR.getTime() + 1_000)],
          365 * 86_400,
        ],
      ];
      for (const [table, insert, params, ttl] of cases) {
        await client.execute(insert, params, { prepare: true });
        const row = (await client.execute(`SELECT TTL(price_or) FROM ${table}`.replace(
          "price_or",
          table.startsWith("trades_gold") ? "close" : table === "feed_gaps" ? "gap_to" : "price",
        ))).first();
        assert.ok(row, `${table} has its row`);
        const left = Number(row.values()[0]);
        assert.ok(left > ttl - 120 && left <= ttl, `${table} TTL ${left} should be about ${ttl}`);
      }
      await client.execute(
        "INSERT INTO latest_prices (symbol, price, event_time) VALUES ('AAPL', 129.5, ?)",
        [HOUR],
        { prepare: true },
      );
      // Gold's open-windows index has key columns only: its TTL is the table's.
      const index = (await client.execute(
        `SELECT default_time_to_live FROM system_schema.tables
          WHERE keyspace_name = ? AND table_name = 'gold_open_windows'`,
        [config.cassandra.keyspace],
      )).first();
      assert.equal(index.get("default_time_to_live"), 90 * 86_400, "gold_open_windows TTL");
      const latest = (await client.execute(
        "SELECT price, TTL(price) FROM latest_prices WHERE symbol = 'AAPL'",
      )).first();
      assert.equal(latest.get("price"), 129.5);
      assert.equal(latest.values()[1], null, "the latest price does not expire");
    }),
});

Deno.test({
  name: "two trades identical in every Finnhub field are two bronze and two silver rows",
  ...opts,
  fn: () =>
    withTestKeyspace({}, async (_config, client) => {
      // s, p, t, v and c equal; only the source position (offset 40 vs 41) differs.
      for (const offset of [40n, 41n, 41n]) {
        await client.execute(
          `INSERT INTO trades_bronze (symbol, bucket, source_partition, source_offset, price,
            event_time, volume, conditions, conditions_kind)
            VALUES ('TSLA', ?, 2, ?, 122.1, 1672348887196, 10, ['1','8','24','12'], 'list')`,
          [HOUR, offset],
          { prepare: true },
        );
        await client.execute(
          `INSERT INTO trades_silver (symbol, bucket, event_time, raw_partition, raw_offset,
            price, volume, price_only, conditions)
            VALUES ('TSLA', ?, ?, 2, ?, 122.1, 10, false, ['1','8','24','12'])`,
          [HOUR, new Date(1672348887196), offset],
          { prepare: true },
        );
      }
      for (const table of ["trades_bronze", "trades_silver"]) {
        const rows = (await client.execute(
          `SELECT * FROM ${table} WHERE symbol = 'TSLA' AND bucket = ?`,
          [HOUR],
          { prepare: true },
        )).rows;
        assert.equal(rows.length, 2, `${table}: both prints kept, the rewrite of 41 harmless`);
      }
    }),
});

Deno.test({
  name: "topics and schema run twice without error and change nothing the second time",
  ...opts,
  async fn() {
    const config = testConfig({ KAFKA_PARTITIONS: "2" });
    await provision(config);
    const admin = createKafka(config.kafka, silentLogger()).admin();
    const client = createCassandraClient(config.cassandra);
    try {
      await admin.connect();
      const again = await ensureTopics(admin, config.kafka);
      assert.deepEqual(
        again.map((o) => o.action),
        pipelineTopics(config.kafka).map(() => "unchanged"),
      );
      // Every topic follows KAFKA_PARTITIONS but the metrics and feed-coverage topics, which
      // keep 1 partition.
      const single = [config.kafka.topics.metrics, config.kafka.topics.coverage];
      const expected = (n: number) =>
        pipelineTopics(config.kafka).map((t) => single.includes(t) ? 1 : n);
      const more = await ensureTopics(admin, { ...config.kafka, partitions: 4 });
      assert.deepEqual(
        more.map((o) => o.partitions),
        expected(4),
        "metrics and coverage keep 1 partition",
      );
      const fewer = await ensureTopics(admin, { ...config.kafka, partitions: 1 });
      assert.deepEqual(fewer.map((o) => o.partitions), expected(4), "never shrinks a topic");
      await applySchema(client, config.cassandra);
      await applySchema(client, config.cassandra);
      const tables = (await client.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
        [config.cassandra.keyspace],
      )).rows.map((r) => r.get("table_name")).sort();
      assert.deepEqual(tables, [
        "feed_gaps",
        "gold_open_windows",
        "gold_partitions",
        "latest_prices",
        "trades_bronze",
        "trades_gold_1d",
        "trades_gold_1h",
        "trades_gold_1m",
        "trades_gold_5m",
        "trades_silver",
      ]);
    } finally {
      await admin.disconnect();
      await client.shutdown();
      await cleanup(config);
    }
  },
});
