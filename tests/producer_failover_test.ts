/**
 * Two real `producer/main.ts` processes for one API key against the simulator and the real
 * Kafka: one active (it alone holds the Finnhub connection), one standing by.
 *
 * - kill -9 of the active one, three times, under load (the killed one restarted as the new
 *   standby): the standby takes over each time; the failover time is printed as the pipeline saw
 *   it (last trade written from the old connection to the first from the new) and as the
 *   simulator saw it (close of the old connection to the first subscribe on the new one). Against
 *   the simulator's ground truth: on every connection, the trades written are exactly the first
 *   ones sent on it, partition by partition (the lost tail is what the killed producer had read
 *   and not committed), none twice, and the last connection's all; never two connections for the
 *   key at once.
 * - SIGSTOP of the active one, SIGCONT after the standby took over: the old one writes nothing it
 *   read after the pause (Kafka fenced it, or its lease ran out on its own clock first), steps
 *   down and logs why.
 * - Kafka's fencing itself: a second transactional producer with the same id makes the first's
 *   next batch fail, and the sink stops (it does not give the batch up and go on).
 */
import assert from "node:assert/strict";
import { delay } from "../shared/delay.ts";
import { createKafka } from "../shared/kafka.ts";
import { type Logger, silentLogger } from "../shared/log.ts";
import { readGroundTruth, tradeEntries } from "../simulator/ground_truth.ts";
import type { Simulator } from "../simulator/server.ts";
import { SinkStoppedError, transactionalSender } from "../producer/kafka_sink.ts";
import type { Config } from "../shared/config.ts";
import { childProcessEnv, waitFor } from "./helpers.ts";
import {
  asSent,
  deleteTopics,
  kafkaTestOptions,
  producerTestConfig,
  rawTrades,
  readTopic,
  withFeed,
} from "./producer_support.ts";
import { randomId } from "../shared/random.ts";

const MAIN = new URL("../producer/main.ts", import.meta.url).pathname;
const SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "BINANCE:BTCUSDT", "OANDA:EUR_USD"];
const SESSION_MS = 6_000;
/** Trades per second the simulator sends on the connection. */
const RATE = 800;

/** What the simulator logged, with when. */
interface SimEvent {
  readonly at: number;
  readonly message: string;
  readonly connection: number | undefined;
}

function recordingLogger(events: SimEvent[]): Logger {
  const log = (message: string, fields?: Record<string, unknown>) =>
    events.push({
      at: Date.now(),
      message,
      connection: typeof fields?.connection === "number" ? fields.connection : undefined,
    });
  const logger: Logger = {
    debug: log,
    info: log,
    warn: log,
    error: log,
    child: () => logger,
  };
  return logger;
}

/** A producer process and its log so far. */
interface ProducerProcess {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly log: string[];
  readonly exited: Promise<Deno.CommandStatus>;
}

function startProducer(name: string, config: Config, sim: Simulator): ProducerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    clearEnv: true,
    env: {
      ...childProcessEnv(),
      FINNHUB_WS_URL: sim.url,
      FINNHUB_API_KEY: config.finnhub.apiKey.reveal(),
      FINNHUB_SYMBOLS: SYMBOLS.join(","),
      FINNHUB_RECONNECT_BASE_MS: "50",
      FINNHUB_RECONNECT_MAX_MS: "1000",
      FINNHUB_AUTH_BACKOFF_MS: "200",
      KAFKA_BROKERS: config.kafka.brokers.join(","),
      KAFKA_TOPIC_RAW: config.kafka.topics.raw,
      KAFKA_TOPIC_DEAD_LETTER: config.kafka.topics.deadLetter,
      KAFKA_GROUP_PREFIX: config.kafka.groupPrefix,
      SCHEMA_REGISTRY_URL: config.registry.url,
      PRODUCER_LEASE: "kafka",
      PRODUCER_LEASE_SESSION_MS: String(SESSION_MS),
      LOG_LEVEL: "info",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  (async () => {
    const decoder = new TextDecoderStream();
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(decoder)) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) log.push(`${Date.now()} ${name} ${line}`);
    }
  })().catch(() => {});
  return { name, child, log, exited: child.status };
}

const isActive = (p: ProducerProcess) => p.log.some((l) => l.includes("active: this producer"));
const isStandby = (p: ProducerProcess) =>
  p.log.some((l) => l.includes("standing by: another producer holds the lease"));

/** When `p` first logged a line containing `text`, epoch ms (NaN if it did not). */
function lineAt(p: ProducerProcess, text: string): number {
  const line = p.log.find((l) => l.includes(text));
  return line === undefined ? NaN : Number(line.slice(0, line.indexOf(" ")));
}

