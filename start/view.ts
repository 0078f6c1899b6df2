import type { CandleRow } from "../shared/gold_table.ts";
import { METRIC } from "../shared/metric_names.ts";
/**
 * What `deno task start` shows while the pipeline runs, as pure functions of a {@linkcode
 * ViewState}: the compact terminal view ({@linkcode renderView}, redrawn in place about once a
 * second) and the plain summary line ({@linkcode summaryLine}, every 10 s when the output is not
 * a terminal). The data comes from the status endpoint's `/status` and `/metrics` and from the
 * gold table; `main.ts` gathers it, these functions only format.
 *
 * @module
 */

/** The part of the status endpoint's `/status` JSON the view reads. */
export interface StatusJson {
  readonly ready: boolean;
  readonly reasons: readonly string[];
  readonly throughput: Readonly<Record<string, { readonly in: number; readonly out: number }>>;
  readonly lag: { readonly total: Readonly<Record<string, number>> };
  readonly workers: readonly { readonly role: string; readonly up: boolean }[];
}

/** Totals summed over every worker from `/metrics`. */
export interface MetricTotals {
  /** Dead letters published by the stages (`pipeline_dead_letters_total`). */
  readonly deadLetters: number;
  /** Dead letters published by the producer (unparseable frames and trades). */
  readonly producerDeadLetters: number;
  /** Cassandra writes that failed (each is retried). */
  readonly writeErrors: number;
  /** Kafka sends of the producer that failed. */
  readonly kafkaErrors: number;
  /** Trades the producer dropped because its buffer was full. */
  readonly dropped: number;
  /** Batches a stage retried. */
  readonly retries: number;
  /** Producers holding an open feed connection (`pipeline_producer_connected`). */
  readonly feedConnected: number;
}

/** The latest 5-minute candle of one symbol: what the view shows of a gold row. */
export type CandleView = Pick<
  CandleRow,
  "symbol" | "windowStart" | "open" | "high" | "low" | "close" | "volume" | "tradeCount" | "isFinal"
>;

/** One child process as the supervisor sees it. */
export interface ChildView {
  readonly name: string;
  readonly pid: number | null;
  readonly state: "starting" | "running" | "restarting" | "stopping" | "stopped" | "failed";
  readonly restarts: number;
}

/** Everything one frame of the view shows. */
export interface ViewState {
  readonly now: number;
  readonly startedAt: number;
  /** `SIMULATED DATA (...)` or `LIVE DATA from Finnhub`. */
  readonly feed: string;
  readonly urls: readonly { readonly label: string; readonly url: string }[];
  /** `null` when `/status` did not answer; `statusError` then says why. */
  readonly status: StatusJson | null;
  readonly statusError: string | null;
  readonly totals: MetricTotals | null;
  readonly symbols: readonly string[];
  readonly candles: readonly CandleView[];
  readonly children: readonly ChildView[];
  /** The latest WARN/ERROR lines of the children, newest last. */
  readonly problems: readonly string[];
  readonly groupPrefix: string;
  readonly logDir: string | null;
}

/** The rows of the stage table, in pipeline order. */
export const VIEW_ROLES = ["producer", "bronze", "silver", "gold"] as const;

const METRIC_TOTALS: Readonly<Record<keyof MetricTotals, string>> = {
  deadLetters: METRIC.deadLetters,
  producerDeadLetters: METRIC.producerDeadLetters,
  writeErrors: METRIC.cassandraWriteErrors,
  kafkaErrors: METRIC.producerKafkaErrors,
  dropped: METRIC.producerTradesDropped,
  retries: METRIC.stageRetries,
  feedConnected: METRIC.producerConnected,
};

/** Sums each total of {@linkcode MetricTotals} over every series in Prometheus text. */
export function parseMetricTotals(text: string): MetricTotals {
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[2]);
    if (!Number.isFinite(value)) continue;
    sums.set(match[1]!, (sums.get(match[1]!) ?? 0) + value);
  }
  const out: Record<string, number> = {};
  for (const [key, name] of Object.entries(METRIC_TOTALS)) out[key] = sums.get(name) ?? 0;
  return out as unknown as MetricTotals;
}

/** `1234.5` -> `1,235`; below 10 with one decimal. */
function rate(value: number | undefined): string {
  if (value === undefined) return "-";
  if (value < 10) return value.toFixed(1);
  return Math.round(value).toLocaleString("en-US");
}

/** Up to 10 significant digits, no exponent for usual prices. */
function price(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const text = Number(value.toPrecision(10)).toString();
  return text.includes("e") ? value.toExponential(4) : text;
}

/** `HH:MM:SS` of an epoch time in UTC. */
function clock(time: number): string {
  return new Date(time).toISOString().slice(11, 19);
}

/** `1h02m03s`, `4m05s`, `6s`. */
export function duration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m${String(s).padStart(2, "0")}s`;
  if (m > 0) return `${m}m${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

function lagOf(state: ViewState, role: string): number | undefined {
  if (role === "producer") return undefined;
  return state.status?.lag.total[`${state.groupPrefix}.${role}`];
}

function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) =>
    row.map((cell, i) => rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))
      .join("  ").trimEnd()
  );
}

