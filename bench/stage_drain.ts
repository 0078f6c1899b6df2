/**
 * Stage drain benchmark: CPU per trade of each stage, robust to other work on the machine.
 *
 * Fills a fresh raw topic with `--trades` trades (simulator -> producer at `--rate`), stops them,
 * then runs each stage alone (bronze, silver, then gold on what silver published) until its
 * group has committed everything, and reports for each: the CPU time per trade of the stage,
 * of Kafka and of Cassandra (utime + stime from /proc, so contention does not inflate it; the
 * servers' figures do include whatever else uses them meanwhile), and how fast it drained.
 * Batches are as large as the fetch limits allow, as under heavy load.
 *
 *   deno run -A bench/stage_drain.ts [--trades 200000] [--rate 20000] [--symbols 40]
 *     [--stages bronze,silver,gold] [--cpu-prof-dir DIR] [--v8-flags FLAGS] [--keep]
 *
 * Each process runs with its role's heap flags (`shared/process/role.ts`) unless `--v8-flags`
 * replaces the stages' ("" for none). `--cpu-prof-dir` writes a V8 CPU profile of each stage
 * there (open in Chrome DevTools). Run it on a quiet machine; it creates and drops its own topics
 * and keyspace.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Config, isolatedNames, loadConfig } from "../shared/config.ts";
import { createKafka, hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { delay } from "../shared/delay.ts";
import { createLogger } from "../shared/log.ts";
import { roleEnv, type RoleName, roleProcess } from "../shared/process/role.ts";
import { type RunningProcess, spawnProcess } from "../shared/process/spawn.ts";
import { deprovision, provision } from "../shared/provision.ts";
import { randomId } from "../shared/random.ts";
import { CLOCK_TICKS, cpuTicks, rssBytes, servicePid } from "./proc_stats.ts";
import { groupIdOf, inputTopicOf, type StageName } from "../shared/topology.ts";
import { consumerLag } from "../shared/lag.ts";
import { benchSymbols } from "./symbols.ts";

const ROOT = new URL("../", import.meta.url);

interface Spawned {
  readonly process: RunningProcess;
  /** What it printed so far (the last 100 KB or more). */
  readonly output: () => string;
}

function spawnRole(
  role: RoleName,
  env: Record<string, string>,
  options: {
    args?: readonly string[];
    denoFlags?: readonly string[];
    /** Replaces the role's heap flags ("": none). Default: the role's own. */
    v8Flags?: string | undefined;
  } = {},
): Spawned {
  let text = "";
  const process = spawnProcess(
    roleProcess(role, {
      env: roleEnv({ overrides: env }),
      args: options.args ?? [],
      denoFlags: options.denoFlags ?? [],
      ...(options.v8Flags === undefined ? {} : { v8Flags: options.v8Flags }),
      cwd: ROOT.pathname,
    }),
    {
      onLine: (line) => {
        text += `${line}\n`;
        if (text.length > 1_000_000) text = text.slice(-100_000);
      },
    },
  );
  return { process, output: () => text };
}

async function stop(child: Spawned): Promise<void> {
  await child.process.stop(20_000);
}

