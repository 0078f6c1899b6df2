/**
 * Sustained load, on demand only (`FAULT_SUITE=full`, or `FAULT_LOAD=1`): the real pipeline fed
 * at `FAULT_LOAD_RATE` trades a second for `FAULT_LOAD_MINUTES` minutes (default 10). Lag stays
 * bounded, the memory of every worker stays flat (first minute against last minute), nothing is
 * lost. The default rate, 8000, is the highest rate `bench/pipeline_bench.ts` reported as
 * sustained on the 2-core reference machine; set the rate your machine's benchmark reports.
 * Needs a quiet machine: `FAULT_LOAD=1 deno test -A tests/faults/load_test.ts`.
 */
import assert from "node:assert/strict";
import { delay } from "../../shared/delay.ts";
import { testWire, waitFor } from "../helpers.ts";
import { progress } from "../progress.ts";
import {
  assertLagZero,
  drainFeed,
  FULL,
  lagOf,
  type Pipeline,
  readWhole,
  startPipeline,
  startWorkers,
  testOptions,
  waitForSubscribed,
} from "./harness.ts";
import { countRows, goldTradeCount, readGold, total } from "../pipeline_assertions.ts";
import { STAGES } from "../../shared/topology.ts";

const ENABLED = FULL || Deno.env.get("FAULT_LOAD") === "1";
const RATE = Number(Deno.env.get("FAULT_LOAD_RATE") ?? "8000");
const MINUTES = Number(Deno.env.get("FAULT_LOAD_MINUTES") ?? "10");

Deno.test({
  name:
    `sustained load: ${RATE} trades/s for ${MINUTES} min, lag bounded, memory flat, nothing lost`,
  ignore: !ENABLED,
  ...testOptions,
  async fn() {
    const log = progress("load");
    assert.ok(RATE > 0 && MINUTES > 0, "FAULT_LOAD_RATE and FAULT_LOAD_MINUTES must be positive");
    const p = await startPipeline({
      name: "load",
      log,
      env: { LOG_LEVEL: "warn", KAFKA_PARTITIONS: "6" },
      simulator: { rate: 0, seed: 5 },
    });
    let passed = false;
    try {
      await startWorkers(p);
      await waitForSubscribed(p, { timeoutMs: 90_000 });
      p.sim.setRate(RATE);
      const began = Date.now();
      const end = began + MINUTES * 60_000;
      const lagSamples: { at: number; lag: Record<string, number> }[] = [];
      let lastSent = 0;
      while (Date.now() < end) {
        await p.guarded(delay(10_000));
        const lag = await lagOf(p);
        lagSamples.push({ at: Date.now() - began, lag });
        const sent = p.sim.stats().tradesSent;
        log(
          `+${Math.round((Date.now() - began) / 1000)} s: sent ${sent} (${
            Math.round((sent - lastSent) / 10)
          }/s), lag ${JSON.stringify(lag)}`,
        );
        lastSent = sent;
      }
      const sentDuringLoad = p.sim.stats().tradesSent;
      await drainFeed(p, 600_000);
      await assertLagZero(p, 600_000);
      // Millions of trades: counted per symbol while streaming, not held in memory, and every
      // layer held to the same count (the exact candle comparison is the other scenarios' job).
      const c = await p.guarded(countLayers(p));
      const achieved = Math.round(sentDuringLoad / (MINUTES * 60));
      log(
        `sent ${total(c.sent)} (${achieved}/s), in Kafka ${total(c.kafka)} ` +
          `(${c.distinctInKafka} distinct source identities), silver dead letters ${c.silverLetters}`,
      );
      assert.equal(c.distinctInKafka, total(c.kafka), "no trade twice in Kafka");
      assert.deepEqual(sorted(c.kafka), sorted(c.sent), "every trade sent reached Kafka");
      assert.equal(c.silverLetters, 0, "the simulator's trades are all valid");
      let layers: Layers | undefined;
      const countBegan = Date.now();
      await p.guarded(
        waitFor("every layer to hold every trade", async () => {
          layers = await countTables(p, c);
          const want = sorted(c.kafka);
          return Object.values(layers).every((counts) =>
            JSON.stringify(sorted(counts)) === JSON.stringify(want)
          );
        }, { timeoutMs: 900_000, intervalMs: 5_000 }).catch((error) => {
          throw new Error(`${error}; last counts ${JSON.stringify(layers, mapJson)}`);
        }),
      );
      assert.ok(layers);
      log(
        `every layer holds every trade: bronze ${total(layers.bronze)}, silver ${
          total(layers.silver)
        }, gold 5m trade counts ${total(layers.gold5m)}, gold 1h ${total(layers.gold1h)} ` +
          `(read back in ${((Date.now() - countBegan) / 1000).toFixed(0)} s)`,
      );
      const maxLag = Object.fromEntries(
        STAGES.map((s) => [s, Math.max(...lagSamples.map((x) => x.lag[s] ?? 0))]),
      );
      log(`max lag over the run: ${JSON.stringify(maxLag)}`);
      const lastHalf = lagSamples.slice(Math.floor(lagSamples.length / 2));
      for (const stage of STAGES) {
        // Bounded: the lag of the second half never exceeds a minute of trades.
        const worst = Math.max(...lastHalf.map((x) => x.lag[stage] ?? 0));
        assert.ok(worst <= RATE * 60, `${stage} lag ${worst} in the second half`);
      }
      for (const series of p.rss.values()) {
        const first = series.samples.filter((s) => s.at - began < 60_000 && s.at >= began);
        const last = series.samples.filter((s) => s.at > end - 60_000 && s.at <= end);
        if (first.length === 0 || last.length === 0) continue;
        const mean = (xs: typeof first) => xs.reduce((n, x) => n + x.kib, 0) / xs.length / 1024;
        const perMinute = Array.from(
          { length: MINUTES },
          (_, i) =>
            series.samples.filter((s) =>
              s.at >= began + i * 60_000 && s.at < began + (i + 1) * 60_000
            ),
        ).filter((xs) => xs.length > 0).map((xs) => mean(xs).toFixed(0));
        log(
          `RSS ${series.label}: first minute ${mean(first).toFixed(0)} MiB, last minute ${
            mean(last).toFixed(0)
          } MiB, peak ${
            (Math.max(...series.samples.map((x) => x.kib)) / 1024).toFixed(0)
          } MiB; mean of each minute: ${perMinute.join(" ")}`,
        );
        assert.ok(
          mean(last) <= mean(first) * 1.5 + 64,
          `${series.label} memory grew from ${mean(first).toFixed(0)} to ${
            mean(last).toFixed(0)
          } MiB`,
        );
      }
      passed = true;
    } finally {
      await p.stop(passed);
    }
  },
});

