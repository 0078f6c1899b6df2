/**
 * Test doubles for the supervisors' unit tests (`supervise_test.ts`, the stage supervisor's):
 * a process handle whose life the test scripts, and fake time whose waits return at once.
 *
 * @module
 */
import type { ProcessExit, ProcessSpec, RunningProcess } from "./spawn.ts";

/** A process handle that lives as `exited` says and stops as `stop` says; no signal, no output. */
export function fakeProcess(handle: {
  readonly spec: ProcessSpec;
  readonly pid: number;
  readonly exit: ProcessExit | null;
  readonly exited: Promise<ProcessExit>;
  readonly stop: () => Promise<ProcessExit>;
}): RunningProcess {
  return { ...handle, kill() {}, tail: () => [] };
}

/** Fake time: `wait(ms)` returns at once, moving `now()` on by `ms`; `waits` lists them. */
export function fakeWaits(start: number) {
  let now = start;
  const waits: number[] = [];
  return {
    now: () => now,
    /** Moves time on without a wait (a process that ran for `ms`). */
    advance(ms: number) {
      now += ms;
    },
    wait(ms: number): Promise<void> {
      waits.push(ms);
      now += ms;
      return Promise.resolve();
    },
    waits,
  };
}
