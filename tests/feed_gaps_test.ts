/**
 * Feed gaps end to end, with the real simulator, the real producer and real Kafka: the simulator
 * drops the connection at known times, and each gap the producer publishes on the gaps topic is
 * checked against the simulator's own timeline (when it closed the connection, when the new
 * subscribes arrived); a clean run publishes no gap; a producer killed with SIGKILL and started
 * again publishes one `producer_down` gap over its downtime.
 */
import assert from "node:assert/strict";
import { createProducer } from "../producer/producer.ts";
import type { Config } from "../shared/config.ts";
import { REPOSITORY_ROOT, roleEnv, roleProcess } from "../shared/process/role.ts";
import { spawnProcess } from "../shared/process/spawn.ts";
import { deprovision, provisionTopics } from "../shared/provision.ts";
import type { FeedGap } from "../shared/types.ts";
import type { Simulator, TimelineEvent } from "../simulator/server.ts";
import { startSimulator } from "../simulator/server.ts";
import { services, testConfig, testLogger, testWire, waitFor } from "./helpers.ts";
import { kafkaTestOptions, readTopic } from "./producer_support.ts";
import { randomId } from "../shared/random.ts";

const SYMBOLS = ["AAPL", "MSFT", "BINANCE:BTCUSDT"];
/**
 * How far a gap's ends may lie from the simulator's record, ms: the close frame's trip to the
 * producer, or the producer's clock read after sending its subscribes, on a loaded machine.
 */
const TOLERANCE_MS = 25;
/**
 * The same across two processes: the simulator (in this test's process) reads a child
 * producer's subscribes when its event loop gets to them; on a loaded machine that was seen to
 * take 100 ms.
 */
const CROSS_PROCESS_MS = 300;

/** Runs `body` with a simulator and a config against it with every pipeline topic created. */
async function withGapFeed(
  body: (sim: Simulator, config: Config) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  await services();
  const sim = await startSimulator({ rate: 200, pingIntervalMs: 1_000 });
  const config = testConfig({
    FINNHUB_WS_URL: sim.url,
    FINNHUB_API_KEY: `test-key-${randomId()}`,
    FINNHUB_SYMBOLS: SYMBOLS.join(","),
    FINNHUB_RECONNECT_BASE_MS: "50",
    FINNHUB_RECONNECT_MAX_MS: "1000",
    ...env,
  });
  try {
    await provisionTopics(config);
    await body(sim, config);
  } finally {
    await sim.close();
    await deprovision(config);
  }
}

/** The gaps on the topic, exactly `expected` of them, decoded, oldest first. */
async function readGaps(config: Config, expected: number): Promise<(FeedGap & { key: string })[]> {
  const records = await readTopic(config, config.kafka.topics.gaps, expected, 60_000);
  return records.map((r) => ({ ...testWire().decode("FeedGap", r.value), key: r.key! }))
    .sort((a, b) => a.fromMs - b.fromMs);
}

/** The simulator's closes and the moment each connection had subscribed every symbol. */
function timelineOf(events: readonly TimelineEvent[]) {
  const closed = new Map<number, TimelineEvent & { type: "closed" }>();
  const subscribes = new Map<number, number[]>();
  for (const event of events) {
    if (event.type === "closed") closed.set(event.connection, event);
    else subscribes.set(event.connection, [...subscribes.get(event.connection) ?? [], event.atMs]);
  }
  return { closed, subscribes };
}

/** Every symbol subscribed on connection `id` of the simulator. */
function subscribedOn(sim: Simulator, id: number): boolean {
  return sim.timeline().filter((e) => e.type === "subscribed" && e.connection === id).length >=
    SYMBOLS.length;
}

/** Runs the producer in this process until `body` is done; returns its metrics. */
async function withInProcessProducer(
  config: Config,
  body: (metrics: ReturnType<typeof createProducer>["metrics"]) => Promise<void>,
) {
  const controller = new AbortController();
  const producer = createProducer({
    config,
    log: testLogger("producer"),
    signal: controller.signal,
    statsIntervalMs: 0,
    feedId: "itest",
  });
  const running = producer.run();
  running.catch(() => {});
  try {
    await body(producer.metrics);
  } finally {
    controller.abort();
    await running;
  }
  return producer.metrics.snapshot();
}

