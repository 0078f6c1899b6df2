import assert from "node:assert/strict";
import { join } from "node:path";
import { isOurProcess, processAlive, spawnDetached } from "./processes.ts";

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

Deno.test("spawnDetached() gives the process the timer slack asked for", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const paths = {
      sourceDir: dir,
      dir,
      libDir: dir,
      markerFile: join(dir, "marker"),
      confDir: dir,
      logDir: join(dir, "logs"),
      dataDir: dir,
      tmpDir: dir,
      pidFile: join(dir, "pid"),
      mainLog: join(dir, "logs", "main.log"),
      stdoutLog: join(dir, "logs", "stdout.log"),
    };
    const pid = await spawnDetached("slack", paths, ["cat", "/proc/self/timerslack_ns"], {
      timerSlackNs: 1_000_000,
    });
    assert.ok(pid !== null);
    const deadline = Date.now() + 5_000;
    let log = "";
    while (!/\n\d+\n/.test(log) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      log = await Deno.readTextFile(paths.stdoutLog);
    }
    assert.match(log, /\n1000000\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