function kill(p: ProducerProcess, signal: Deno.Signal): void {
  try {
    p.child.kill(signal);
  } catch {
    // Already exited.
  }
}

/** The simulator's connection each producer connection id is, by the trades written from it. */
function simConnectionOf(
  written: ReturnType<typeof rawTrades>,
  sent: ReturnType<typeof tradeEntries>,
): Map<string, number> {
  const byKey = new Map<string, number[]>();
  for (const e of sent) {
    const key = `${e.frame}/${e.index}/${JSON.stringify(e.trade)}`;
    byKey.set(key, [...(byKey.get(key) ?? []), e.connection]);
  }
  const out = new Map<string, number>();
  for (const t of written) {
    if (out.has(t.connectionId)) continue;
    const candidates = byKey.get(`${t.frameSeq}/${t.tradeIndex}/${JSON.stringify(asSent(t))}`);
    assert.ok(candidates?.length === 1, `trade ${t.connectionId}/${t.frameSeq} matches one send`);
    out.set(t.connectionId, candidates[0]!);
  }
  return out;
}

/**
 * Checks the raw topic against the ground truth: nothing written twice; per simulator
 * connection and partition, the trades written are the first ones sent, in order. Returns per
 * connection the trades sent, written, and the first and last `ingestTime` written.
 */
async function account(config: Config, truthPath: string) {
  const sent = tradeEntries(await readGroundTruth(truthPath));
  const admin = createKafka(config.kafka, silentLogger()).admin();
  await admin.connect();
  // The exact count is unknown (the tails lost at each kill); read what is there, then check.
  const offsets = await admin.fetchTopicOffsets(config.kafka.topics.raw);
  await admin.disconnect();
  const upper = offsets.reduce((n, p) => n + Number(p.high), 0);
  const written = rawTrades(await readAll(config, upper));
  const seen = new Set<string>();
  for (const t of written) {
    const key = `${t.connectionId}/${t.frameSeq}/${t.tradeIndex}`;
    assert.ok(!seen.has(key), `written twice: ${key}`);
    seen.add(key);
  }
  const connectionOf = simConnectionOf(written, sent);
  const simIds = [...new Set(connectionOf.values())];
  assert.equal(simIds.length, connectionOf.size, "one producer connection per simulator one");
  const result = new Map<
    number,
    { sent: number; written: number; firstIngest: number; lastIngest: number }
  >();
  for (const conn of new Set(sent.map((e) => e.connection))) {
    const mine = written.filter((t) => connectionOf.get(t.connectionId) === conn);
    const sentHere = sent.filter((e) => e.connection === conn);
    // One symbol, one partition, one sender whose transactions commit in order: what is
    // written of a symbol is the first of what was sent of it, in order.
    for (const symbol of SYMBOLS) {
      const expected = sentHere.filter((e) => e.trade.s === symbol)
        .map((e) => [e.frame, e.index, e.trade]);
      const actual = mine.filter((t) => t.s === symbol)
        .sort((a, b) =>
          a.record.partition - b.record.partition || a.record.offset - b.record.offset
        )
        .map((t) => [t.frameSeq, t.tradeIndex, asSent(t)]);
      assert.equal(
        new Set(mine.filter((t) => t.s === symbol).map((t) => t.record.partition)).size <= 1,
        true,
      );
      assert.deepEqual(
        actual,
        expected.slice(0, actual.length),
        `connection ${conn} ${symbol}: the first of what was sent, in order`,
      );
    }
    const ingest = mine.map((t) => t.ingestTime);
    result.set(conn, {
      sent: sentHere.length,
      written: mine.length,
      firstIngest: Math.min(...ingest),
      lastIngest: Math.max(...ingest),
    });
  }
  return result;
}

/** Every committed record of the raw topic (at most `upper`: offsets include markers). */
async function readAll(config: Config, upper: number) {
  // readTopic wants the exact count: find it by reading until the count stops growing.
  const kafka = createKafka(config.kafka, silentLogger(), { clientIdSuffix: "counter" });
  const consumer = kafka.consumer({ groupId: `${config.kafka.groupPrefix}.count-${randomId()}` });
  let count = 0;
  await consumer.connect();
  await consumer.subscribe({ topic: config.kafka.topics.raw, fromBeginning: true });
  await consumer.run({
    eachBatch: ({ batch }) => {
      count += batch.messages.length;
      return Promise.resolve();
    },
  });
  let last = -1;
  while (count !== last) {
    last = count;
    await delay(3_000);
  }
  await consumer.disconnect();
  assert.ok(count <= upper);
  return readTopic(config, config.kafka.topics.raw, count);
}