async function topicCount(
  admin: ReturnType<ReturnType<typeof createKafka>["admin"]>,
  topic: string,
) {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      trades: { type: "string", default: "200000" },
      rate: { type: "string", default: "20000" },
      symbols: { type: "string", default: "40" },
      stages: { type: "string", default: "bronze,silver,gold" },
      "cpu-prof-dir": { type: "string" },
      "v8-flags": { type: "string" },
      keep: { type: "boolean", default: false },
    },
  });
  hideKafkajsTimeoutWarning();
  const trades = Number(values.trades);
  const symbolCount = Number(values.symbols);
  const symbols = benchSymbols(symbolCount);
  const id = randomId();
  const env: Record<string, string> = {
    ...isolatedNames("drain", id),
    FINNHUB_SYMBOLS: symbols.join(","),
    LOG_LEVEL: "warn",
  };
  const config: Config = loadConfig({ ...Deno.env.toObject(), ...env });
  const log = createLogger("drain", { level: "warn" });
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: "drain" });
  const admin = kafka.admin();
  await provision(config);
  await admin.connect();
  const kafkaPid = servicePid("kafka");
  const cassandraPid = servicePid("cassandra");
  const serverTicks = () => ({
    kafka: kafkaPid === null ? NaN : cpuTicks(kafkaPid),
    cassandra: cassandraPid === null ? NaN : cpuTicks(cassandraPid),
  });
  const rows: string[] = [];
  const us = (ticks: number, n: number) => Math.round(ticks / CLOCK_TICKS * 1e6 / n);
  try {
    // Fill.
    const simulator = spawnRole("simulator", {}, {
      args: [
        "--port",
        "0",
        "--rate",
        values.rate,
        "--seed",
        "1",
        "--symbols-limit",
        String(Math.max(50, symbols.length)),
      ],
    });
    let url: string | undefined;
    for (let i = 0; i < 300 && url === undefined; i++) {
      await delay(100);
      url = /listening url=(ws:\/\/\S+)/.exec(simulator.output())?.[1];
    }
    if (url === undefined) throw new Error("simulator did not start");
    const fillStart = serverTicks();
    const producer = spawnRole("producer", { ...env, FINNHUB_WS_URL: url });
    const started = Date.now();
    const producerPid = producer.process.pid;
    let producerTicks = 0;
    for (;;) {
      await delay(500);
      producerTicks = cpuTicks(producerPid);
      const n = await topicCount(admin, config.kafka.topics.raw);
      if (n >= trades) break;
      if (Number.isNaN(producerTicks)) throw new Error(`producer exited: ${producer.output()}`);
      if (Date.now() - started > 600_000) throw new Error(`fill stalled at ${n} trades`);
    }
    const fillEnd = serverTicks();
    await stop(producer);
    await stop(simulator);
    const filled = await topicCount(admin, config.kafka.topics.raw);
    rows.push(
      `fill: ${filled} trades in ${((Date.now() - started) / 1000).toFixed(1)} s; producer ${
        us(producerTicks, filled)
      } µs/trade (incl. start), kafka ${us(fillEnd.kafka - fillStart.kafka, filled)} µs/trade`,
    );

    for (const stage of values.stages.split(",") as StageName[]) {
      const topic = inputTopicOf(config, stage);
      const total = await topicCount(admin, topic);
      const group = groupIdOf(config, stage);
      const profile = values["cpu-prof-dir"];
      const child = spawnRole(stage, env, {
        denoFlags: profile
          ? ["--cpu-prof", `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${stage}.cpuprofile`]
          : [],
        v8Flags: values["v8-flags"],
      });
      const pid = child.process.pid;
      // Measure from the first commit, so start-up is left out.
      let t0:
        | { stage: number; kafka: number; cassandra: number; at: number; done: number }
        | undefined;
      let rssMax = 0;
      let done = 0;
      for (;;) {
        await delay(250);
        rssMax = Math.max(rssMax, rssBytes(pid) || 0);
        const lag = await consumerLag(admin, [{ group, topic }]);
        const committed = lag.every((l) => l.committed >= 0);
        done = total - lag.reduce((n, l) => n + l.lag, 0);
        if (t0 === undefined && lag.some((l) => l.committed >= 0)) {
          t0 = { stage: cpuTicks(pid), ...serverTicks(), at: performance.now(), done };
        }
        if (committed && done >= total) break;
        if (Number.isNaN(cpuTicks(pid))) throw new Error(`${stage} exited: ${child.output()}`);
      }
      const t1 = { stage: cpuTicks(pid), ...serverTicks(), at: performance.now() };
      await stop(child);
      const n = total - t0!.done;
      rows.push(
        `${stage}: ${n} records in ${((t1.at - t0!.at) / 1000).toFixed(1)} s (${
          Math.round(n / ((t1.at - t0!.at) / 1000))
        }/s); CPU µs/record: ${stage} ${us(t1.stage - t0!.stage, n)}, kafka ${
          us(t1.kafka - t0!.kafka, n)
        }, cassandra ${us(t1.cassandra - t0!.cassandra, n)}; peak RSS ${
          Math.round(rssMax / 1048576)
        } MiB`,
      );
      console.log(rows.at(-1));
    }
  } finally {
    await admin.disconnect();
    if (!values.keep) await deprovision(config);
  }
  console.log(`\nload ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
  for (const row of rows) console.log(row);
  return 0;
}

Deno.exit(await main());
