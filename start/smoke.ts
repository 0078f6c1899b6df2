/**
 * `deno task smoke [-v]`: an end-to-end check of a running pipeline (`deno task start`, or
 * docker compose with `docker compose exec status deno run -A start/smoke.ts --simulator
 * http://simulator:8765`).
 *
 * It pauses the simulator's own generation (so the consumer lag can really reach zero; resumed at
 * the end), sends one frame of known trades with a symbol unique to the run through the
 * simulator (`POST /control/send`) to the producer, and waits, with one deadline, until:
 * - feed: the simulator handed the frame to at least one connected producer;
 * - bronze: all 7 trades, invalid one included, are in `trades_bronze`;
 * - silver: the 6 valid ones are in `trades_silver` (the identical pair as two rows, the `v = 0`
 *   print as `price_only`);
 * - dead letter: the trade with a negative price is on the dead-letter topic (`bad_price`);
 * - gold 1m, 5m, 1h and 1d: the candles hold exactly the OHLCV, counts and price x volume sum that
 *   `smoke_plan.ts` computes on its own;
 * - lag: every stage's consumer group has committed everything (lag 0, read from Kafka);
 * - status: the status endpoint answers `/status` and says ready;
 * - feed gap: before the frame, the smoke test forces a drop of the producer's connection
 *   (`POST /control/fault {"type":"drop"}`) and waits for it to reconnect; the gaps topic must then
 *   hold that `reconnect` gap (`smoke_plan.ts` `forcedGapCheck`). So each smoke run records one
 *   short real gap (the reconnect, typically well under a second) in the feed's history;
 * - gap in gold: the gold worker stored that gap in `feed_gaps` for each of its symbols and
 *   amended the 5m window where it starts (`gap_count` at least 1) for each symbol in trading
 *   hours then.
 * It prints PASS or FAIL per check (`-v`: the rows and candles behind each) and exits 0 when all
 * passed, 1 otherwise.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Consumer } from "kafkajs";
import { createCassandraClient } from "../shared/cassandra.ts";
import { readFeedGaps } from "../shared/feed_gap_table.ts";
import { windowGaps } from "../shared/gap_coverage.ts";
import { GOLD_TABLE, goldBucket, windowEnd, windowStart } from "../shared/gold_table.ts";
import { type Config, loadConfig, secretsOf } from "../shared/config.ts";
import { createKafka, hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { delay } from "../shared/delay.ts";
import { describeError, silentLogger } from "../shared/log.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { redact } from "../shared/secret.ts";
import type { DeadLetter, FeedGap } from "../shared/types.ts";
import {
  type ActualCandle,
  candleDifferences,
  type CheckResult,
  type ExpectedCandle,
  expectedCandles,
  findForcedGap,
  forcedGapCheck,
  formatReport,
  goldBucketOf,
  hourBuckets,
  parseSmokeArgs,
  SMOKE_INTERVALS,
  SMOKE_USAGE,
  type SmokeArgs,
  type SmokePlan,
  smokePlan,
  smokeSymbol,
  type SmokeTrade,
} from "./smoke_plan.ts";
import { displayHost } from "./ports.ts";
import { consumerLag } from "../shared/lag.ts";
import { stageSubscriptions } from "../shared/topology.ts";
import { createWireCodec } from "../shared/wire.ts";

const POLL_MS = 500;
const FETCH_TIMEOUT_MS = 5_000;

async function getJson(url: string, init: RequestInit = {}): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}: ${text.trim()}`);
  return JSON.parse(text);
}

/** A trade's identity for comparing multisets: price, volume, event time. */
function tradeKey(p: number, v: number, t: number): string {
  return `${p}|${v}|${t}`;
}

function multiset(keys: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const k of keys) out.set(k, (out.get(k) ?? 0) + 1);
  return out;
}

