/**
 * Feed gaps reach gold, against real Kafka, Cassandra and the registry with the real gold worker
 * (its fold and its gap consumer, `processor/gold/gap_stage.ts`): silver trades and FeedGap
 * records are written straight to their topics with the project's codec, and every 5m and 1h
 * candle's `gap_ms`, `gap_count` and `coverage` must equal a reference computed here from the
 * same gaps, independently (pieces cut at every gap bound and whole minute, trading hours from
 * Intl's New York time).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import cassandra from "cassandra-driver";
import type { Config } from "../shared/config.ts";
import { readWindowCoverage } from "../shared/feed_gap_table.ts";
import { createKafka } from "../shared/kafka.ts";
import { consumerLag } from "../shared/lag.ts";
import { silentLogger } from "../shared/log.ts";
import {
  GOLD_TABLE,
  goldBucket,
  type Interval,
  INTERVAL_MS,
  INTERVALS,
} from "../shared/gold_table.ts";
import { gapsGroupIdOf } from "../shared/topology.ts";
import type { FeedGap, SilverTrade } from "../shared/types.ts";
import type { WireCodec } from "../shared/wire.ts";
import { createMarketStore } from "../status/market/store.ts";
import { readDeadLetters } from "./pipeline_assertions.ts";
import { expectedCoverage as expectedFor } from "./gap_reference.ts";
import { session, waitFor, withStages, writerWire } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Monday 2026-11-16, 19:00 New York (EST): the last hour of US trading hours. */
const T0 = Date.parse("2026-11-16T19:00:00-05:00");
const STOCK = "AAPL";
const CRYPTO = "BINANCE:BTCUSDT";
const CLEAN = "MSFT";
const SYMBOLS = [STOCK, CRYPTO, CLEAN];

// ---------------------------------------------------------------------------------------------
// The input.

/** Every 2 minutes from 19:00:30 to 21:28:30 New York, for each symbol. */
function tradesOf(symbol: string, firstOffset: number): SilverTrade[] {
  const out: SilverTrade[] = [];
  for (let i = 0; i < 75; i++) {
    const eventTime = T0 + 30_000 + i * 2 * MINUTE;
    out.push({
      symbol,
      price: 100 + (i % 7) * 0.25,
      eventTime,
      volume: 1 + (i % 3),
      priceOnly: false,
      conditions: [],
      session: null,
      ingestTime: eventTime + 5,
      rawTopic: "raw",
      rawPartition: 0,
      rawOffset: firstOffset + i,
    });
  }
  return out;
}

function gap(
  gapId: string,
  fromMs: number,
  toMs: number,
  symbols: readonly string[] = [STOCK, CRYPTO],
): FeedGap {
  return {
    gapId,
    fromMs,
    toMs,
    symbols,
    cause: "reconnect",
    connectionId: "c-test",
    detectedAtMs: toMs + 1,
  };
}

/** Known at the start: overlapping gaps, one across the close, one after it, one without trades. */
const EARLY: readonly FeedGap[] = [
  gap("g1", T0 + 10 * MINUTE, T0 + 12 * MINUTE + 30_000),
  gap("g2", T0 + 11 * MINUTE, T0 + 17 * MINUTE), // overlaps g1, crosses 19:15
  gap("g3", T0 + 55 * MINUTE, T0 + 65 * MINUTE), // across 20:00, the US close
  gap("g4", T0 + 90 * MINUTE, T0 + 100 * MINUTE), // 20:30-20:40: outside US trading hours
  gap("g5", T0 + 3 * HOUR, T0 + 3 * HOUR + 3 * MINUTE, [CRYPTO]), // 22:00: no trades there
];
/** Learned after the candles are final (the producer's own downtime, at its next start). */
const LATE = gap("g6", T0 + 40 * MINUTE + 123, T0 + 41 * MINUTE + 456);

async function send(
  config: Config,
  records: {
    readonly topic: "silver" | "gaps";
    readonly key: string;
    readonly value: Uint8Array;
  }[],
): Promise<void> {
  const producer = createKafka(config.kafka, silentLogger()).producer();
  await producer.connect();
  try {
    for (const topic of ["silver", "gaps"] as const) {
      const messages = records.filter((r) => r.topic === topic).map(({ key, value }) => ({
        key,
        value: Buffer.from(value),
      }));
      if (messages.length > 0) {
        await producer.send({ topic: config.kafka.topics[topic], messages });
      }
    }
  } finally {
    await producer.disconnect();
  }
}