Deno.test({
  name:
    "each simulated drop is one reconnect gap from the simulator's close to the new subscribe, within a few ms",
  ...kafkaTestOptions,
  fn: () =>
    withGapFeed(async (sim, config) => {
      const drops = 3;
      const m = await withInProcessProducer(config, async (metrics) => {
        await waitFor("the first subscription", () => subscribedOn(sim, 1));
        for (let n = 1; n <= drops; n++) {
          const trades = metrics.tradesProduced;
          await waitFor("trades on this connection", () => metrics.tradesProduced > trades);
          sim.inject({ type: "drop" });
          await waitFor(`connection ${n + 1} subscribed`, () => subscribedOn(sim, n + 1));
        }
      });
      const gaps = await readGaps(config, drops);
      const { closed, subscribes } = timelineOf(sim.timeline());
      const offsets: number[] = [];
      gaps.forEach((gap, i) => {
        const close = closed.get(i + 1)!;
        const resubscribed = subscribes.get(i + 2)!;
        assert.equal(close.by, "simulator");
        assert.equal(gap.cause, "reconnect");
        assert.equal(gap.key, gap.gapId);
        assert.equal(gap.gapId, `itest:reconnect:${gap.fromMs}`);
        assert.deepEqual([...gap.symbols].sort(), [...SYMBOLS].sort());
        assert.equal(gap.connectionId.split("-")[1], String(i + 2));
        // The producer hears of the close after the simulator made it, and reads its clock for
        // the subscription before any subscribe reaches the simulator (one event loop).
        const fromLate = gap.fromMs - close.atMs;
        const toEarly = Math.min(...resubscribed) - gap.toMs;
        offsets.push(fromLate, toEarly);
        assert.ok(fromLate >= 0 && fromLate <= TOLERANCE_MS, `gap ${i}: from ${fromLate} ms late`);
        assert.ok(toEarly >= 0 && toEarly <= TOLERANCE_MS, `gap ${i}: to ${toEarly} ms early`);
        assert.ok(gap.detectedAtMs >= gap.toMs);
      });
      console.log(`gap ends vs the simulator's timeline: at most ${Math.max(...offsets)} ms`);
      assert.equal(m.feedGaps.reconnect, drops);
      assert.equal(m.feedGapsPublished, drops);
      assert.equal(m.feedGapMs.reconnect, gaps.reduce((sum, g) => sum + g.toMs - g.fromMs, 0));
    }),
});

Deno.test({
  name:
    "a drop whose reconnect is refused with 429 is one auth_backoff gap from the close to the subscribe after the back-off",
  ...kafkaTestOptions,
  fn: () =>
    withGapFeed(async (sim, config) => {
      const metrics = await withInProcessProducer(config, async (metrics) => {
        await waitFor("the first subscription", () => subscribedOn(sim, 1));
        await waitFor("trades", () => metrics.tradesProduced > 0);
        sim.inject({ type: "refuse", status: 429, count: 1 });
        sim.inject({ type: "drop" });
        await waitFor("connection 2 subscribed", () => subscribedOn(sim, 2));
      });
      const [gap] = await readGaps(config, 1);
      const { closed, subscribes } = timelineOf(sim.timeline());
      assert.equal(sim.stats().handshakesRefused, 1);
      assert.equal(gap!.cause, "auth_backoff");
      const fromLate = gap!.fromMs - closed.get(1)!.atMs;
      const toEarly = Math.min(...subscribes.get(2)!) - gap!.toMs;
      assert.ok(fromLate >= 0 && fromLate <= TOLERANCE_MS, `from ${fromLate} ms late`);
      assert.ok(toEarly >= 0 && toEarly <= TOLERANCE_MS, `to ${toEarly} ms early`);
      assert.ok(gap!.toMs - gap!.fromMs >= 200, "the gap holds the 200 ms auth back-off");
      assert.equal(metrics.feedGaps.auth_backoff, 1);
    }, { FINNHUB_AUTH_BACKOFF_MS: "200" }),
});

