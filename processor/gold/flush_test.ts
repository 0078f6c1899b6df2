import assert from "node:assert/strict";
import type cassandra from "cassandra-driver";
import type { RowWrite } from "../../shared/cassandra_writer.ts";
import { silentLogger } from "../../shared/log.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import type { SilverTrade } from "../../shared/types.ts";
import { finalize, foldTrade } from "./candle.ts";
import { CandleCache, entryKey } from "./candle_cache.ts";
import { createCandleRows } from "./candle_rows.ts";
import { createFinalityStore, type FinalityStore } from "./finality_store.ts";
import { flush } from "./flush.ts";
import type { GoldContext } from "./gold_context.ts";
import { createGoldMetrics } from "./gold_metrics.ts";
import { PartitionStates } from "./partition_states.ts";

const T = Date.parse("2026-11-24T15:00:00Z");

function trade(symbol: string, rawPartition: number, rawOffset: number): SilverTrade {
  return {
    symbol,
    price: 100,
    eventTime: T + 1_000,
    volume: 1,
    priceOnly: false,
    conditions: [],
    session: "REGULAR",
    ingestTime: T + 1_000,
    rawTopic: "raw",
    rawPartition,
    rawOffset,
  };
}

/** A gold context over no Cassandra: the rows each write would send, one list per write. */
function fakeGold(): { gold: GoldContext; writes: RowWrite<number>[][] } {
  const session = {} as cassandra.Client;
  const store = createFinalityStore({ session, keyspace: "ks" });
  const reads = {
    readPartition: () => Promise.resolve({ clock: undefined, ends: [] }),
  } as unknown as FinalityStore;
  const writes: RowWrite<number>[][] = [];
  const gold: GoldContext = {
    cache: new CandleCache(1000),
    states: new PartitionStates({ store: reads, now: () => T, log: silentLogger() }),
    store,
    rows: createCandleRows({ session, keyspace: "ks", concurrency: 1 }),
    metrics: createGoldMetrics(new MetricsRegistry()),
    allowedLatenessMs: 2000,
    now: () => T + 2_000,
    write: (rows) => {
      writes.push([...rows]);
      return Promise.resolve();
    },
    onCandle: undefined,
    publisher: undefined,
  };
  return { gold, writes };
}

/** The statement kinds of a write's rows, in order, each with its partition key. */
function kinds(rows: readonly RowWrite<number>[]): string[] {
  return rows.map((row) =>
    `${row.query.trim().split(/\s+/).slice(0, 3).join(" ")}|${
      row.partition.replaceAll("\u0000", "/")
    }`
  );
}

Deno.test("flush() writes the candles of every partition in one write, then their index entries in one", async () => {
  const { gold, writes } = fakeGold();
  for (const [partition, symbol] of [[0, "AAPL"], [1, "MSFT"]] as const) {
    const state = await gold.states.getOrRead(partition);
    const candle = foldTrade(undefined, trade(symbol, partition, 7), "1m");
    gold.cache.set(entryKey("1m", symbol, candle.windowStart), {
      candle,
      dirty: true,
      partition,
      index: "none",
    });
    state.clock = { maxEventTime: T + 1_000, lastArrival: T + 1_000 };
  }
  await flush(gold, [0, 1]);
  assert.equal(writes.length, 2, "candle rows, then index entries: no ends to release yet");
  const end = T + 60_000;
  assert.deepEqual(kinds(writes[0]!), [
    `INSERT INTO ks.trades_gold_1m|AAPL/${T}`,
    "UPDATE ks.gold_partitions SET|clock/0",
    "UPDATE ks.gold_partitions SET|ends+/0",
    `INSERT INTO ks.trades_gold_1m|MSFT/${T}`,
    "UPDATE ks.gold_partitions SET|clock/1",
    "UPDATE ks.gold_partitions SET|ends+/1",
  ]);
  assert.deepEqual(kinds(writes[1]!), [
    `INSERT INTO ks.gold_open_windows|0/${end}`,
    `INSERT INTO ks.gold_open_windows|1/${end}`,
  ]);
  for (const partition of [0, 1]) {
    const state = gold.states.get(partition)!;
    assert.deepEqual([...state.ends], [end]);
    assert.equal(state.saved, state.clock);
  }
  for (const [, entry] of gold.cache.entries()) {
    assert.equal(entry.dirty, false);
    assert.equal(entry.index, "written");
  }
});

Deno.test("flush() deletes the index entries of final candles and releases their ends, each step for every partition at once", async () => {
  const { gold, writes } = fakeGold();
  const end = T + 60_000;
  for (const [partition, symbol] of [[0, "AAPL"], [1, "MSFT"]] as const) {
    const state = await gold.states.getOrRead(partition);
    state.heldUntil = undefined;
    // Past the window's end by more than the lateness: the watermark passed it.
    state.clock = { maxEventTime: end + 5_000, lastArrival: T + 2_000 };
    state.saved = state.clock;
    state.ends.add(end);
    const candle = finalize(foldTrade(undefined, trade(symbol, partition, 7), "1m"));
    gold.cache.set(entryKey("1m", symbol, candle.windowStart), {
      candle,
      dirty: true,
      partition,
      index: "written",
    });
  }
  await flush(gold, [0, 1]);
  assert.deepEqual(writes.map(kinds), [
    [`INSERT INTO ks.trades_gold_1m|AAPL/${T}`, `INSERT INTO ks.trades_gold_1m|MSFT/${T}`],
    [`DELETE FROM ks.gold_open_windows|0/${end}`, `DELETE FROM ks.gold_open_windows|1/${end}`],
    ["UPDATE ks.gold_partitions SET|ends-/0", "UPDATE ks.gold_partitions SET|ends-/1"],
  ]);
  assert.equal(gold.cache.size, 0, "final candles leave memory once written");
  for (const partition of [0, 1]) {
    assert.deepEqual([...gold.states.get(partition)!.ends], []);
    assert.deepEqual(gold.states.get(partition)!.deletes, []);
  }
});

Deno.test("flush() that fails leaves every partition's candles to write again", async () => {
  const { gold } = fakeGold();
  const state = await gold.states.getOrRead(0);
  state.clock = { maxEventTime: T + 1_000, lastArrival: T + 1_000 };
  const candle = foldTrade(undefined, trade("AAPL", 0, 7), "1m");
  gold.cache.set(entryKey("1m", "AAPL", candle.windowStart), {
    candle,
    dirty: true,
    partition: 0,
    index: "none",
  });
  const failing: GoldContext = { ...gold, write: () => Promise.reject(new Error("down")) };
  await assert.rejects(flush(failing, [0]), /down/);
  const [, entry] = [...gold.cache.entries()][0]!;
  assert.equal(entry.dirty, true);
  assert.equal(entry.index, "none");
  assert.equal(state.saved, undefined);
  assert.deepEqual([...state.ends], []);
});
