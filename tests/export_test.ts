/**
 * Candle exports against a real Cassandra: candles with awkward values (0.1 + 0.2 style doubles,
 * 30-digit decimals, a null VWAP, symbols with ':' and '.') are written straight into the gold
 * tables, exported with `deno task export` (file and stdout) and through `/api/candles`
 * (`format=csv|parquet`, with the token), and read back with Python clients from PyPI (pyarrow,
 * DuckDB: tests/export_read.py, tests/requirements.txt) that compare every value with what was
 * written. A second test exports 240,000 candles and checks that the exporter's and the status
 * server's resident memory stays bounded: well below what holding the span would take.
 *
 * Needs `python3 -m pip install -r tests/requirements.txt`.
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import { type Config, configEnv } from "../shared/config.ts";
import { GOLD_TABLE, goldBucket, type Interval } from "../shared/gold_table.ts";
import { childProcessEnv, runCommand, withTestKeyspace } from "./helpers.ts";

const REQUIREMENTS = new URL("./requirements.txt", import.meta.url).pathname;
const READER = new URL("./export_read.py", import.meta.url).pathname;
const EXPORT_MAIN = new URL("../export/main.ts", import.meta.url).pathname;
const SERVER = new URL("./export_server.ts", import.meta.url).pathname;
const TOKEN = "export-test-token-9c2f";

/** A candle as the test writes it, keyed by the export's column names (the reference). */
interface Written {
  symbol: string;
  interval: Interval;
  window_start: number;
  window_end: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: string;
  pv_sum: string;
  vwap: string | null;
  trade_count: number;
  is_final: boolean;
  /** Stored; `coverage` is what the export computes from it (the symbols here always trade). */
  gap_ms: number;
  gap_count: number;
  coverage: number;
}

async function pythonReaders(): Promise<void> {
  const probe = await runCommand(
    new Deno.Command("python3", { args: ["-c", "import pyarrow, duckdb"], stderr: "piped" }),
  ).catch((error) => ({ code: 1, stdout: "", stderr: String(error) }));
  if (probe.code !== 0) {
    throw new Error(
      `this test needs Python's pyarrow and duckdb: python3 -m pip install -r ${REQUIREMENTS} (${probe.stderr.trim()})`,
    );
  }
}

