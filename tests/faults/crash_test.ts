/**
 * Crashes: `kill -9` of processor stages at seeded random moments while trades flow, and of the
 * producer. The real pipeline (simulator, producer, three stages as OS processes, Kafka,
 * Cassandra) must end with bronze, silver and gold equal to the reference computed from what the
 * simulator sent.
 */
import assert from "node:assert/strict";
import { delay } from "../../shared/delay.ts";
import { waitFor } from "../helpers.ts";
import {
  account,
  assertOutcome,
  drainFeed,
  FEED_SYMBOLS,
  FULL,
  lagOf,
  producerReports,
  seededScenario,
  startPipeline,
  startWorkers,
  testOptions,
  waitForSubscribed,
} from "./harness.ts";
import { STAGES } from "../../shared/topology.ts";

Deno.test({
  name: "kill -9 of the stages at seeded random moments: tables equal the reference, none lost",
  ...testOptions,
  async fn() {
    const { log, seed, rand } = seededScenario("stage kills", 20261125);
    const kills = FULL ? 12 : 4;
    const spanMs = FULL ? 120_000 : 36_000;
    const rate = FULL ? 800 : 400;
    const plan = Array.from({ length: kills }, () => ({
      atMs: 3_000 + Math.floor(rand() * (spanMs - 3_000)),
      stage: STAGES[Math.floor(rand() * STAGES.length)]!,
    })).sort((a, b) => a.atMs - b.atMs);
    log(`plan: ${plan.map((k) => `${k.stage}@${(k.atMs / 1000).toFixed(1)}s`).join(", ")}`);
    const p = await startPipeline({ name: "kills", log, simulator: { rate, seed } });
    let passed = false;
    try {
      await startWorkers(p);
      await p.guarded(waitFor("trades to reach the silver topic", async () => {
        const ends = await p.admin.fetchTopicOffsets(p.config.kafka.topics.silver);
        return ends.some((x) => Number(x.high) > 0);
      }, { timeoutMs: 90_000, intervalMs: 500 }));
      const began = Date.now();
      log("trades flow through every stage: killing");
      for (const [n, k] of plan.entries()) {
        await p.guarded(delay(Math.max(0, began + k.atMs - Date.now())));
        const victim = p.running(k.stage);
        await p.kill(victim);
        const lag = await lagOf(p);
        log(
          `kill ${n + 1}/${kills}: ${k.stage} pid ${victim.pid} (ran ${
            ((Date.now() - victim.startedAt) / 1000).toFixed(1)
          } s); lag ${JSON.stringify(lag)}`,
        );
        await p.spawn(k.stage);
      }
      await p.guarded(delay(Math.max(0, began + spanMs - Date.now())));
      log("every kill done: draining the feed");
      await drainFeed(p);
      const a = await account(p);
      log(`sent ${a.sent}, in Kafka ${a.inKafka}, missing ${a.missing.length}`);
      assert.equal(a.missing.length, 0, "the producer was never killed: nothing is missing");
      await assertOutcome(p, a, log);
      passed = true;
    } finally {
      await p.stop(passed);
    }
  },
});

Deno.test({
  name:
    "kill -9 of the producer and a restart: it resumes, and only trades of the killed connection are missing",
  ...testOptions,
  async fn() {
    const { log, seed, rand } = seededScenario("producer kill", 31337);
    const rate = 500;
    const beforeMs = 5_000 + Math.floor(rand() * 5_000);
    const downMs = 2_000 + Math.floor(rand() * 3_000);
    const afterMs = FULL ? 30_000 : 8_000;
    log(`kill after ${beforeMs} ms of trades, restart ${downMs} ms later`);
    const p = await startPipeline({ name: "producer-kill", log, simulator: { rate, seed } });
    let passed = false;
    try {
      await startWorkers(p);
      await waitForSubscribed(p);
      await p.guarded(delay(beforeMs));
      const victim = p.running("producer");
      const framesAtKill = p.sim.stats().connections[0]!.framesSent;
      const killedAt = Date.now();
      await p.kill(victim);
      await waitFor(
        "the simulator to see the connection close",
        () => p.sim.stats().connectionsOpen === 0,
        { timeoutMs: 10_000, intervalMs: 5 },
      );
      const closeSeen = Date.now();
      await p.guarded(delay(Math.max(0, killedAt + downMs - Date.now())));
      const restartedAt = Date.now();
      await p.spawn("producer");
      await p.guarded(waitFor("the new producer to subscribe", () => {
        const c = p.sim.stats().connections[0];
        return c !== undefined && c.id === 2 && c.subscriptions === FEED_SYMBOLS.length;
      }, { timeoutMs: 60_000, intervalMs: 10 }));
      const resubscribed = Date.now();
      log(
        `killed at frame ${framesAtKill}; simulator saw the close after ${
          closeSeen - killedAt
        } ms; restarted after ${restartedAt - killedAt} ms; connected and subscribed ${
          resubscribed - restartedAt
        } ms after the restart (feed down ${resubscribed - killedAt} ms)`,
      );
      await p.guarded(delay(afterMs));
      await drainFeed(p);
      const reports = producerReports(p);
      assert.equal(reports.length, 2, "two producer processes reported");
      const [old, fresh] = reports as [typeof reports[0], typeof reports[0]];
      log(
        `metrics: the killed producer's last report at ${
          new Date(old.time).toISOString()
        } (state ${old.state}), the new one started ${new Date(fresh.startedAt).toISOString()}: ${
          fresh.startedAt - old.time
        } ms without a producer report`,
      );
      assert.equal(old.state, "running", "the killed producer never said it stopped");
      const a = await account(p);
      // Every missing trade was sent on the killed connection; per symbol they are the last ones
      // sent (a producer that dies loses what it had not handed to Kafka, in order).
      assert.ok(
        a.missing.every((m) => m.connection === 1),
        "only the killed connection lost trades",
      );
      const afterKill = a.missing.filter((m) => m.frame > framesAtKill).length;
      const inFlight = a.missing.length - afterKill;
      log(
        `sent ${a.sent}, in Kafka ${a.inKafka}, missing ${a.missing.length}: ${afterKill} sent after the kill (while it was down), ${inFlight} received by the killed process and not yet acknowledged by Kafka`,
      );
      const lastKept = new Map<string, number>();
      for (const r of a.raw) {
        if (a.connections.get(r.trade.connectionId) !== 1) continue;
        lastKept.set(r.trade.s, Math.max(lastKept.get(r.trade.s) ?? 0, r.trade.frameSeq));
      }
      for (const m of a.missing) {
        assert.ok(
          m.frame >= (lastKept.get(m.symbol) ?? 0),
          `missing ${m.symbol} trade of frame ${m.frame} was sent before one that was kept`,
        );
      }
      assert.ok(inFlight <= rate, `at most a second of trades in flight, got ${inFlight}`);
      await assertOutcome(p, a, log);
      passed = true;
    } finally {
      await p.stop(passed);
    }
  },
});