const HOUR_MS = 3_600_000;

interface Counts {
  /** Trades the simulator sent, per symbol (its ground-truth log, streamed). */
  readonly sent: Map<string, number>;
  /** Raw-topic records per symbol. */
  readonly kafka: Map<string, number>;
  /** Distinct (connection, frame, index) identities among them. */
  readonly distinctInKafka: number;
  /** Dead letters silver wrote. */
  readonly silverLetters: number;
  /** UTC hours of ingest and of event time the raw records span. */
  readonly ingestHours: number[];
  readonly eventHours: number[];
}

type Layers = Record<"bronze" | "silver" | "gold5m" | "gold1h", Map<string, number>>;

async function countLayers(p: Pipeline): Promise<Counts> {
  await p.sim.close(); // flushes the ground-truth log
  const sent = new Map<string, number>();
  const countLine = (line: string) => {
    if (line === "") return;
    const entry = JSON.parse(line) as { trade?: { s?: unknown } };
    if (entry.trade) bump(sent, String(entry.trade.s));
  };
  const file = await Deno.open(p.groundTruthPath);
  let rest = "";
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    lines.forEach(countLine);
  }
  countLine(rest);
  const kafka = new Map<string, number>();
  const identities = new Set<string>();
  let ingest = [Infinity, -Infinity];
  let event = [Infinity, -Infinity];
  await readWhole(p.config, p.config.kafka.topics.raw, (value) => {
    const t = testWire().decode("Trade", value);
    bump(kafka, t.s);
    identities.add(`${t.connectionId}/${t.frameSeq}/${t.tradeIndex}`);
    ingest = [
      Math.min(ingest[0]!, Number(t.ingestTime)),
      Math.max(ingest[1]!, Number(t.ingestTime)),
    ];
    event = [Math.min(event[0]!, Number(t.t)), Math.max(event[1]!, Number(t.t))];
    return 0;
  }, 900_000);
  const letters = await readWhole(
    p.config,
    p.config.kafka.topics.deadLetter,
    (value) => testWire().decode("DeadLetter", value).source,
  );
  return {
    sent,
    kafka,
    distinctInKafka: identities.size,
    silverLetters: letters.filter((source) => source === "silver").length,
    ingestHours: hoursBetween(ingest[0]!, ingest[1]!),
    eventHours: hoursBetween(event[0]!, event[1]!),
  };
}

async function countTables(p: Pipeline, c: Counts): Promise<Layers> {
  const symbols = [...c.kafka.keys()];
  const from = Math.min(...c.eventHours);
  const to = Math.max(...c.eventHours) + HOUR_MS;
  const gold = async (interval: "5m" | "1h") => {
    const out = new Map<string, number>();
    for (const symbol of symbols) {
      out.set(symbol, goldTradeCount(await readGold(p.client, interval, [symbol], from, to)));
    }
    return out;
  };
  return {
    bronze: await countRows(p.client, "trades_bronze", symbols, c.ingestHours),
    silver: await countRows(p.client, "trades_silver", symbols, c.eventHours),
    gold5m: await gold("5m"),
    gold1h: await gold("1h"),
  };
}

function hoursBetween(from: number, to: number): number[] {
  const out = [];
  for (let h = Math.floor(from / HOUR_MS) * HOUR_MS; h <= to; h += HOUR_MS) out.push(h);
  return out;
}

function bump(counts: Map<string, number>, key: string) {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function sorted(counts: ReadonlyMap<string, number>): [string, number][] {
  return [...counts].sort(([a], [b]) => a.localeCompare(b));
}

function mapJson(_key: string, value: unknown): unknown {
  return value instanceof Map ? Object.fromEntries(value) : value;
}