async function insert(client: cassandra.Client, keyspace: string, rows: Iterable<Written>) {
  const queries = new Map<Interval, string>();
  const params = [];
  for (const c of rows) {
    params.push([
      c.symbol,
      cassandra.types.LocalDate.fromString(goldBucket(c.window_start, c.interval)),
      new Date(c.window_start),
      new Date(c.window_end),
      c.open,
      c.high,
      c.low,
      c.close,
      cassandra.types.BigDecimal.fromString(c.volume),
      cassandra.types.BigDecimal.fromString(c.pv_sum),
      c.vwap === null ? null : cassandra.types.BigDecimal.fromString(c.vwap),
      BigInt(c.trade_count),
      c.is_final,
      BigInt(c.gap_ms),
      c.gap_count,
    ]);
    queries.set(
      c.interval,
      `INSERT INTO ${keyspace}.${GOLD_TABLE[c.interval]} (symbol, bucket, window_start, window_end,
        open, high, low, close, volume, pv_sum, vwap, trade_count, is_final, gap_ms, gap_count)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }
  assert.equal(queries.size, 1, "one interval a call");
  await cassandra.concurrent.executeConcurrent(client, [...queries.values()][0]!, params, {
    concurrencyLevel: 64,
  });
}

function exportEnv(config: Config): Record<string, string> {
  return { ...childProcessEnv(), ...configEnv(config), LOG_LEVEL: "warn" };
}

function runExport(config: Config, args: string[], v8Flags: string[] = []) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...v8Flags, EXPORT_MAIN, ...args],
    env: exportEnv(config),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function readBack(
  reference: Written[],
  dir: string,
  files: string[],
  options: string[] = [],
): Promise<string> {
  const referencePath = `${dir}/reference.json`;
  await Deno.writeTextFile(referencePath, JSON.stringify(reference));
  const outcome = await runCommand(
    new Deno.Command("python3", { args: [READER, ...options, referencePath, ...files] }),
  );
  assert.equal(outcome.code, 0, `export_read.py failed:\n${outcome.stdout}${outcome.stderr}`);
  return outcome.stdout;
}

/** The status server of export_server.ts over the config's keyspace; stop() when done. */
async function startServer(config: Config, v8Flags: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...v8Flags, SERVER],
    env: { ...exportEnv(config), EXPORT_TEST_TOKEN: TOKEN },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`export_server.ts ended before listening: ${text}`);
    text += value;
  }
  const port = Number(/listening (\d+)/.exec(text)![1]);
  return {
    pid: child.pid,
    base: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

async function download(url: string, path: string): Promise<Response> {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (response.ok) {
    using file = await Deno.open(path, { write: true, create: true, truncate: true });
    await response.body!.pipeTo(file.writable, { preventClose: true });
  }
  return response;
}

const T0 = Date.UTC(2026, 10, 30, 23, 45); // 15 minutes before a 5m bucket (month) boundary

function tricky(symbol: string): Written[] {
  const base = (i: number, interval: Interval = "5m"): Written => {
    const size = interval === "5m" ? 300_000 : 3_600_000;
    const start = interval === "5m" ? T0 + i * size : Date.UTC(2026, 11, 31, 22) + i * size;
    return {
      symbol,
      interval,
      window_start: start,
      window_end: start + size,
      open: 0.1,
      high: 0.1 + 0.2,
      low: 1e-7,
      close: 123456.789,
      volume: "1",
      pv_sum: "0.1",
      vwap: "0.1",
      trade_count: 1,
      is_final: true,
      gap_ms: 0,
      gap_count: 0,
      coverage: 1,
    };
  };
  return [
    { ...base(0), volume: "0.30000000000000004", pv_sum: "0.09000000000000001", vwap: "0.3" },
    {
      ...base(1),
      volume: "123456789012345678901234567890",
      pv_sum: "12345678901234.56789012345678901",
      vwap: "0.0000000001",
      open: 5e-324,
      high: Number.MAX_VALUE,
    },
    {
      ...base(2),
      volume: "0",
      pv_sum: "0",
      vwap: null,
      trade_count: 0,
      is_final: false,
    },
    {
      ...base(3),
      volume: "0.000000000000000000000000000001",
      trade_count: 9_007_199_254_740_991,
      // 60 s of a 300 s window (the symbol trades around the clock) in two feed gaps.
      gap_ms: 60_000,
      gap_count: 2,
      coverage: 0.8,
    },
    {
      ...base(4),
      volume: "99999999999999999999.999999999",
      pv_sum: "0.000000000000000000000000000001",
    },
    ...[0, 1, 2].map((i) => ({ ...base(i, "1h"), volume: `${i}.5`, pv_sum: `${i}.25` })),
  ];
}

Deno.test({
  name:
    "an export through the task and the API reads back in pyarrow and DuckDB equal to every value written",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await pythonReaders();
    await withTestKeyspace({}, async (config, client) => {
      const keyspace = config.cassandra.keyspace;
      const dotted = tricky("TEST:BRK.B");
      const other = tricky("BRK.A"); // another symbol: never in the export
      for (const rows of [dotted, other]) {
        await insert(client, keyspace, rows.filter((r) => r.interval === "5m"));
        await insert(client, keyspace, rows.filter((r) => r.interval === "1h"));
      }
      const dir = await Deno.makeTempDir({ prefix: "export_test_" });
      const server = await startServer(config);
      try {
        // 5m, across the November/December bucket boundary; the last window (T0 + 20 min) out.
        const from = new Date(T0 + 60_000).toISOString(); // rounds down to T0's window
        const to = String(T0 + 4 * 300_000);
        const want5m = dotted.filter((r) => r.interval === "5m" && r.window_start < Number(to));
        assert.equal(want5m.length, 4);
        const common = ["--symbol", "TEST:BRK.B", "--interval", "5m", "--from", from, "--to", to];
        const files: string[] = [];
        for (const format of ["csv", "parquet"]) {
          const path = `${dir}/task.${format}`;
          const outcome = await runCommand(
            runExport(config, [...common, "--format", format, "--out", path]),
          );
          assert.equal(outcome.code, 0, outcome.stderr);
          assert.match(outcome.stderr, /export: 4 candles of TEST:BRK.B 5m/);
          files.push(`${format}:${path}`);
          const api = `${dir}/api.${format}`;
          const query = new URLSearchParams({
            symbol: "TEST:BRK.B",
            interval: "5m",
            from,
            to,
            format,
          });
          const response = await download(`${server.base}/api/candles?${query}`, api);
          assert.equal(response.status, 200);
          assert.match(
            response.headers.get("content-disposition")!,
            new RegExp(
              `^attachment; filename="TEST_BRK.B_5m_20261130T234600Z_20261201T000500Z\\.${format}"$`,
            ),
          );
          files.push(`${format}:${api}`);
        }
        const stdout = await runCommand(
          runExport(config, [...common, "--format", "csv", "--out", "-"]),
        );
        assert.equal(stdout.code, 0, stdout.stderr);
        assert.equal(stdout.stdout, await Deno.readTextFile(`${dir}/task.csv`));
        assert.equal(await Deno.readTextFile(`${dir}/api.csv`), stdout.stdout);
        console.log(await readBack(want5m, dir, files));

        // 1h across the year bucket boundary.
        const want1h = dotted.filter((r) => r.interval === "1h");
        const hourly = `${dir}/hourly.parquet`;
        const outcome = await runCommand(runExport(config, [
          "--symbol=TEST:BRK.B",
          "--interval=1h",
          "--from=2026-12-31T00:00:00Z",
          "--to=2027-01-02T00:00:00Z",
          "--format=parquet",
          `--out=${hourly}`,
        ]));
        assert.equal(outcome.code, 0, outcome.stderr);
        console.log(await readBack(want1h, dir, [`parquet:${hourly}`]));

        // An empty range is a valid, empty file.
        const empty = `${dir}/empty.parquet`;
        const none = await runCommand(runExport(config, [
          ...common.slice(0, 4),
          "--from=2020-01-01",
          "--to=2020-02-01",
          "--format=parquet",
          `--out=${empty}`,
        ]));
        assert.equal(none.code, 0, none.stderr);
        console.log(await readBack([], dir, [`parquet:${empty}`]));

        // Bad parameters: exit code 2 (nothing written), a 400 naming the parameter.
        const bad = await runCommand(
          runExport(config, [...common, "--format", "xlsx", "--out", `${dir}/bad.csv`]),
        );
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /parameter 'format' must be one of csv, parquet, got "xlsx"/);
        assert.match(bad.stderr, /Usage: deno task export/);
        await assert.rejects(Deno.stat(`${dir}/bad.csv`), Deno.errors.NotFound);
        const badApi = await fetch(
          `${server.base}/api/candles?symbol=TEST:BRK.B&interval=5m&from=${to}&to=${to}&format=csv`,
          { headers: { Authorization: `Bearer ${TOKEN}` } },
        );
        assert.equal(badApi.status, 400);
        assert.match((await badApi.json()).error, /parameter 'from' .* must be before 'to'/);
        const noToken = await fetch(`${server.base}/api/candles?symbol=A&format=csv`);
        assert.equal(noToken.status, 401);
        await noToken.body?.cancel();
      } finally {
        await server.stop();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

const BIG_SYMBOL = "MEM:BIG.1";
const BIG_START = Date.UTC(2024, 0, 1);
const BIG_COUNT = 240_000;
/** A span long enough for every buffer and the heap to reach their working size. */
const SMALL_COUNT = 60_000;
const HEAP_LIMIT = "--v8-flags=--max-old-space-size=64";

function bigCandle(i: number): Written {
  const start = BIG_START + i * 300_000;
  return {
    symbol: BIG_SYMBOL,
    interval: "5m",
    window_start: start,
    window_end: start + 300_000,
    open: 100 + i / 7,
    high: 200 + i / 3,
    low: 0.1 * i,
    close: 100.5,
    volume: `${i}.0${i}1`,
    pv_sum: `${i * 3}.25`,
    vwap: i % 10 === 0 ? null : `${i}.5`,
    trade_count: i,
    is_final: i % 2 === 0,
    gap_ms: 0,
    gap_count: 0,
    coverage: 1,
  };
}

/** Peak resident memory (VmHWM, MiB) of a process, polled until `done` settles. */
async function peakRss(pid: number, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  done.finally(() => finished = true).catch(() => {});
  while (!finished) {
    try {
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb / 1024);
    } catch {
      break; // gone
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return Math.round(peak);
}

async function exportMeasured(config: Config, args: string[]) {
  const child = runExport(config, args, [HEAP_LIMIT]).spawn();
  const output = child.output();
  const peak = await peakRss(child.pid, output);
  const { code, stderr } = await output;
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return peak;
}

async function downloadMeasured(serverPid: number, url: string, path: string) {
  const response = download(url, path);
  const peak = await peakRss(serverPid, response);
  assert.equal((await response).status, 200);
  return peak;
}

Deno.test({
  name:
    "an export of 240,000 candles streams: the exporter's and the server's memory do not grow with the span",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await pythonReaders();
    await withTestKeyspace({}, async (config, client) => {
      const started = performance.now();
      for (let i = 0; i < BIG_COUNT; i += 20_000) {
        const rows = Array.from({ length: 20_000 }, (_, k) => bigCandle(i + k));
        await insert(client, config.cassandra.keyspace, rows);
      }
      console.log(
        `inserted ${BIG_COUNT} candles in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      const dir = await Deno.makeTempDir({ prefix: "export_mem_test_" });
      // A 64 MiB heap limit, as the exporter's: holding the span would fail, not just swell.
      const server = await startServer(config, [HEAP_LIMIT]);
      try {
        const span = (count: number) => [
          "--symbol",
          BIG_SYMBOL,
          "--interval",
          "5m",
          "--from",
          String(BIG_START),
          "--to",
          String(BIG_START + count * 300_000),
        ];
        const peaks: Record<string, number> = {};
        for (const format of ["csv", "parquet"]) {
          for (const count of [SMALL_COUNT, BIG_COUNT]) {
            peaks[`task ${format} ${count}`] = await exportMeasured(config, [
              ...span(count),
              "--format",
              format,
              "--out",
              `${dir}/task_${count}.${format}`,
            ]);
          }
        }
        for (const format of ["csv", "parquet"]) {
          for (const count of [SMALL_COUNT, BIG_COUNT]) {
            const query = new URLSearchParams({
              symbol: BIG_SYMBOL,
              interval: "5m",
              from: String(BIG_START),
              to: String(BIG_START + count * 300_000),
              format,
            });
            peaks[`api ${format} ${count}`] = await downloadMeasured(
              server.pid,
              `${server.base}/api/candles?${query}`,
              `${dir}/api_${count}.${format}`,
            );
          }
        }
        console.log(
          `peak RSS (MiB): ${Object.entries(peaks).map(([k, v]) => `${k}: ${v}`).join(", ")}`,
        );
        // Holding 240,000 candles would take well over 100 MiB (and the exporter runs with a
        // 64 MiB heap limit); a stream's peak is that of a quarter of the span, plus noise (measured:
        // +19 MiB at most on a loaded machine).
        for (const where of ["task csv", "task parquet", "api csv", "api parquet"]) {
          const small = peaks[`${where} ${SMALL_COUNT}`]!;
          const large = peaks[`${where} ${BIG_COUNT}`]!;
          assert.ok(
            large <= small + 48,
            `${where}: ${large} MiB for ${BIG_COUNT} candles, ${small} for ${SMALL_COUNT}`,
          );
        }
        // Every row read and counted by each reader, every 97th compared value for value.
        const reference = Array.from({ length: BIG_COUNT }, (_, i) => bigCandle(i));
        console.log(
          await readBack(reference, dir, [
            `csv:${dir}/task_${BIG_COUNT}.csv`,
            `parquet:${dir}/api_${BIG_COUNT}.parquet`,
          ], ["--every=97"]),
        );
      } finally {
        await server.stop();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});
