/**
 * `SIGTERM`, or one Ctrl-C delivered twice, under load, on the real `producer/main.ts` process
 * with real Kafka: the producer stops reading, flushes, exits 0, and every trade of every frame it
 * read before the signal is on the raw topic, exactly once.
 */
import assert from "node:assert/strict";
import { delay } from "../shared/delay.ts";
import { createKafka } from "../shared/kafka.ts";
import { silentLogger } from "../shared/log.ts";
import { readGroundTruth, tradeEntries } from "../simulator/ground_truth.ts";
import { waitFor } from "./helpers.ts";
import { asSent, kafkaTestOptions, rawTrades, readTopic, withFeed } from "./producer_support.ts";

const MAIN = new URL("../producer/main.ts", import.meta.url).pathname;
const SYMBOLS = [
  "AAPL",
  "MSFT",
  "NVDA",
  "TSLA",
  "AMZN",
  "BINANCE:BTCUSDT",
  "BINANCE:ETHUSDT",
  "OANDA:EUR_USD",
];

/** The `key=value` fields of the producer's "stopped" log line. */
function stoppedFields(stderr: string): Record<string, string> {
  const line = stderr.split("\n").find((l) => /producer: stopped \w+=/.test(l));
  assert.ok(line, `no "stopped" line in:\n${stderr}`);
  return Object.fromEntries([...line.matchAll(/ (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

const CASES: { name: string; signals: Deno.Signal[] }[] = [
  {
    name: "SIGTERM under load flushes every trade read before the signal and exits 0",
    signals: ["SIGTERM"],
  },
  {
    // A terminal signals the whole process group: `deno task producer` gets the terminal's
    // SIGINT and the task runner's forwarded copy a millisecond apart.
    name:
      "one Ctrl-C delivered twice a few milliseconds apart still flushes every trade and exits 0",
    signals: ["SIGINT", "SIGINT"],
  },
];

for (const { name, signals } of CASES) {
  Deno.test({
    name,
    ...kafkaTestOptions,
    fn: () =>
      withFeed({
        simulator: { rate: 20_000, pingIntervalMs: 100 },
        env: { FINNHUB_SYMBOLS: SYMBOLS.join(",") },
      }, async ({ sim, config, truthPath }) => {
        const admin = createKafka(config.kafka, silentLogger()).admin();
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", MAIN],
          env: {
            FINNHUB_WS_URL: sim.url,
            FINNHUB_API_KEY: config.finnhub.apiKey.reveal(),
            FINNHUB_SYMBOLS: SYMBOLS.join(","),
            KAFKA_BROKERS: config.kafka.brokers.join(","),
            KAFKA_TOPIC_RAW: config.kafka.topics.raw,
            KAFKA_TOPIC_DEAD_LETTER: config.kafka.topics.deadLetter,
            LOG_LEVEL: "info",
          },
          stdout: "null",
          stderr: "piped",
        }).spawn();
        const stderr = new Response(child.stderr).text();
        try {
          await admin.connect();
          await waitFor("30 000 trades on the topic", async () => {
            const offsets = await admin.fetchTopicOffsets(config.kafka.topics.raw);
            return offsets.reduce((n, p) => n + Number(p.high), 0) >= 30_000;
          }, { timeoutMs: 60_000 });
          for (const [i, signal] of signals.entries()) {
            // Signals sent back to back coalesce into one pending signal: a copy forwarded by a
            // task runner comes once the first was delivered.
            if (i > 0) await delay(5);
            child.kill(signal);
          }
          const status = await child.status;
          const log = await stderr;
          assert.equal(status.code, 0, log);
          sim.inject({ type: "pause" });
          await sim.close();

          const stopped = stoppedFields(log);
          const received = Number(stopped.tradesReceived);
          const frames = Number(stopped.framesReceived);
          assert.ok(received > 30_000, JSON.stringify(stopped));
          assert.equal(
            Number(stopped.tradesProduced),
            received,
            "every trade read was acknowledged",
          );
          assert.equal(stopped.tradesDropped, "0");
          assert.equal(stopped.tradesFailed, "0");
          assert.ok(!log.includes(config.finnhub.apiKey.reveal()), "the key is never logged");

          const sent = tradeEntries(await readGroundTruth(truthPath));
          const read = sent.filter((e) => e.frame <= frames);
          assert.ok(sent.length >= read.length);
          assert.equal(read.length, received);
          const trades = rawTrades(await readTopic(config, config.kafka.topics.raw, received));
          const bySymbol = (list: { s: string; item: unknown }[]) => {
            const map = new Map<string, unknown[]>();
            for (const { s, item } of list) map.set(s, [...(map.get(s) ?? []), item]);
            return map;
          };
          const expected = bySymbol(
            read.map((e) => ({ s: e.trade.s as string, item: [e.frame, e.index, e.trade] })),
          );
          const actual = bySymbol(
            trades.map((t) => ({ s: t.s, item: [t.frameSeq, t.tradeIndex, asSent(t)] })),
          );
          for (const symbol of SYMBOLS) {
            assert.deepEqual(actual.get(symbol), expected.get(symbol), symbol);
          }
        } finally {
          try {
            child.kill("SIGKILL");
          } catch {
            // Already exited.
          }
          await child.status;
          await stderr.catch(() => "");
          await admin.disconnect();
        }
      }),
  });
}
