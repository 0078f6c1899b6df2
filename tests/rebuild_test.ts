/**
 * `deno task rebuild` against real Kafka and Cassandra, with the live stages running: a feed
 * goes onto the raw topic, bronze/silver/gold process it, and every rebuild must leave silver and
 * gold equal to the independent reference (`tests/reference.py`) computed from the same feed:
 * (a) an untouched span changes nothing; (b) a hand-damaged candle and a deleted silver row are
 * restored and reported; (c) with the raw records deleted from Kafka the rebuild reads bronze;
 * (d) a rebuild racing live traffic for the same windows ends exact; (e) a lowered
 * SILVER_MAX_PRICE removes exactly the trades and candles it should: in the windows live gold
 * made final at once, and in a day's 1d windows (still open: left to live gold, reported) by a
 * rerun once a later trade made them final.
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import { Buffer } from "node:buffer";
import type { Kafka, Producer } from "kafkajs";
import { createWireCodec } from "../shared/wire.ts";
import type { Config } from "../shared/config.ts";
import { configEnv } from "../shared/config.ts";
import { hourBucket } from "../shared/buckets.ts";
import {
  GOLD_TABLE,
  goldBucket,
  hasCandle,
  type Interval,
  INTERVAL_MS,
  INTERVALS,
} from "../shared/gold_table.ts";
import { createKafka } from "../shared/kafka.ts";
import { silentLogger } from "../shared/log.ts";
import { STAGES } from "../shared/topology.ts";
import { rebuild, RebuildStopped } from "../rebuild/rebuild.ts";
import type { RebuildOutcome } from "../rebuild/report.ts";
import { formatReport } from "../rebuild/report.ts";
import { parseRebuildArgs, showSpan, wholeWindowSpan } from "../rebuild/span.ts";
import { lowestWatermark } from "../rebuild/store.ts";
import {
  childProcessEnv,
  runCommand,
  session,
  startStage,
  testRegistry,
  testWire,
  waitFor,
  withStages,
} from "./helpers.ts";
import { assertGoldMatches, countRows, eventHours, readGold } from "./pipeline_assertions.ts";
import { computeReference, type Reference } from "./reference.ts";
import { generateFeed, groundTruthNdjson, type SentTrade } from "./trade_feed.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** The symbols of `generateFeed`. */
const FEED_SYMBOLS = ["AAPL", "MSFT", "TSLA", "BINANCE:BTCUSDT", "OANDA:EUR_USD"];
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Produces `feed` as the producer does: keyed by symbol, stamped with its ingest time. */
async function produceStamped(
  producer: Producer,
  topic: string,
  feed: readonly SentTrade[],
): Promise<void> {
  const wire = createWireCodec(testRegistry());
  await wire.register({ Trade: topic });
  for (let i = 0; i < feed.length; i += 500) {
    await producer.send({
      topic,
      acks: -1,
      messages: feed.slice(i, i + 500).map(({ trade }) => ({
        key: Buffer.from(trade.s),
        value: wire.encode("Trade", trade),
        timestamp: String(trade.ingestTime),
      })),
    });
  }
}

/** Runs a rebuild in this process. */
function runRebuild(
  config: Config,
  client: cassandra.Client,
  kafka: Kafka,
  argv: string[],
): Promise<RebuildOutcome> {
  return rebuild({
    config,
    session: client,
    kafka,
    wire: testWire(),
    signal: new AbortController().signal,
    progress: () => {},
    say: () => {},
  }, parseRebuildArgs(argv));
}

function writes(outcome: RebuildOutcome, kind?: string): number {
  let n = 0;
  for (const plan of outcome.gold.values()) {
    n += plan.writes.filter((w) => kind === undefined || w.kind === kind).length;
  }
  return n;
}

