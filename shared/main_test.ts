import assert from "node:assert/strict";
import { spawnProcess } from "./process/spawn.ts";

const MAIN = new URL("./main.ts", import.meta.url).href;
/** The project's config, for the npm imports of a module written outside it. */
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Runs `body` (the text of a `runMain` body) as an entry point; its exit and output lines. */
async function runEntryPoint(
  body: string,
  env: Record<string, string> = {},
  options = "{}",
  whenReady?: (pid: number) => void,
) {
  const module = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    module,
    `import { runMain } from ${JSON.stringify(MAIN)};\n` +
      `await runMain("probe", async ({ config, log, signal }) => { ${body} }, ${options});\n`,
  );
  try {
    const lines: string[] = [];
    const run = spawnProcess({
      name: "probe",
      module,
      args: [],
      runtimeFlags: ["--config", CONFIG],
      env: { ...Deno.env.toObject(), ...env },
    }, {
      onLine: (line) => {
        lines.push(line);
        if (line.includes("ready")) whenReady?.(run.pid);
      },
    });
    return { exit: await run.exited, output: lines.join("\n") };
  } finally {
    await Deno.remove(module);
  }
}

Deno.test("runMain() exits with the code the body returns", async () => {
  const { exit } = await runEntryPoint("return config.kafka.partitions;", {
    KAFKA_PARTITIONS: "7",
  });
  assert.equal(exit.code, 7);
});

Deno.test("runMain() refuses a bad variable in one line naming it, exit 1, before the body", async () => {
  const { exit, output } = await runEntryPoint('log.info("body ran"); return 0;', {
    KAFKA_PARTITIONS: "many",
  });
  assert.equal(exit.code, 1);
  assert.match(output, /^probe: cannot start: KAFKA_PARTITIONS .*many/);
  assert.equal(output.split("\n").length, 1, output);
});

Deno.test("runMain() logs an error escaping the body with its secrets redacted, exit 1", async () => {
  const { exit, output } = await runEntryPoint(
    'throw new Error("refused key " + Deno.env.get("FINNHUB_API_KEY"));',
    { FINNHUB_API_KEY: "sk-never-printed" },
  );
  assert.equal(exit.code, 1);
  assert.match(output, /ERROR probe: probe failed error="Error: refused key \[redacted\]"/);
  assert.ok(!output.includes("sk-never-printed"), output);
});

Deno.test("runMain() turns SIGTERM into the body's stop signal", async () => {
  const { exit, output } = await runEntryPoint(
    'log.info("ready"); await new Promise((r) => signal.addEventListener("abort", r)); ' +
      'log.info("stopping in order"); return 0;',
    {},
    "{}",
    (pid) => Deno.kill(pid, "SIGTERM"),
  );
  assert.equal(exit.code, 0, output);
  assert.match(output, /SIGTERM: stopping/);
  assert.match(output, /stopping in order/);
});