function cut(line: string, width: number): string {
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

/** The terminal view, one string per line, each at most `width` characters. */
export function renderView(state: ViewState, width = 100): string[] {
  const lines: string[] = [];
  const ready = state.status === null
    ? "status endpoint not answering"
    : state.status.ready
    ? "ready"
    : `not ready: ${state.status.reasons.join("; ")}`;
  lines.push(
    `market pipeline · ${state.feed} · up ${duration(state.now - state.startedAt)} · ${ready}`,
  );
  for (const { label, url } of state.urls) lines.push(`  ${label.padEnd(8)} ${url}`);
  lines.push("");

  const stageRows: string[][] = [["stage", "in/s", "out/s", "lag", "worker"]];
  for (const role of VIEW_ROLES) {
    const t = state.status?.throughput[role];
    const lag = lagOf(state, role);
    const workers = state.status?.workers.filter((w) => w.role === role) ?? [];
    const up = workers.filter((w) => w.up).length;
    stageRows.push([
      role,
      rate(t?.in),
      rate(t?.out),
      lag === undefined ? "-" : lag.toLocaleString("en-US"),
      state.status === null ? "?" : up > 0 ? (up > 1 ? `up x${up}` : "up") : "DOWN",
    ]);
  }
  lines.push(...table(stageRows, new Set([1, 2, 3])));
  lines.push("");

  const candleRows: string[][] = [[
    "symbol",
    "5m window (UTC)",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "trades",
  ]];
  const bySymbol = new Map(state.candles.map((c) => [c.symbol, c]));
  for (const symbol of state.symbols) {
    const c = bySymbol.get(symbol);
    if (!c) {
      candleRows.push([symbol, "no candle yet", "", "", "", "", "", ""]);
      continue;
    }
    candleRows.push([
      symbol,
      `${clock(c.windowStart).slice(0, 5)}${c.isFinal ? " final" : " open"}`,
      price(c.open),
      price(c.high),
      price(c.low),
      price(c.close),
      c.volume,
      String(c.tradeCount),
    ]);
  }
  lines.push(...table(candleRows, new Set([2, 3, 4, 5, 6, 7])));
  lines.push("");

  const t = state.totals;
  lines.push(
    t === null
      ? "errors   (metrics not available yet)"
      : `errors   dead letters ${
        t.deadLetters + t.producerDeadLetters
      } · write errors ${t.writeErrors}` +
        ` · kafka errors ${t.kafkaErrors} · dropped ${t.dropped} · retries ${t.retries}`,
  );
  if (state.statusError) lines.push(`         status: ${state.statusError}`);
  for (const problem of state.problems.slice(-3)) lines.push(`  ${problem}`);
  const processes = state.children.map((c) => {
    const restarts = c.restarts > 0 ? ` restarts ${c.restarts}` : "";
    const what = c.state === "running" ? `${c.pid}` : c.state;
    return `${c.name} ${what}${restarts}`;
  });
  lines.push(`procs    ${processes.join(" · ")}`);
  lines.push(
    `Ctrl-C stops everything in order${state.logDir ? ` · process logs: ${state.logDir}` : ""}`,
  );
  return lines.map((line) => cut(line, width));
}

/** The plain progress line for a non-terminal output. */
export function summaryLine(state: ViewState): string {
  const parts: string[] = [];
  if (state.status === null) {
    parts.push(
      `status endpoint not answering${state.statusError ? ` (${state.statusError})` : ""}`,
    );
  } else {
    parts.push(state.status.ready ? "ready" : `not ready (${state.status.reasons.join("; ")})`);
    parts.push(
      "in/out per s " + VIEW_ROLES.map((role) => {
        const t = state.status?.throughput[role];
        return `${role} ${rate(t?.in)}/${rate(t?.out)}`;
      }).join(", "),
    );
    parts.push(
      "lag " +
        VIEW_ROLES.filter((r) => r !== "producer").map((role) =>
          `${role} ${lagOf(state, role) ?? "-"}`
        ).join(", "),
    );
  }
  if (state.totals) {
    const t = state.totals;
    parts.push(
      `dead letters ${
        t.deadLetters + t.producerDeadLetters
      }, write errors ${t.writeErrors}, kafka errors ${t.kafkaErrors}, dropped ${t.dropped}`,
    );
  }
  parts.push(`candles ${state.candles.length}/${state.symbols.length} symbols`);
  const restarts = state.children.reduce((n, c) => n + c.restarts, 0);
  if (restarts > 0) parts.push(`restarts ${restarts}`);
  return parts.join(" · ");
}

/** The lines of the banner printed once everything is ready. */
export function readyBanner(
  feed: string,
  urls: readonly { readonly label: string; readonly url: string }[],
  elapsedMs: number,
): string[] {
  return [
    `READY in ${(elapsedMs / 1000).toFixed(1)} s · ${feed}`,
    ...urls.map(({ label, url }) => `  ${label.padEnd(8)} ${url}`),
    "  Ctrl-C stops everything in order.",
  ];
}
