import assert from "node:assert/strict";
import { silentLogger } from "../shared/log.ts";
import type {
  ProcessExit,
  ProcessSpec,
  RunningProcess,
  SpawnOptions,
} from "../shared/process/spawn.ts";
import { createStandby, PROMOTE_SIGNAL, STANDBY_READY } from "./stage_standby.ts";

const SPEC: ProcessSpec = {
  name: "gold-standby",
  module: "/x/processor/main.ts",
  args: ["--stage", "gold", "--standby"],
  env: {},
};

/** Standby processes the test drives: says lines, exits, records the signals it gets. */
function fakeStandbys() {
  const spawned: {
    child: RunningProcess;
    say: (line: string) => void;
    die: () => void;
    signals: string[];
  }[] = [];
  const spawn = (spec: ProcessSpec, options: SpawnOptions): RunningProcess => {
    const done = Promise.withResolvers<ProcessExit>();
    let exit: ProcessExit | null = null;
    const signals: string[] = [];
    const end = (e: ProcessExit) => {
      exit ??= e;
      done.resolve(exit);
    };
    const child: RunningProcess = {
      spec,
      pid: spawned.length + 1,
      exited: done.promise,
      get exit() {
        return exit;
      },
      tail: () => [],
      kill: (signal: Deno.Signal = "SIGKILL") => void signals.push(signal),
      stop: () => {
        end({ code: 0, signal: null });
        return done.promise;
      },
    };
    spawned.push({
      child,
      say: (line) => options.onLine?.(line),
      die: () => end({ code: 1, signal: null }),
      signals,
    });
    return child;
  };
  return { spawn, spawned };
}

function standbyOver(fakes: ReturnType<typeof fakeStandbys>, output: string[] = []) {
  return createStandby({
    spec: SPEC,
    spawn: fakes.spawn,
    output: (l) => output.push(l),
    log: silentLogger(),
  });
}

Deno.test("createStandby() promotes only a standby that said it is ready", () => {
  const fakes = fakeStandbys();
  const output: string[] = [];
  const standby = standbyOver(fakes, output);
  assert.equal(standby.promote(), null, "nothing started");
  standby.start();
  assert.equal(fakes.spawned.length, 1);
  assert.equal(standby.ready(), false);
  assert.equal(standby.promote(), null, "loading: not promoted (SIGUSR1 would kill it)");
  assert.deepEqual(fakes.spawned[0]!.signals, []);
  fakes.spawned[0]!.say(`2026-12-07T00:00:00.000Z INFO  processor.gold: ${STANDBY_READY}`);
  assert.equal(standby.ready(), true);
  assert.equal(standby.promote(), fakes.spawned[0]!.child);
  assert.deepEqual(fakes.spawned[0]!.signals, [PROMOTE_SIGNAL]);
  assert.equal(standby.ready(), false, "handed over: no standby until the next start()");
  assert.equal(output.length, 1, "its lines are passed on");
});

Deno.test("createStandby() starts one standby at a time, and another once it is gone", async () => {
  const fakes = fakeStandbys();
  const standby = standbyOver(fakes);
  standby.start();
  standby.start();
  assert.equal(fakes.spawned.length, 1);
  fakes.spawned[0]!.die();
  await fakes.spawned[0]!.child.exited;
  assert.equal(standby.ready(), false);
  standby.start();
  assert.equal(fakes.spawned.length, 2);
  await standby.stop(1_000);
  assert.deepEqual(fakes.spawned[1]!.child.exit, { code: 0, signal: null });
});
