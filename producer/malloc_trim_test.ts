import assert from "node:assert/strict";
import { FakeClock } from "../shared/clock.ts";
import { createLogger } from "../shared/log.ts";
import { loadMallocTrim, type MallocTrim, startMallocTrim } from "./malloc_trim.ts";

function fakeTrim() {
  const calls: { resolve: (n: number) => void }[] = [];
  let closed = 0;
  const trim: MallocTrim = {
    trim: () => new Promise((resolve) => calls.push({ resolve })),
    close: () => void closed++,
  };
  return { trim, calls, closed: () => closed };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

Deno.test("startMallocTrim() trims every interval, one trim at a time, until stopped", async () => {
  const clock = new FakeClock();
  const fake = fakeTrim();
  const stop = startMallocTrim({
    log: createLogger("test", { write: () => {} }),
    clock,
    intervalMs: 1_000,
    load: () => fake.trim,
  });
  clock.tick(999);
  assert.equal(fake.calls.length, 0);
  clock.tick(1);
  assert.equal(fake.calls.length, 1);
  clock.tick(10_000);
  assert.equal(fake.calls.length, 1, "no second trim while the first runs");
  fake.calls[0]!.resolve(1);
  await settle();
  clock.tick(1_000);
  assert.equal(fake.calls.length, 2, "the next one an interval after the last ended");
  stop();
  assert.equal(fake.closed(), 0, "a running trim keeps the library open");
  fake.calls[1]!.resolve(0);
  await settle();
  assert.equal(fake.closed(), 1);
  clock.tick(10_000);
  assert.equal(fake.calls.length, 2);
  assert.equal(clock.pending, 0);
});

Deno.test("startMallocTrim() does nothing, and says so at debug level, when malloc_trim cannot be loaded", () => {
  const lines: string[] = [];
  const clock = new FakeClock();
  const stop = startMallocTrim({
    log: createLogger("test", { level: "debug", write: (l) => lines.push(l) }),
    clock,
    load: () => loadMallocTrim("no-such-library.so"),
  });
  assert.equal(clock.pending, 0);
  assert.ok(lines.some((l) => l.includes("cannot load malloc_trim")), lines.join("\n"));
  stop();
});

Deno.test({
  name: "loadMallocTrim() calls glibc's malloc_trim",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const trim = loadMallocTrim();
    try {
      assert.ok([0, 1].includes(await trim.trim()));
    } finally {
      trim.close();
    }
  },
});