/** The reference of `feed` under `rules`. */
async function referenceOf(
  feed: readonly SentTrade[],
  rules: Config["silver"],
): Promise<Reference> {
  const dir = await Deno.makeTempDir({ prefix: "rebuild-" });
  try {
    await Deno.writeTextFile(`${dir}/truth.ndjson`, groundTruthNdjson(feed));
    return await computeReference(`${dir}/truth.ndjson`, rules);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Waits until gold equals the reference over [from, to) and silver holds every valid trade. */
async function settle(
  client: cassandra.Client,
  reference: Reference,
  feed: readonly SentTrade[],
  span: { from: number; to: number },
): Promise<void> {
  const symbols = Object.keys(reference.candles["5m"]);
  await waitFor("silver to hold every valid trade", async () => {
    const counts = await countRows(client, "trades_silver", symbols, eventHours(feed));
    return [...counts.values()].reduce((a, b) => a + b, 0) === reference.valid;
  }, { timeoutMs: 120_000, intervalMs: 1000 });
  await waitFor("gold to equal the reference", async () => {
    await assertGoldMatches(client, reference, span.from, span.to);
    return true;
  }, { timeoutMs: 120_000, intervalMs: 1000 });
}

/** Every gold row of the intervals of an hour or less starting in `span` is final. */
async function assertAllFinal(
  client: cassandra.Client,
  symbols: string[],
  span: { from: number; to: number },
) {
  for (const interval of INTERVALS.filter((i) => INTERVAL_MS[i] <= HOUR)) {
    for (const symbol of symbols) {
      const rows = await client.execute(
        `SELECT is_final, trade_count FROM ${GOLD_TABLE[interval]} WHERE symbol = ? AND bucket = ?
          AND window_start >= ? AND window_start < ?`,
        [
          symbol,
          cassandra.types.LocalDate.fromString(goldBucket(span.from, interval)),
          new Date(span.from),
          new Date(span.to),
        ],
        { prepare: true },
      );
      for (const row of rows.rows) {
        if (hasCandle(row) && row.get("is_final") !== true) return false;
      }
    }
  }
  return true;
}

/**
 * Asserts the stored candles of `intervals` with windows starting in `span` equal the
 * reference's there (windows outside the span, in the same buckets, are not compared).
 */
async function assertSpanMatches(
  client: cassandra.Client,
  reference: Reference,
  span: { from: number; to: number },
  intervals: readonly Interval[],
): Promise<void> {
  const inSpan = (rows: Record<string, Record<string, unknown>>) => {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [symbol, windows] of Object.entries(rows)) {
      for (const [start, candle] of Object.entries(windows)) {
        if (Number(start) >= span.from && Number(start) < span.to) {
          (out[symbol] ??= {})[start] = candle;
        }
      }
    }
    return out;
  };
  for (const interval of intervals) {
    const expected = reference.candles[interval];
    const actual = await readGold(client, interval, Object.keys(expected), span.from, span.to);
    assert.deepEqual(
      inSpan(actual),
      inSpan(expected),
      `${interval} candles of ${showSpan(span)} differ from the reference`,
    );
  }
}

/** Whether every 1d candle of `symbols` of the day starting at `day` is stored final. */
async function dayFinal(client: cassandra.Client, symbols: string[], day: number) {
  for (const symbol of symbols) {
    const row = (await client.execute(
      `SELECT is_final FROM ${GOLD_TABLE["1d"]} WHERE symbol = ? AND bucket = ?
        AND window_start = ?`,
      [symbol, cassandra.types.LocalDate.fromString(goldBucket(day, "1d")), new Date(day)],
      { prepare: true },
    )).first();
    if (row?.get("is_final") !== true) return false;
  }
  return true;
}

/**
 * A valid trade of `symbol` at `t`, received at `ingestTime` (default now): it moves gold's
 * watermark past what is before it.
 */
function clockTrade(symbol: string, t: number, seq: number, ingestTime = Date.now()): SentTrade {
  return {
    seq,
    trade: {
      s: symbol,
      p: 100,
      t,
      v: 1,
      c: null,
      ingestTime,
      connectionId: "clock",
      frameSeq: 1,
      tradeIndex: 0,
    },
  };
}

/** Damages one final 5m candle of `symbol` in the span by hand: high and volume. */
async function damageCandle(
  client: cassandra.Client,
  symbol: string,
  span: { from: number; to: number },
): Promise<number> {
  const bucket = cassandra.types.LocalDate.fromString(goldBucket(span.from, "5m"));
  const row = (await client.execute(
    `SELECT window_start, high FROM trades_gold_5m WHERE symbol = ? AND bucket = ?
      AND window_start >= ? AND window_start < ? LIMIT 1`,
    [symbol, bucket, new Date(span.from), new Date(span.to)],
    { prepare: true },
  )).first();
  assert.ok(row, `a ${symbol} candle in the span`);
  await client.execute(
    `UPDATE trades_gold_5m SET high = ?, volume = ? WHERE symbol = ? AND bucket = ?
      AND window_start = ?`,
    [
      row.get("high") + 1,
      cassandra.types.BigDecimal.fromString("12345.5"),
      symbol,
      bucket,
      row.get("window_start"),
    ],
    { prepare: true },
  );
  return (row.get("window_start") as Date).getTime();
}

/** Deletes one silver row of `symbol` in the span by hand. */
async function deleteSilverRow(
  client: cassandra.Client,
  symbol: string,
  span: { from: number; to: number },
): Promise<void> {
  const row = (await client.execute(
    `SELECT bucket, event_time, raw_partition, raw_offset FROM trades_silver
      WHERE symbol = ? AND bucket = ? LIMIT 1`,
    [symbol, new Date(hourBucket(span.from))],
    { prepare: true },
  )).first();
  assert.ok(row, `a ${symbol} silver row in the span`);
  await client.execute(
    `DELETE FROM trades_silver WHERE symbol = ? AND bucket = ? AND event_time = ?
      AND raw_partition = ? AND raw_offset = ?`,
    [
      symbol,
      row.get("bucket"),
      row.get("event_time"),
      row.get("raw_partition"),
      row.get("raw_offset"),
    ],
    { prepare: true },
  );
}

Deno.test({
  name:
    "rebuild: an untouched span changes nothing, damage is restored from Kafka and from bronze, a lowered price bound removes exactly its trades",
  ...opts,
  fn: () =>
    withStages({ GOLD_ALLOWED_LATENESS_MS: "2000" }, STAGES, async (config) => {
      // Event times inside one hour of the UTC day before yesterday. A trade of every symbol
      // later that day moves every watermark past the hour (its 1m/5m/1h windows final) but
      // not past the day: its 1d windows stay open until a trade of today (part e).
      const day = Math.floor(Date.now() / DAY) * DAY - 2 * DAY;
      const hour = day + 10 * HOUR;
      let stamp = hour;
      // Received a second after their event time (Kafka timestamps say so), as live traffic is.
      const feed = generateFeed({
        seed: 11,
        count: 2000,
        start: hour + 5 * 60_000,
        stepMs: 500,
        ingestTime: Date.now(),
      }).map((f) => {
        // Nondecreasing, as the producer stamps frames (invalid times keep the last stamp).
        if (f.trade.t >= hour && f.trade.t < hour + HOUR) stamp = Math.max(stamp, f.trade.t + 1000);
        return { ...f, trade: { ...f.trade, ingestTime: stamp } };
      });
      const feedHour = { from: hour, to: hour + HOUR };
      // Whole windows of the largest interval, 1d: 10:10-10:20 rebuilds the whole UTC day.
      const span = wholeWindowSpan(hour + 10 * 60_000, hour + 20 * 60_000);
      assert.deepEqual(span, { from: day, to: day + DAY });
      assert.ok(feed.every((f) => f.trade.t < feedHour.to || f.trade.t > Date.now()));
      // At 11:30 that day, received a second later (inside the rebuild's scan).
      const later = hour + 90 * 60_000;
      const all = [
        ...feed,
        ...FEED_SYMBOLS.map((s, i) => clockTrade(s, later, feed.length + i, later + 1000)),
      ];
      const reference = await referenceOf(all, config.silver);
      const kafka = createKafka(config.kafka, silentLogger());
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      const client = session(config);
      try {
        await producer.connect();
        await produceStamped(producer, config.kafka.topics.raw, all);
        await settle(client, reference, all, span);
        const symbols = Object.keys(reference.candles["5m"]);
        await waitFor(
          "every candle of the span final",
          () => assertAllFinal(client, symbols, feedHour),
        );
        const from = new Date(hour + 10 * 60_000).toISOString();
        const to = String(hour + 20 * 60_000);

        // (a) Untouched: nothing changes, through the command line.
        const cli = await runCommand(
          new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", "rebuild/main.ts", "--from", from, "--to", to],
            env: { ...childProcessEnv(), ...configEnv(config) },
            clearEnv: true,
            stdin: "null",
          }),
        );
        assert.equal(cli.code, 0, cli.stderr);
        assert.match(cli.stdout, /^source: kafka topic .*; [1-9]\d+ records read$/m, cli.stdout);
        assert.match(cli.stdout, /^nothing changed$/m, cli.stdout);
        assert.match(cli.stderr, /^rebuild: read \d+\/\d+ \(100%\) records, \d+\/s$/m, cli.stderr);
        assert.match(cli.stdout, /silver: 0 added, 0 removed, 0 changed, \d+ unchanged/);

        // Ctrl-C while it reads: it stops in order, having written nothing.
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "rebuild/main.ts", "--from", from, "--to", to],
          env: { ...childProcessEnv(), ...configEnv(config) },
          clearEnv: true,
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        // Signalled once it says it is scanning (joining a consumer group takes seconds).
        let stderr = "";
        const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
        while (!stderr.includes("scanning ingest times")) {
          const { value, done } = await reader.read();
          if (done) break;
          stderr += value;
        }
        child.kill("SIGINT");
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          stderr += value;
        }
        assert.equal((await child.status).code, 130, stderr);
        assert.match(stderr, /rebuild stopped before writing anything/);

        // (b) A damaged candle and a deleted silver row, restored from Kafka.
        const damaged = await damageCandle(client, "MSFT", feedHour);
        await deleteSilverRow(client, "TSLA", feedHour);
        // Stopped (Ctrl-C) before its writes: nothing written, the damage still there.
        const stopped = new AbortController();
        stopped.abort();
        await assert.rejects(
          rebuild({
            config,
            session: client,
            kafka,
            wire: testWire(),
            signal: stopped.signal,
            progress: () => {},
            say: () => {},
          }, parseRebuildArgs(["--from", from, "--to", to])),
          RebuildStopped,
        );
        // More trades in the span than --max-trades: it stops, writing nothing.
        await assert.rejects(
          runRebuild(config, client, kafka, ["--from", from, "--to", to, "--max-trades", "10"]),
          /the span holds more than 10 trades \(--max-trades.*nothing was written/,
        );
        const repair = await runRebuild(config, client, kafka, ["--from", from, "--to", to]);
        assert.match(repair.source, /^kafka topic /);
        assert.equal(repair.silver.added.length, 1, formatReport(repair, true).join("\n"));
        assert.equal(repair.silver.added[0]!.symbol, "TSLA");
        assert.equal(repair.silver.removed.length + repair.silver.changed.length, 0);
        assert.equal(writes(repair), 1, formatReport(repair, true).join("\n"));
        const amended = repair.gold.get("5m")!.writes[0]!;
        assert.equal(amended.kind, "amend");
        assert.equal(amended.window.symbol, "MSFT");
        assert.equal(amended.window.start, damaged);
        assert.match(
          formatReport(repair, true).join("\n"),
          /amend MSFT .*high .* -> .*volume 12345\.5 -> /,
        );
        await settle(client, reference, all, span);
        const again = await runRebuild(config, client, kafka, ["--from", from, "--to", to]);
        assert.ok(formatReport(again, false).includes("nothing changed"));

        // (c) The raw records gone from Kafka: the rebuild reads bronze.
        const admin = kafka.admin();
        await admin.connect();
        try {
          const offsets = await admin.fetchTopicOffsets(config.kafka.topics.raw);
          await admin.deleteTopicRecords({
            topic: config.kafka.topics.raw,
            partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })),
          });
        } finally {
          await admin.disconnect();
        }
        await damageCandle(client, "AAPL", feedHour);
        await deleteSilverRow(client, "MSFT", feedHour);
        await assert.rejects(
          runRebuild(config, client, kafka, ["--from", from, "--to", to, "--source", "kafka"]),
          /no longer covers .*: use --source bronze/,
        );
        await assert.rejects(
          runRebuild(config, client, kafka, ["--from", from, "--to", to, "--max-trades", "10"]),
          /the span holds more than 10 trades/,
        );
        const fromBronze = await runRebuild(config, client, kafka, ["--from", from, "--to", to]);
        assert.match(fromBronze.source, /^bronze .*retention/);
        assert.equal(fromBronze.silver.added.length, 1);
        assert.equal(writes(fromBronze, "amend"), 1);
        await settle(client, reference, all, span);

        // (e) A lowered price bound: exactly the trades above it leave silver, and gold follows
        // in the final windows. The day's 1d windows are still open: live gold folds them in
        // memory, with the old bound, and will write them final itself; the rebuild leaves them
        // as they are and says they differ.
        const stricter = { ...config, silver: { ...config.silver, maxPrice: 180 } };
        const strictReference = await referenceOf(all, stricter.silver);
        assert.ok(strictReference.valid < reference.valid, "the bound rejects some trades");
        const strict = await runRebuild(stricter, client, kafka, ["--from", from, "--to", to]);
        const strictReport = formatReport(strict, true).join("\n");
        assert.equal(strict.silver.removed.length, reference.valid - strictReference.valid);
        assert.ok(strict.silver.removed.every((t) => t.price > 180));
        assert.equal(strict.silver.added.length + strict.silver.changed.length, 0);
        assert.ok(writes(strict, "remove") > 0, "candles of symbols priced above the bound go");
        const daily = strict.gold.get("1d")!;
        assert.equal(daily.writes.length, 0, strictReport);
        assert.equal(daily.leftOpen.length, symbols.length, strictReport);
        // The symbols that had trades above the bound: their day candles differ.
        const lowered = new Set(strict.silver.removed.map((t) => t.symbol));
        assert.ok(lowered.size > 0);
        assert.deepEqual(
          new Set(daily.openDiffer.map((w) => w.symbol)),
          lowered,
          strictReport,
        );
        assert.match(
          strictReport,
          /open windows differ from the rebuild \(the last ends .*\): .*run the rebuild again once they are final/,
        );
        await assertSpanMatches(client, strictReference, span, INTERVALS.filter((i) => i !== "1d"));
        await assertSpanMatches(client, reference, span, ["1d"]);
        for (const symbol of ["BINANCE:BTCUSDT", "OANDA:EUR_USD"]) {
          const left = await client.execute(
            `SELECT window_start, trade_count FROM trades_gold_5m WHERE symbol = ? AND bucket = ?
              AND window_start >= ? AND window_start < ?`,
            [
              symbol,
              cassandra.types.LocalDate.fromString(goldBucket(feedHour.from, "5m")),
              new Date(feedHour.from),
              new Date(feedHour.to),
            ],
            { prepare: true },
          );
          // The fold's columns are deleted; a row may stay for the window's feed-gap cells.
          assert.equal(
            left.rows.filter(hasCandle).length,
            0,
            `${symbol}'s candles above the bound are gone`,
          );
        }
        const counts = await countRows(client, "trades_silver", symbols, eventHours(all));
        assert.equal([...counts.values()].reduce((a, b) => a + b, 0), strictReference.valid);

        // A trade of every symbol today moves every watermark past the day: live gold writes
        // the day's 1d candles final, still with the trades above the bound; a rerun now
        // makes them exact, and one more finds nothing to do.
        const today = Date.now() - 1000;
        const todays = FEED_SYMBOLS.map((s, i) => clockTrade(s, today, all.length + i));
        await produceStamped(producer, config.kafka.topics.raw, todays);
        await waitFor("the day's 1d candles final", () => dayFinal(client, symbols, day), {
          timeoutMs: 60_000,
          intervalMs: 500,
        });
        await assertSpanMatches(client, reference, span, ["1d"]);
        const rerun = await runRebuild(stricter, client, kafka, ["--from", from, "--to", to]);
        const rerunReport = formatReport(rerun, true).join("\n");
        assert.equal(rerun.silver.added.length + rerun.silver.removed.length, 0, rerunReport);
        assert.deepEqual(
          new Set(rerun.gold.get("1d")!.writes.map((w) => w.window.symbol)),
          lowered,
          rerunReport,
        );
        for (const plan of rerun.gold.values()) {
          assert.deepEqual([plan.leftOpen, plan.liveAhead], [[], []], rerunReport);
        }
        await assertSpanMatches(client, strictReference, span, INTERVALS);
        const last = await runRebuild(stricter, client, kafka, ["--from", from, "--to", to]);
        assert.ok(formatReport(last, false).includes("nothing changed"));
      } finally {
        await producer.disconnect();
        await client.shutdown();
      }
    }),
});

