import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { silentLogger } from "../shared/log.ts";
import { memoryWire } from "../shared/memory_registry.ts";
import { Secret } from "../shared/secret.ts";
import { createKafkaCoverageStore, feedIdOf } from "./coverage_store.ts";
import { FakeProducer } from "./test_doubles.ts";

Deno.test("feedIdOf() is 16 hex digits, the same for the same feed and key, different otherwise, and never the key", async () => {
  const key = new Secret("sk-secret-1");
  const a = await feedIdOf("wss://ws.finnhub.io/", key);
  assert.match(a, /^[0-9a-f]{16}$/);
  assert.equal(await feedIdOf("wss://ws.finnhub.io/", new Secret("sk-secret-1")), a);
  assert.notEqual(await feedIdOf("wss://ws.finnhub.io/", new Secret("sk-secret-2")), a);
  assert.notEqual(await feedIdOf("ws://127.0.0.1:8765/", key), a);
  assert.match(await feedIdOf("ws://127.0.0.1:8765/", new Secret("")), /^[0-9a-f]{16}$/);
  assert.ok(!a.includes("secret"));
});

Deno.test("the Kafka coverage store writes a FeedCoverage mark keyed by the feed id, acks=all", async () => {
  const wire = await memoryWire();
  const producer = new FakeProducer();
  const store = createKafkaCoverageStore({
    kafka: {} as unknown as Pick<Kafka, "consumer" | "admin">,
    producer,
    topic: "cov",
    feedId: "0123456789abcdef",
    wire,
    groupPrefix: "g",
    log: silentLogger(),
  });
  await store.write({ coveredUntilMs: 1_000, symbols: ["AAPL", "MSFT"] }, 1_050);
  const [send] = producer.sends;
  assert.equal(send!.topic, "cov");
  assert.equal(send!.acks, -1);
  assert.equal(String(send!.messages[0]!.key), "0123456789abcdef");
  assert.deepEqual({ ...wire.decode("FeedCoverage", send!.messages[0]!.value as Uint8Array) }, {
    feedId: "0123456789abcdef",
    coveredUntilMs: 1_000,
    symbols: ["AAPL", "MSFT"],
    writtenAtMs: 1_050,
  });
});

Deno.test("the Kafka coverage store reads no mark, and says so, when Kafka cannot be read", async () => {
  const lines: string[] = [];
  const store = createKafkaCoverageStore({
    kafka: {
      admin: () => ({ connect: () => Promise.reject(new Error("broker down")) }),
    } as unknown as Pick<Kafka, "consumer" | "admin">,
    producer: new FakeProducer(),
    topic: "cov",
    feedId: "f",
    wire: await memoryWire(),
    groupPrefix: "g",
    log: { ...silentLogger(), warn: (message: string) => lines.push(message) },
  });
  assert.equal(await store.read(), null);
  assert.match(lines.join("\n"), /cannot read the last coverage mark/);
});
