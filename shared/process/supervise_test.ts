import assert from "node:assert/strict";
import type { RestartDecision } from "./restart_policy.ts";
import type { ProcessExit, RunningProcess } from "./spawn.ts";
import { supervise } from "./supervise.ts";
import { fakeProcess, fakeWaits } from "./test_doubles.ts";

const CRASH: ProcessExit = { code: 1, signal: null };
const FAKE_SPEC = { name: "fake", module: "fake.ts", args: [], env: {} };

/**
 * Fake processes that each run for the next of `runsMs` (in fake time) and then die, and a fake
 * wait that moves the same time on; once `runsMs` is used up, the next run is stopped.
 */
function fakeWorld(runsMs: number[]) {
  const time = fakeWaits(0);
  const controller = new AbortController();
  const spawn = (): RunningProcess => {
    const ranMs = runsMs.shift();
    if (ranMs === undefined) controller.abort();
    const exit = ranMs === undefined ? { code: 0, signal: "SIGTERM" as const } : CRASH;
    return fakeProcess({
      spec: FAKE_SPEC,
      pid: 1,
      exit,
      exited: Promise.resolve().then(() => {
        time.advance(ranMs ?? 0);
        return exit;
      }),
      stop: () => Promise.resolve(exit),
    });
  };
  return { spawn, wait: time.wait, now: time.now, signal: controller.signal, waits: time.waits };
}

Deno.test("supervise() restarts a dying process with backoff until asked to stop", async () => {
  const world = fakeWorld([100, 100, 100]);
  const starts: number[] = [];
  const end = await supervise({ ...world, onStart: () => starts.push(world.now()) });
  assert.deepEqual(world.waits, [1_000, 2_000, 4_000]);
  assert.equal(starts.length, 4);
  assert.deepEqual(end, { outcome: "stopped", exit: { code: 0, signal: "SIGTERM" } });
});

Deno.test("supervise() gives up after the sixth death in the window and says why", async () => {
  const world = fakeWorld([100, 100, 100, 100, 100, 100, 100]);
  const decisions: RestartDecision[] = [];
  const end = await supervise({ ...world, onDeath: (_exit, d) => void decisions.push(d) });
  assert.equal(end.outcome, "failed");
  assert.deepEqual(end.outcome === "failed" && end.decision, { action: "give-up", deaths: 6 });
  assert.equal(decisions.length, 6);
  assert.deepEqual(world.waits, [1_000, 2_000, 4_000, 8_000, 16_000]);
});

Deno.test("supervise() ends without a restart when onDeath says the death is a failure", async () => {
  const world = fakeWorld([100, 100]);
  const end = await supervise({ ...world, onDeath: () => "fail" });
  assert.equal(end.outcome, "failed");
  assert.deepEqual(end.exit, CRASH);
  assert.deepEqual(world.waits, []);
});

Deno.test("supervise() does not restart once stopped during the wait", async () => {
  const controller = new AbortController();
  let spawned = 0;
  const end = await supervise({
    signal: controller.signal,
    spawn: () => {
      spawned++;
      return fakeProcess({
        spec: FAKE_SPEC,
        pid: 1,
        exit: CRASH,
        exited: Promise.resolve(CRASH),
        stop: () => Promise.resolve(CRASH),
      });
    },
    wait: () => {
      controller.abort();
      return Promise.resolve();
    },
  });
  assert.equal(spawned, 1);
  assert.equal(end.outcome, "stopped");
});
