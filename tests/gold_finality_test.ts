/**
 * Gold finality across workers and under a memory bound, in process against the real Cassandra
 * with a fake clock: the gold stage is driven batch by batch and tick by tick, as the runner
 * would, and a "restart" is a second stage object over the same keyspace that never saw the
 * first one's memory. (`processor_faults_test.ts` does the same with real processes and
 * `kill -9`.)
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import cassandra from "cassandra-driver";
import type { KafkaMessage, Producer } from "kafkajs";
import type { Config } from "../shared/config.ts";
import { silentLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import type { SilverTrade } from "../shared/types.ts";
import { memoryWire } from "../shared/memory_registry.ts";
import { createGoldStage } from "../processor/gold/gold_stage.ts";
import type { Stage, StageBatch } from "../processor/stage_runner.ts";
import {
  GOLD_TABLE,
  goldBucket,
  type Interval,
  INTERVAL_MS,
  INTERVALS,
} from "../shared/gold_table.ts";
import { withTestKeyspace } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const LATENESS = 10_000;
/** A UTC midnight: the 1m, 5m, 1h and 1d windows of trades just before it all end there. */
const END = Date.UTC(2026, 10, 25);

/** A fake wall clock the stages read. */
function fakeTime(start: number) {
  let t = start;
  return { now: () => t, set: (to: number) => void (t = to) };
}

/** Encodes the silver records the tests hand to gold; nothing asks a registry. */
const wire = await memoryWire();

function goldStage(
  config: Config,
  client: cassandra.Client,
  now: () => number,
  extra: { readonly maxCachedWindows?: number; readonly metrics?: MetricsRegistry } = {},
): Stage {
  return createGoldStage({
    session: client,
    keyspace: config.cassandra.keyspace,
    producer: {} as Producer, // never used: nothing is dead-lettered, no candle topic
    deadLetterTopic: config.kafka.topics.deadLetter,
    wire,
    allowedLatenessMs: LATENESS,
    log: silentLogger(),
    metrics: extra.metrics ?? new MetricsRegistry(),
    now,
    ...(extra.maxCachedWindows ? { maxCachedWindows: extra.maxCachedWindows } : {}),
  });
}

function trade(symbol: string, eventTime: number, rawOffset: number): SilverTrade {
  return {
    symbol,
    price: 100 + (rawOffset % 7),
    eventTime,
    volume: 1 + (rawOffset % 3),
    priceOnly: false,
    conditions: [],
    session: null,
    ingestTime: END,
    rawTopic: "raw",
    rawPartition: 0,
    rawOffset,
  };
}

/** A silver batch of `partition` whose first record is at `firstOffset`. */
function batchOf(
  partition: number,
  trades: readonly SilverTrade[],
  firstOffset = 0,
): StageBatch {
  const messages: KafkaMessage[] = trades.map((t, i) => ({
    key: Buffer.from(t.symbol),
    value: wire.encode("SilverTrade", t),
    timestamp: String(t.eventTime),
    attributes: 0,
    offset: String(firstOffset + i),
    headers: {},
  }));
  return { topic: "silver", partition, messages };
}

interface WindowRow {
  final: boolean;
  count: number;
  late: number;
}

/** The rows of `symbols`' windows of `interval` ending at `end`. */
async function windows(
  client: cassandra.Client,
  symbols: readonly string[],
  interval: Interval,
  end = END,
): Promise<Map<string, WindowRow>> {
  const start = end - INTERVAL_MS[interval];
  const out = new Map<string, WindowRow>();
  for (const symbol of symbols) {
    const row = (await client.execute(
      `SELECT is_final, trade_count, late_count FROM ${GOLD_TABLE[interval]}
        WHERE symbol = ? AND bucket = ? AND window_start = ?`,
      [symbol, cassandra.types.LocalDate.fromString(goldBucket(start, interval)), new Date(start)],
      { prepare: true },
    )).first();
    if (row) {
      out.set(symbol, {
        final: row.get("is_final") === true,
        count: Number(row.get("trade_count")),
        late: Number(row.get("late_count")),
      });
    }
  }
  return out;
}

async function allFinal(client: cassandra.Client, symbols: readonly string[]): Promise<boolean> {
  for (const interval of INTERVALS) {
    const rows = await windows(client, symbols, interval);
    if (rows.size !== symbols.length || [...rows.values()].some((w) => !w.final)) return false;
  }
  return true;
}

/** Index entries and open ends left for `partition` at `end`: none once everything is final. */
async function finalityLeftovers(
  client: cassandra.Client,
  partition: number,
  end = END,
): Promise<{ entries: number; ends: number }> {
  const entries = (await client.execute(
    "SELECT symbol FROM gold_open_windows WHERE silver_partition = ? AND window_end = ?",
    [partition, new Date(end)],
    { prepare: true },
  )).rowLength;
  const row = (await client.execute(
    "SELECT open_window_ends FROM gold_partitions WHERE silver_partition = ?",
    [partition],
    { prepare: true },
  )).first();
  return { entries, ends: (row?.get("open_window_ends") as Date[] | null)?.length ?? 0 };
}

const SYMBOLS = ["AAPL", "MSFT", "TSLA", "BINANCE:BTCUSDT"];

