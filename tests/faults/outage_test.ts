/**
 * Outages of the real servers while trades flow: Kafka stopped, then Cassandra stopped, each for
 * 30 s (`FAULT_SUITE=full`; 15 s otherwise), and started again by the test (always, in `finally`).
 * These stop the local services: run nothing else against them meanwhile
 * (`deno test -A tests/faults/outage_test.ts`).
 */
import assert from "node:assert/strict";
import { delay } from "../../shared/delay.ts";
import {
  cassandraReachable,
  kafkaReachable,
  startService,
  stopService,
} from "../../local_services/services.ts";
import { waitFor } from "../helpers.ts";
import { progress } from "../progress.ts";
import {
  account,
  assertOutcome,
  drainFeed,
  FULL,
  type Pipeline,
  producerTotal,
  startPipeline,
  startWorkers,
  testOptions,
} from "./harness.ts";
import { groupIdOf, inputTopicOf, STAGES } from "../../shared/topology.ts";

const OUTAGE_MS = FULL ? 30_000 : 15_000;

async function committed(p: Pipeline): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const stage of STAGES) {
    const [topic] = await p.admin.fetchOffsets({
      groupId: groupIdOf(p.config, stage),
      topics: [inputTopicOf(p.config, stage)],
    });
    out[stage] = (topic?.partitions ?? []).reduce((n, x) => n + Math.max(0, Number(x.offset)), 0);
  }
  return out;
}

async function waitForFlow(p: Pipeline): Promise<void> {
  await p.guarded(waitFor("trades to reach the silver topic", async () => {
    const ends = await p.admin.fetchTopicOffsets(p.config.kafka.topics.silver);
    return ends.reduce((n, x) => n + Number(x.high), 0) > 1_000;
  }, { timeoutMs: 90_000, intervalMs: 500 }));
}

Deno.test({
  name:
    "Kafka stopped while trades flow: the producer buffers within its bound and counts drops, the stages resume, everything in Kafka ends in Cassandra",
  ...testOptions,
  async fn() {
    const log = progress("kafka down");
    const brokers = ["127.0.0.1:9092"];
    const rate = 400;
    const bound = 4_000;
    const p = await startPipeline({
      name: "kafka-down",
      log,
      env: { PRODUCER_BUFFER_MAX_TRADES: String(bound), PRODUCER_BATCH_MAX_TRADES: "1000" },
      simulator: { rate, seed: 21 },
    });
    let passed = false;
    try {
      await startWorkers(p);
      await waitForFlow(p);
      log(
        `stopping Kafka for ${OUTAGE_MS / 1000} s (buffer bound ${bound} trades, feed ${rate}/s)`,
      );
      const stoppedAt = Date.now();
      await p.guarded(stopService("kafka", { log }));
      log(`Kafka stopped after ${Date.now() - stoppedAt} ms`);
      await p.guarded(delay(Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
      assert.equal(p.sim.stats().connectionsOpen, 1, "the producer kept reading the feed");
      const startAt = Date.now();
      await p.guarded(startService("kafka", { log }));
      log(
        `Kafka started again after ${Date.now() - startAt} ms (down ${Date.now() - stoppedAt} ms)`,
      );
      await drainFeed(p, 180_000);
      const dropped = producerTotal(p, "pipeline_producer_trades_dropped_total");
      const failed = producerTotal(p, "pipeline_producer_trades_failed_total");
      const a = await account(p);
      log(
        `sent ${a.sent}, in Kafka ${a.inKafka}, missing ${a.missing.length}; producer dropped ${dropped}, failed ${failed}`,
      );
      assert.ok(dropped > 0, "the outage outlasted the buffer: some trades were dropped");
      assert.equal(a.missing.length, dropped + failed, "exactly the counted trades are missing");
      await assertOutcome(p, a, log, 240_000);
      passed = true;
    } finally {
      if (!await kafkaReachable(brokers)) await startService("kafka", { log });
      await p.stop(passed);
    }
  },
});

Deno.test({
  name:
    "Cassandra stopped while trades flow: the stages pause without committing, resume by themselves, lose nothing",
  ...testOptions,
  async fn() {
    const log = progress("cassandra down");
    const contactPoints = ["127.0.0.1:9042"];
    const p = await startPipeline({
      name: "cassandra-down",
      log,
      // The deployed consumer-group timings (30 s session): with a 6 s session, a stage whose
      // batch waits on Cassandra longer than that is evicted from its group, and its next commit
      // fails with "The coordinator is not aware of this member", which stops the process.
      env: { KAFKA_SESSION_TIMEOUT_MS: "30000", KAFKA_HEARTBEAT_INTERVAL_MS: "3000" },
      simulator: { rate: 400, seed: 22 },
    });
    let passed = false;
    try {
      await startWorkers(p);
      await waitForFlow(p);
      log(`stopping Cassandra for ${OUTAGE_MS / 1000} s`);
      const stoppedAt = Date.now();
      await p.guarded(stopService("cassandra", { log }));
      assert.equal(await cassandraReachable(contactPoints), false, "Cassandra is down");
      // Batches in hand when it stopped may still commit: take the offsets once every stage has
      // had time to fail a write, then nothing more may be committed until it is back.
      await p.guarded(delay(5_000));
      const held = await committed(p);
      await p.guarded(delay(Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
      const still = await committed(p);
      const ends = await p.admin.fetchTopicOffsets(p.config.kafka.topics.raw);
      const rawEnd = ends.reduce((n, x) => n + Number(x.high), 0);
      log(
        `committed at +5 s ${JSON.stringify(held)}, at the end ${
          JSON.stringify(still)
        }; raw end ${rawEnd}`,
      );
      for (const stage of ["bronze", "silver"] as const) {
        assert.equal(
          still[stage],
          held[stage],
          `${stage} committed nothing while Cassandra was down`,
        );
        assert.ok(rawEnd > held[stage]!, `${stage} has trades waiting`);
      }
      const startAt = Date.now();
      await p.guarded(startService("cassandra", { log }));
      log(
        `Cassandra started again after ${Date.now() - startAt} ms (down ${
          Date.now() - stoppedAt
        } ms)`,
      );
      await drainFeed(p, 180_000);
      const a = await account(p);
      log(`sent ${a.sent}, in Kafka ${a.inKafka}, missing ${a.missing.length}`);
      assert.equal(a.missing.length, 0);
      await assertOutcome(p, a, log, 240_000);
      passed = true;
    } finally {
      if (!await cassandraReachable(contactPoints)) await startService("cassandra", { log });
      await p.stop(passed);
    }
  },
});
