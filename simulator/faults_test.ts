import assert from "node:assert/strict";
import { parseFault, parseFaultFlag } from "./faults.ts";

Deno.test("parseFault() accepts every fault and refuses bad ones with a reason", () => {
  assert.deepEqual(parseFault({ type: "drop" }), { type: "drop" });
  assert.deepEqual(parseFault({ type: "silence", ms: 5000 }), { type: "silence", ms: 5000 });
  assert.deepEqual(parseFault({ type: "malformed", count: 2 }), { type: "malformed", count: 2 });
  assert.deepEqual(parseFault({ type: "hostile-every", ms: 100 }), {
    type: "hostile-every",
    ms: 100,
  });
  assert.deepEqual(parseFault({ type: "refuse", status: 401 }), { type: "refuse", status: 401 });
  assert.throws(() => parseFault(null), /JSON object/);
  assert.throws(() => parseFault({ type: "silence" }), /needs 'ms'/);
  assert.throws(() => parseFault({ type: "refuse", status: 500 }), /401 or 429/);
  assert.throws(() => parseFault({ type: "duplicate", count: 0 }), /at least 1/);
  assert.throws(() => parseFault({ type: "meteor" }), /unknown fault type "meteor"/);
});

Deno.test("parseFaultFlag() reads the simulator's --fault flags", () => {
  assert.deepEqual(parseFaultFlag("drop-every=10000"), { type: "drop-every", ms: 10000 });
  assert.deepEqual(parseFaultFlag("malformed-every=500"), { type: "malformed-every", ms: 500 });
  assert.deepEqual(parseFaultFlag("refuse=429:3"), { type: "refuse", status: 429, count: 3 });
  assert.deepEqual(parseFaultFlag("refuse=401"), { type: "refuse", status: 401 });
  assert.deepEqual(parseFaultFlag("duplicate=2"), { type: "duplicate", count: 2 });
  assert.deepEqual(parseFaultFlag("pause"), { type: "pause" });
  assert.throws(() => parseFaultFlag("silence=soon"), /needs 'ms'/);
});
