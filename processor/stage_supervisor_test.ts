import assert from "node:assert/strict";
import { silentLogger } from "../shared/log.ts";
import type { ProcessExit, ProcessSpec, RunningProcess } from "../shared/process/spawn.ts";
import { STAGE_V8_FLAGS } from "../shared/topology.ts";
import { superviseStage } from "./stage_supervisor.ts";
import { fakeProcess, fakeWaits } from "../shared/process/test_doubles.ts";

const HOUR = 3_600_000;

/**
 * A fake world for {@linkcode superviseStage}: each stage process runs for the next of `runsMs`
 * of fake time and crashes; once they are used up, the supervisor is asked to stop.
 */
function fakeWorld(runsMs: number[]) {
  const time = fakeWaits(1_700_000_000_000);
  const controller = new AbortController();
  const specs: ProcessSpec[] = [];
  const stopped: string[] = [];
  const spawn = (spec: ProcessSpec): RunningProcess => {
    specs.push(spec);
    const ranMs = runsMs.shift();
    const done = Promise.withResolvers<ProcessExit>();
    const crash = { code: 1, signal: null };
    if (ranMs === undefined) {
      queueMicrotask(() => controller.abort());
    } else {
      queueMicrotask(() => {
        time.advance(ranMs);
        done.resolve(crash);
      });
    }
    return fakeProcess({
      spec,
      pid: specs.length,
      exit: null,
      exited: done.promise,
      stop: () => {
        stopped.push(spec.name);
        const exit = { code: 0, signal: null };
        done.resolve(exit);
        return Promise.resolve(exit);
      },
    });
  };
  return {
    spawn,
    wait: time.wait,
    now: time.now,
    signal: controller.signal,
    waits: time.waits,
    specs,
    stopped,
  };
}

Deno.test("superviseStage() restarts a stage after six crashes hours apart in 1 s, not 30 s", async () => {
  const world = fakeWorld(Array.from({ length: 7 }, () => 6 * HOUR));
  await superviseStage("gold", {
    ...world,
    env: { A: "1" },
    log: silentLogger(),
    children: new Set(),
  });
  assert.equal(world.waits.length, 7);
  assert.equal(world.waits[6], 1_000, `the restart after six crashes waited ${world.waits[6]} ms`);
  assert.deepEqual(world.waits, Array(7).fill(1_000));
});

Deno.test("superviseStage() runs the stage with its heap bound and stops it when asked", async () => {
  const world = fakeWorld([]);
  const children = new Set<RunningProcess>();
  await superviseStage("silver", { ...world, env: { A: "1" }, log: silentLogger(), children });
  assert.equal(world.specs.length, 1);
  assert.deepEqual(world.specs[0]!.args, ["--stage", "silver"]);
  assert.deepEqual(world.specs[0]!.runtimeFlags, [`--v8-flags=${STAGE_V8_FLAGS}`]);
  assert.deepEqual(world.specs[0]!.env, { A: "1" });
  assert.deepEqual(world.stopped, ["silver"]);
  assert.equal(children.size, 0);
});

Deno.test("superviseStage() gives up on a stage that dies a sixth time within 5 minutes", async () => {
  const world = fakeWorld(Array.from({ length: 6 }, () => 2_000));
  const end = await superviseStage("bronze", {
    ...world,
    env: {},
    log: silentLogger(),
    children: new Set(),
  });
  assert.equal(end, "gave-up");
  assert.deepEqual(world.waits, [1_000, 2_000, 4_000, 8_000, 16_000]);
});