/** A test on a fresh keyspace, with a fake clock at 0.5 s past END. */
function goldTest(
  name: string,
  body: (t: {
    config: Config;
    client: cassandra.Client;
    clock: ReturnType<typeof fakeTime>;
  }) => Promise<void>,
): void {
  Deno.test({
    name,
    ...opts,
    fn: () =>
      withTestKeyspace(
        {},
        (config, client) => body({ config, client, clock: fakeTime(END + 500) }),
      ),
  });
}

goldTest(
  "a worker taking a partition over finalizes the windows its owner left open, on time",
  async ({ config, client, clock }) => {
    const first = goldStage(config, client, clock.now);
    await first.processBatch(batchOf(
      0,
      SYMBOLS.flatMap((s, i) => [3000, 2000, 1000].map((b, k) => trade(s, END - b, i * 3 + k))),
    ));
    assert.ok(!(await allFinal(client, SYMBOLS)), "windows open when the owner dies");
    // The owner dies (no close). 5 s later another worker is assigned the partition, and no
    // trade ever comes again. The watermark (last event END - 1 s, seen at END + 0.5 s) passes
    // END at END + 0.5 s + 1 s + the lateness, as it would have for the first worker.
    const due = END + 500 + 1000 + LATENESS;
    clock.set(END + 5500);
    const second = goldStage(config, client, clock.now);
    second.onRebalance?.([0]);
    await second.tick?.();
    clock.set(due - 1);
    await second.tick?.();
    assert.ok(!(await allFinal(client, SYMBOLS)), "not final before the watermark passes");
    clock.set(due);
    await second.tick?.();
    assert.ok(await allFinal(client, SYMBOLS), "every window final once it passes");
    for (const interval of INTERVALS) {
      for (const [symbol, w] of await windows(client, SYMBOLS, interval)) {
        assert.deepEqual(w, { final: true, count: 3, late: 0 }, `${interval} ${symbol}`);
      }
    }
    assert.deepEqual(await finalityLeftovers(client, 0), { entries: 0, ends: 0 });
  },
);

goldTest(
  "a backlog waiting in Kafka at a takeover is folded in on time, not as late amendments",
  async ({ config, client, clock }) => {
    const first = goldStage(config, client, clock.now);
    await first.processBatch(batchOf(0, SYMBOLS.map((s, i) => trade(s, END - 3000, i))));
    // Down for a minute: counted as idle, the restored watermark is past END. But trades
    // arrived meanwhile (still in Kafka): the new owner's first batch brings them.
    clock.set(END + 60_000);
    const second = goldStage(config, client, clock.now);
    second.onRebalance?.([0]);
    await second.tick?.();
    assert.ok(!(await allFinal(client, SYMBOLS)), "nothing final before the backlog is read");
    clock.set(END + 60_200);
    const backlog = SYMBOLS.map((s, i) => trade(s, END - 900, 100 + i));
    await second.processBatch(batchOf(0, backlog, SYMBOLS.length));
    await second.tick?.();
    for (const [symbol, w] of await windows(client, SYMBOLS, "5m")) {
      assert.deepEqual(w, { final: false, count: 2, late: 0 }, symbol);
    }
    clock.set(END + 60_200 + 900 + LATENESS);
    await second.tick?.();
    for (const [symbol, w] of await windows(client, SYMBOLS, "5m")) {
      assert.deepEqual(w, { final: true, count: 2, late: 0 }, symbol);
    }
  },
);

goldTest(
  "past its memory bound gold drops candles, reads them back, and every one ends exact and final",
  async ({ config, client, clock }) => {
    const symbols = Array.from({ length: 120 }, (_, i) => `S${String(i).padStart(3, "0")}`);
    const metrics = new MetricsRegistry();
    const gold = goldStage(config, client, clock.now, { maxCachedWindows: 40, metrics });
    // Two trades per symbol, in batches of 15 symbols over partitions 0 and 1, the second
    // round after every window was dropped once; the first batch of each round comes twice
    // (a redelivery), and must count once.
    let offset = 0;
    for (const eventTime of [END - 2000, END - 1000]) {
      for (let i = 0; i < symbols.length; i += 15) {
        const partition = (i / 15) % 2;
        const trades = symbols.slice(i, i + 15).map((s) => trade(s, eventTime, offset++));
        const batch = batchOf(partition, trades, offset);
        await gold.processBatch(batch);
        if (i === 0) await gold.processBatch(batch);
      }
    }
    const family = (name: string) => metrics.snapshot().families.find((f) => f.name === name);
    const held = family("pipeline_gold_open_windows")!.series[0]!.value;
    assert.ok(held <= 40, `memory holds at most the bound of 40 candles, not ${held}`);
    const evicted = family("pipeline_gold_windows_evicted_total");
    const dropped = (evicted?.series ?? []).reduce((n, s) => n + s.value, 0);
    assert.ok(dropped > 200, `open windows were dropped from memory (${dropped})`);
    assert.ok(!(await allFinal(client, symbols)));
    clock.set(END + 500 + 1000 + LATENESS);
    await gold.tick?.();
    assert.ok(await allFinal(client, symbols), "every window final, dropped ones included");
    for (const interval of INTERVALS) {
      for (const [symbol, w] of await windows(client, symbols, interval)) {
        assert.deepEqual(w, { final: true, count: 2, late: 0 }, `${interval} ${symbol}`);
      }
    }
    for (const partition of [0, 1]) {
      assert.deepEqual(await finalityLeftovers(client, partition), { entries: 0, ends: 0 });
    }
  },
);