Deno.test({
  name:
    "kill -9 of the active producer, three times under load: the standby takes over, nothing is written twice",
  ...kafkaTestOptions,
  async fn() {
    const events: SimEvent[] = [];
    await withFeed({
      simulator: { rate: RATE, pingIntervalMs: 1_000, seed: 2112, log: recordingLogger(events) },
      env: { FINNHUB_SYMBOLS: SYMBOLS.join(",") },
    }, async ({ sim, config, truthPath }) => {
      const all: ProducerProcess[] = [];
      try {
        let active = startProducer("p1", config, sim);
        all.push(active);
        await waitFor("p1 active", () => isActive(active), { timeoutMs: 60_000 });
        let standby = startProducer("p2", config, sim);
        all.push(standby);
        await waitFor("p2 standing by", () => isStandby(standby), { timeoutMs: 60_000 });
        const kills: { at: number; connection: number; next: ProducerProcess }[] = [];
        for (let round = 1; round <= 3; round++) {
          const conn = await waitFor("a subscribed connection", () => {
            const open = sim.stats().connections;
            return open.length === 1 && open[0]!.subscriptions === SYMBOLS.length && open[0]!.id;
          }, { timeoutMs: 60_000 });
          await delay(4_000); // under load for a while
          kills.push({ at: Date.now(), connection: conn, next: standby });
          kill(active, "SIGKILL");
          await active.exited;
          await waitFor(`round ${round}: the standby active`, () => isActive(standby), {
            timeoutMs: 60_000,
          });
          const restarted = startProducer(`p${round + 2}`, config, sim);
          all.push(restarted);
          active = standby;
          standby = restarted;
          await waitFor(`round ${round}: p${round + 2} standing by`, () => isStandby(standby), {
            timeoutMs: 60_000,
          });
        }
        await waitFor("the last connection subscribed", () => {
          const open = sim.stats().connections;
          return open.length === 1 && open[0]!.subscriptions === SYMBOLS.length;
        }, { timeoutMs: 60_000 });
        await delay(3_000);
        // The last connection whole: no more trades, then a clean stop flushes all it read.
        sim.inject({ type: "pause" });
        await delay(1_000);
        kill(active, "SIGTERM");
        kill(standby, "SIGTERM");
        const [a, b] = [await active.exited, await standby.exited];
        assert.equal(a.code, 0, active.log.join("\n"));
        assert.equal(b.code, 0, standby.log.join("\n"));
        const stats = sim.stats();
        await sim.close();

        assert.equal(stats.peakConnectionsPerToken, 1, "never two connections for the key");
        assert.equal(stats.duplicateConnectionAttempts, 0);
        const logs = all.flatMap((p) => p.log).join("\n");
        assert.ok(!logs.includes(config.finnhub.apiKey.reveal()), "the key is never logged");

        const counts = await account(config, truthPath);
        const connections = [...counts.keys()].sort((x, y) => x - y);
        assert.equal(connections.length, 4, "one connection per term: 3 failovers");
        const last = counts.get(connections.at(-1)!)!;
        assert.equal(last.written, last.sent, "the last connection: every trade written");
        const closedAt = (c: number) =>
          events.find((e) => e.message === "connection closed" && e.connection === c)!.at;
        const subscribedAt = (c: number) =>
          events.find((e) => e.message === "first subscription" && e.connection === c)!.at;
        const lines = [];
        for (let i = 0; i < 3; i++) {
          const old = counts.get(connections[i]!)!;
          const next = counts.get(connections[i + 1]!)!;
          assert.equal(kills[i]!.connection, connections[i]);
          lines.push(
            `failover ${i + 1}: written ${
              next.firstIngest - old.lastIngest
            } ms (last trade from the old connection to the first from the new); simulator ${
              subscribedAt(connections[i + 1]!) - closedAt(connections[i]!)
            } ms (old connection closed to new subscribed); kill to last written ${
              kills[i]!.at - old.lastIngest
            } ms; kill to lease ${
              lineAt(kills[i]!.next, "active: this producer") - kills[i]!.at
            } ms, to fenced ${
              lineAt(kills[i]!.next, "fenced any older producer") - kills[i]!.at
            } ms, to subscribed ${
              lineAt(kills[i]!.next, "connected and subscribed") - kills[i]!.at
            } ms; sent ${old.sent}, written ${old.written}, lost at the kill ${
              old.sent - old.written
            }`,
          );
        }
        console.log(lines.join("\n"));
      } catch (error) {
        console.error(all.flatMap((p) => p.log.slice(-40)).join("\n"));
        throw error;
      } finally {
        for (const p of all) kill(p, "SIGKILL");
        await Promise.all(all.map((p) => p.exited));
      }
    });
  },
});

