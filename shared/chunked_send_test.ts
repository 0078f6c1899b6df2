import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Message, Producer, ProducerRecord } from "kafkajs";
import {
  chunkMessages,
  createCoalescingPublisher,
  createSendQueue,
  MAX_SEND_BYTES,
  messageBytes,
  sendInChunks,
} from "./chunked_send.ts";

function message(i: number, valueBytes: number): Message {
  return { key: Buffer.from(`k${i}`), value: Buffer.alloc(valueBytes, i % 251) };
}

Deno.test("chunkMessages() keeps every message, in order, under the byte limit", () => {
  const messages = Array.from({ length: 10_000 }, (_, i) => message(i, 90 + (i % 40)));
  const chunks = chunkMessages(messages, 64 * 1024);
  assert.ok(chunks.length > 1);
  assert.deepEqual(chunks.flat(), messages);
  for (const chunk of chunks) {
    assert.ok(chunk.length > 0);
    assert.ok(chunk.reduce((sum, m) => sum + messageBytes(m), 0) <= 64 * 1024);
  }
});

Deno.test("chunkMessages() sends a message larger than the limit on its own", () => {
  const messages = [message(0, 10), message(1, 5000), message(2, 10)];
  assert.deepEqual(chunkMessages(messages, 1000), [[messages[0]], [messages[1]], [messages[2]]]);
});

Deno.test("chunkMessages() of nothing is no chunk", () => {
  assert.deepEqual(chunkMessages([]), []);
});

Deno.test("messageBytes() counts key, value, headers and the record overhead", () => {
  const plain = messageBytes({ key: null, value: null });
  assert.equal(messageBytes({ key: "ab", value: Buffer.alloc(10) }), plain + 12);
  assert.equal(messageBytes({ key: null, value: "é", headers: { h: ["xy", "z"] } }), plain + 6);
});

Deno.test("sendInChunks() sends one chunk after another with acks = all", async () => {
  const sends: ProducerRecord[] = [];
  let inFlight = 0;
  const producer = {
    async send(record: ProducerRecord) {
      assert.equal(inFlight++, 0, "one send at a time");
      await Promise.resolve();
      sends.push(record);
      inFlight--;
      return [];
    },
  };
  // About 1.4 MiB of silver-sized records: one send would be refused by a default broker.
  const messages = Array.from({ length: 15_000 }, (_, i) => message(i, 95));
  await sendInChunks(producer, "silver", messages);
  assert.ok(sends.length >= 3);
  assert.ok(sends.every((s) => s.topic === "silver" && s.acks === -1));
  assert.deepEqual(sends.flatMap((s) => s.messages), messages);
  for (const s of sends) {
    assert.ok(s.messages.reduce((sum, m) => sum + messageBytes(m), 0) <= MAX_SEND_BYTES);
  }
});

Deno.test("createCoalescingPublisher() sends the calls made while a send is in flight together, in call order", async () => {
  const sends: string[][] = [];
  let release: (() => void) | undefined;
  const producer = {
    send: (record: { messages: { value: string }[] }) => {
      sends.push(record.messages.map((m) => m.value));
      return new Promise<never[]>((resolve) => release = () => resolve([]));
    },
  };
  const publish = createCoalescingPublisher(
    producer as unknown as Pick<Producer, "send">,
    "t",
    createSendQueue(),
  );
  const first = publish([{ value: "a" }]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(sends, [["a"]], "the first call goes at once");
  const later = [publish([{ value: "b" }, { value: "c" }]), publish([{ value: "d" }])];
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(sends, [["a"]], "nothing more while a send is in flight");
  release!();
  await first;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(sends, [["a"], ["b", "c", "d"]], "what waited goes in one send, in order");
  release!();
  await Promise.all(later);
  assert.equal(await publish([]), undefined, "nothing to send: no send");
  assert.equal(sends.length, 2);
});

Deno.test("createCoalescingPublisher() rejects every call of a failed send, and the next send goes on", async () => {
  let fail = true;
  const sent: string[][] = [];
  const producer = {
    send: (record: { messages: { value: string }[] }) => {
      if (fail) return Promise.reject(new Error("broker down"));
      sent.push(record.messages.map((m) => m.value));
      return Promise.resolve([]);
    },
  };
  const publish = createCoalescingPublisher(
    producer as unknown as Pick<Producer, "send">,
    "t",
    createSendQueue(),
  );
  const calls = [publish([{ value: "a" }]), publish([{ value: "b" }])];
  const outcomes = await Promise.allSettled(calls);
  assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "rejected"]);
  fail = false;
  await publish([{ value: "a" }]);
  assert.deepEqual(sent, [["a"]]);
});
