import assert from "node:assert/strict";
import { silentLogger } from "../../shared/log.ts";
import type { FinalityStore, PartitionRecord } from "./finality_store.ts";
import { TAKEOVER_GRACE_MS } from "./open_windows.ts";
import { PartitionStates } from "./partition_states.ts";

const T = Date.parse("2026-11-24T15:00:00Z");

/** A store whose `readPartition` gives `records[partition]` and runs `onRead` first. */
function fakeStore(
  records: Record<number, PartitionRecord>,
  onRead: (partition: number) => void = () => {},
): { store: FinalityStore; reads: number[] } {
  const reads: number[] = [];
  const store = {
    readPartition(partition: number) {
      reads.push(partition);
      onRead(partition);
      return Promise.resolve(records[partition] ?? { clock: undefined, ends: [] });
    },
  } as unknown as FinalityStore;
  return { store, reads };
}

Deno.test("PartitionStates.takeOver() reads every assigned partition and holds it", async () => {
  const clock = { maxEventTime: T - 60_000, lastArrival: T - 30_000 };
  const { store, reads } = fakeStore({ 3: { clock, ends: [T - 300_000, T] } });
  const states = new PartitionStates({ store, now: () => T, log: silentLogger() });
  let forgotten = 0;
  await states.takeOver(() => forgotten++);
  assert.equal(forgotten, 0, "nothing to take over before a rebalance");
  states.assign([3, 4]);
  await states.takeOver(() => forgotten++);
  assert.deepEqual(reads, [3, 4]);
  assert.equal(forgotten, 1);
  assert.deepEqual(states.partitions(), [3, 4]);
  const state = states.get(3)!;
  assert.deepEqual(state.clock, clock);
  assert.equal(state.saved, state.clock);
  assert.deepEqual([...state.ends], [T - 300_000, T]);
  assert.deepEqual([...state.unread], [T - 300_000, T], "every end is read back when due");
  assert.equal(state.heldUntil, T + TAKEOVER_GRACE_MS);
});

Deno.test("PartitionStates.takeOver() reads again when assigned again while reading", async () => {
  const { store, reads } = fakeStore({}, (partition) => {
    if (partition === 1 && reads.length === 1) states.assign([2]);
  });
  const states = new PartitionStates({ store, now: () => T, log: silentLogger() });
  states.assign([1]);
  let forgotten = 0;
  await states.takeOver(() => forgotten++);
  assert.deepEqual(reads, [1, 2]);
  assert.equal(forgotten, 1, "only the last assignment replaces the states");
  assert.deepEqual(states.partitions(), [2]);
});

Deno.test("PartitionStates.getOrRead() reads a partition no rebalance named once", async () => {
  const { store, reads } = fakeStore({});
  const states = new PartitionStates({ store, now: () => T, log: silentLogger() });
  const first = await states.getOrRead(5);
  assert.equal(await states.getOrRead(5), first);
  assert.deepEqual(reads, [5]);
});
