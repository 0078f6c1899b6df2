/**
 * A real Prometheus for tests: finds the binary (installing the Debian package when running as
 * root on a machine without it), starts it on a free port with a generated config and a
 * temporary storage directory, and queries its HTTP API.
 *
 * @module
 */
import { freePort, waitFor } from "./helpers.ts";

/** How to get the binary, for error messages and CI. */
export const PROMETHEUS_INSTALL_HINT =
  "install it with `apt-get update && apt-get install -y --no-install-recommends prometheus` " +
  "(Debian/Ubuntu; the binary is /usr/bin/prometheus), or set PROMETHEUS_BIN to a prometheus binary";

const CANDIDATES = ["/usr/bin/prometheus", "/usr/local/bin/prometheus", "/bin/prometheus"];

async function runs(path: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(path, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

async function findPrometheus(): Promise<string | undefined> {
  const fromEnv = Deno.env.get("PROMETHEUS_BIN");
  if (fromEnv) {
    if (await runs(fromEnv)) return fromEnv;
    throw new Error(`PROMETHEUS_BIN=${fromEnv} does not run (${fromEnv} --version failed)`);
  }
  for (const path of CANDIDATES) if (await runs(path)) return path;
  return undefined;
}

async function aptGet(args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const result = await new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    const output = decoder.decode(result.stdout) + decoder.decode(result.stderr);
    return { ok: result.success, output };
  } catch (error) {
    return { ok: false, output: (error as Error).message };
  }
}

let installing: Promise<string> | undefined;

/**
 * The path of a working `prometheus` binary. When there is none and this process runs as root
 * with apt-get, installs the Debian package `prometheus` first (without recommends; the
 * package's service is not started in a container, where policy-rc.d forbids it). Otherwise
 * throws, saying how to install it.
 */
export function ensurePrometheus(): Promise<string> {
  installing ??= (async () => {
    const found = await findPrometheus();
    if (found) return found;
    if (Deno.build.os !== "linux" || Deno.uid() !== 0) {
      throw new Error(`Prometheus is not installed: ${PROMETHEUS_INSTALL_HINT}`);
    }
    const install = ["install", "-y", "--no-install-recommends", "prometheus"];
    let result = await aptGet(install);
    if (!result.ok) {
      // A fresh machine has no package lists yet.
      const update = await aptGet(["update"]);
      result = update.ok ? await aptGet(install) : update;
    }
    const after = await findPrometheus();
    if (after) return after;
    throw new Error(
      `Prometheus is not installed and \`apt-get install prometheus\` did not install it ` +
        `(${result.output.trim().split("\n").slice(-3).join(" | ")}): ${PROMETHEUS_INSTALL_HINT}`,
    );
  })();
  installing.catch(() => (installing = undefined));
  return installing;
}

/** One instant-vector sample of a query result. */
export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A running Prometheus; `stop()` in `finally`. */
export interface PrometheusServer {
  readonly url: string;
  /** Evaluates `expr` now (`/api/v1/query`); throws with Prometheus's error when it fails. */
  query(expr: string): Promise<PromSample[]>;
  /** The scrape targets' health, from `/api/v1/targets`. */
  targets(): Promise<{ health: string; lastError: string; scrapeUrl: string }[]>;
  /** Stops Prometheus (SIGTERM, then SIGKILL after 10 s) and removes its storage. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startPrometheus}. */
export interface StartPrometheusOptions {
  /** `host:port` targets to scrape. */
  readonly targets: readonly string[];
  /** Scrape interval in seconds. Default 1. */
  readonly scrapeSeconds?: number;
}

/** Starts Prometheus scraping `targets`; resolves once it is ready. */
export async function startPrometheus(options: StartPrometheusOptions): Promise<PrometheusServer> {
  const binary = await ensurePrometheus();
  const dir = await Deno.makeTempDir({ prefix: "prometheus-test-" });
  const interval = `${options.scrapeSeconds ?? 1}s`;
  // JSON is YAML: Prometheus reads this as its usual YAML config.
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    scrape_configs: [{
      job_name: "market-pipeline-status",
      scrape_interval: interval,
      scrape_timeout: interval,
      metrics_path: "/metrics",
      static_configs: [{ targets: options.targets }],
    }],
  };
  await Deno.writeTextFile(`${dir}/prometheus.yml`, JSON.stringify(config, null, 2));
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(binary, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const logDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (log = (log + chunk).slice(-8000)) }),
  ).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  async function stop(): Promise<void> {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 10_000);
      await status;
      clearTimeout(timer);
    }
    await logDone;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  async function api<T>(path: string): Promise<T> {
    const response = await fetch(`${url}${path}`);
    const body = await response.json() as { status: string; data: T; error?: string };
    if (body.status !== "success") {
      throw new Error(`Prometheus ${path}: ${response.status} ${body.error ?? ""}`);
    }
    return body.data;
  }

  try {
    await waitFor(`Prometheus ready on ${url}`, async () => {
      if (exited) throw new Error(`Prometheus exited: ${log.trim()}`);
      const response = await fetch(`${url}/-/ready`).catch(() => undefined);
      await response?.body?.cancel();
      return response?.ok === true;
    }, { timeoutMs: 30_000, intervalMs: 100 });
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\nPrometheus log: ${log.trim()}`);
  }

  return {
    url,
    async query(expr) {
      const data = await api<
        {
          resultType: string;
          result: { metric: Record<string, string>; value: [number, string] }[];
        }
      >(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      if (data.resultType === "scalar") {
        const [, value] = data.result as unknown as [number, string];
        return [{ metric: {}, value: Number(value) }];
      }
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async targets() {
      const data = await api<
        { activeTargets: { health: string; lastError: string; scrapeUrl: string }[] }
      >(
        "/api/v1/targets",
      );
      return data.activeTargets;
    },
    stop,
  };
}
