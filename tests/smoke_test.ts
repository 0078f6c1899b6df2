/**
 * `deno task smoke` says FAIL, and exits 1, when the pipeline is not whole: nothing at the
 * simulator URL, no producer connected, and (against real Kafka and Cassandra) a pipeline whose
 * gold stage is not running, where bronze, silver, the dead letter and the forced feed gap pass
 * and gold and the lag fail. The passing case runs against `deno task start` in `tests/start_test.ts`.
 */
import assert from "node:assert/strict";
import { isolatedNames, loadConfig } from "../shared/config.ts";
import { startSimulator } from "../simulator/server.ts";
import {
  childProcessEnv,
  cleanup,
  freePort,
  provision,
  runSmoke,
  services,
  waitFor,
} from "./helpers.ts";
import { randomId } from "../shared/random.ts";

const PRODUCER = new URL("../producer/main.ts", import.meta.url).pathname;
const PROCESSOR = new URL("../processor/main.ts", import.meta.url).pathname;

function baseEnv(): Record<string, string> {
  return { ...childProcessEnv(), LOG_LEVEL: "warn" };
}

Deno.test("smoke: exit 2 and the usage on a bad flag", async () => {
  const result = await runSmoke(baseEnv(), ["--bogus"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /Usage: deno task smoke/);
});

Deno.test("smoke: FAIL naming the URL when no simulator answers", async () => {
  const port = freePort();
  const result = await runSmoke({ ...baseEnv(), SIMULATOR_PORT: String(port) }, []);
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(
    result.stdout,
    new RegExp(
      `^FAIL  feed  the simulator does not answer at http://127\\.0\\.0\\.1:${port}$`,
      "m",
    ),
  );
  assert.match(result.stdout, /deno task start without FINNHUB_API_KEY/);
  assert.match(result.stdout, /--simulator http:\/\/simulator:8765/);
  assert.match(result.stdout, /^smoke: FAIL/m);
});

Deno.test("smoke: FAIL when no producer is connected to the simulator", async () => {
  const simulator = await startSimulator({ rate: 0 });
  try {
    const result = await runSmoke(baseEnv(), [
      "--simulator",
      simulator.controlUrl.replace(/\/control\/$/, ""),
      "--timeout",
      "2",
    ]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^FAIL {2}feed {2}no producer is connected to the simulator/m);
  } finally {
    await simulator.close();
  }
});

Deno.test({
  name:
    "smoke: bronze, silver and the dead letter PASS, gold, the gap in gold and lag FAIL without a gold stage",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await services();
    const simulator = await startSimulator({ rate: 20 });
    const env: Record<string, string> = {
      ...baseEnv(),
      ...isolatedNames("test", randomId()),
      KAFKA_PARTITIONS: "3",
      STATUS_PORT: String(freePort()),
      FINNHUB_WS_URL: simulator.url,
      FINNHUB_SYMBOLS: "AAPL",
    };
    const config = loadConfig(env);
    const children: Deno.ChildProcess[] = [];
    try {
      await provision(config);
      const spawn = (args: string[]) =>
        children.push(
          new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", ...args],
            env,
            clearEnv: true,
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }).spawn(),
        );
      spawn([PRODUCER]);
      spawn([PROCESSOR, "--stage", "bronze"]);
      spawn([PROCESSOR, "--stage", "silver"]);
      await waitFor("the producer connected", () => simulator.stats().connectionsOpen > 0, {
        timeoutMs: 60_000,
      });
      const result = await runSmoke(env, [
        "--simulator",
        simulator.controlUrl.replace(/\/control\/$/, ""),
        "--timeout",
        "40",
      ]);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      for (const check of ["feed", "bronze", "silver", "dead letter", "feed gap"]) {
        assert.match(result.stdout, new RegExp(`^PASS  ${check} `, "m"), result.stdout);
      }
      for (
        const check of ["gold 1m", "gold 5m", "gold 1h", "gold 1d", "gap in gold", "lag", "status"]
      ) {
        assert.match(result.stdout, new RegExp(`^FAIL  ${check} `, "m"), result.stdout);
      }
      assert.match(result.stdout, /no row for window/);
      assert.match(result.stdout, /^smoke: FAIL \(7 of 12 checks failed\)$/m);
      assert.equal(simulator.stats().paused, false, "smoke resumes the simulator's generation");
    } finally {
      for (const child of children) {
        try {
          child.kill("SIGTERM");
        } catch {
          // Already gone.
        }
      }
      for (const child of children) await child.status;
      await simulator.close();
      await cleanup(config);
    }
  },
});
