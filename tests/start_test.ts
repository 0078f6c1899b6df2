/**
 * `deno task start` as a user runs it (a subprocess, output not a terminal), on fresh topics,
 * keyspace, consumer groups and ports: it becomes ready, `deno task smoke` passes against it,
 * SIGINT stops it in order with exit 0 and no process left; started again it resumes and smoke
 * passes again with no duplicate of the first run's trades. And a taken port stops it before
 * anything starts, naming the port, the holder and the variable to change.
 *
 * Needs the local Kafka and Cassandra running (`deno task services:up`); start finds them
 * running, so it neither starts nor stops them.
 */
import assert from "node:assert/strict";
import {
  childProcessEnv,
  cleanup,
  freePort,
  runSmoke,
  services,
  session,
  waitFor,
} from "./helpers.ts";
import { randomId } from "../shared/random.ts";
import { isolatedNames, loadConfig } from "../shared/config.ts";
import { delay } from "../shared/delay.ts";
import { PRODUCER_V8_FLAGS, STAGE_V8_FLAGS, STAGES } from "../shared/topology.ts";

const START = new URL("../start/main.ts", import.meta.url).pathname;

/** A fresh pipeline environment: its own topics, keyspace, groups and ports. */
function freshEnv(): Record<string, string> {
  return {
    HOME: "/tmp", // when this process has none
    ...childProcessEnv(),
    ...isolatedNames("test", randomId()),
    KAFKA_PARTITIONS: "3",
    STATUS_PORT: String(freePort()),
    SIMULATOR_PORT: String(freePort()),
    LOG_LEVEL: "info",
  };
}

interface Running {
  readonly process: Deno.ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  readonly done: Promise<{ code: number; stdout: string; stderr: string }>;
}

function collect(stream: ReadableStream<Uint8Array>, into: { text: string }): Promise<void> {
  return (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) into.text += chunk;
  })();
}

function runStart(env: Record<string, string>): Running {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", START],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { text: "" };
  const err = { text: "" };
  const pumps = Promise.all([collect(process.stdout, out), collect(process.stderr, err)]);
  return {
    process,
    stdout: () => out.text,
    stderr: () => err.text,
    done: (async () => {
      const status = await process.status;
      await pumps;
      return { code: status.code, stdout: out.text, stderr: err.text };
    })(),
  };
}