/** Differences between two multisets of trade keys, as people read them. */
function multisetDifferences(expected: readonly string[], actual: readonly string[]): string[] {
  const want = multiset(expected);
  const got = multiset(actual);
  const out: string[] = [];
  for (const key of new Set([...want.keys(), ...got.keys()])) {
    const w = want.get(key) ?? 0;
    const g = got.get(key) ?? 0;
    const [p, v, t] = key.split("|");
    if (g < w) out.push(`missing ${w - g} x (p=${p} v=${v} t=${t})`);
    if (g > w) out.push(`${g - w} extra x (p=${p} v=${v} t=${t})`);
  }
  return out;
}

interface Probe {
  readonly name: string;
  /** Evaluates the check now; `pass` ends the waiting for it. */
  run(): Promise<CheckResult>;
}

async function main(argv: string[]): Promise<number> {
  let args: SmokeArgs;
  try {
    args = parseSmokeArgs(argv);
  } catch (error) {
    console.error(`smoke: ${(error as Error).message}\n\n${SMOKE_USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(SMOKE_USAGE);
    return 0;
  }
  hideKafkajsTimeoutWarning();
  let config: Config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (error) {
    console.error(`smoke: cannot start: ${(error as Error).message}`);
    return 2;
  }
  const secrets = secretsOf(config);
  const say = (line: string) => console.log(redact(line, secrets));
  const simulatorUrl = args.simulatorUrl ?? `http://127.0.0.1:${config.simulator.port}`;
  const statusUrl = args.statusUrl ??
    `http://${displayHost(config.status.host)}:${config.status.port}`;
  const headers: Record<string, string> = config.status.token.isSet
    ? { authorization: `Bearer ${config.status.token.reveal()}` }
    : {};
  const started = Date.now();
  const deadline = started + args.timeoutMs;

  // The feed: the simulator must answer and have the producer connected.
  let stats: { connectionsOpen?: number; paused?: boolean };
  try {
    stats = await getJson(`${simulatorUrl}/control/stats`) as typeof stats;
  } catch (error) {
    say(
      formatReport([{
        name: "feed",
        pass: false,
        summary: `the simulator does not answer at ${simulatorUrl}`,
        details: [
          describeError(error),
          "Is the pipeline running with the simulator (deno task start without FINNHUB_API_KEY)?",
          "With docker compose: docker compose exec status deno run -A start/smoke.ts " +
          "--simulator http://simulator:8765",
          "A pipeline reading Finnhub itself cannot be smoke-tested: the test needs to inject trades.",
        ],
      }], true).join("\n"),
    );
    return 1;
  }
  // A producer that just (re)started may still be connecting: give it a few seconds.
  const connectBy = Date.now() + Math.min(15_000, args.timeoutMs);
  while ((stats.connectionsOpen ?? 0) === 0 && Date.now() < connectBy) {
    await delay(POLL_MS);
    stats = await getJson(`${simulatorUrl}/control/stats`).catch(() => stats) as typeof stats;
  }
  if ((stats.connectionsOpen ?? 0) === 0) {
    say(
      formatReport([{
        name: "feed",
        pass: false,
        summary: `no producer is connected to the simulator at ${simulatorUrl}`,
        details: ["Is the producer running (deno task start, or the compose producer service)?"],
      }], true).join("\n"),
    );
    return 1;
  }

  const symbol = smokeSymbol(Date.now());
  const kafka = createKafka(config.kafka, silentLogger(), { clientIdSuffix: "smoke" });
  const admin = kafka.admin();
  const session = createCassandraClient(config.cassandra, {
    applicationName: "market-smoke",
    keyspace: config.cassandra.keyspace,
  });
  const groupId = `${config.kafka.groupPrefix}.smoke-${crypto.randomUUID().slice(0, 8)}`;
  let consumer: Consumer | undefined;
  let paused = false;
  const resume = () =>
    getJson(`${simulatorUrl}/control/fault`, {
      method: "POST",
      body: JSON.stringify({ type: "resume" }),
    });
  // Interrupted: the simulator must not stay paused.
  const onInterrupt = async () => {
    if (paused) await resume().catch(() => {});
    console.error("smoke: interrupted");
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  Deno.addSignalListener("SIGTERM", onInterrupt);
  const results: CheckResult[] = [];
  try {
    await admin.connect();
    // Dead letters from here on: remember where the topic ends before sending.
    const dlStart = await admin.fetchTopicOffsets(config.kafka.topics.deadLetter);
    // Feed gaps from here on too: the forced drop's gap comes after this.
    const gapsTopic = config.kafka.topics.gaps;
    const gapsStart = await admin.fetchTopicOffsets(gapsTopic);
    const deadLetters: DeadLetter[] = [];
    const gaps: FeedGap[] = [];
    const wire = createWireCodec(createSchemaRegistryClient(config.registry));
    consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250 });
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topics.deadLetter, fromBeginning: false });
    await consumer.subscribe({ topic: gapsTopic, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, message }) => {
        if (topic === gapsTopic) {
          if (message.value) {
            try {
              gaps.push(await wire.decodeAsync("FeedGap", message.value));
            } catch {
              // Not a FeedGap: the check below then misses it and says so.
            }
          }
          return;
        }
        if (message.key?.toString() === symbol && message.value) {
          try {
            deadLetters.push(await wire.decodeAsync("DeadLetter", message.value));
          } catch {
            // Not a DeadLetter: the check below then misses it and says so.
          }
        }
      },
    });
    for (const { partition, offset } of dlStart) {
      consumer.seek({ topic: config.kafka.topics.deadLetter, partition, offset });
    }
    for (const { partition, offset } of gapsStart) {
      consumer.seek({ topic: gapsTopic, partition, offset });
    }

    // A forced gap: drop the producer's connection and wait until it is back.
    const dropAt = Date.now();
    await getJson(`${simulatorUrl}/control/fault`, {
      method: "POST",
      body: JSON.stringify({ type: "drop" }),
    });
    const reconnectBy = Date.now() + Math.min(15_000, args.timeoutMs);
    do {
      await delay(50);
      stats = await getJson(`${simulatorUrl}/control/stats`).catch(() => stats) as typeof stats;
    } while ((stats.connectionsOpen ?? 0) === 0 && Date.now() < reconnectBy);

    if (stats.paused !== true) {
      await getJson(`${simulatorUrl}/control/fault`, {
        method: "POST",
        body: JSON.stringify({ type: "pause" }),
      });
      paused = true;
    }
    const plan = smokePlan(symbol, Date.now());
    say(
      `smoke: symbol ${symbol}: ${plan.sent.length} trades (${plan.valid.length} valid: an ` +
        `identical pair and a v=0 print; 1 with a negative price) via ${simulatorUrl}; ` +
        `deadline ${Math.round(args.timeoutMs / 1000)} s`,
    );
    const sentAt = Date.now();
    const sent = await getJson(`${simulatorUrl}/control/send`, {
      method: "POST",
      body: plan.frame,
    }) as { connections?: number };
    const connections = sent.connections ?? 0;
    results.push({
      name: "feed",
      pass: connections > 0,
      summary: connections > 0
        ? `frame of ${plan.sent.length} trades sent to ${connections} connected producer(s)`
        : "the simulator had no connection to send the frame to",
      details: [plan.frame],
    });
    if (connections === 0) return report(results, args.verbose, say);

    const probes = buildProbes(config, session, admin, plan, sentAt, deadline, deadLetters, {
      statusUrl,
      headers,
    });
    probes.push({
      name: "feed gap",
      run: () => Promise.resolve(forcedGapCheck(gaps, dropAt)),
    }, {
      name: "gap in gold",
      run: () => gapInGoldCheck(session, config.cassandra.keyspace, findForcedGap(gaps, dropAt)),
    });
    const outcome = new Map<string, CheckResult>();
    // Data checks first; lag only counts once the data is everywhere (before, it is trivially 0).
    // The forced gap counts with the data: it is published once the producer has reconnected.
    const data = probes.filter((p) => p.name !== "lag" && p.name !== "status");
    const after = probes.filter((p) => p.name === "lag" || p.name === "status");
    for (const group of [data, after]) {
      while (true) {
        for (const probe of group) {
          if (outcome.get(probe.name)?.pass) continue;
          outcome.set(probe.name, await probe.run().catch((error) => failure(probe.name, error)));
        }
        if (group.every((p) => outcome.get(p.name)?.pass) || Date.now() > deadline) break;
        await delay(POLL_MS);
      }
    }
    // Once everything is consumed and committed, read each layer once more: late duplicates show.
    for (const probe of data) {
      if (outcome.get(probe.name)?.pass) {
        outcome.set(probe.name, await probe.run().catch((error) => failure(probe.name, error)));
      }
    }
    for (const probe of probes) results.push(outcome.get(probe.name)!);
    const code = report(results, args.verbose, say);
    say(`smoke: took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return code;
  } finally {
    if (paused) {
      await resume().catch((error) =>
        say(`smoke: could not resume the simulator: ${describeError(error)}`)
      );
      paused = false;
    }
    Deno.removeSignalListener("SIGINT", onInterrupt);
    Deno.removeSignalListener("SIGTERM", onInterrupt);
    await consumer?.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
    await session.shutdown().catch(() => {});
  }
}

/**
 * The "gap in gold" check: the forced gap is in `feed_gaps` for each of its symbols, and the 5m
 * gold window where it starts counts it (`gap_count` >= 1) for each symbol in trading hours then
 * (the row exists whether or not the window has trades).
 */
async function gapInGoldCheck(
  session: cassandra.Client,
  keyspace: string,
  gap: FeedGap | undefined,
): Promise<CheckResult> {
  const name = "gap in gold";
  if (!gap) {
    return { name, pass: false, summary: "no forced gap on the gaps topic yet", details: [] };
  }
  const start = windowStart(gap.fromMs, "5m");
  const details: string[] = [];
  let amended = 0;
  for (const symbol of gap.symbols) {
    const stored = await readFeedGaps(session, keyspace, {
      symbol,
      from: gap.fromMs,
      to: gap.toMs,
      limit: 1000,
    });
    if (!stored.some((g) => g.gapId === gap.gapId)) {
      return {
        name,
        pass: false,
        summary: `gap ${gap.gapId} not in feed_gaps for ${symbol}`,
        details,
      };
    }
    const span = { gapId: gap.gapId, from: gap.fromMs, to: gap.toMs };
    if (windowGaps(symbol, { from: start, to: windowEnd(start, "5m") }, [span]).gapCount === 0) {
      details.push(`${symbol}: outside trading hours, no amendment due`);
      continue;
    }
    const row = (await session.execute(
      `SELECT gap_ms, gap_count FROM ${keyspace}.${GOLD_TABLE["5m"]}
        WHERE symbol = ? AND bucket = ? AND window_start = ?`,
      [symbol, goldBucket(start, "5m"), new Date(start)],
      { prepare: true },
    )).first();
    const count = row?.get("gap_count") ?? 0;
    details.push(`${symbol}: gap_count ${count}, gap_ms ${row?.get("gap_ms") ?? 0}`);
    if (count < 1) {
      return {
        name,
        pass: false,
        summary: `the 5m window of ${symbol} at ${
          new Date(start).toISOString()
        } does not count gap ${gap.gapId}`,
        details,
      };
    }
    amended++;
  }
  return {
    name,
    pass: true,
    summary: `gap ${gap.gapId} stored for ${gap.symbols.length} symbol(s); ${amended} 5m ` +
      `window(s) amended (the others' symbols were outside trading hours)`,
    details,
  };
}

