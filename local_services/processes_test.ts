import assert from "node:assert/strict";
import { isOurProcess, processAlive } from "./processes.ts";

Deno.test("isOurProcess() needs every part of the signature in the command line", async () => {
  const self = Deno.readTextFileSync(`/proc/${Deno.pid}/cmdline`).split("\0")[0]!;
  assert.equal(await isOurProcess(Deno.pid, [self]), true);
  assert.equal(await isOurProcess(Deno.pid, [self, "/no/such/conf"]), false);
});

Deno.test("processAlive() is false for a process that has exited", async () => {
  const child = new Deno.Command("true").spawn();
  await child.status;
  assert.equal(await processAlive(child.pid), false);
  assert.equal(await processAlive(Deno.pid), true);
});
