import assert from "node:assert/strict";
import { createSignalGate, REPEAT_GRACE_MS } from "./shutdown.ts";

Deno.test("createSignalGate() stops on the first signal and treats repeats within the grace as the same stop", () => {
  let now = 5_000;
  const gate = createSignalGate(1_000, () => now);
  assert.equal(gate(), "stop");
  now += 1; // the task runner forwarding the terminal's SIGINT
  assert.equal(gate(), "repeat");
  now += 998;
  assert.equal(gate(), "repeat");
});

Deno.test("createSignalGate() forces an exit on a signal once the grace has passed", () => {
  let now = 0;
  const gate = createSignalGate(1_000, () => now);
  assert.equal(gate(), "stop");
  now = 1_000;
  assert.equal(gate(), "force");
  now = 60_000;
  assert.equal(gate(), "force");
});

Deno.test("createSignalGate() measures the grace from the first signal, not the latest repeat", () => {
  let now = 0;
  const gate = createSignalGate(1_000, () => now);
  gate();
  now = 900;
  assert.equal(gate(), "repeat");
  now = 1_100;
  assert.equal(gate(), "force");
});

Deno.test("the default grace is one second", () => {
  assert.equal(REPEAT_GRACE_MS, 1_000);
});