function failure(name: string, error: unknown): CheckResult {
  return { name, pass: false, summary: `error: ${describeError(error)}`, details: [] };
}

function report(results: readonly CheckResult[], verbose: boolean, say: (l: string) => void) {
  for (const line of formatReport(results, verbose)) say(line);
  return results.every((r) => r.pass) ? 0 : 1;
}

function buildProbes(
  config: Config,
  session: cassandra.Client,
  admin: ReturnType<ReturnType<typeof createKafka>["admin"]>,
  plan: SmokePlan,
  sentAt: number,
  deadline: number,
  deadLetters: readonly DeadLetter[],
  status: { statusUrl: string; headers: Record<string, string> },
): Probe[] {
  const ks = config.cassandra.keyspace;
  const { symbol } = plan;
  const times = plan.sent.map((t) => t.t);
  const keyOf = (t: SmokeTrade) => tradeKey(t.p, t.v, t.t);

  async function rows(query: string, buckets: readonly number[]) {
    const out: cassandra.types.Row[] = [];
    for (const bucket of buckets) {
      const result = await session.execute(query, [symbol, new Date(bucket)], { prepare: true });
      out.push(...result.rows);
    }
    return out;
  }

  const bronze: Probe = {
    name: "bronze",
    async run() {
      const found = await rows(
        `SELECT source_partition, source_offset, price, volume, event_time FROM ${ks}.trades_bronze
         WHERE symbol = ? AND bucket = ?`,
        hourBuckets(sentAt - 60_000, Math.max(Date.now(), deadline)),
      );
      const actual = found.map((r) =>
        tradeKey(r.get("price"), r.get("volume"), Number(r.get("event_time")))
      );
      const diff = multisetDifferences(plan.sent.map(keyOf), actual);
      return {
        name: "bronze",
        pass: diff.length === 0,
        summary: `${found.length} of ${plan.sent.length} raw trades stored` +
          (diff.length ? ` (${diff.length} difference(s))` : ", each once"),
        details: [
          ...diff,
          ...found.map((r) =>
            `partition ${r.get("source_partition")} offset ${r.get("source_offset")}: p=${
              r.get("price")
            } v=${r.get("volume")} t=${r.get("event_time")}`
          ),
        ],
      };
    },
  };

  const silver: Probe = {
    name: "silver",
    async run() {
      const found = await rows(
        `SELECT event_time, raw_partition, raw_offset, price, volume, price_only
         FROM ${ks}.trades_silver WHERE symbol = ? AND bucket = ?`,
        hourBuckets(Math.min(...times), Math.max(...times)),
      );
      const actual = found.map((r) =>
        tradeKey(r.get("price"), r.get("volume"), (r.get("event_time") as Date).getTime())
      );
      const diff = multisetDifferences(plan.valid.map(keyOf), actual);
      const priceOnly = found.filter((r) => r.get("price_only") === true).length;
      const wantPriceOnly = plan.valid.filter((t) => t.v === 0).length;
      if (diff.length === 0 && priceOnly !== wantPriceOnly) {
        diff.push(`price_only rows: expected ${wantPriceOnly}, got ${priceOnly}`);
      }
      const positions = new Set(
        found.map((r) => `${r.get("raw_partition")}/${r.get("raw_offset")}`),
      );
      if (diff.length === 0 && positions.size !== found.length) {
        diff.push("two silver rows share one raw source position");
      }
      return {
        name: "silver",
        pass: diff.length === 0,
        summary: `${found.length} of ${plan.valid.length} valid trades stored` +
          (diff.length
            ? ` (${diff.length} difference(s))`
            : `, identical pair as 2 rows, ${priceOnly} price-only`),
        details: [
          ...diff,
          ...found.map((r) =>
            `raw ${r.get("raw_partition")}/${r.get("raw_offset")}: p=${r.get("price")} v=${
              r.get("volume")
            } t=${(r.get("event_time") as Date).getTime()} price_only=${r.get("price_only")}`
          ),
        ],
      };
    },
  };

  const deadLetter: Probe = {
    name: "dead letter",
    run() {
      const letters = [...deadLetters];
      const ok = letters.length === 1 && letters[0]!.reasonCode === "bad_price" &&
        letters[0]!.source === "silver";
      return Promise.resolve({
        name: "dead letter",
        pass: ok,
        summary: ok
          ? `the negative-price trade was rejected by silver: ${letters[0]!.reason}`
          : `expected 1 dead letter (silver, bad_price) for ${symbol}, got ${letters.length}`,
        details: letters.map((l) =>
          `${l.source} ${l.reasonCode}: ${l.reason} (from ${l.sourceTopic}/${l.sourcePartition}/${l.sourceOffset})`
        ),
      });
    },
  };

  function goldProbe(interval: keyof typeof SMOKE_INTERVALS): Probe {
    const expected = expectedCandles(plan.valid, interval);
    const table = `trades_gold_${interval}`;
    const name = `gold ${interval}`;
    return {
      name,
      async run() {
        const details: string[] = [];
        let pass = true;
        for (const want of expected) {
          const result = await session.execute(
            `SELECT window_start, open, high, low, close, volume, pv_sum, trade_count,
               price_only_count FROM ${ks}.${table}
             WHERE symbol = ? AND bucket = ? AND window_start = ?`,
            [symbol, goldBucketOf(want.windowStart, interval), new Date(want.windowStart)],
            { prepare: true },
          );
          const row = result.first();
          details.push(`expected ${describeCandle(want)}`);
          if (!row) {
            pass = false;
            details.push(`no row for window ${new Date(want.windowStart).toISOString()}`);
            continue;
          }
          const actual: ActualCandle = {
            windowStart: (row.get("window_start") as Date).getTime(),
            open: row.get("open"),
            high: row.get("high"),
            low: row.get("low"),
            close: row.get("close"),
            volume: String(row.get("volume")),
            pvSum: String(row.get("pv_sum")),
            tradeCount: Number(row.get("trade_count")),
            priceOnlyCount: Number(row.get("price_only_count")),
          };
          details.push(`actual   ${describeCandle(actual)}`);
          const diff = candleDifferences(want, actual);
          if (diff.length > 0) pass = false;
          details.push(...diff);
        }
        const first = expected[0]!;
        return {
          name,
          pass,
          summary: pass
            ? `O ${first.open} H ${first.high} L ${first.low} C ${first.close} V ${first.volume}, ` +
              `${first.tradeCount} trades (${first.priceOnlyCount} price-only)` +
              (expected.length > 1 ? ` and ${expected.length - 1} more window(s)` : "")
            : `candle${expected.length > 1 ? "s" : ""} not as expected`,
          details,
        };
      },
    };
  }

  const lag: Probe = {
    name: "lag",
    async run() {
      const partitions = await consumerLag(
        admin,
        stageSubscriptions(config),
      );
      const byGroup = new Map<string, number>();
      for (const p of partitions) byGroup.set(p.group, (byGroup.get(p.group) ?? 0) + p.lag);
      const total = [...byGroup.values()].reduce((a, b) => a + b, 0);
      return {
        name: "lag",
        pass: total === 0,
        summary: [...byGroup].map(([group, n]) => `${group} ${n}`).join(", "),
        details: partitions.filter((p) => p.lag > 0).map((p) =>
          `${p.group} ${p.topic}/${p.partition}: end ${p.logEnd}, committed ${p.committed}`
        ),
      };
    },
  };

  const statusProbe: Probe = {
    name: "status",
    async run() {
      const body = await getJson(`${status.statusUrl}/status`, { headers: status.headers }) as {
        ready?: boolean;
        reasons?: string[];
      };
      return {
        name: "status",
        pass: body.ready === true,
        summary: body.ready === true
          ? `${status.statusUrl}/status says ready`
          : `${status.statusUrl}/status says not ready: ${(body.reasons ?? []).join("; ")}`,
        details: [],
      };
    },
  };

  const gold = (Object.keys(SMOKE_INTERVALS) as (keyof typeof SMOKE_INTERVALS)[]).map(goldProbe);
  return [bronze, silver, deadLetter, ...gold, lag, statusProbe];
}

function describeCandle(c: ExpectedCandle | ActualCandle): string {
  return `${new Date(c.windowStart).toISOString()} O=${c.open} H=${c.high} L=${c.low} ` +
    `C=${c.close} V=${c.volume} pv=${c.pvSum} n=${c.tradeCount} price_only=${c.priceOnlyCount}`;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    console.error(`smoke: FAIL: ${describeError(error)}`);
    code = 1;
  }
  Deno.exit(code);
}
