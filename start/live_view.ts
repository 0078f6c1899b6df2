/**
 * What `deno task start` shows once the pipeline is ready, until it stops: on a terminal the
 * live view (`view.ts`'s {@linkcode renderView}) redrawn every second in the alternate screen;
 * otherwise a summary line every 10 s. The data comes from the status endpoint's `/status` and
 * `/metrics` and, refreshed in the background so a slow Cassandra never stalls the view, the
 * latest 5-minute candle of each symbol.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Config } from "../shared/config.ts";
import { delay } from "../shared/delay.ts";
import { CANDLE_ROW_COLUMNS, candleRowOf, GOLD_TABLE, hasCandle } from "../shared/gold_table.ts";
import { describeError } from "../shared/log.ts";
import type { Children } from "./children.ts";
import { consoleSize, type Output, type Screen } from "./output.ts";
import { authHeaders, FETCH_TIMEOUT_MS } from "./readiness.ts";
import type { StopControl } from "./stop.ts";
import {
  type CandleView,
  type MetricTotals,
  parseMetricTotals,
  renderView,
  type StatusJson,
  summaryLine,
  type ViewState,
} from "./view.ts";

const PLAIN_SUMMARY_MS = 10_000;
const VIEW_REFRESH_MS = 1_000;
const CANDLE_REFRESH_MS = 2_000;

/** Options of {@linkcode showLiveView}. */
export interface LiveViewOptions {
  readonly config: Config;
  readonly out: Output;
  readonly screen: Screen;
  readonly stop: StopControl;
  readonly children: Children;
  /** The status endpoint's base URL. */
  readonly statusBase: string;
  readonly session: cassandra.Client;
  /** What the view shows as fixed lines. */
  readonly frame: Pick<ViewState, "startedAt" | "feed" | "urls" | "logDir">;
}

/** Shows the view (or summary lines) until a stop is requested. */
export async function showLiveView(options: LiveViewOptions): Promise<void> {
  const { config, out, screen, stop, children } = options;
  const source = createViewSource(config, options.statusBase, options.session);
  screen.enter();
  let lastSummary = 0;
  while (!stop.reason) {
    const state: ViewState = {
      ...(await source.read()),
      ...options.frame,
      now: Date.now(),
      symbols: config.finnhub.symbols,
      children: children.views(),
      problems: children.problems,
      groupPrefix: config.kafka.groupPrefix,
    };
    if (stop.reason) break;
    if (screen.active) {
      const { columns, rows } = consoleSize();
      screen.draw(renderView(state, columns).slice(0, rows - 1));
    } else if (Date.now() - lastSummary >= PLAIN_SUMMARY_MS) {
      lastSummary = Date.now();
      out.say(`${new Date().toISOString().slice(11, 19)} ${summaryLine(state)}`);
    }
    await delay(screen.active ? VIEW_REFRESH_MS : 1_000, stop.signal);
  }
}

/** Reads what the view shows: `/status`, `/metrics` and the latest 5m candle per symbol. */
function createViewSource(config: Config, base: string, session: cassandra.Client) {
  let candles: CandleView[] = [];
  let candlesAt = 0;
  let candlesInFlight = false;
  const query = `SELECT ${CANDLE_ROW_COLUMNS} FROM ${config.cassandra.keyspace}.${GOLD_TABLE["5m"]}
    WHERE symbol = ? AND bucket = ? LIMIT 3`;

  async function latestCandle(symbol: string): Promise<CandleView | null> {
    const now = new Date();
    const months = [Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)];
    if (now.getUTCDate() === 1) {
      months.push(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
    }
    for (const month of months) {
      const bucket = new Date(month).toISOString().slice(0, 10);
      const result = await session.execute(query, [symbol, bucket], { prepare: true });
      // The newest row may hold only a feed gap (a window with no trade yet): skip it.
      const row = result.rows.find(hasCandle);
      if (row) return candleRowOf(row, "5m");
    }
    return null;
  }

  return {
    async read(): Promise<
      Pick<ViewState, "status" | "statusError" | "totals" | "candles">
    > {
      const headers = authHeaders(config);
      const signal = () => AbortSignal.timeout(FETCH_TIMEOUT_MS);
      let status: StatusJson | null = null;
      let statusError: string | null = null;
      let totals: MetricTotals | null = null;
      const statusRead = (async () => {
        const response = await fetch(`${base}/status`, { headers, signal: signal() });
        if (!response.ok) throw new Error(`/status answered HTTP ${response.status}`);
        status = await response.json() as StatusJson;
      })().catch((error) => {
        statusError = describeError(error);
      });
      const metricsRead = (async () => {
        const response = await fetch(`${base}/metrics`, { headers, signal: signal() });
        if (!response.ok) {
          await response.body?.cancel();
          return;
        }
        totals = parseMetricTotals(await response.text());
      })().catch(() => {});
      // Candles refresh in the background: a slow Cassandra never stalls the view.
      if (!candlesInFlight && Date.now() - candlesAt >= CANDLE_REFRESH_MS) {
        candlesInFlight = true;
        (async () => {
          const found = await Promise.all(config.finnhub.symbols.map((s) => latestCandle(s)));
          candles = found.filter((c): c is CandleView => c !== null);
        })().catch(() => {}).finally(() => {
          candlesAt = Date.now();
          candlesInFlight = false;
        });
      }
      await Promise.all([statusRead, metricsRead]);
      return { status, statusError, totals, candles };
    },
  };
}
