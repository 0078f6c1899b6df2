/**
 * Producer memory under steady load and under a flood: runs `producer/main.ts` as
 * `deno task producer` does (its own process, {@linkcode PRODUCER_V8_FLAGS}, sending from its
 * main thread) against the simulator (another process) and the real local Kafka, in three phases:
 *
 * 1. steady: `--steady-rate` trades/s for `--steady-s` seconds;
 * 2. flood: `--flood-rate` trades/s (more than the producer can read: the simulator then sends as
 *    fast as the socket takes it) in frames of up to `--frame-trades` trades, plus a hostile
 *    frame every `--hostile-every-ms` (frames over the 512 KiB limit, deeply nested ones: each a
 *    dead letter of up to 512 KiB), for `--flood-s` seconds;
 * 3. after: back to `--steady-rate` for `--after-s` seconds.
 *
 * Every second it reads the producer's VmRSS and RssAnon from `/proc/<pid>/status`; with
 * `--trace-gc` (default on) the producer also runs with V8's `--trace-gc`, and the heap each
 * isolate (the main thread, and any other) has after its latest GC is read from those lines,
 * and its CPU time from `/proc/<pid>/stat`.
 * The producer's counters come from its reports on the metrics topic. Prints, per phase, the peak
 * and the mean of the phase's last 30 seconds, and writes it all to
 * `.artifacts/producer_flood_memory.json`.
 *
 *   deno run -A bench/producer_flood_memory.ts [--steady-rate 8000] [--flood-rate 200000]
 *     [--steady-s 60] [--flood-s 60] [--after-s 120] [--frame-trades 1000]
 *     [--hostile-every-ms 20] [--symbols 40] [--trace-gc true] [--v8-flags FLAGS]
 *     [--cpu-prof-dir DIR]
 *
 * `--v8-flags` replaces the producer's {@linkcode PRODUCER_V8_FLAGS}, to try other bounds;
 * `--cpu-prof-dir` has the producer write a CPU profile there when it exits.
 *
 * Fresh topics and keyspace (dropped at the end). Memory figures hardly depend on other work on
 * the machine, but the rates do: the report lists the load average.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { PRODUCER_V8_FLAGS } from "../shared/topology.ts";
import { isolatedNames, loadConfig } from "../shared/config.ts";
import { createKafka, hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { createLogger } from "../shared/log.ts";
import type { MetricsSnapshot } from "../shared/metrics.ts";
import { createCollector } from "../shared/report_collector.ts";
import { deprovision, provision } from "../shared/provision.ts";
import { randomId } from "../shared/random.ts";
import { createSchemaRegistryClient } from "../shared/schema_registry.ts";
import { createWireCodec } from "../shared/wire.ts";
import { CLOCK_TICKS, cpuTicks } from "./proc_stats.ts";
import { benchSymbols } from "./symbols.ts";

const ROOT = new URL("../", import.meta.url);
const TAIL_S = 30;

interface Settings {
  readonly steadyRate: number;
  readonly floodRate: number;
  readonly steadyS: number;
  readonly floodS: number;
  readonly afterS: number;
  readonly frameTrades: number;
  readonly hostileEveryMs: number;
  readonly symbols: number;
  readonly traceGc: boolean;
  readonly v8Flags: string;
  /** Where the producer writes a V8 CPU profile at exit (`--cpu-prof-dir`); none when empty. */
  readonly cpuProfDir: string;
}

/** One second's sample of the producer. */
interface Sample {
  readonly phase: Phase;
  /** Seconds since the steady phase began. */
  readonly t: number;
  readonly rssMiB: number;
  readonly rssAnonMiB: number;
  /** Anonymous memory in malloc's arenas, and elsewhere (V8's heap pages, large mappings). */
  readonly mallocMiB: number;
  readonly otherAnonMiB: number;
  /**
   * The largest single anonymous mapping outside malloc's arenas: under a flood, the WebSocket's
   * read buffer (Deno's, in Rust), which doubles while frames arrive faster than they are read
   * and is never shrunk.
   */
  readonly largestMapMiB: number;
  /** The producer's CPU time (all its threads) since the steady phase began, s. */
  readonly cpuS: number;
  /** Heap (used, committed) of each isolate after its latest GC, MiB, by isolate label. */
  readonly heaps: Record<string, { used: number; committed: number }>;
  readonly received: number;
  readonly dropped: number;
  readonly acked: number;
  readonly bufferDepth: number;
  readonly deadLetters: number;
  readonly deadLettersDropped: number;
}

