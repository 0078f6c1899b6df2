import assert from "node:assert/strict";
import {
  dueEnds,
  evictionVictims,
  finalizationHeld,
  releasableEnds,
  TAKEOVER_GRACE_MS,
} from "./open_windows.ts";

const T = Date.parse("2026-11-24T15:00:00Z");
const M5 = 300_000;

Deno.test("finalizationHeld() holds a partition taken over until its grace ends", () => {
  assert.equal(finalizationHeld(undefined, T), false, "never held when not taken over");
  assert.equal(finalizationHeld(T + TAKEOVER_GRACE_MS, T), true);
  assert.equal(finalizationHeld(T + TAKEOVER_GRACE_MS, T + TAKEOVER_GRACE_MS - 1), true);
  assert.equal(finalizationHeld(T + TAKEOVER_GRACE_MS, T + TAKEOVER_GRACE_MS), false);
});

Deno.test("dueEnds() gives the ends the watermark passed, oldest first", () => {
  assert.deepEqual(dueEnds([T + M5, T - M5, T, T + 2 * M5], T), [T - M5, T]);
  assert.deepEqual(dueEnds([T], T - 1), [], "an end one millisecond ahead is not due");
  assert.deepEqual(dueEnds([T], -Infinity), [], "nothing is due before any trade");
});

Deno.test("releasableEnds() keeps an end while a window ending there may be open", () => {
  const state = {
    ends: [T - 2 * M5, T - M5, T, T + M5],
    watermark: T,
    openInMemory: new Set([T - M5]),
    unread: new Set([T]),
  };
  // T - M5 has an open window in memory, T may have some in the index, T + M5 is not due.
  assert.deepEqual(releasableEnds(state), [T - 2 * M5]);
  assert.deepEqual(
    releasableEnds({ ...state, openInMemory: new Set(), unread: new Set() }),
    [T - 2 * M5, T - M5, T],
  );
});

Deno.test("evictionVictims() drops the least recently used it may, down to the target", () => {
  const entries: [string, { written: boolean }][] = [
    ["a", { written: true }],
    ["b", { written: false }],
    ["c", { written: true }],
    ["d", { written: true }],
    ["e", { written: true }],
  ];
  const canLeave = (e: { written: boolean }) => e.written;
  assert.deepEqual(evictionVictims(entries, 5, { max: 5, target: 2, canLeave }), [], "at bound");
  // Over the bound: from the oldest, skipping what may not leave, until 2 remain.
  assert.deepEqual(evictionVictims(entries, 5, { max: 4, target: 2, canLeave }), ["a", "c", "d"]);
  assert.deepEqual(
    evictionVictims(entries, 5, { max: 4, target: 0, canLeave }),
    ["a", "c", "d", "e"],
    "never one that may not leave, even short of the target",
  );
});