function gapRecords(wire: WireCodec, gaps: readonly FeedGap[]) {
  return gaps.map((g) => ({
    topic: "gaps" as const,
    key: g.gapId,
    value: wire.encode("FeedGap", g),
  }));
}

/** Waits until the gap consumer committed everything on the gaps topic. */
async function gapsDrained(config: Config): Promise<void> {
  const admin = createKafka(config.kafka, silentLogger()).admin();
  await admin.connect();
  try {
    await waitFor("the gap consumer to commit every gap", async () => {
      const lag = await consumerLag(admin, [{
        group: gapsGroupIdOf(config),
        topic: config.kafka.topics.gaps,
      }]);
      return lag.every((p) => p.lag === 0) && lag.some((p) => p.committed > 0);
    }, { timeoutMs: 60_000 });
  } finally {
    await admin.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Reading gold back.

interface GoldRow {
  readonly interval: Interval;
  readonly symbol: string;
  readonly windowStart: number;
  readonly tradeCount: number | null;
  readonly gapMs: number | null;
  readonly gapCount: number | null;
  readonly gapWritten: string;
  /** Every column the fold writes, with its write time. */
  readonly fold: string;
}

const FOLD_COLUMNS = [
  "window_end",
  "open",
  "high",
  "low",
  "close",
  "volume",
  "pv_sum",
  "vwap",
  "trade_count",
  "price_only_count",
  "is_final",
  "late_count",
  "updated_at",
];

async function readGold(client: cassandra.Client): Promise<GoldRow[]> {
  const out: GoldRow[] = [];
  for (const interval of INTERVALS) {
    for (const symbol of SYMBOLS) {
      const result = await client.execute(
        `SELECT window_start, ${FOLD_COLUMNS.join(", ")}, folded_offsets, gap_ms, gap_count,
          WRITETIME(open) AS open_written, WRITETIME(gap_ms) AS gap_written
          FROM ${GOLD_TABLE[interval]} WHERE symbol = ? AND bucket = ?`,
        [symbol, cassandra.types.LocalDate.fromString(goldBucket(T0, interval))],
        { prepare: true },
      );
      for (const row of result.rows) {
        const count = row.get("trade_count");
        out.push({
          interval,
          symbol,
          windowStart: (row.get("window_start") as Date).getTime(),
          tradeCount: count === null ? null : Number(count),
          gapMs: row.get("gap_ms") === null ? null : Number(row.get("gap_ms")),
          gapCount: row.get("gap_count"),
          gapWritten: String(row.get("gap_written")),
          fold: JSON.stringify(
            [...FOLD_COLUMNS, "folded_offsets", "open_written"].map((c) => String(row.get(c))),
          ),
        });
      }
    }
  }
  return out.sort((a, b) =>
    a.interval.localeCompare(b.interval) || a.symbol.localeCompare(b.symbol) ||
    a.windowStart - b.windowStart
  );
}

/** The windows of `interval` that hold trades, per symbol. */
function tradedWindows(interval: Interval): number[] {
  const size = INTERVAL_MS[interval];
  const starts = new Set(tradesOf(STOCK, 0).map((t) => Math.floor(t.eventTime / size) * size));
  return [...starts].sort((a, b) => a - b);
}

/** Checks every gold row of every symbol and interval against the reference. */
async function assertCoverage(
  config: Config,
  client: cassandra.Client,
  gaps: readonly FeedGap[],
): Promise<GoldRow[]> {
  const rows = await readGold(client);
  const store = createMarketStore(client, config.cassandra.keyspace, {
    allowedLatenessMs: config.gold.allowedLatenessMs,
  });
  for (const interval of INTERVALS) {
    const size = INTERVAL_MS[interval];
    for (const symbol of SYMBOLS) {
      const candles = await store.candles({
        symbol,
        interval,
        from: T0,
        to: T0 + 4 * HOUR,
        limit: 1000,
      });
      assert.deepEqual(
        candles.map((c) => c.time),
        tradedWindows(interval),
        `${interval} ${symbol}`,
      );
      for (const candle of candles) {
        const expected = expectedFor(symbol, candle.time, candle.time + size, gaps);
        const where = `${interval} ${symbol} ${new Date(candle.time).toISOString()}`;
        assert.equal(candle.gapCount, expected.gapCount, where);
        assert.ok(Math.abs(candle.coverage! - expected.coverage) < 1e-12, where);
        const row = rows.find((r) =>
          r.interval === interval && r.symbol === symbol && r.windowStart === candle.time
        )!;
        assert.equal(row.gapMs ?? 0, expected.gapMs, where);
        assert.equal(row.gapCount ?? 0, expected.gapCount, where);
      }
      // Rows without a candle: only where a gap touched a window without trades.
      for (const row of rows.filter((r) => r.interval === interval && r.symbol === symbol)) {
        if (row.tradeCount !== null) continue;
        const expected = expectedFor(symbol, row.windowStart, row.windowStart + size, gaps);
        assert.ok(expected.gapCount > 0, `a gap-only row where no gap is: ${row.windowStart}`);
        assert.equal(row.gapMs, expected.gapMs);
        assert.equal(row.gapCount, expected.gapCount);
      }
    }
  }
  return rows;
}

function store5m(config: Config, client: cassandra.Client, symbol: string) {
  return createMarketStore(client, config.cassandra.keyspace, {
    allowedLatenessMs: config.gold.allowedLatenessMs,
  }).candles({
    symbol,
    interval: "5m",
    from: T0,
    to: T0 + 4 * HOUR,
    limit: 1000,
  });
}

Deno.test({
  name:
    "gold carries exact feed-gap coverage on every candle: overlaps, trading hours, crypto, late gaps, replays, a clean feed",
  ...opts,
  async fn() {
    await withStages({ GOLD_ALLOWED_LATENESS_MS: "1000" }, ["gold"], async (config) => {
      const wire = await writerWire(config, ["silver", "gaps", "deadLetter"]);
      const client = session(config);
      try {
        const trades = SYMBOLS.flatMap((s, i) => tradesOf(s, i * 1000));
        await send(config, [
          ...trades.map((t) => ({
            topic: "silver" as const,
            key: t.symbol,
            value: wire.encode("SilverTrade", t),
          })),
          ...gapRecords(wire, EARLY),
          // Not gaps: dead-lettered, and the consumer goes on.
          { topic: "gaps", key: "junk", value: new TextEncoder().encode("not avro") },
          ...gapRecords(wire, [{ ...gap("bad", T0, T0 - 1), cause: "gremlins" as never }]),
        ]);

        // The watermark (last event time minus 1 s of lateness) passes every window but the last
        // of each interval; those stay open (it advances further only with idle wall time).
        const lastEvent = Math.max(...trades.map((t) => t.eventTime));
        const windows = INTERVALS.flatMap((i) =>
          tradedWindows(i).map((start) => ({ final: start + INTERVAL_MS[i] <= lastEvent - 1000 }))
        );
        await waitFor("every candle written, all but the last ones final", async () => {
          const rows = (await readGold(client)).filter((r) => r.tradeCount !== null);
          const final = rows.filter((r) => r.fold.includes('"true"'));
          return rows.length === SYMBOLS.length * windows.length &&
            final.length === SYMBOLS.length * windows.filter((w) => w.final).length;
        }, { timeoutMs: 90_000 });
        await gapsDrained(config);
        const before = await assertCoverage(config, client, EARLY);

        // Spot checks of the arithmetic the reference does.
        const stock1h = before.find((r) =>
          r.interval === "1h" && r.symbol === STOCK && r.windowStart === T0
        )!;
        assert.equal(stock1h.gapMs, 7 * MINUTE + 5 * MINUTE); // g1 ∪ g2, and g3 up to 20:00
        assert.equal(stock1h.gapCount, 3);
        assert.equal(
          before.find((r) =>
            r.interval === "1h" && r.symbol === STOCK && r.windowStart === T0 + HOUR
          )!
            .gapCount,
          null,
          "g3 after the close and g4 are no gaps of a US stock",
        );
        const crypto20 = before.find((r) =>
          r.interval === "1h" && r.symbol === CRYPTO && r.windowStart === T0 + HOUR
        )!;
        assert.deepEqual([crypto20.gapMs, crypto20.gapCount], [15 * MINUTE, 2]);
        assert.ok(before.filter((r) => r.symbol === CLEAN).every((r) => r.gapMs === null));
        // (The spot checks look at 5m and 1h; assertCoverage checks every interval exactly.)
        const spot = (r: GoldRow) => r.interval === "5m" || r.interval === "1h";
        const gapOnly = before.filter((r) => r.tradeCount === null && spot(r));
        assert.deepEqual(
          gapOnly.map((r) => [r.interval, r.symbol, r.windowStart - T0, r.gapMs]),
          [["1h", CRYPTO, 3 * HOUR, 3 * MINUTE], ["5m", CRYPTO, 3 * HOUR, 3 * MINUTE]],
        );

        // A gap learned after the candles are final amends them; nothing the fold wrote moves.
        const touched = before.filter((r) =>
          spot(r) && r.tradeCount !== null && r.windowStart < LATE.toMs &&
          r.windowStart + INTERVAL_MS[r.interval] > LATE.fromMs && r.symbol !== CLEAN
        );
        assert.equal(touched.length, 4);
        assert.ok(
          touched.every((r) => r.fold.includes('"true"')),
          "the late gap's candles are final",
        );
        await send(config, gapRecords(wire, [LATE]));
        await waitFor("the late gap amended", async () => {
          const rows = await readGold(client);
          return rows.find((r) =>
            r.interval === "5m" && r.symbol === STOCK && r.windowStart === T0 + 40 * MINUTE
          )?.gapCount === 1;
        });
        await gapsDrained(config);
        const all = [...EARLY, LATE];
        const after = await assertCoverage(config, client, all);
        const foldOf = (rows: GoldRow[]) =>
          rows.filter((r) => r.tradeCount !== null).map((r) =>
            `${r.interval} ${r.symbol} ${r.windowStart} ${r.fold}`
          );
        assert.deepEqual(foldOf(after), foldOf(before));

        // Replayed gaps (all of them, reordered) change nothing at all.
        await send(config, gapRecords(wire, [...all].reverse()));
        await gapsDrained(config);
        const replayed = await assertCoverage(config, client, all);
        assert.deepEqual(replayed, after);

        // A trade arriving in a window that so far held only a gap makes a candle there, and the
        // fold leaves the gap columns as they were.
        const lateTrade = { ...tradesOf(CRYPTO, 1000)[74]!, eventTime: T0 + 3 * HOUR + MINUTE };
        await send(config, [{
          topic: "silver",
          key: CRYPTO,
          value: wire.encode("SilverTrade", { ...lateTrade, rawOffset: 1075 }),
        }]);
        const joined = await waitFor("a candle in the gap-only window", async () => {
          const candles = await store5m(config, client, CRYPTO);
          return candles.find((c) => c.time === T0 + 3 * HOUR);
        });
        assert.equal(joined.trades, 1);
        assert.equal(joined.gapCount, 1);
        assert.equal(joined.coverage, 1 - 3 / 5);

        // Any window's coverage straight from feed_gaps (a served roll-up's): every 15 minutes.
        for (const symbol of SYMBOLS) {
          const quarters = Array.from({ length: 16 }, (_, i) => ({
            from: T0 + i * 15 * MINUTE,
            to: T0 + (i + 1) * 15 * MINUTE,
          }));
          const got = await readWindowCoverage(client, config.cassandra.keyspace, symbol, quarters);
          assert.deepEqual(
            got.map(({ gapMs, gapCount }) => ({ gapMs, gapCount })),
            quarters.map((q) => {
              const { gapMs, gapCount } = expectedFor(symbol, q.from, q.to, all);
              return { gapMs, gapCount };
            }),
          );
        }

        // /api/gaps: the symbol's gaps of the range by start, each once.
        const store = createMarketStore(client, config.cassandra.keyspace, {
          allowedLatenessMs: config.gold.allowedLatenessMs,
        });
        const listed = await store.gaps({
          symbol: STOCK,
          from: T0,
          to: T0 + 4 * HOUR,
          limit: 1000,
        });
        assert.deepEqual(listed.map((g) => g.gapId), ["g1", "g2", "g6", "g3", "g4"]);
        assert.deepEqual(listed[0], {
          gapId: "g1",
          from: EARLY[0]!.fromMs,
          to: EARLY[0]!.toMs,
          cause: "reconnect",
          symbols: [STOCK, CRYPTO],
        });
        assert.deepEqual(
          await store.gaps({ symbol: CLEAN, from: T0, to: T0 + 4 * HOUR, limit: 1000 }),
          [],
        );

        const letters = await readDeadLetters(config, 2);
        assert.deepEqual(letters.map((l) => l.source), ["gold", "gold"]);
        assert.ok(letters.some((l) => l.reasonCode === "invalid_feed_gap"));
        assert.ok(letters.every((l) => l.sourceTopic === config.kafka.topics.gaps));
      } finally {
        await client.shutdown();
      }
    });
  },
});
