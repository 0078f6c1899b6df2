import assert from "node:assert/strict";
import { configEnv, loadConfig } from "../config.ts";
import { SUPERVISOR_PID_VARIABLE } from "../supervisor.ts";
import { PRODUCER_V8_FLAGS, STAGE_V8_FLAGS, STAGES } from "../topology.ts";
import { REPOSITORY_ROOT, roleEnv, roleProcess, ROLES } from "./role.ts";

Deno.test("roleProcess() runs each stage as deno task processor --stage does, with its heap bound", () => {
  for (const stage of STAGES) {
    const spec = roleProcess(stage, { env: { A: "1" } });
    assert.equal(spec.name, stage);
    assert.equal(spec.module, `${REPOSITORY_ROOT}processor/main.ts`);
    assert.deepEqual(spec.args, ["--stage", stage]);
    assert.deepEqual(spec.runtimeFlags, [`--v8-flags=${STAGE_V8_FLAGS}`]);
    assert.deepEqual(spec.env, { A: "1" });
  }
  assert.deepEqual(roleProcess("producer", { env: {} }).runtimeFlags, [
    `--v8-flags=${PRODUCER_V8_FLAGS}`,
  ]);
  assert.deepEqual(roleProcess("status", { env: {} }).runtimeFlags, []);
});

Deno.test("roleProcess() takes a name, more arguments, other heap flags and more deno flags", () => {
  const spec = roleProcess("gold", {
    env: {},
    name: "gold-b",
    args: ["--extra"],
    v8Flags: "--max-old-space-size=96",
    denoFlags: ["--cpu-prof"],
    cwd: "/tmp",
  });
  assert.equal(spec.name, "gold-b");
  assert.deepEqual(spec.args, ["--stage", "gold", "--extra"]);
  assert.deepEqual(spec.runtimeFlags, ["--cpu-prof", "--v8-flags=--max-old-space-size=96"]);
  assert.equal(spec.cwd, "/tmp");
  for (const none of ["", null]) {
    assert.deepEqual(roleProcess("producer", { env: {}, v8Flags: none }).runtimeFlags, []);
  }
});

Deno.test("every role's module exists", async () => {
  for (const { module } of Object.values(ROLES)) {
    assert.ok((await Deno.stat(`${REPOSITORY_ROOT}${module}`)).isFile, module);
  }
});

Deno.test("roleEnv() layers inherited, config, secrets, supervisor and overrides, later winning", () => {
  const config = loadConfig({ KAFKA_BROKERS: "k:1", FINNHUB_API_KEY: "sk-1" });
  const env = roleEnv({
    inherit: { HOME: "/home/x", KAFKA_BROKERS: "old:1" },
    config,
    secrets: { FINNHUB_API_KEY: "sk-1" },
    supervised: true,
    overrides: { FINNHUB_WS_URL: "ws://127.0.0.1:1/" },
  });
  assert.equal(env.HOME, "/home/x");
  assert.equal(env.KAFKA_BROKERS, "k:1");
  assert.equal(env.FINNHUB_API_KEY, "sk-1");
  assert.equal(env[SUPERVISOR_PID_VARIABLE], String(Deno.pid));
  assert.equal(env.FINNHUB_WS_URL, "ws://127.0.0.1:1/");
  assert.equal(loadConfig(env).finnhub.apiKey.reveal(), "sk-1");
  assert.deepEqual(
    roleEnv({ inherit: {}, config }),
    configEnv(config),
    "no supervisor unless asked",
  );
});