/** Pids of the children start reported in its "started ..." line. */
function childPids(stdout: string): Map<string, number> {
  const line = stdout.split("\n").find((l) => l.startsWith("start: started "));
  assert.ok(line, `no "started" line in:\n${stdout}`);
  return new Map([...line.matchAll(/(\w+) \(pid (\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]));
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

async function untilReady(run: Running, label: string): Promise<void> {
  await waitFor(`${label}: "READY" from deno task start`, () => {
    if (/^start: READY in /m.test(run.stdout())) return true;
    if (/FAILED|cannot start/.test(run.stderr())) {
      throw new Error(`start failed:\n${run.stdout()}\n${run.stderr().slice(-4000)}`);
    }
    return false;
  }, { timeoutMs: 180_000, intervalMs: 250 });
}

/** One Ctrl-C as a terminal delivers it to a task runner's group: twice, milliseconds apart. */
async function stopWithSigint(run: Running): Promise<{ code: number; stdout: string }> {
  run.process.kill("SIGINT");
  await delay(5);
  run.process.kill("SIGINT");
  const result = await run.done;
  return result;
}

function assertOrderedStop(stdout: string): void {
  const at = (pattern: RegExp) => {
    const index = stdout.search(pattern);
    assert.ok(index >= 0, `missing ${pattern} in:\n${stdout}`);
    return index;
  };
  const signal = at(/^start: SIGINT received: stopping in order$/m);
  const producer = at(/^start: producer stopped in /m);
  const stages = ["bronze", "silver", "gold"].map((s) =>
    at(new RegExp(`^start: stopping ${s} `, "m"))
  );
  const stagesDone = ["bronze", "silver", "gold"].map((s) =>
    at(new RegExp(`^start: ${s} stopped in `, "m"))
  );
  const status = at(/^start: stopping status\.\.\.$/m);
  const simulator = at(/^start: stopping simulator\.\.\.$/m);
  const leftRunning = at(/^start: local kafka, cassandra and registry left running/m);
  const clean = at(/^start: stopped cleanly in /m);
  assert.ok(signal < producer, "the producer stops after the signal");
  for (const s of stages) assert.ok(producer < s, "the stages stop after the producer exited");
  for (const s of stagesDone) assert.ok(s < status && s < simulator, "status/simulator last");
  assert.ok(Math.max(status, simulator) < leftRunning && leftRunning < clean);
}

async function goldAndRows(env: Record<string, string>, symbol: string) {
  const config = loadConfig(env);
  const client = session(config);
  try {
    const count = async (table: string) =>
      (await client.execute(`SELECT count(*) AS n FROM ${table} WHERE symbol = ? ALLOW FILTERING`, [
        symbol,
      ], { prepare: true })).first()!.get("n");
    const gold = await client.execute(
      "SELECT trade_count FROM trades_gold_5m WHERE symbol = ? ALLOW FILTERING",
      [symbol],
      { prepare: true },
    );
    return {
      bronze: Number(await count("trades_bronze")),
      silver: Number(await count("trades_silver")),
      goldTrades: gold.rows.reduce((n, r) => n + Number(r.get("trade_count")), 0),
    };
  } finally {
    await client.shutdown();
  }
}

Deno.test({
  name:
    "deno task start: ready, smoke passes, a killed stage is restarted, SIGINT stops in order with exit 0, a restart resumes without duplicates, children of a killed start stop by themselves",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await services();
    const env = freshEnv();
    const runs: Running[] = [];
    try {
      const t0 = performance.now();
      const first = runStart(env);
      runs.push(first);
      await untilReady(first, "first run");
      const readyMs = performance.now() - t0;
      assert.match(first.stdout(), /SIMULATED DATA/);
      assert.match(
        first.stdout(),
        new RegExp(`status +http://127\\.0\\.0\\.1:${env.STATUS_PORT}/status`),
      );
      const pids = childPids(first.stdout());
      assert.deepEqual([...pids.keys()].sort(), [
        "bronze",
        "gold",
        "producer",
        "silver",
        "simulator",
        "status",
      ]);
      const heapBounds: [string, string, string][] = [
        ...STAGES.map((stage): [string, string, string] => [stage, STAGE_V8_FLAGS, "processor"]),
        ["producer", PRODUCER_V8_FLAGS, "producer"],
      ];
      for (const [child, flags, task] of heapBounds) {
        const argv = Deno.readTextFileSync(`/proc/${pids.get(child)}/cmdline`).split("\0");
        assert.ok(
          argv.includes(`--v8-flags=${flags}`),
          `${child} runs with the heap bounds of deno task ${task}: ${argv.join(" ")}`,
        );
      }

      const smoke = await runSmoke(env, ["-v"]);
      assert.equal(smoke.code, 0, `smoke failed:\n${smoke.stdout}\n${smoke.stderr}`);
      for (
        const check of [
          "feed",
          "bronze",
          "silver",
          "dead letter",
          "gold 1m",
          "gold 5m",
          "gold 1h",
          "gold 1d",
          "gap in gold",
          "lag",
          "status",
        ]
      ) {
        assert.match(smoke.stdout, new RegExp(`^PASS  ${check} `, "m"));
      }
      assert.match(smoke.stdout, /^smoke: PASS/m);
      const symbol = /^smoke: symbol (SMOKE:\S+):/m.exec(smoke.stdout)?.[1];
      assert.ok(symbol, smoke.stdout);

      // A stage killed while running is reported and restarted; it resumes from its commits.
      Deno.kill(pids.get("gold")!, "SIGKILL");
      await waitFor(
        "start to report and restart the killed gold stage",
        () =>
          /gold exited unexpectedly \(killed by SIGKILL\); (restarting it in |its standby takes over)/
            .test(first.stderr()),
        {
          timeoutMs: 30_000,
        },
      );
      const restartedGold = await waitFor("gold reporting again", async () => {
        const response = await fetch(`http://127.0.0.1:${env.STATUS_PORT}/status`);
        const body = await response.json() as {
          workers: { role: string; up: boolean; pid: number }[];
        };
        return body.workers.find((w) => w.role === "gold" && w.up && w.pid !== pids.get("gold"))
          ?.pid;
      }, { timeoutMs: 60_000 });
      pids.set("gold (restarted)", restartedGold);

      const stopped = await stopWithSigint(first);
      assert.equal(stopped.code, 0, `${stopped.stdout}\n${first.stderr().slice(-4000)}`);
      assertOrderedStop(stopped.stdout);
      for (const [name, pid] of pids) {
        assert.ok(!alive(pid), `${name} (pid ${pid}) is still running`);
      }

      const t1 = performance.now();
      const second = runStart(env);
      runs.push(second);
      await untilReady(second, "second run");
      const warmMs = performance.now() - t1;
      const again = await runSmoke(env, []);
      assert.equal(again.code, 0, `second smoke failed:\n${again.stdout}\n${again.stderr}`);
      const rows = await goldAndRows(env, symbol);
      assert.deepEqual(rows, { bronze: 7, silver: 6, goldTrades: 6 }, `rows of ${symbol}`);
      // start itself killed with -9 cannot stop its children (they run in their own sessions):
      // each notices its supervisor is gone and stops by itself, as on Ctrl-C.
      const secondPids = childPids(second.stdout());
      second.process.kill("SIGKILL");
      await second.done.catch(() => {});
      const t2 = performance.now();
      for (const [name, pid] of secondPids) {
        await waitFor(`${name} (pid ${pid}) to stop without its supervisor`, () => !alive(pid), {
          timeoutMs: 45_000,
        });
      }
      const orphanMs = performance.now() - t2;
      console.log(
        `ready after ${(readyMs / 1000).toFixed(1)} s (first run), ${
          (warmMs / 1000).toFixed(1)
        } s (second run); children of a killed start gone after ${(orphanMs / 1000).toFixed(1)} s`,
      );
    } finally {
      for (const run of runs) {
        try {
          run.process.kill("SIGKILL");
        } catch {
          // Already exited.
        }
        await run.done.catch(() => {});
      }
      await cleanup(loadConfig(env));
    }
  },
});

Deno.test({
  name: "deno task start with the status port taken: names port, holder and fix, starts nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = freshEnv();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(env.STATUS_PORT) });
    try {
      const result = await runStart(env).done;
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `cannot start: port ${env.STATUS_PORT} on 127\\.0\\.0\\.1, needed for the status endpoint, ` +
            `is already in use by pid ${Deno.pid} \\(.*deno.*\\)`,
        ),
      );
      assert.match(result.stderr, /set STATUS_PORT=<free port> in \.env/);
      assert.match(result.stderr, /nothing was started/);
      assert.doesNotMatch(result.stdout, /started|simulator \(pid/);
    } finally {
      listener.close();
    }
    // The simulator port was never bound, and nothing answers there.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: Number(env.SIMULATOR_PORT) });
    probe.close();
  },
});