Deno.test({
  name:
    "a silent feed is one watchdog gap from the last frame before the silence to the new subscribe",
  ...kafkaTestOptions,
  fn: () =>
    withGapFeed(async (sim, config) => {
      let silencedAt = 0;
      await withInProcessProducer(config, async (metrics) => {
        await waitFor("the first subscription", () => subscribedOn(sim, 1));
        await waitFor("trades", () => metrics.tradesProduced > 100);
        silencedAt = Date.now();
        // Longer than the watchdog (400 ms), over before the new connection's watchdog.
        sim.inject({ type: "silence", ms: 600 });
        await waitFor("connection 2 subscribed", () => subscribedOn(sim, 2));
        const trades = metrics.tradesProduced;
        await waitFor("trades on connection 2", () => metrics.tradesProduced > trades + 100);
      });
      const [gap] = await readGaps(config, 1);
      const { closed, subscribes } = timelineOf(sim.timeline());
      assert.equal(gap!.cause, "watchdog");
      assert.equal(closed.get(1)!.by, "client", "the producer gave up on the silent socket");
      // The last frame came just before the silence (200 trades/s: every few ms), or just after
      // it was asked for: a frame already on its way when the silence began (seen 11 ms late on a
      // loaded machine).
      const lastFrameBefore = silencedAt - gap!.fromMs;
      assert.ok(
        lastFrameBefore >= -TOLERANCE_MS && lastFrameBefore <= TOLERANCE_MS,
        `the last frame ${lastFrameBefore} ms before the silence`,
      );
      const toEarly = Math.min(...subscribes.get(2)!) - gap!.toMs;
      assert.ok(toEarly >= 0 && toEarly <= TOLERANCE_MS, `to ${toEarly} ms early`);
    }, { FINNHUB_WATCHDOG_MS: "400" }),
});

Deno.test({
  name: "a clean run publishes no gap",
  ...kafkaTestOptions,
  fn: () =>
    withGapFeed(async (sim, config) => {
      const metrics = await withInProcessProducer(config, async (metrics) => {
        await waitFor("the subscription", () => subscribedOn(sim, 1));
        await waitFor("trades", () => metrics.tradesProduced > 200);
      });
      assert.deepEqual(await readGaps(config, 0), []);
      assert.equal(metrics.feedGapsPublished, 0);
    }),
});

Deno.test({
  name:
    "a producer killed with SIGKILL and started again publishes one producer_down gap over its downtime",
  ...kafkaTestOptions,
  fn: () =>
    withGapFeed(async (sim, config) => {
      const env = roleEnv({
        config,
        secrets: { FINNHUB_API_KEY: config.finnhub.apiKey.reveal() },
        // A Cassandra address that is not the local one: the producer needs none, and then
        // does not prepare a keyspace for this test.
        overrides: { CASSANDRA_CONTACT_POINTS: "127.0.0.2:9042" },
      });
      const lines: string[] = [];
      const start = (name: string) =>
        spawnProcess(roleProcess("producer", { env, name, cwd: REPOSITORY_ROOT }), {
          onLine: (line) => lines.push(`${name}: ${line}`),
        });
      const first = start("producer-1");
      let second: ReturnType<typeof start> | undefined;
      try {
        await waitFor("the first producer's subscription", () => subscribedOn(sim, 1), {
          timeoutMs: 90_000,
        });
        // A few coverage marks (one a second), then kill -9.
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        const killedAt = Date.now();
        first.kill("SIGKILL");
        await first.exited;
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        second = start("producer-2");
        await waitFor("the second producer's subscription", () => subscribedOn(sim, 2), {
          timeoutMs: 90_000,
        });
        const [gap] = await readGaps(config, 1);
        const { subscribes } = timelineOf(sim.timeline());
        const firstSubscribed = Math.max(...subscribes.get(1)!);
        const resubscribed = Math.min(...subscribes.get(2)!);
        assert.equal(gap!.cause, "producer_down");
        assert.deepEqual([...gap!.symbols].sort(), [...SYMBOLS].sort());
        // From the last mark before the kill (at most a mark interval, 1 s, before it) ...
        assert.ok(gap!.fromMs <= killedAt, `from ${gap!.fromMs - killedAt} ms after the kill`);
        assert.ok(
          gap!.fromMs >= killedAt - 1_000 - TOLERANCE_MS && gap!.fromMs >= firstSubscribed,
          `from ${killedAt - gap!.fromMs} ms before the kill`,
        );
        // ... to the new subscription: taken by the producer just before its subscribes left,
        // seen by the simulator when this (another, busy) process read them.
        const seenLater = resubscribed - gap!.toMs;
        assert.ok(
          seenLater >= -TOLERANCE_MS && seenLater <= CROSS_PROCESS_MS,
          `to ${seenLater} ms before the simulator saw the new subscribe`,
        );
        console.log(
          `producer_down gap: from ${killedAt - gap!.fromMs} ms before the kill to ${
            resubscribed - gap!.toMs
          } ms before the simulator saw the new subscribe (${gap!.toMs - gap!.fromMs} ms)`,
        );
      } catch (error) {
        console.error(lines.slice(-40).join("\n"));
        throw error;
      } finally {
        first.kill("SIGKILL");
        await second?.stop(10_000);
      }
    }),
});
