/**
 * Producer benchmark: the simulator (a separate process) at increasing rates into the producer
 * (this process) and the real local Kafka. Each step holds a rate for `--duration-s` seconds
 * after a warm-up and reports what the simulator offered, what Kafka acknowledged (acks = all),
 * drops, buffer depth, produce latency, CPU of the producer, the simulator, Kafka and the whole
 * machine, and the producer's resident memory. A step is "sustained" when Kafka acknowledged at
 * least 98% of the target rate, nothing was dropped, and the buffer stayed under a quarter of its
 * bound and ended under one second's worth of trades. Stops after the first step that is not.
 * CPU: process figures are percent of one core; machine and "other" (everything else running on
 * the box: Cassandra, other people's work) are percent of all cores. Run it on a quiet machine.
 *
 *   deno run -A bench/producer_bench.ts [--rates 25000,50000,75000] [--duration-s 60]
 *     [--warmup-s 5] [--symbols 40]
 *
 * Uses the producer's defaults (PRODUCER_* and KAFKA_* from the environment, if set) on fresh
 * topics that it deletes at the end; `PRODUCER_LEASE=none` measures without transactions. Writes
 * the figures to `.artifacts/producer_bench.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ensureServices } from "../local_services/services.ts";
import { loadConfig } from "../shared/config.ts";
import { createKafka, ensureTopics, hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { delay } from "../shared/delay.ts";
import { createLogger } from "../shared/log.ts";
import { roleEnv, roleProcess } from "../shared/process/role.ts";
import { spawnProcess } from "../shared/process/spawn.ts";
import { createProducer } from "../producer/producer.ts";
import { CLOCK_TICKS, cpuTicks, machineTicks, servicePid } from "./proc_stats.ts";
import { benchSymbols } from "./symbols.ts";

const ROOT = new URL("../", import.meta.url);

interface StepResult {
  targetRate: number;
  seconds: number;
  offeredRate: number;
  receivedRate: number;
  ackedRate: number;
  dropped: number;
  bufferMax: number;
  bufferEnd: number;
  produceLatencyMs: { p50: number | null; p99: number | null; max: number | null };
  cpuProducerPct: number;
  /** The producer's CPU time per trade acknowledged, µs. */
  cpuProducerUsPerTrade: number;
  /** Frames read and Kafka sends (batches) per second. */
  framesPerS: number;
  sendsPerS: number;
  cpuSimulatorPct: number;
  cpuKafkaPct: number;
  cpuMachinePct: number;
  /** Machine CPU not used by the producer, the simulator or Kafka (other work on the box). */
  cpuOtherPct: number;
  rssMaxMiB: number;
  simulatorBackpressureSkips: number;
  sustained: boolean;
  why: string;
}

