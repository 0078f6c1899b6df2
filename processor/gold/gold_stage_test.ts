import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type cassandra from "cassandra-driver";
import type { KafkaMessage, Producer } from "kafkajs";
import { silentLogger } from "../../shared/log.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import type { SilverTrade } from "../../shared/types.ts";
import type { WireCodec } from "../../shared/wire.ts";
import type { Stage } from "../stage_runner.ts";
import { createGoldStage } from "./gold_stage.ts";

const T = Date.parse("2026-11-24T15:00:00Z");

/** A silver record of `symbol` (JSON: the fake wire below decodes it). */
function record(symbol: string, offset: number): KafkaMessage {
  const trade: SilverTrade = {
    symbol,
    price: 100 + offset,
    eventTime: T + offset,
    volume: 1,
    priceOnly: false,
    conditions: [],
    session: "REGULAR",
    ingestTime: T + offset,
    rawTopic: "raw",
    rawPartition: 0,
    rawOffset: offset,
  };
  return { value: Buffer.from(JSON.stringify(trade)), offset: String(offset) } as KafkaMessage;
}

/**
 * A Cassandra session that has no rows and notes every statement it runs, in order, as
 * `SELECT <table>` or `WRITE <table> <first parameter>`; `onSelect` runs on every select.
 */
function fakeSession(onSelect: (query: string) => void = () => {}) {
  const log: string[] = [];
  const table = (query: string) => /(?:FROM|INTO|UPDATE)\s+\S+\.(\w+)/.exec(query)?.[1];
  const note = (query: string, params: readonly unknown[]) => {
    if (/^\s*SELECT/i.test(query)) {
      log.push(`SELECT ${table(query)}`);
      onSelect(query);
    } else {
      log.push(`WRITE ${table(query)} ${String(params[0])}`);
    }
  };
  const session = {
    hosts: { length: 1 },
    options: {},
    connect: () => Promise.resolve(),
    execute(query: string, params: readonly unknown[]) {
      note(query, params);
      return Promise.resolve({ first: () => null, rows: [], pageState: null });
    },
    batch(queries: readonly { query: string; params: readonly unknown[] }[]) {
      for (const { query, params } of queries) note(query, params);
      return Promise.resolve();
    },
  } as unknown as cassandra.Client;
  return { session, log };
}

function goldOver(session: cassandra.Client): Stage {
  const wire = {
    resolve: () => Promise.resolve(),
    decode: (_type: string, value: Buffer) => JSON.parse(value.toString()),
  } as unknown as WireCodec;
  return createGoldStage({
    session,
    keyspace: "ks",
    producer: {} as Producer,
    deadLetterTopic: "dead",
    wire,
    log: silentLogger(),
    metrics: new MetricsRegistry(),
    allowedLatenessMs: 2000,
    now: () => T + 1_000,
  });
}

Deno.test("the batches of a fetch round all fold before one flush writes their candles", async () => {
  const { session, log } = fakeSession();
  const gold = goldOver(session);
  // Handed over together, as the runner does with a fetch round.
  await Promise.all(
    ["AAPL", "MSFT", "NVDA"].map((symbol, partition) =>
      gold.processBatch({ topic: "silver", partition, messages: [record(symbol, 1)] })
    ),
  );
  const firstWrite = log.findIndex((line) => line.startsWith("WRITE"));
  const lastRead = log.findLastIndex((line) => line.startsWith("SELECT"));
  assert.ok(firstWrite > lastRead, `a write came before a batch folded:\n${log.join("\n")}`);
  for (const symbol of ["AAPL", "MSFT", "NVDA"]) {
    assert.ok(log.includes(`WRITE trades_gold_1m ${symbol}`), `no 1m row of ${symbol}`);
  }
});

Deno.test("a rebalance noted while a round folds: what was folded is written before memory is forgotten", async () => {
  const built: { gold?: Stage } = {};
  let rebalanced = false;
  const { session, log } = fakeSession((query) => {
    // While partition 0's batch reads its windows: a rebalance keeps both partitions here.
    if (!rebalanced && query.includes("trades_gold")) {
      rebalanced = true;
      built.gold!.onRebalance!([0, 1]);
    }
  });
  const gold = built.gold = goldOver(session);
  await Promise.all([
    gold.processBatch({ topic: "silver", partition: 0, messages: [record("AAPL", 1)] }),
    gold.processBatch({ topic: "silver", partition: 1, messages: [record("MSFT", 1)] }),
  ]);
  assert.ok(rebalanced);
  const written = log.indexOf("WRITE trades_gold_1m AAPL");
  assert.ok(
    written >= 0,
    `partition 0's batch returned with its candles never written:\n${log.join("\n")}`,
  );
  const takeOverRead = log.indexOf("SELECT gold_partitions", log.indexOf("SELECT trades_gold_1m"));
  assert.ok(written < takeOverRead, `written after the takeover forgot it:\n${log.join("\n")}`);
  assert.ok(log.includes("WRITE trades_gold_1m MSFT"));
});