type Phase = "steady" | "flood" | "after";

function positive(name: string, text: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`--${name} must be an integer of at least ${min}, got ${text}`);
  }
  return value;
}

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      "steady-rate": { type: "string", default: "8000" },
      "flood-rate": { type: "string", default: "200000" },
      "steady-s": { type: "string", default: "60" },
      "flood-s": { type: "string", default: "60" },
      "after-s": { type: "string", default: "120" },
      "frame-trades": { type: "string", default: "1000" },
      "hostile-every-ms": { type: "string", default: "20" },
      symbols: { type: "string", default: "40" },
      "trace-gc": { type: "string", default: "true" },
      "v8-flags": { type: "string", default: PRODUCER_V8_FLAGS },
      "cpu-prof-dir": { type: "string", default: "" },
    },
  });
  if (values["trace-gc"] !== "true" && values["trace-gc"] !== "false") {
    throw new RangeError(`--trace-gc must be true or false, got ${values["trace-gc"]}`);
  }
  return {
    steadyRate: positive("steady-rate", values["steady-rate"]),
    floodRate: positive("flood-rate", values["flood-rate"]),
    steadyS: positive("steady-s", values["steady-s"]),
    floodS: positive("flood-s", values["flood-s"]),
    afterS: positive("after-s", values["after-s"]),
    frameTrades: positive("frame-trades", values["frame-trades"]),
    hostileEveryMs: positive("hostile-every-ms", values["hostile-every-ms"], 0),
    symbols: positive("symbols", values.symbols),
    traceGc: values["trace-gc"] === "true",
    v8Flags: values["v8-flags"],
    cpuProfDir: values["cpu-prof-dir"],
  };
}

/** VmRSS and RssAnon of `pid`, MiB, or `undefined` once it is gone. */
function memoryOf(pid: number): { rss: number; anon: number } | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]);
    return { rss: kib("VmRSS") / 1024, anon: kib("RssAnon") / 1024 };
  } catch {
    return undefined;
  }
}

const ARENA = 64 * 1024 * 1024;

/**
 * The anonymous memory of `pid` by where it was mapped, MiB: glibc malloc's arenas (the `[heap]`
 * of the main arena, and the 64 MiB-aligned heaps of the threads' arenas: what malloc holds,
 * ArrayBuffer contents and Rust's allocations included), and other anonymous mappings (V8's heap
 * pages, and allocations large enough for malloc to map them on their own).
 */
