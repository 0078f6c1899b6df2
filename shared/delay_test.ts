import assert from "node:assert/strict";
import { delay, delayUnlessAborted } from "./delay.ts";

Deno.test("delay() resolves when the time has passed", async () => {
  const started = performance.now();
  await delay(20);
  assert.ok(performance.now() - started >= 15);
});

Deno.test("delay() resolves at once when its signal aborts, and leaves no timer behind", async () => {
  const controller = new AbortController();
  const waiting = delay(60_000, controller.signal);
  controller.abort();
  await waiting;
  await delay(60_000, controller.signal); // already aborted: no wait at all
});

Deno.test("delayUnlessAborted() rejects with the abort reason, before or during the wait", async () => {
  const controller = new AbortController();
  const waiting = delayUnlessAborted(60_000, controller.signal);
  const reason = new Error("stopping");
  controller.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
  await assert.rejects(delayUnlessAborted(60_000, controller.signal), (error) => error === reason);
});

Deno.test("delayUnlessAborted() resolves when the time passes first", async () => {
  const controller = new AbortController();
  await delayUnlessAborted(5, controller.signal);
  controller.abort(); // after the wait: nothing left listening
});