/** The simulator as its own process, generating nothing until told; resolves once it listens. */
async function startSimulatorProcess(symbolsLimit: number) {
  const listening = Promise.withResolvers<RegExpExecArray>();
  const child = spawnProcess(
    roleProcess("simulator", {
      env: roleEnv(),
      args: [
        "--port",
        "0",
        "--rate",
        "0",
        "--symbols-limit",
        String(symbolsLimit),
        "--max-trades-per-frame",
        "50",
      ],
    }),
    {
      onLine: (line) => {
        const match = /listening url=(ws:\/\/\S+) control=(http:\/\/\S+)/.exec(line);
        if (match) listening.resolve(match);
      },
    },
  );
  child.exited.then(() =>
    listening.reject(
      new Error(`the simulator exited before listening:\n${child.tail().join("\n")}`),
    )
  );
  const match = await listening.promise;
  return { child, url: match[1]!, control: match[2]! };
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rates: { type: "string", default: "25000,50000,75000,100000,125000,150000" },
      "duration-s": { type: "string", default: "60" },
      "warmup-s": { type: "string", default: "5" },
      symbols: { type: "string", default: "40" },
    },
  });
  const rates = values.rates.split(",").map(Number);
  const durationMs = Number(values["duration-s"]) * 1000;
  const warmupMs = Number(values["warmup-s"]) * 1000;
  const symbolCount = Number(values.symbols);
  const symbols = benchSymbols(symbolCount);

  hideKafkajsTimeoutWarning();
  const env = Deno.env.toObject();
  await ensureServices(env);
  const sim = await startSimulatorProcess(symbols.length);
  const id = crypto.randomUUID().slice(0, 8);
  const config = loadConfig({
    ...env,
    FINNHUB_WS_URL: sim.url,
    FINNHUB_SYMBOLS: symbols.join(","),
    KAFKA_TOPIC_RAW: `bench.${id}.raw`,
    KAFKA_TOPIC_DEAD_LETTER: `bench.${id}.dlq`,
    LOG_LEVEL: env["LOG_LEVEL"] ?? "warn",
  });
  const log = createLogger("bench", { level: config.logLevel, secrets: [config.finnhub.apiKey] });
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: "bench" });
  const admin = kafka.admin();
  await admin.connect();
  const topics = [
    config.kafka.topics.raw,
    config.kafka.topics.deadLetter,
    config.kafka.topics.gaps,
  ];
  await ensureTopics(admin, config.kafka, topics);

  const controller = new AbortController();
  // As `deno task producer` runs it: sending from this thread, on a client of its own.
  const producer = createProducer({
    config,
    log,
    signal: controller.signal,
    statsIntervalMs: 0,
    // As `deno task producer` with PRODUCER_LEASE=kafka (failover; the default is none): one
    // transaction a batch.
    ...(config.producer.lease === "kafka" ? { transactionalId: `bench.${id}.producer-0` } : {}),
  });
  const running = producer.run();
  const metrics = producer.metrics;
  const control = async (path: string, body?: unknown) => {
    const response = await fetch(
      `${sim.control}${path}`,
      body === undefined ? {} : {
        method: "POST",
        body: JSON.stringify(body),
      },
    );
    return await response.json();
  };
  const simStats = () => control("stats");
  const waitUntil = async (condition: () => boolean) => {
    const deadline = Date.now() + 30_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error("timed out waiting for the producer to connect");
      await delay(50);
    }
  };
  await waitUntil(() => metrics.connectionState === "open");

  console.log(
    `producer bench: ${symbols.length} symbols, ${config.kafka.partitions} partitions, batch ${config.producer.batchMaxTrades}, buffer ${config.producer.bufferMaxTrades}, uncompressed, acks=all, idempotent, ${
      config.producer.lease === "kafka" ? "one transaction a batch" : "no transactions"
    }; ${Deno.env.get("HOSTNAME") ?? ""} ${navigator.hardwareConcurrency} cores`,
  );
  const kpid = servicePid("kafka");
  const results: StepResult[] = [];
  for (const rate of rates) {
    await control("rate", { rate });
    await delay(warmupMs);
    const start = {
      time: performance.now(),
      sent: (await simStats()).tradesSent as number,
      skips: (await simStats()).backpressureSkips as number,
      received: metrics.tradesReceived,
      produced: metrics.tradesProduced,
      frames: metrics.framesReceived,
      sends: metrics.batchesProduced,
      dropped: metrics.tradesDropped,
      cpu: cpuTicks("self"),
      simCpu: cpuTicks(sim.child.pid),
      kafkaCpu: kpid ? cpuTicks(kpid) : NaN,
      machine: machineTicks(),
    };
    let bufferMax = 0;
    let rssMax = 0;
    while (performance.now() - start.time < durationMs) {
      await delay(250);
      bufferMax = Math.max(bufferMax, metrics.bufferDepth);
      rssMax = Math.max(rssMax, Deno.memoryUsage().rss);
    }
    const stats = await simStats();
    const seconds = (performance.now() - start.time) / 1000;
    const machine = machineTicks();
    const snapshot = metrics.snapshot();
    const result: StepResult = {
      targetRate: rate,
      seconds: Math.round(seconds * 10) / 10,
      offeredRate: Math.round((stats.tradesSent - start.sent) / seconds),
      receivedRate: Math.round((snapshot.tradesReceived - start.received) / seconds),
      ackedRate: Math.round((snapshot.tradesProduced - start.produced) / seconds),
      dropped: snapshot.tradesDropped - start.dropped,
      bufferMax,
      bufferEnd: snapshot.bufferDepth,
      produceLatencyMs: {
        p50: snapshot.produceLatencyMs.p50,
        p99: snapshot.produceLatencyMs.p99,
        max: snapshot.produceLatencyMs.max,
      },
      cpuProducerPct: Math.round((cpuTicks("self") - start.cpu) / CLOCK_TICKS / seconds * 100),
      cpuProducerUsPerTrade: Math.round(
        (cpuTicks("self") - start.cpu) / CLOCK_TICKS * 1e6 /
          Math.max(1, snapshot.tradesProduced - start.produced),
      ),
      framesPerS: Math.round((snapshot.framesReceived - start.frames) / seconds),
      sendsPerS: Math.round((snapshot.batchesProduced - start.sends) / seconds),
      cpuSimulatorPct: Math.round(
        (cpuTicks(sim.child.pid) - start.simCpu) / CLOCK_TICKS / seconds * 100,
      ),
      cpuKafkaPct: kpid
        ? Math.round((cpuTicks(kpid) - start.kafkaCpu) / CLOCK_TICKS / seconds * 100)
        : NaN,
      cpuMachinePct: Math.round(
        (machine.busy - start.machine.busy) / (machine.total - start.machine.total) * 100,
      ),
      cpuOtherPct: 0,
      rssMaxMiB: Math.round(rssMax / 1048576),
      simulatorBackpressureSkips: stats.backpressureSkips - start.skips,
      sustained: false,
      why: "",
    };
    // Machine percentages are of all cores; process percentages of one core.
    result.cpuOtherPct = Math.max(
      0,
      Math.round(
        result.cpuMachinePct -
          (result.cpuProducerPct + result.cpuSimulatorPct + (result.cpuKafkaPct || 0)) /
            navigator.hardwareConcurrency,
      ),
    );
    const reasons: string[] = [];
    if (result.ackedRate < rate * 0.98) reasons.push(`acked ${result.ackedRate}/s < 98% of target`);
    if (result.dropped > 0) reasons.push(`${result.dropped} dropped`);
    if (result.bufferMax > config.producer.bufferMaxTrades / 4) {
      reasons.push(`buffer reached ${result.bufferMax}`);
    }
    if (result.bufferEnd > rate) reasons.push(`buffer ended at ${result.bufferEnd}`);
    if (result.offeredRate < rate * 0.98) {
      reasons.push(`simulator offered only ${result.offeredRate}/s`);
    }
    result.sustained = reasons.length === 0;
    result.why = reasons.join("; ") || "ok";
    results.push(result);
    console.log(JSON.stringify(result));
    if (!result.sustained) break;
  }

  await control("rate", { rate: 0 });
  controller.abort();
  const report = await running;
  const offsets = await admin.fetchTopicOffsets(config.kafka.topics.raw);
  const onTopic = offsets.reduce((n, p) => n + Number(p.high), 0);
  const best = results.filter((r) => r.sustained).at(-1);
  const summary = {
    machine: {
      cores: navigator.hardwareConcurrency,
      memoryMiB: Math.round(Deno.systemMemoryInfo().total / 1048576),
    },
    settings: {
      symbols: symbols.length,
      partitions: config.kafka.partitions,
      batchMaxTrades: config.producer.batchMaxTrades,
      bufferMaxTrades: config.producer.bufferMaxTrades,
      durationS: durationMs / 1000,
      warmupS: warmupMs / 1000,
    },
    results,
    highestSustainedRate: best?.targetRate ?? null,
    acked: {
      producedByProducer: report.metrics.tradesProduced,
      recordsOnTopic: onTopic,
      match: onTopic === report.metrics.tradesProduced,
      unflushed: report.unflushed,
    },
  };
  console.log(JSON.stringify(summary, null, 2));
  await Deno.mkdir(new URL(".artifacts/", ROOT), { recursive: true });
  await Deno.writeTextFile(
    new URL(".artifacts/producer_bench.json", ROOT),
    JSON.stringify(summary, null, 2) + "\n",
  );
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  await sim.child.stop(10_000);
  Deno.exit(summary.acked.match ? 0 : 1);
}

await main();
