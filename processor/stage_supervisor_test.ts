import assert from "node:assert/strict";
import { silentLogger } from "../shared/log.ts";
import type {
  ProcessExit,
  ProcessSpec,
  RunningProcess,
  SpawnOptions,
} from "../shared/process/spawn.ts";
import { STAGE_V8_FLAGS } from "../shared/topology.ts";
import { superviseStage } from "./stage_supervisor.ts";
import { PROMOTE_SIGNAL, STANDBY_READY, STANDBY_START_DELAY_MS } from "./stage_standby.ts";
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
    standby: false,
  });
  assert.equal(world.waits.length, 7);
  assert.equal(world.waits[6], 1_000, `the restart after six crashes waited ${world.waits[6]} ms`);
  assert.deepEqual(world.waits, Array(7).fill(1_000));
});

Deno.test("superviseStage() runs the stage with its heap bound and stops it when asked", async () => {
  const world = fakeWorld([]);
  const children = new Set<RunningProcess>();
  await superviseStage("silver", {
    ...world,
    env: { A: "1" },
    log: silentLogger(),
    children,
    standby: false,
  });
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
    standby: false,
  });
  assert.equal(end, "gave-up");
  assert.deepEqual(world.waits, [1_000, 2_000, 4_000, 8_000, 16_000]);
});

/**
 * A fake world with standbys: the first stage process dies (kill -9) shortly after it starts;
 * a standby says it is ready when `readyStandby`; the process that replaces the first (promoted
 * or started anew) runs until the supervisor is asked to stop, shortly after.
 */
function standbyWorld(readyStandby: boolean) {
  const time = fakeWaits(1_700_000_000_000);
  const controller = new AbortController();
  const specs: ProcessSpec[] = [];
  const signals: string[] = [];
  const stopped: number[] = [];
  const active: number[] = [];
  let actives = 0;
  const spawn = (spec: ProcessSpec, options: SpawnOptions): RunningProcess => {
    specs.push(spec);
    const pid = specs.length;
    const done = Promise.withResolvers<ProcessExit>();
    let exit: ProcessExit | null = null;
    const end = (e: ProcessExit) => {
      exit ??= e;
      done.resolve(exit);
    };
    if (spec.args.includes("--standby")) {
      if (readyStandby) {
        options.onLine?.(`2026-12-07T00:00:00.000Z INFO  processor.gold: ${STANDBY_READY}`);
      }
    } else if (actives++ === 0) {
      setTimeout(() => end({ code: 137, signal: "SIGKILL" }), 20);
    } else {
      setTimeout(() => controller.abort(), 20);
    }
    return {
      spec,
      pid,
      exited: done.promise,
      get exit() {
        return exit;
      },
      tail: () => [],
      kill(signal: Deno.Signal = "SIGKILL") {
        signals.push(`${pid} ${signal}`);
        if (signal === PROMOTE_SIGNAL) setTimeout(() => controller.abort(), 20);
      },
      stop() {
        stopped.push(pid);
        end({ code: 0, signal: null });
        return done.promise;
      },
    };
  };
  return {
    spawn,
    wait: time.wait,
    now: time.now,
    signal: controller.signal,
    waits: time.waits,
    specs,
    signals,
    stopped,
    active,
    onActive: (child: RunningProcess) => active.push(child.pid),
    standbyOutput: () => {},
  };
}

Deno.test("superviseStage() promotes the ready standby at once when the stage dies", async () => {
  const world = standbyWorld(true);
  const children = new Set<RunningProcess>();
  const end = await superviseStage("gold", { ...world, env: {}, log: silentLogger(), children });
  assert.equal(end, "stopped");
  assert.deepEqual(world.specs.map((s) => s.name), ["gold", "gold-standby", "gold-standby"]);
  assert.deepEqual(world.specs[1]!.args, ["--stage", "gold", "--standby"]);
  assert.deepEqual(world.active, [1, 2], "the standby (pid 2) became the stage");
  assert.deepEqual(world.signals, [`2 ${PROMOTE_SIGNAL}`]);
  assert.deepEqual(
    world.waits,
    [STANDBY_START_DELAY_MS, STANDBY_START_DELAY_MS],
    "no restart delay",
  );
  assert.deepEqual(world.stopped.sort(), [2, 3], "the stage and the new standby are stopped");
  assert.equal(children.size, 0);
});

Deno.test("superviseStage() restarts from nothing when the standby is not ready yet", async () => {
  const world = standbyWorld(false);
  const children = new Set<RunningProcess>();
  await superviseStage("gold", { ...world, env: {}, log: silentLogger(), children });
  assert.deepEqual(world.specs.map((s) => s.name), ["gold", "gold-standby", "gold"]);
  assert.deepEqual(world.active, [1, 3]);
  assert.deepEqual(world.signals, [], "nothing promoted");
  assert.ok(world.waits.includes(1_000), "the restart delay applies");
  assert.deepEqual(world.stopped.sort(), [2, 3]);
  assert.equal(children.size, 0);
});
