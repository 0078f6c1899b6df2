import assert from "node:assert/strict";
import {
  duration,
  parseMetricTotals,
  readyBanner,
  renderView,
  summaryLine,
  type ViewState,
} from "./view.ts";

const NOW = Date.UTC(2025, 5, 2, 14, 37, 12);

function state(overrides: Partial<ViewState> = {}): ViewState {
  return {
    now: NOW,
    startedAt: NOW - 192_000,
    feed: "SIMULATED DATA (no FINNHUB_API_KEY)",
    urls: [
      { label: "status", url: "http://127.0.0.1:8080/status" },
      { label: "metrics", url: "http://127.0.0.1:8080/metrics" },
    ],
    status: {
      ready: true,
      reasons: [],
      throughput: {
        producer: { in: 100.4, out: 99.6 },
        bronze: { in: 1234.5, out: 1234.5 },
        silver: { in: 100, out: 98 },
        gold: { in: 98, out: 4 },
      },
      lag: { total: { "market.bronze": 0, "market.silver": 3, "market.gold": 12345 } },
      workers: [
        { role: "producer", up: true },
        { role: "bronze", up: true },
        { role: "silver", up: true },
        { role: "silver", up: true },
        { role: "gold", up: false },
      ],
    },
    statusError: null,
    totals: {
      deadLetters: 2,
      producerDeadLetters: 1,
      writeErrors: 0,
      kafkaErrors: 0,
      dropped: 0,
      retries: 4,
      feedConnected: 1,
    },
    symbols: ["AAPL", "BINANCE:BTCUSDT"],
    candles: [{
      symbol: "AAPL",
      windowStart: Date.UTC(2025, 5, 2, 14, 35),
      open: 189.12,
      high: 189.5,
      low: 188.9,
      close: 189.25,
      volume: "1234.5",
      tradeCount: 321,
      isFinal: false,
    }],
    children: [
      { name: "simulator", pid: 101, state: "running", restarts: 0 },
      { name: "gold", pid: null, state: "restarting", restarts: 2 },
    ],
    problems: ["14:37:01 ERROR processor.gold: stage failed"],
    groupPrefix: "market",
    logDir: ".local/start/logs",
    ...overrides,
  };
}

Deno.test("renderView() shows the feed, URLs, rates and lag per stage, candles and errors", () => {
  const lines = renderView(state(), 120);
  const text = lines.join("\n");
  assert.match(
    lines[0]!,
    /^market pipeline · SIMULATED DATA \(no FINNHUB_API_KEY\) · up 3m12s · ready$/,
  );
  assert.match(text, /status\s+http:\/\/127\.0\.0\.1:8080\/status/);
  assert.match(text, /\nstage\s+in\/s\s+out\/s\s+lag\s+worker\n/);
  assert.match(text, /\nproducer\s+100\s+100\s+-\s+up\n/);
  assert.match(text, /\nbronze\s+1,235\s+1,235\s+0\s+up\n/);
  assert.match(text, /\nsilver\s+100\s+98\s+3\s+up x2\n/);
  assert.match(text, /\ngold\s+98\s+4\.0\s+12,345\s+DOWN\n/);
  assert.match(text, /\nAAPL\s+14:35 open\s+189\.12\s+189\.5\s+188\.9\s+189\.25\s+1234\.5\s+321\n/);
  assert.match(text, /\nBINANCE:BTCUSDT\s+no candle yet\n/);
  assert.match(text, /dead letters 3 · write errors 0 · kafka errors 0 · dropped 0 · retries 4/);
  assert.match(text, /ERROR processor\.gold: stage failed/);
  assert.match(text, /procs\s+simulator 101 · gold restarting restarts 2/);
  assert.match(
    lines.at(-1)!,
    /^Ctrl-C stops everything in order · process logs: \.local\/start\/logs$/,
  );
});

Deno.test("renderView() keeps every line within the width", () => {
  for (const line of renderView(state(), 40)) assert.ok(line.length <= 40, line);
});

Deno.test("renderView() says when the status endpoint does not answer or is not ready", () => {
  const down = renderView(state({ status: null, statusError: "connection refused", totals: null }));
  assert.match(down[0]!, /status endpoint not answering$/);
  assert.match(down.join("\n"), /\nbronze\s+-\s+-\s+-\s+\?\n/);
  assert.match(down.join("\n"), /metrics not available yet/);
  assert.match(down.join("\n"), /status: connection refused/);
  const notReady = renderView(
    state({
      status: { ...state().status!, ready: false, reasons: ["no gold worker is reporting"] },
    }),
    200,
  );
  assert.match(notReady[0]!, /not ready: no gold worker is reporting$/);
});

Deno.test("summaryLine() is one plain line with readiness, rates, lag, errors and candles", () => {
  assert.equal(
    summaryLine(state()),
    "ready · in/out per s producer 100/100, bronze 1,235/1,235, silver 100/98, gold 98/4.0 · " +
      "lag bronze 0, silver 3, gold 12345 · dead letters 3, write errors 0, kafka errors 0, " +
      "dropped 0 · candles 1/2 symbols · restarts 2",
  );
  assert.equal(
    summaryLine(state({ status: null, statusError: "timeout", totals: null, children: [] })),
    "status endpoint not answering (timeout) · candles 1/2 symbols",
  );
});

Deno.test("parseMetricTotals() sums every series of each total, ignoring comments", () => {
  const text = [
    "# HELP pipeline_dead_letters_total Dead letters.",
    "# TYPE pipeline_dead_letters_total counter",
    'pipeline_dead_letters_total{role="silver",reason="bad_price",worker="a"} 3',
    'pipeline_dead_letters_total{role="gold",worker="b"} 1',
    'pipeline_producer_dead_letters_total{role="producer",worker="p"} 2',
    'pipeline_cassandra_write_errors_total{stage="bronze"} 5',
    "pipeline_stage_retries_total 7",
    'pipeline_producer_connected{role="producer",worker="p"} 1',
    "pipeline_dead_letters_totalx 100",
    'pipeline_producer_trades_dropped_total{worker="p"} NaN',
    "",
  ].join("\n");
  assert.deepEqual(parseMetricTotals(text), {
    deadLetters: 4,
    producerDeadLetters: 2,
    writeErrors: 5,
    kafkaErrors: 0,
    dropped: 0,
    retries: 7,
    feedConnected: 1,
  });
});

Deno.test("duration() and readyBanner() format for people", () => {
  assert.equal(duration(6_400), "6s");
  assert.equal(duration(245_000), "4m05s");
  assert.equal(duration(3_723_000), "1h02m03s");
  assert.deepEqual(readyBanner("LIVE DATA from Finnhub", [{ label: "status", url: "u" }], 12_345), [
    "READY in 12.3 s · LIVE DATA from Finnhub",
    "  status   u",
    "  Ctrl-C stops everything in order.",
  ]);
});
