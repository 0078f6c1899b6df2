import assert from "node:assert/strict";
import { encodeCandles } from "../../export/export.ts";
import type { ExportRequest } from "../../export/request.ts";
import { testCandles } from "../../export/test_candles.ts";
import { marketTestApp } from "../test_doubles.ts";
import type { MarketStore } from "./store.ts";

const QUERY =
  "symbol=BINANCE:BTCUSDT&interval=5m&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z";

function setup(options: { token?: string; fail?: "start" | "middle" } = {}) {
  const requests: ExportRequest[] = [];
  const store: MarketStore = {
    gaps: () => Promise.resolve([]),
    candles: () => Promise.resolve([]),
    latest: () => Promise.resolve(null),
    exportCandles(request) {
      requests.push(request);
      const { fail } = options;
      async function* candles() {
        if (fail === "start") throw new Error("Cassandra unavailable");
        yield* testCandles(3);
        if (fail === "middle") throw new Error("Cassandra unavailable");
      }
      return encodeCandles(candles(), request.format, { csvChunkChars: 1 });
    },
  };
  const { app, hub } = marketTestApp(store, { token: options.token ?? "", symbols: ["AAPL"] });
  return { app, hub, requests };
}

Deno.test("/api/candles?format=csv streams the export as a CSV download", async () => {
  const { app, hub, requests } = setup();
  try {
    const response = await app.request(`/api/candles?${QUERY}&format=csv`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/csv; charset=utf-8; header=present");
    assert.equal(
      response.headers.get("content-disposition"),
      'attachment; filename="BINANCE_BTCUSDT_5m_20261201T000000Z_20261202T000000Z.csv"',
    );
    assert.equal(response.headers.get("cache-control"), "no-store");
    const lines = (await response.text()).split("\r\n");
    assert.match(lines[0]!, /^symbol,interval,window_start,/);
    assert.equal(lines.length, 5, "header, 3 candles, and the empty tail after the last CRLF");
    assert.deepEqual(requests, [{
      symbol: "BINANCE:BTCUSDT",
      interval: "5m",
      from: Date.UTC(2026, 11, 1),
      to: Date.UTC(2026, 11, 2),
      format: "csv",
    }]);
  } finally {
    hub.close();
  }
});

Deno.test("/api/candles?format=parquet is a Parquet download; format=json stays the JSON", async () => {
  const { app, hub } = setup();
  try {
    const response = await app.request(`/api/candles?${QUERY}&format=parquet`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/vnd.apache.parquet");
    assert.match(response.headers.get("content-disposition")!, /\.parquet"$/);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const magic = new TextDecoder().decode(bytes.subarray(0, 4));
    assert.equal(magic, "PAR1");
    assert.equal(new TextDecoder().decode(bytes.subarray(bytes.length - 4)), "PAR1");
    const json = await app.request(`/api/candles?${QUERY}&format=json`);
    assert.equal(json.status, 200);
    assert.deepEqual((await json.json()).candles, []);
  } finally {
    hub.close();
  }
});

Deno.test("/api/candles export: a bad parameter is a 400 naming it", async () => {
  const { app, hub, requests } = setup();
  try {
    const cases: [string, RegExp][] = [
      [`${QUERY}&format=xlsx`, /parameter 'format' must be one of json, csv, parquet, got "xlsx"/],
      [`${QUERY}&format=csv&format=csv`, /parameter 'format' is given more than once/],
      [`${QUERY}&format=csv&limit=5`, /unknown parameter "limit"/],
      ["symbol=AAPL&interval=5m&from=2026-12-01&format=csv", /parameter 'to' is required/],
      [QUERY.replace("5m", "2h") + "&format=parquet", /parameter 'interval' must be one of/],
      [`${QUERY}&symbol=MSFT&format=csv`, /parameter 'symbol' is given more than once/],
    ];
    for (const [query, want] of cases) {
      const response = await app.request(`/api/candles?${query}`);
      assert.equal(response.status, 400, query);
      assert.match((await response.json()).error, want, query);
    }
    assert.equal(requests.length, 0);
  } finally {
    hub.close();
  }
});

Deno.test("/api/candles export: Cassandra failing at the start is a 503, later cuts the body", async () => {
  const start = setup({ fail: "start" });
  try {
    const response = await start.app.request(`/api/candles?${QUERY}&format=csv`);
    assert.equal(response.status, 503);
    assert.match((await response.json()).error, /Cassandra read failed/);
  } finally {
    start.hub.close();
  }
  const middle = setup({ fail: "middle" });
  try {
    const response = await middle.app.request(`/api/candles?${QUERY}&format=csv`);
    assert.equal(response.status, 200);
    await assert.rejects(response.text(), /Cassandra unavailable/);
  } finally {
    middle.hub.close();
  }
});

Deno.test("/api/candles export needs the token like every route", async () => {
  const { app, hub } = setup({ token: "s3cret-token" });
  try {
    const refused = await app.request(`/api/candles?${QUERY}&format=csv`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const allowed = await app.request(`/api/candles?${QUERY}&format=csv`, {
      headers: { Authorization: "Bearer s3cret-token" },
    });
    assert.equal(allowed.status, 200);
    await allowed.body?.cancel();
  } finally {
    hub.close();
  }
});