function anonymousOf(
  pid: number,
): { malloc: number; other: number; largest: number } | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/smaps`);
  } catch {
    return undefined;
  }
  const maps: { start: number; end: number; perm: string; name: string; anon: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (m) {
      maps.push({
        start: parseInt(m[1]!, 16),
        end: parseInt(m[2]!, 16),
        perm: m[3]!,
        name: m[4]!.trim(),
        anon: 0,
      });
    } else if (line.startsWith("Anonymous:") && maps.length > 0) {
      maps.at(-1)!.anon = Number(/(\d+) kB/.exec(line)?.[1] ?? 0);
    }
  }
  let malloc = 0;
  let other = 0;
  let largest = 0;
  maps.forEach((m, i) => {
    if (m.anon === 0) return;
    const next = maps[i + 1];
    const arena = m.start % ARENA === 0 &&
      (m.end - m.start === ARENA ||
        (next !== undefined && next.perm.startsWith("---") && next.end - m.start === ARENA));
    if (m.name === "[heap]" || (m.name === "" && arena)) {
      malloc += m.anon;
    } else {
      other += m.anon;
      if (m.name === "") largest = Math.max(largest, m.anon);
    }
  });
  return { malloc: malloc / 1024, other: other / 1024, largest: largest / 1024 };
}

/**
 * Follows V8's `--trace-gc` lines (`[pid:0xisolate]  1234 ms: Scavenge 10.1 (12.0) -> 9.8 (12.5)
 * MB, ...`) and keeps each isolate's heap after its latest GC. Isolates are told apart by age:
 * the one that started first (the largest "ms" for the time its first line arrived) is the main
 * thread, any others follow in the order they started.
 */
class GcTrace {
  readonly #isolates = new Map<
    string,
    { startedAt: number; used: number; committed: number; maxCommitted: number }
  >();
  #pending = "";

  feed(text: string, now: number): void {
    const lines = (this.#pending + text).split("\n");
    this.#pending = lines.pop() ?? "";
    for (const line of lines) {
      const m =
        /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: .*?([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/
          .exec(line);
      if (!m) continue;
      const [, isolate, ms, , , used, committed] = m;
      let entry = this.#isolates.get(isolate!);
      if (!entry) {
        entry = { startedAt: now - Number(ms), used: 0, committed: 0, maxCommitted: 0 };
        this.#isolates.set(isolate!, entry);
      }
      entry.used = Number(used);
      entry.committed = Number(committed);
      entry.maxCommitted = Math.max(entry.maxCommitted, entry.committed);
    }
  }

  /** Heap of each isolate now, by label (`main`, `kafka0`, `kafka1`, ...). */
  heaps(): Record<string, { used: number; committed: number }> {
    const sorted = [...this.#isolates.values()].sort((a, b) => a.startedAt - b.startedAt);
    return Object.fromEntries(
      sorted.map((e, i) => [i === 0 ? "main" : `kafka${i - 1}`, {
        used: e.used,
        committed: e.committed,
      }]),
    );
  }
}

function counter(snapshot: MetricsSnapshot | undefined, name: string): number {
  const family = snapshot?.families.find((f) => f.name === name);
  return family?.series.reduce((n, s) => n + s.value, 0) ?? 0;
}

async function startSimulator(settings: Settings) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("simulator/main.ts", ROOT).pathname,
      "--port",
      "0",
      "--rate",
      "0",
      "--symbols-limit",
      String(settings.symbols),
      "--max-trades-per-frame",
      String(settings.frameTrades),
      "--ping-interval-ms",
      "5000",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`the simulator exited before listening:\n${buffered}`);
    buffered += value;
    const match = /listening url=(ws:\/\/\S+) control=(http:\/\/\S+)/.exec(buffered);
    if (match) {
      (async () => {
        while (!(await lines.read()).done) { /* discard */ }
      })();
      const control = async (path: string, body?: unknown) => {
        const response = await fetch(
          `${match[2]}${path}`,
          body === undefined ? {} : { method: "POST", body: JSON.stringify(body) },
        );
        return await response.json();
      };
      return { child, url: match[1]!, control };
    }
  }
}

function summarize(samples: readonly Sample[], phase: Phase) {
  const all = samples.filter((s) => s.phase === phase);
  if (all.length === 0) return null;
  const tail = all.slice(-TAIL_S);
  const mean = (xs: readonly number[]) => round(xs.reduce((a, b) => a + b, 0) / xs.length);
  const labels = [...new Set(all.flatMap((s) => Object.keys(s.heaps)))].sort();
  const heaps = Object.fromEntries(labels.map((label) => {
    const committed = all.map((s) => s.heaps[label]?.committed ?? 0);
    const tailCommitted = tail.map((s) => s.heaps[label]?.committed ?? 0);
    return [label, {
      peakCommittedMiB: Math.max(...committed),
      tailCommittedMiB: mean(tailCommitted),
    }];
  }));
  const first = all[0]!;
  const last = all.at(-1)!;
  const seconds = Math.max(1, last.t - first.t);
  return {
    seconds: all.length,
    rssPeakMiB: round(Math.max(...all.map((s) => s.rssMiB))),
    rssTailMeanMiB: mean(tail.map((s) => s.rssMiB)),
    rssAnonPeakMiB: round(Math.max(...all.map((s) => s.rssAnonMiB))),
    rssAnonTailMeanMiB: mean(tail.map((s) => s.rssAnonMiB)),
    mallocPeakMiB: round(Math.max(...all.map((s) => s.mallocMiB))),
    mallocTailMeanMiB: mean(tail.map((s) => s.mallocMiB)),
    largestMapPeakMiB: round(Math.max(...all.map((s) => s.largestMapMiB))),
    heaps,
    cpuPctOfCore: Math.round((last.cpuS - first.cpuS) / seconds * 100),
    receivedPerS: Math.round((last.received - first.received) / seconds),
    ackedPerS: Math.round((last.acked - first.acked) / seconds),
    dropped: last.dropped - first.dropped,
    bufferDepthMax: Math.max(...all.map((s) => s.bufferDepth)),
    deadLetters: last.deadLetters - first.deadLetters,
    deadLettersDropped: last.deadLettersDropped - first.deadLettersDropped,
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

async function main() {
  const settings = parseSettings(Deno.args);
  hideKafkajsTimeoutWarning();
  const id = randomId();
  const symbols = benchSymbols(settings.symbols, "FLOOD");
  const sim = await startSimulator(settings);
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    ...isolatedNames("bench", id),
    FINNHUB_WS_URL: sim.url,
    FINNHUB_API_KEY: `bench-${id}`,
    FINNHUB_SYMBOLS: symbols.join(","),
    LOG_LEVEL: "warn",
  };
  const config = loadConfig(env);
  const log = createLogger("bench", { level: "warn" });
  await provision(config);
  const kafka = createKafka(config.kafka, log, { clientIdSuffix: "bench" });
  const collector = createCollector({
    kafka,
    topic: config.kafka.topics.metrics,
    groupId: `${config.kafka.groupPrefix}.flood-bench`,
    wire: createWireCodec(createSchemaRegistryClient(config.registry)),
    log,
  });
  await collector.start();
  const v8Flags = settings.traceGc ? `${settings.v8Flags},--trace-gc` : settings.v8Flags;
  const producer = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--v8-flags=${v8Flags}`,
      ...(settings.cpuProfDir === ""
        ? []
        : ["--cpu-prof", `--cpu-prof-dir=${settings.cpuProfDir}`]),
      new URL("producer/main.ts", ROOT).pathname,
    ],
    cwd: ROOT.pathname,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const spawnedAt = performance.now();
  const gc = new GcTrace();
  const decoder = new TextDecoder();
  const stdout = (async () => {
    for await (const chunk of producer.stdout) {
      gc.feed(decoder.decode(chunk, { stream: true }), performance.now() - spawnedAt);
    }
  })();
  const errors: string[] = [];
  const stderr = (async () => {
    for await (const chunk of producer.stderr.pipeThrough(new TextDecoderStream())) {
      errors.push(chunk);
      if (errors.length > 200) errors.shift();
    }
  })();
  const loadStart = Deno.loadavg();
  const samples: Sample[] = [];
  let began = 0;
  const latest = () =>
    collector.workers().filter((w) => w.role === "producer").sort((a, b) =>
      b.lastReport - a.lastReport
    )[0]?.snapshot;
  try {
    const deadline = Date.now() + 90_000;
    while (counter(latest(), "pipeline_producer_connected") === 0) {
      if (Date.now() > deadline) {
        throw new Error(`the producer did not connect within 90 s:\n${errors.join("")}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(
      `producer flood memory: pid ${producer.pid}, flags ${v8Flags}, ${symbols.length} symbols, ` +
        `buffer ${config.producer.bufferMaxTrades} trades, load average ${loadStart.join(" ")}`,
    );
    began = performance.now();
    const cpuStart = cpuTicks(producer.pid);
    const phases: [Phase, number, () => Promise<unknown>][] = [
      ["steady", settings.steadyS, () => sim.control("rate", { rate: settings.steadyRate })],
      ["flood", settings.floodS, async () => {
        await sim.control("rate", { rate: settings.floodRate });
        if (settings.hostileEveryMs > 0) {
          await sim.control("fault", { type: "hostile-every", ms: settings.hostileEveryMs });
        }
      }],
      ["after", settings.afterS, async () => {
        await sim.control("fault", { type: "hostile-every", ms: 0 });
        await sim.control("rate", { rate: settings.steadyRate });
      }],
    ];
    for (const [phase, seconds, enter] of phases) {
      await enter();
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        await new Promise((r) => setTimeout(r, 1000));
        const memory = memoryOf(producer.pid);
        if (!memory) throw new Error(`the producer exited:\n${errors.join("")}`);
        const anonymous = anonymousOf(producer.pid) ?? { malloc: NaN, other: NaN, largest: NaN };
        const s = latest();
        const sample: Sample = {
          phase,
          t: Math.round((performance.now() - began) / 100) / 10,
          rssMiB: round(memory.rss),
          rssAnonMiB: round(memory.anon),
          mallocMiB: round(anonymous.malloc),
          otherAnonMiB: round(anonymous.other),
          largestMapMiB: round(anonymous.largest),
          cpuS: round((cpuTicks(producer.pid) - cpuStart) / CLOCK_TICKS),
          heaps: gc.heaps(),
          received: counter(s, "pipeline_producer_trades_received_total"),
          dropped: counter(s, "pipeline_producer_trades_dropped_total"),
          acked: counter(s, "pipeline_producer_trades_acked_total"),
          bufferDepth: counter(s, "pipeline_producer_buffer_depth_trades"),
          deadLetters: counter(s, "pipeline_producer_dead_letters_total"),
          deadLettersDropped: counter(s, "pipeline_producer_dead_letters_dropped_total"),
        };
        samples.push(sample);
        const heaps = Object.entries(sample.heaps).map(([k, v]) => `${k} ${v.committed}`).join(
          ", ",
        );
        console.log(
          `${phase} +${sample.t}s: RSS ${sample.rssMiB} MiB (anon ${sample.rssAnonMiB}: malloc ` +
            `${sample.mallocMiB}, other ${sample.otherAnonMiB}, largest map ${sample.largestMapMiB}), ` +
            `heaps ` +
            `[${heaps}] MiB, received ${sample.received}, dropped ${sample.dropped}, buffer ` +
            `${sample.bufferDepth}, dead letters ${sample.deadLetters} (+${sample.deadLettersDropped} dropped)`,
        );
      }
    }
  } finally {
    await sim.control("rate", { rate: 0 }).catch(() => {});
    try {
      producer.kill("SIGTERM");
    } catch { /* gone */ }
    await producer.status;
    await Promise.all([stdout, stderr]).catch(() => {});
    sim.child.kill("SIGTERM");
    await sim.child.status;
    await collector.stop().catch(() => {});
    await deprovision(config);
  }
  const summary = {
    command: `deno run -A bench/producer_flood_memory.ts ${Deno.args.join(" ")}`.trim(),
    settings,
    v8Flags,
    bufferMaxTrades: config.producer.bufferMaxTrades,
    machine: {
      cores: navigator.hardwareConcurrency,
      loadAverageStart: loadStart,
      loadAverageEnd: Deno.loadavg(),
    },
    phases: {
      steady: summarize(samples, "steady"),
      flood: summarize(samples, "flood"),
      after: summarize(samples, "after"),
    },
    samples,
  };
  console.log(JSON.stringify({ ...summary, samples: undefined }, null, 2));
  await Deno.mkdir(new URL(".artifacts/", ROOT), { recursive: true });
  await Deno.writeTextFile(
    new URL(".artifacts/producer_flood_memory.json", ROOT),
    JSON.stringify(summary, null, 2) + "\n",
  );
}

await main();
