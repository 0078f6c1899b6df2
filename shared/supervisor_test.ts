import assert from "node:assert/strict";
import { delay } from "./delay.ts";
import { createLogger, silentLogger } from "./log.ts";
import {
  stopWhenSupervisorGone,
  supervisedEnv,
  SUPERVISOR_PID_VARIABLE,
  supervisorPid,
} from "./supervisor.ts";

Deno.test("supervisorPid: absent or empty is none; a pid is read; anything else is refused by name", () => {
  assert.equal(supervisorPid({}), null);
  assert.equal(supervisorPid({ [SUPERVISOR_PID_VARIABLE]: "" }), null);
  assert.equal(supervisorPid({ [SUPERVISOR_PID_VARIABLE]: "1" }), 1);
  assert.equal(supervisorPid({ [SUPERVISOR_PID_VARIABLE]: "4194304" }), 4194304);
  for (const bad of ["0", "-1", "1.5", " 12", "12 ", "0x10", "abc", "12345678901", "1e3"]) {
    assert.throws(
      () => supervisorPid({ [SUPERVISOR_PID_VARIABLE]: bad }),
      (error: Error) =>
        error instanceof RangeError && error.message.includes(SUPERVISOR_PID_VARIABLE) &&
        error.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
});

Deno.test("supervisedEnv names this process", () => {
  assert.deepEqual(supervisedEnv(), { [SUPERVISOR_PID_VARIABLE]: String(Deno.pid) });
});

Deno.test("stopWhenSupervisorGone: nothing is watched without a supervisor", async () => {
  let gone = 0;
  const stop = stopWhenSupervisorGone({}, silentLogger(), {
    intervalMs: 5,
    parentPid: () => 999,
    onGone: () => gone++,
  });
  await delay(40);
  stop();
  assert.equal(gone, 0);
});

Deno.test("stopWhenSupervisorGone: stops once, when the parent stops being the supervisor", async () => {
  let parent = 4242;
  let gone = 0;
  const lines: string[] = [];
  const log = createLogger("worker", { write: (line) => lines.push(line) });
  const stop = stopWhenSupervisorGone({ [SUPERVISOR_PID_VARIABLE]: "4242" }, log, {
    intervalMs: 5,
    parentPid: () => parent,
    onGone: () => gone++,
  });
  try {
    await delay(40);
    assert.equal(gone, 0, "the supervisor is still the parent");
    parent = 1;
    await delay(40);
    assert.equal(gone, 1);
    parent = 7;
    await delay(40);
    assert.equal(gone, 1, "once only");
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]!,
      /WARN +worker: supervisor is gone: stopping supervisorPid=4242 parentPid=1/,
    );
  } finally {
    stop();
  }
});

Deno.test("stopWhenSupervisorGone: ended before the supervisor goes, it never fires", async () => {
  let parent = 10;
  let gone = 0;
  const stop = stopWhenSupervisorGone({ [SUPERVISOR_PID_VARIABLE]: "10" }, silentLogger(), {
    intervalMs: 5,
    parentPid: () => parent,
    onGone: () => gone++,
  });
  stop();
  parent = 1;
  await delay(40);
  assert.equal(gone, 0);
});

Deno.test("a real orphan: the worker's SIGTERM handler runs once its supervisor exits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/worker.ts`;
    const out = `${dir}/out.txt`;
    await Deno.writeTextFile(
      script,
      `import { stopWhenSupervisorGone } from ${
        JSON.stringify(new URL("./supervisor.ts", import.meta.url).href)
      };
import { silentLogger } from ${JSON.stringify(new URL("./log.ts", import.meta.url).href)};
Deno.writeTextFileSync(${JSON.stringify(out)}, "running\\n");
Deno.addSignalListener("SIGTERM", () => {
  Deno.writeTextFileSync(${JSON.stringify(out)}, "stopped by SIGTERM\\n", { append: true });
  Deno.exit(0);
});
stopWhenSupervisorGone(Deno.env.toObject(), silentLogger(), { intervalMs: 50 });
setTimeout(() => Deno.exit(3), 30_000);
await new Promise(() => setInterval(() => {}, 1_000));
`,
    );
    // The shell is the supervisor: it starts the worker in the background and exits at once
    // (as a supervisor killed with -9 would), leaving the worker to init.
    const shell = await new Deno.Command("sh", {
      args: [
        "-c",
        `${SUPERVISOR_PID_VARIABLE}=$$ "$0" run -A --quiet "$1" </dev/null >/dev/null 2>&1 & echo $!`,
        Deno.execPath(),
        script,
      ],
      stdout: "piped",
    }).output();
    const workerPid = Number(new TextDecoder().decode(shell.stdout).trim());
    assert.ok(workerPid > 0);
    const deadline = Date.now() + 20_000;
    let text = "";
    while (Date.now() < deadline) {
      text = await Deno.readTextFile(out).catch(() => "");
      if (text.includes("stopped")) break;
      await delay(50);
    }
    assert.equal(text, "running\nstopped by SIGTERM\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
