import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import Long from "kafkajs/src/utils/long.js";
import {
  coversProduceRequest,
  encodeProduceRequest,
  installFastProduceRequest,
  ORIGINAL_PRODUCE_REQUEST,
  type ProduceRequestArgs,
} from "./kafkajs_fast_produce.ts";
import { mulberry32 } from "./random.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const NOW = 1_765_000_000_000;

/** `body` with `Date.now()` fixed: kafkajs stamps records without a timestamp with it. */
async function atFixedNow<T>(body: () => Promise<T>): Promise<T> {
  const now = Date.now;
  Date.now = () => NOW;
  try {
    return await body();
  } finally {
    Date.now = now;
  }
}

async function originalBytes(args: ProduceRequestArgs): Promise<Buffer> {
  return (await atFixedNow(() => ORIGINAL_PRODUCE_REQUEST(args).encode())).buffer;
}

function fastBytes(args: ProduceRequestArgs): Promise<Buffer> {
  return atFixedNow(() => Promise.resolve(encodeProduceRequest(args).buffer));
}

/** A request of `seed`'s choosing: keys, values and timestamps of every kind kafkajs takes. */
function randomRequest(seed: number): ProduceRequestArgs {
  const random = mulberry32(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  let time = NOW - int(1_000_000);
  const timestamp = () => {
    time += pick([0, 0, 1, 7, 1_000, 300_000]);
    return pick<string | number | null | undefined>([
      String(time),
      String(time),
      time,
      undefined,
      null,
      String(time - 2_000_000), // out of order
    ]);
  };
  const message = () => ({
    key: pick<unknown>([bytes(int(20)), "AAPL", "BINANCE:BTCUSDT", null, undefined, bytes(0)]),
    value: pick<unknown>([bytes(int(300)), bytes(int(2_000)), "a string value", null, bytes(0)]),
    timestamp: timestamp(),
  });
  const partitions = () =>
    Array.from({ length: 1 + int(6) }, (_, partition) => ({
      partition,
      ...(random() < 0.8 ? { firstSequence: int(2 ** 31) } : {}),
      messages: Array.from({ length: 1 + int(pick([3, 20, 200])) }, message),
    }));
  return {
    acks: pick([-1, 1, 0]),
    timeout: pick([30_000, 5_000]),
    ...pick<Partial<ProduceRequestArgs>>([
      {},
      { transactionalId: null },
      { transactionalId: undefined },
      { transactionalId: "bench.1.producer-0" },
    ]),
    ...(random() < 0.8
      ? { producerId: Long.fromNumber(int(2 ** 40)), producerEpoch: int(32_767) }
      : {}),
    ...(random() < 0.5 ? { compression: 0 } : {}),
    topicData: Array.from({ length: 1 + int(2) }, (_, t) => ({
      topic: pick(["raw", `bench.${t}.raw`, "trades.ü"]),
      partitions: partitions(),
    })),
  };
}

Deno.test("encodeProduceRequest() writes the very bytes kafkajs's Produce v3 request does", async () => {
  for (let seed = 1; seed <= 120; seed++) {
    const args = randomRequest(seed);
    assert.equal(coversProduceRequest(args), true);
    assert.deepEqual(await fastBytes(args), await originalBytes(args), `seed ${seed}`);
  }
});

Deno.test("encodeProduceRequest() matches kafkajs for a sink's batch: one symbol's trades, string timestamps", async () => {
  const key = Buffer.from("AAPL");
  const args: ProduceRequestArgs = {
    acks: -1,
    timeout: 30_000,
    producerId: Long.fromNumber(4_001),
    producerEpoch: 3,
    compression: 0,
    topicData: [{
      topic: "raw",
      partitions: [{
        partition: 4,
        firstSequence: 120,
        messages: Array.from({ length: 5 }, (_, i) => ({
          key,
          value: Buffer.alloc(90, i),
          timestamp: String(NOW + i),
        })),
      }],
    }],
  };
  assert.deepEqual(await fastBytes(args), await originalBytes(args));
});

Deno.test("coversProduceRequest() leaves compressed requests and records with headers to kafkajs", () => {
  const base = randomRequest(7);
  assert.equal(coversProduceRequest({ ...base, compression: 1 }), false);
  const withHeaders: ProduceRequestArgs = {
    ...base,
    topicData: [{
      topic: "raw",
      partitions: [{ partition: 0, messages: [{ value: "v", headers: { trace: "1" } }] }],
    }],
  };
  assert.equal(coversProduceRequest(withHeaders), false);
  const emptyHeaders: ProduceRequestArgs = {
    ...base,
    topicData: [{
      topic: "raw",
      partitions: [{ partition: 0, messages: [{ value: "v", headers: {} }] }],
    }],
  };
  assert.equal(coversProduceRequest(emptyHeaders), true);
});

Deno.test("installFastProduceRequest() makes Produce v3 to v7 encode in one buffer, with kafkajs's bytes", async () => {
  installFastProduceRequest();
  const require = createRequire(import.meta.url);
  const args = randomRequest(11);
  const expected = await originalBytes(args);
  for (const version of [3, 4, 5, 6, 7]) {
    const request = require(`kafkajs/src/protocol/requests/produce/v${version}/request.js`)(
      args,
    ) as Any;
    assert.equal(request.apiVersion, version);
    assert.match(String(request.encode), /encodeProduceRequest/);
    assert.deepEqual((await atFixedNow(() => request.encode()) as Any).buffer, expected);
  }
  // Not covered: kafkajs's own encoder still answers.
  const compressed = require("kafkajs/src/protocol/requests/produce/v7/request.js")({
    ...args,
    compression: 1,
  }) as Any;
  assert.doesNotMatch(String(compressed.encode), /encodeProduceRequest/);
});
