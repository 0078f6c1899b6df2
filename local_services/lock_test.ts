import assert from "node:assert/strict";
import { join } from "node:path";
import { withLock } from "./lock.ts";

async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("withLock() breaks a lock whose holder is dead, and removes its own after", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "services.lock");
  try {
    const stale = { pid: await deadPid(), token: "t", purpose: "up", since: "earlier" };
    await Deno.writeTextFile(file, JSON.stringify(stale));
    const lines: string[] = [];
    const holder = await withLock({ file, purpose: "test", log: (l) => lines.push(l) }, () => {
      return Promise.resolve(JSON.parse(Deno.readTextFileSync(file)).pid);
    });
    assert.equal(holder, Deno.pid);
    assert.deepEqual(lines, [`removed a stale lock ${file}`]);
    await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("withLock() releases the lock when the work throws", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "services.lock");
  try {
    const work = () => Promise.reject(new Error("boom"));
    await assert.rejects(withLock({ file, purpose: "test", log: () => {} }, work), /boom/);
    await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("withLock() with an aborted signal throws its reason and runs nothing", async () => {
  const dir = await Deno.makeTempDir();
  const controller = new AbortController();
  controller.abort(new Error("interrupted"));
  let ran = false;
  try {
    const options = {
      file: join(dir, "l"),
      purpose: "t",
      log: () => {},
      signal: controller.signal,
    };
    await assert.rejects(withLock(options, () => Promise.resolve(ran = true)), /interrupted/);
    assert.equal(ran, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
