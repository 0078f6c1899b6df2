import assert from "node:assert/strict";
import { silentLogger } from "../../shared/log.ts";
import { FakeClock } from "../../shared/clock.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import type { CandleUpdate } from "../../shared/types.ts";
import { INTERVAL_MS, INTERVALS, windowStart as windowStartOf } from "../../shared/gold_table.ts";
import { candleUpdate } from "../test_doubles.ts";
import { healthOf } from "./health.ts";
import { createMarketHub, MAX_CANDLES_PER_EVENT, MAX_SYMBOLS } from "./hub.ts";

const NOW = Date.parse("2026-12-01T12:03:00Z");
const WINDOW = Date.parse("2026-12-01T12:00:00Z");

/** An update of `symbol`'s forming 5m candle of WINDOW, at NOW. */
function update(symbol: string, overrides: Partial<CandleUpdate> = {}): CandleUpdate {
  return candleUpdate({ symbol, ...overrides });
}

const symbol = (i: number) => `S${i.toString(36).toUpperCase()}`;

function setup(options: { healthFails?: boolean } = {}) {
  const clock = new FakeClock(NOW);
  const metrics = new MetricsRegistry();
  const hub = createMarketHub({
    health: () =>
      options.healthFails
        ? Promise.reject(new Error("Kafka down"))
        : Promise.resolve(healthOf([], [], { groups: {}, now: NOW })),
    log: silentLogger(),
    clock,
    metrics,
  });
  const counter = (name: string) =>
    metrics.snapshot().families.find((f) => f.name === name)?.series[0]?.value ?? 0;
  return { clock, hub, counter };
}

/** The `update` events and comments in `chunks`. */
function parse(chunks: readonly Uint8Array[]) {
  const text = new TextDecoder().decode(
    new Uint8Array(chunks.flatMap((c) => [...c])),
  );
  const events = [...text.matchAll(/^event: update\ndata: (.*)$/gm)].map((m) =>
    JSON.parse(m[1]!) as { candles: { symbol: string }[]; health?: unknown }
  );
  return { events, comments: text.match(/^: .*$/gm) ?? [] };
}

Deno.test("200,000 distinct symbols: the hub remembers the 1000 most recently updated and counts the rest", () => {
  const { hub, counter } = setup();
  try {
    for (let i = 0; i < 200_000; i++) {
      hub.publish(update(symbol(i)));
      hub.publish(update(symbol(i), { interval: "1h", windowEnd: WINDOW + 3_600_000 }));
    }
    hub.publish(update(symbol(199_000))); // updated again: now the most recent
    const seen = hub.symbolsSeen();
    assert.equal(seen.length, MAX_SYMBOLS);
    assert.ok(seen.includes(symbol(199_999)));
    assert.ok(!seen.includes(symbol(198_999)), "the least recently updated are forgotten");
    assert.equal(counter("pipeline_status_market_symbols_evicted_total"), 199_000);
  } finally {
    hub.close();
  }
});

Deno.test("a client without a symbol gets the remembered candles in events of at most 200", async () => {
  const { clock, hub } = setup();
  for (let i = 0; i < 200_000; i++) hub.publish(update(symbol(i)));
  const reader = hub.connect({}).getReader();
  try {
    const chunks: Uint8Array[] = [];
    const candles = new Set<string>();
    let largest = 0;
    for (let i = 0; i < 20 && candles.size < MAX_SYMBOLS; i++) {
      clock.tick(250);
      const { value } = await reader.read();
      chunks.push(value!);
      largest = Math.max(largest, value!.length);
      for (const event of parse([value!]).events) {
        assert.ok(event.candles.length <= MAX_CANDLES_PER_EVENT, `${event.candles.length} candles`);
        for (const c of event.candles) candles.add(c.symbol);
      }
    }
    assert.equal(candles.size, MAX_SYMBOLS, "every remembered symbol, over several events");
    assert.ok(largest < 64 * 1024, `the largest event is ${largest} bytes`);
  } finally {
    await reader.cancel();
    hub.close();
  }
});

Deno.test("a client that does not read holds a bounded backlog while symbols flood in", async () => {
  const { clock, hub, counter } = setup();
  const reader = hub.connect({}).getReader();
  try {
    clock.tick(0); // the stream's buffer (8 events) fills, then the throttle holds values
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10_000; i++) hub.publish(update(symbol(round * 10_000 + i)));
      clock.tick(250);
    }
    const dropped = counter("pipeline_status_market_stream_candles_dropped_total");
    const pending = 2 * INTERVALS.length * MAX_SYMBOLS + 1;
    assert.ok(dropped >= 200_000 - 8 * MAX_CANDLES_PER_EVENT - pending, `${dropped}`);
    // What it gets once it reads: the newest, bounded.
    const { value } = await reader.read();
    assert.ok(value!.length < 64 * 1024);
  } finally {
    await reader.cancel();
    hub.close();
  }
  assert.equal(hub.clients(), 0);
});

Deno.test("a stream with nothing to send gets a keep-alive comment every 15 s", async () => {
  const { clock, hub } = setup({ healthFails: true });
  const reader = hub.connect({ symbol: "AAPL" }).getReader();
  try {
    const chunks: Uint8Array[] = [(await reader.read()).value!]; // retry: 2000
    clock.tick(14_000);
    await Promise.resolve();
    clock.tick(1_000);
    chunks.push((await reader.read()).value!);
    clock.tick(15_000);
    chunks.push((await reader.read()).value!);
    assert.deepEqual(parse(chunks), { events: [], comments: [": keep-alive", ": keep-alive"] });
  } finally {
    await reader.cancel();
    hub.close();
  }
});

Deno.test("a client gets the 1m, 5m, 1h and 1d candles of its symbol, each interval its own", async () => {
  const { clock, hub } = setup();
  const day = Date.parse("2026-12-01T00:00:00Z");
  for (const interval of INTERVALS) {
    const windowStart = windowStartOf(NOW, interval);
    hub.publish(update("AAPL", {
      interval,
      windowStart,
      windowEnd: windowStart + INTERVAL_MS[interval],
    }));
  }
  hub.publish(update("MSFT", { interval: "1d", windowStart: day, windowEnd: day + 86_400_000 }));
  const reader = hub.connect({ symbol: "AAPL" }).getReader();
  try {
    const chunks: Uint8Array[] = [];
    while (parse(chunks).events.length === 0) {
      clock.tick(250);
      chunks.push((await reader.read()).value!);
    }
    const candles = parse(chunks).events.flatMap((e) =>
      e.candles as unknown as { symbol: string; interval: string; time: number }[]
    );
    assert.deepEqual(
      candles.map((c) => [c.symbol, c.interval, c.time]).sort(),
      INTERVALS.map((i) => ["AAPL", i, windowStartOf(NOW, i)]).sort(),
    );
  } finally {
    await reader.cancel();
    hub.close();
  }
});