Deno.test({
  name:
    "a paused active producer resumed after the standby took over writes nothing more, steps down and says why",
  ...kafkaTestOptions,
  async fn() {
    await withFeed({
      simulator: { rate: RATE, pingIntervalMs: 1_000, seed: 2113 },
      env: { FINNHUB_SYMBOLS: SYMBOLS.join(",") },
    }, async ({ sim, config, truthPath }) => {
      const p1 = startProducer("p1", config, sim);
      const p2 = startProducer("p2", config, sim);
      try {
        await waitFor(
          "one active, one standing by",
          () => (isActive(p1) && isStandby(p2)) || (isActive(p2) && isStandby(p1)),
          {
            timeoutMs: 60_000,
          },
        );
        const [old, next] = isActive(p1) ? [p1, p2] : [p2, p1];
        await waitFor("the active one subscribed", () => {
          const open = sim.stats().connections;
          return open.length === 1 && open[0]!.subscriptions === SYMBOLS.length;
        }, { timeoutMs: 60_000 });
        await delay(3_000);
        const stoppedAt = Date.now();
        kill(old, "SIGSTOP");
        await waitFor("the standby active", () => isActive(next), { timeoutMs: 60_000 });
        await waitFor("the new connection subscribed", () => {
          const open = sim.stats().connections;
          return open.length === 1 && open[0]!.subscriptions === SYMBOLS.length;
        }, { timeoutMs: 60_000 });
        await delay(2_000);
        const before = old.log.length;
        kill(old, "SIGCONT");
        await waitFor(
          "the old leader to step down",
          () =>
            old.log.slice(before).some((l) => l.includes("lost the lease") || l.includes("fenced")),
          { timeoutMs: 30_000 },
        );
        await delay(SESSION_MS); // time for it to try anything it would
        assert.ok(isActive(next));
        assert.ok(
          !next.log.some((l) => l.includes("fenced this producer")),
          "the new leader is never fenced by the old one",
        );
        sim.inject({ type: "pause" });
        await delay(1_000);
        kill(next, "SIGTERM");
        kill(old, "SIGTERM");
        await next.exited;
        await old.exited;
        await sim.close();
        const resumed = old.log.slice(before).join("\n");
        console.log(
          `old leader after SIGCONT:\n${
            resumed.split("\n").filter((l) => /lease|fenced|standing|WARN|ERROR/i.test(l))
              .slice(0, 8).join("\n")
          }`,
        );
        const counts = await account(config, truthPath);
        const conns = [...counts.keys()].sort((x, y) => x - y);
        const first = counts.get(conns[0]!)!;
        assert.ok(
          first.lastIngest < stoppedAt,
          `nothing the paused leader read after the pause was written (${
            first.lastIngest - stoppedAt
          } ms)`,
        );
        assert.ok(counts.get(conns.at(-1)!)!.written > 0, "the new leader wrote");
      } catch (error) {
        console.error([...p1.log, ...p2.log].join("\n"));
        throw error;
      } finally {
        kill(p1, "SIGCONT");
        kill(p1, "SIGKILL");
        kill(p2, "SIGKILL");
        await Promise.all([p1.exited, p2.exited]);
      }
    });
  },
});

Deno.test({
  name:
    "a second transactional producer with the same id fences the first: its next batch stops the sink",
  ...kafkaTestOptions,
  async fn() {
    const config = await producerTestConfig("ws://127.0.0.1:1/");
    const kafka = createKafka(config.kafka, silentLogger());
    const transactionalId = `${config.kafka.groupPrefix}.fence-${randomId()}`;
    const options = { idempotent: true, maxInFlightRequests: 1, transactionalId };
    const first = kafka.producer(options);
    const second = kafka.producer(options);
    try {
      await first.connect();
      const sender = transactionalSender(first);
      const record = { topic: config.kafka.topics.raw, messages: [{ key: "K", value: "v1" }] };
      await sender.send(record);
      await second.connect();
      await (await second.transaction()).commit(); // initialises the id: fences `first`
      const error = await sender.send(record).then(() => undefined, (e) => e);
      assert.ok(error instanceof SinkStoppedError, String(error));
      assert.equal(error.fenced, true);
      await transactionalSender(second).send({ ...record, messages: [{ key: "K", value: "v2" }] });
      const values: string[] = [];
      const consumer = kafka.consumer({ groupId: `${config.kafka.groupPrefix}.r-${randomId()}` });
      await consumer.connect();
      await consumer.subscribe({ topic: config.kafka.topics.raw, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => {
          values.push(String(message.value));
          return Promise.resolve();
        },
      });
      await waitFor("two committed records", () => values.length >= 2, { timeoutMs: 60_000 });
      await delay(1_500);
      await consumer.disconnect();
      assert.deepEqual(values.sort(), ["v1", "v2"], "the fenced send was never committed");
    } finally {
      await first.disconnect().catch(() => {});
      await second.disconnect().catch(() => {});
      await deleteTopics(config);
    }
  },
});