/** The first final 5m candle of `symbol` starting at or after `from`, once there is one. */
async function finalCandle(
  client: cassandra.Client,
  symbol: string,
  from: number,
): Promise<number> {
  return await waitFor(`a final ${symbol} 5m candle`, async () => {
    const rows = await client.execute(
      `SELECT window_start, is_final FROM trades_gold_5m WHERE symbol = ? AND bucket = ?
        AND window_start >= ?`,
      [symbol, cassandra.types.LocalDate.fromString(goldBucket(from, "5m")), new Date(from)],
      { prepare: true },
    );
    const row = rows.rows.find((r) => r.get("is_final") === true);
    if (row) return (row.get("window_start") as Date).getTime();
    throw new Error(
      `candles: ${
        rows.rows.map((r) => `${r.get("window_start").toISOString()} ${r.get("is_final")}`)
      }`,
    );
  }, { timeoutMs: 60_000, intervalMs: 500 });
}

Deno.test({
  name: "rebuild: rebuilds racing live traffic for the same windows end exact",
  ...opts,
  fn: () =>
    withStages({ GOLD_ALLOWED_LATENESS_MS: "2000" }, STAGES, async (config) => {
      const now = Date.now();
      // About ten minutes of event time ending two minutes ago, sent in eight parts while
      // rebuilds of the whole span run; then a trade of every symbol now ends the span.
      const feed = generateFeed({
        seed: 21,
        count: 3000,
        start: now - 15 * 60_000,
        stepMs: 1200,
        ingestTime: now,
      });
      const clocks = FEED_SYMBOLS.map((s, i) => clockTrade(s, now, feed.length + i));
      const all = [...feed, ...clocks];
      const reference = await referenceOf(all, config.silver);
      const from = String(now - 15 * 60_000);
      const to = String(now + 1);
      const kafka = createKafka(config.kafka, silentLogger());
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      const client = session(config);
      try {
        await producer.connect();
        const parts = 8;
        const size = Math.ceil(feed.length / parts);
        const racing: Promise<RebuildOutcome>[] = [];
        let repairing: Promise<RebuildOutcome> | undefined;
        let damaged = 0;
        for (let k = 0; k < parts; k++) {
          await produceStamped(
            producer,
            config.kafka.topics.raw,
            feed.slice(k * size, (k + 1) * size),
          );
          if (k === 5) {
            damaged = await finalCandle(client, "AAPL", now - 15 * 60_000);
            await damageCandle(client, "AAPL", { from: damaged, to: damaged + 1 });
            repairing = runRebuild(config, client, kafka, ["--from", from, "--to", to]);
          } else if (k >= 1) {
            racing.push(runRebuild(config, client, kafka, ["--from", from, "--to", to]));
          }
        }
        const outcomes = await Promise.all(racing);
        const repaired = await repairing!;
        // The rebuild started after the damage repairs it, unless one racing it did first.
        const repairs = [...outcomes, repaired].flatMap((o) =>
          o.gold.get("5m")!.writes.filter((w) =>
            w.kind === "amend" && w.window.symbol === "AAPL" && w.window.start === damaged
          )
        );
        assert.ok(repairs.length >= 1, formatReport(repaired, true).join("\n"));
        assert.ok(
          [...outcomes, repaired].some((o) => o.gold.get("5m")!.leftOpen.length > 0),
          "some rebuild met windows live gold was still folding",
        );
        await produceStamped(producer, config.kafka.topics.raw, clocks);
        const range = { from: now - 2 * HOUR, to: now + 2 * HOUR };
        await settle(client, reference, all, range);
        const last = await runRebuild(config, client, kafka, ["--from", from, "--to", to]);
        assert.equal(writes(last), 0, formatReport(last, true).join("\n"));
        assert.equal(last.silver.added.length + last.silver.removed.length, 0);
        assert.equal(last.silver.changed.length, 0);
        await assertGoldMatches(client, reference, range.from, range.to);
      } finally {
        await producer.disconnect();
        await client.shutdown();
      }
    }),
});

