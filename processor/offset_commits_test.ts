import assert from "node:assert/strict";
import { type CommitRequest, OffsetCommits, type PartitionOffset } from "./offset_commits.ts";

const refusal = () => Object.assign(new Error("not a member"), { type: "UNKNOWN_MEMBER_ID" });
const lostMembership = (error: unknown) =>
  (error as { type?: unknown }).type === "UNKNOWN_MEMBER_ID";

/** A commit request that records what it was sent. */
function recorder(): { send: CommitRequest; sent: PartitionOffset[][] } {
  const sent: PartitionOffset[][] = [];
  return {
    sent,
    send: (offsets) => {
      sent.push([...offsets]);
      return Promise.resolve();
    },
  };
}

Deno.test("OffsetCommits.flush() sends every partition's highest durable offset in one request", async () => {
  const commits = new OffsetCommits({ lostMembership });
  const { send, sent } = recorder();
  commits.durable("t", 0, 10n);
  commits.durable("t", 1, 5n);
  commits.durable("t", 0, 12n);
  commits.durable("t", 0, 11n); // lower: changes nothing
  commits.durable("u", 0, 3n);
  await commits.flush(send);
  assert.deepEqual(sent, [[
    { topic: "t", partition: 0, offset: "12" },
    { topic: "t", partition: 1, offset: "5" },
    { topic: "u", partition: 0, offset: "3" },
  ]]);
  assert.equal(commits.pending, 0);
});

Deno.test("OffsetCommits.flush() sends nothing when nothing is durable since the last one", async () => {
  const commits = new OffsetCommits({ lostMembership });
  const { send, sent } = recorder();
  await commits.flush(send);
  commits.durable("t", 0, 1n);
  await commits.flush(send);
  await commits.flush(send);
  assert.equal(sent.length, 1);
});

Deno.test("OffsetCommits.flush() waits for the commit in flight: offsets go out in order", async () => {
  const commits = new OffsetCommits({ lostMembership });
  const sent: PartitionOffset[][] = [];
  const first = Promise.withResolvers<void>();
  const send: CommitRequest = (offsets) => {
    sent.push([...offsets]);
    return sent.length === 1 ? first.promise : Promise.resolve();
  };
  commits.durable("t", 0, 10n);
  const a = commits.flush(send);
  await Promise.resolve();
  commits.durable("t", 0, 20n);
  const b = commits.flush(send);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(sent, [[{ topic: "t", partition: 0, offset: "10" }]], "second waits");
  first.resolve();
  await Promise.all([a, b]);
  assert.deepEqual(sent, [
    [{ topic: "t", partition: 0, offset: "10" }],
    [{ topic: "t", partition: 0, offset: "20" }],
  ]);
});

Deno.test("OffsetCommits drops a commit the group refused and reports it", async () => {
  const refused: PartitionOffset[][] = [];
  const commits = new OffsetCommits({
    lostMembership,
    onRefused: (offsets) => refused.push([...offsets]),
  });
  commits.durable("t", 0, 10n);
  await commits.flush(() => Promise.reject(refusal()));
  assert.deepEqual(refused, [[{ topic: "t", partition: 0, offset: "10" }]]);
  const { send, sent } = recorder();
  await commits.flush(send);
  assert.deepEqual(sent, [], "redelivered to the new owner, not committed again");
});

Deno.test("OffsetCommits keeps a failed commit's offsets for the next flush, newer ones winning", async () => {
  const failed: unknown[] = [];
  let committed = 0;
  const commits = new OffsetCommits({
    lostMembership,
    onFailed: (_, error) => failed.push(error),
    onCommitted: () => committed++,
  });
  commits.durable("t", 0, 10n);
  commits.durable("t", 1, 7n);
  const slow = Promise.withResolvers<void>();
  const flushing = commits.flush(() => slow.promise);
  await Promise.resolve();
  commits.durable("t", 0, 15n); // durable while the failing commit is in flight
  slow.reject(new Error("request timed out"));
  await flushing;
  assert.equal(failed.length, 1);
  assert.equal(committed, 0);
  const { send, sent } = recorder();
  await commits.flush(send);
  assert.deepEqual(sent, [[
    { topic: "t", partition: 0, offset: "15" },
    { topic: "t", partition: 1, offset: "7" },
  ]]);
  assert.equal(committed, 1);
});

Deno.test("OffsetCommits.retain() forgets the partitions the group gave to another member", async () => {
  const commits = new OffsetCommits({ lostMembership });
  commits.durable("t", 0, 1n);
  commits.durable("t", 1, 2n);
  commits.durable("t", 2, 3n);
  commits.durable("u", 1, 4n);
  commits.retain("t", [1]);
  const { send, sent } = recorder();
  await commits.flush(send);
  assert.deepEqual(sent, [[
    { topic: "t", partition: 1, offset: "2" },
    { topic: "u", partition: 1, offset: "4" },
  ]]);
});

Deno.test("OffsetCommits.flush() goes on after a callback threw", async () => {
  const commits = new OffsetCommits({
    lostMembership,
    onCommitted: () => {
      throw new Error("callback bug");
    },
  });
  const { send, sent } = recorder();
  commits.durable("t", 0, 1n);
  await commits.flush(send);
  commits.durable("t", 0, 2n);
  await commits.flush(send);
  assert.equal(sent.length, 2);
});
