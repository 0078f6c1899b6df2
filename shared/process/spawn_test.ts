import assert from "node:assert/strict";
import { spawnProcess } from "./spawn.ts";

/** A module written for the test; returns its path. */
async function script(code: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(path, code);
  return path;
}

Deno.test("spawnProcess() hands over each line of stdout and stderr and reports the exit", async () => {
  const module = await script(`
    console.log("out " + Deno.args.join(","));
    console.error("err " + Deno.env.get("ONLY"));
    console.log("parent " + (Deno.env.get("SPAWN_TEST_PARENT") ?? "unset"));
    await Deno.stdout.write(new TextEncoder().encode("no newline"));
    Deno.exit(3);
  `);
  Deno.env.set("SPAWN_TEST_PARENT", "set");
  try {
    const lines: string[] = [];
    const run = spawnProcess(
      { name: "t", module, args: ["a", "b"], env: { ONLY: "this" } },
      { onLine: (line) => lines.push(line) },
    );
    assert.equal(run.exit, null);
    assert.ok(run.pid > 0);
    assert.deepEqual(await run.exited, { code: 3, signal: null });
    assert.deepEqual(run.exit, { code: 3, signal: null });
    assert.deepEqual(
      [...lines].sort(),
      ["err this", "no newline", "out a,b", "parent unset"],
      "exactly the environment given, the last line without its newline",
    );
    assert.deepEqual([...run.tail()].sort(), [...lines].sort());
  } finally {
    Deno.env.delete("SPAWN_TEST_PARENT");
    await Deno.remove(module);
  }
});

Deno.test("stop() sends SIGTERM, then SIGKILL once the grace has passed", async () => {
  const module = await script(`
    Deno.addSignalListener("SIGTERM", () => console.log("SIGTERM ignored"));
    console.log("ready");
    setInterval(() => {}, 1000);
  `);
  try {
    const lines: string[] = [];
    const ready = Promise.withResolvers<void>();
    const run = spawnProcess({ name: "t", module, args: [], env: {} }, {
      onLine: (line) => {
        lines.push(line);
        if (line === "ready") ready.resolve();
      },
    });
    await ready.promise;
    const exit = await run.stop(300);
    assert.deepEqual(exit, { code: 137, signal: "SIGKILL" });
    assert.ok(lines.includes("SIGTERM ignored"), lines.join("\n"));
    assert.deepEqual(await run.stop(300), exit, "stopping it again only reports the exit");
  } finally {
    await Deno.remove(module);
  }
});

Deno.test("stop() of a process that exits on SIGTERM resolves with that exit", async () => {
  const module = await script(`console.log("ready"); setInterval(() => {}, 1000);`);
  try {
    const ready = Promise.withResolvers<void>();
    const run = spawnProcess({ name: "t", module, args: [], env: {} }, {
      onLine: (line) => line === "ready" && ready.resolve(),
    });
    await ready.promise;
    assert.deepEqual(await run.stop(60_000), { code: 143, signal: "SIGTERM" });
  } finally {
    await Deno.remove(module);
  }
});
