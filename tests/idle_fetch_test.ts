/**
 * A stage's consumer on the real local Kafka stops polling while its input is idle
 * (`shared/kafkajs_idle_fetch.ts`), and still gets every record once they come.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createKafka } from "../shared/kafka.ts";
import { IDLE_FETCH_WAIT_MS } from "../shared/kafkajs_idle_fetch.ts";
import { silentLogger } from "../shared/log.ts";
import { createStageConsumer, FETCH_HOLD_MS } from "../processor/worker.ts";
import { cleanup, provision, testConfig, waitFor } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "an idle stage consumer asks Kafka about twice a second, not every hold, and misses no record",
  ...opts,
  async fn() {
    const config = testConfig();
    await provision(config);
    const kafka = createKafka(config.kafka, silentLogger());
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    // Silver's consumer: the shortest hold (10 ms), the one that polled 100 times a second.
    const consumer = createStageConsumer(
      kafka,
      config,
      `${config.kafka.groupPrefix}.idle`,
      FETCH_HOLD_MS.silver,
    );
    let fetches = 0;
    consumer.on(consumer.events.FETCH_START, () => fetches++);
    const received: string[] = [];
    try {
      await producer.connect();
      await consumer.connect();
      await consumer.subscribe({ topic: config.kafka.topics.raw, fromBeginning: true });
      await consumer.run({
        eachBatch: ({ batch }) => {
          for (const message of batch.messages) received.push(message.value!.toString());
          return Promise.resolve();
        },
      });
      await waitFor("the consumer to fetch", () => fetches > 0);
      const idleMs = 3_000;
      const before = fetches;
      await new Promise((resolve) => setTimeout(resolve, idleMs));
      const idleFetches = fetches - before;
      // As shipped, kafkajs fetches again as soon as each 10 ms hold ends empty: about 300.
      assert.ok(
        idleFetches <= idleMs / IDLE_FETCH_WAIT_MS + 3,
        `${idleFetches} fetches in ${idleMs} ms of idle input`,
      );
      // Records after the idle spell, one alone then a stream of them: every one arrives.
      const sent: string[] = [];
      for (let i = 0; i < 200; i++) {
        const value = `record-${i}`;
        sent.push(value);
        await producer.send({
          topic: config.kafka.topics.raw,
          acks: -1,
          messages: [{ key: Buffer.from(`k${i % 7}`), value: Buffer.from(value) }],
        });
        if (i === 0) await waitFor("the first record", () => received.length === 1);
      }
      await waitFor("every record", () => received.length >= sent.length);
      assert.deepEqual([...received].sort(), [...sent].sort());
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await cleanup(config);
    }
  },
});