Deno.test({
  name:
    "rebuild: windows rebuilt ahead of a lagging silver stage are not counted twice when it catches up",
  ...opts,
  fn: () =>
    withStages({ GOLD_ALLOWED_LATENESS_MS: "2000" }, ["bronze", "gold"], async (config) => {
      const now = Date.now();
      const feed = generateFeed({
        seed: 31,
        count: 4000,
        start: now - 15 * 60_000,
        stepMs: 900,
        ingestTime: now,
      });
      // TSLA's trades of the first half are held back: they arrive late, while silver is down.
      const middle = now - 9 * 60_000;
      const held = (f: SentTrade) => f.trade.s === "TSLA" && f.trade.t < middle;
      const clocks = FEED_SYMBOLS.map((s, i) => clockTrade(s, now, feed.length + i));
      const all = [...feed, ...clocks];
      const reference = await referenceOf(all, config.silver);
      const from = String(now - 15 * 60_000);
      const to = String(now + 1);
      const kafka = createKafka(config.kafka, silentLogger());
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      const client = session(config);
      let silver = startStage(config, "silver");
      try {
        await producer.connect();
        await produceStamped(producer, config.kafka.topics.raw, feed.filter((f) => !held(f)));
        // Every live partition's watermark past the held trades' windows: they will be late.
        const heldEnd = Math.max(...feed.filter(held).map((f) => f.trade.t)) + 300_000;
        await waitFor(
          "gold's watermarks past the held windows",
          async () => await lowestWatermark(client, config.cassandra.keyspace, 2000) >= heldEnd,
          { timeoutMs: 60_000, intervalMs: 500 },
        );
        await silver.stop();
        await produceStamped(producer, config.kafka.topics.raw, feed.filter(held));
        const ahead = await runRebuild(config, client, kafka, ["--from", from, "--to", to]);
        const added = ahead.gold.get(INTERVALS[0]!)!.writes.filter((w) =>
          w.kind === "add" && w.window.symbol === "TSLA"
        );
        assert.ok(added.length > 0, formatReport(ahead, true).join("\n"));
        assert.ok(ahead.silver.added.some((t) => t.symbol === "TSLA"));
        silver = startStage(config, "silver");
        await produceStamped(producer, config.kafka.topics.raw, clocks);
        const range = { from: now - 2 * HOUR, to: now + 2 * HOUR };
        await settle(client, reference, all, range);
        const last = await runRebuild(config, client, kafka, ["--from", from, "--to", to]);
        assert.equal(writes(last), 0, formatReport(last, true).join("\n"));
        await assertGoldMatches(client, reference, range.from, range.to);
      } finally {
        await silver.stop();
        await producer.disconnect();
        await client.shutdown();
      }
    }),
});
