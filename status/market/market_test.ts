import assert from "node:assert/strict";
import type { CandleUpdate } from "../../shared/types.ts";
import { SESSION_COOKIE } from "../app.ts";
import { candleUpdate, marketTestApp } from "../test_doubles.ts";
import { chartBundleUrl } from "./assets.ts";
import type { CandleQuery, GapQuery } from "./params.ts";
import type { CandleJson, MarketStore } from "./store.ts";

const NOW = Date.parse("2026-12-01T12:03:00Z");

/** The forming AAPL candle (of 12:00, at NOW) closing at `close`. */
function update(close: number, overrides: Partial<CandleUpdate> = {}): CandleUpdate {
  return candleUpdate({ high: Math.max(100, close), low: 100, close, ...overrides });
}

function setup(token = "") {
  const queries: CandleQuery[] = [];
  const gapQueries: GapQuery[] = [];
  const store: MarketStore = {
    candles(query) {
      queries.push(query);
      const candle: CandleJson = {
        time: Date.parse("2026-12-01T12:00:00Z"),
        end: Date.parse("2026-12-01T12:05:00Z"),
        open: 100,
        high: 101,
        low: 99.5,
        close: 100.5,
        volume: "0.30000000000000004",
        vwap: null,
        trades: 2,
        final: false,
        coverage: 0.8,
        gapCount: 1,
      };
      return Promise.resolve([candle]);
    },
    gaps(query) {
      gapQueries.push(query);
      return Promise.resolve([{
        gapId: "feed:reconnect:1",
        from: Date.parse("2026-12-01T12:01:00Z"),
        to: Date.parse("2026-12-01T12:02:00Z"),
        cause: "reconnect",
        symbols: ["AAPL", "MSFT"],
      }]);
    },
    latest: (symbol) =>
      Promise.resolve(
        symbol === "AAPL"
          ? { symbol, price: 100.5, volume: 1, time: NOW, session: "REGULAR" }
          : null,
      ),
  };
  const { app, hub } = marketTestApp(store, {
    token,
    symbols: ["AAPL", "BINANCE:BTCUSDT"],
    now: () => NOW,
    healthIntervalMs: 100,
  });
  return { app, hub, queries, gapQueries };
}

Deno.test("the page, its script, its style and the chart library are served", async () => {
  const { app, hub } = setup();
  try {
    const page = await app.request("/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    assert.match(
      page.headers.get("content-security-policy")!,
      /script-src 'self' 'sha256-[A-Za-z0-9+/]+=*';/,
    );
    assert.match(await page.text(), /<script type="module" src="\/assets\/app.js">/);
    for (
      const [path, type] of [
        ["/assets/app.js", /javascript/],
        ["/assets/view.js", /javascript/],
        ["/assets/style.css", /css/],
      ]
    ) {
      const response = await app.request(path as string);
      assert.equal(response.status, 200, path as string);
      assert.match(response.headers.get("content-type")!, type as RegExp);
      await response.body?.cancel();
    }
    const library = await app.request("/assets/lightweight-charts.mjs");
    assert.equal(library.status, 200);
    const text = await library.text();
    assert.ok(text.length > 100_000, `the standalone bundle, ${text.length} characters`);
    assert.match(text, /createChart/);
    assert.doesNotMatch(text, /from\s*["']fancy-canvas["']/, "no import left to resolve");
    const gzipped = await app.request("/assets/lightweight-charts.mjs", {
      headers: { "Accept-Encoding": "gzip, br" },
    });
    assert.equal(gzipped.headers.get("content-encoding"), "gzip");
    const unzipped = gzipped.body!.pipeThrough(new DecompressionStream("gzip"));
    assert.equal(await new Response(unzipped).text(), text);
  } finally {
    hub.close();
  }
});

Deno.test("chartBundleUrl() finds the standalone bundle beside the package's entry", () => {
  const url = chartBundleUrl();
  assert.equal(url.protocol, "file:");
  assert.ok(url.pathname.endsWith("/dist/lightweight-charts.standalone.production.mjs"));
  assert.ok(Deno.statSync(url).isFile);
  assert.throws(
    () => chartBundleUrl(() => "npm:lightweight-charts@5.2.1"),
    /not a local file: run `deno install`/,
  );
});

Deno.test("JSON routes: symbols, candles with decimals as strings, latest, health", async () => {
  const { app, hub, queries } = setup();
  try {
    assert.deepEqual(await (await app.request("/api/symbols")).json(), {
      symbols: ["AAPL", "BINANCE:BTCUSDT"],
    });
    const response = await app.request("/api/candles?symbol=AAPL&interval=1h&limit=10");
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.symbol, "AAPL");
    assert.equal(body.interval, "1h");
    assert.equal(body.candles[0].volume, "0.30000000000000004");
    assert.equal(body.candles[0].open, 100);
    assert.equal(queries[0]!.limit, 10);
    assert.equal(body.candles[0].coverage, 0.8);
    assert.equal(body.candles[0].gapCount, 1);
    assert.deepEqual(await (await app.request("/api/latest?symbol=AAPL")).json(), {
      symbol: "AAPL",
      price: 100.5,
      volume: 1,
      time: NOW,
      session: "REGULAR",
    });
    const none = await app.request("/api/latest?symbol=MSFT");
    assert.equal(none.status, 404);
    assert.match((await none.json()).error, /no trade of MSFT seen yet/);
    const health = await (await app.request("/api/health")).json();
    assert.equal(health.live, true);
    assert.deepEqual(Object.keys(health.roles), ["producer", "bronze", "silver", "gold"]);
    assert.equal((await app.request("/api/nope")).status, 404);
  } finally {
    hub.close();
  }
});

Deno.test("/api/gaps answers the symbol's gaps of the range", async () => {
  const { app, hub, gapQueries } = setup();
  try {
    const response = await app.request("/api/gaps?symbol=AAPL&from=2026-12-01&to=2026-12-02");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      symbol: "AAPL",
      from: Date.parse("2026-12-01T00:00:00Z"),
      to: Date.parse("2026-12-02T00:00:00Z"),
      limit: 1000,
      gaps: [{
        gapId: "feed:reconnect:1",
        from: Date.parse("2026-12-01T12:01:00Z"),
        to: Date.parse("2026-12-01T12:02:00Z"),
        cause: "reconnect",
        symbols: ["AAPL", "MSFT"],
      }],
    });
    assert.equal(gapQueries.length, 1);
  } finally {
    hub.close();
  }
});

Deno.test("bad parameters are a 400 with a message naming them, and nothing is read", async () => {
  const { app, hub, queries, gapQueries } = setup();
  try {
    const cases: [string, RegExp][] = [
      ["/api/candles", /parameter 'symbol' is required/],
      ["/api/candles?symbol=AAPL%27%3B", /parameter 'symbol' must be a ticker/],
      [
        "/api/candles?symbol=AAPL&interval=1w",
        /parameter 'interval' must be one of 1m, 5m, 15m, 1h, 4h, 1d/,
      ],
      ["/api/candles?symbol=AAPL&from=2026-12-02&to=2026-12-01", /must be before 'to'/],
      ["/api/candles?symbol=AAPL&from=2025-01-01&to=2026-01-01", /at most 31 days/],
      ["/api/latest?symbol=", /parameter 'symbol' is required/],
      ["/api/stream?symbol=a%20b", /parameter 'symbol' must be a ticker/],
      ["/api/symbols?x=1", /unknown parameter "x"/],
      ["/api/gaps", /parameter 'symbol' is required/],
      ["/api/gaps?symbol=AAPL&from=soon", /parameter 'from' must be epoch milliseconds/],
      ["/api/gaps?symbol=AAPL&limit=5000", /parameter 'limit' must be a whole number/],
    ];
    for (const [path, message] of cases) {
      const response = await app.request(path);
      assert.equal(response.status, 400, path);
      assert.match(response.headers.get("content-type")!, /application\/json/);
      assert.match((await response.json()).error, message, path);
    }
    assert.equal(queries.length, 0);
    assert.equal(gapQueries.length, 0);
  } finally {
    hub.close();
  }
});

Deno.test("with a token, the page and API refuse without it; /?token= sets an HttpOnly, SameSite=Lax session cookie without the token", async () => {
  const { app, hub } = setup("page-s3cret");
  try {
    for (const path of ["/", "/assets/app.js", "/api/candles?symbol=AAPL", "/api/stream"]) {
      const refused = await app.request(path);
      assert.equal(refused.status, 401, path);
      assert.ok(!(await refused.text()).includes("page-s3cret"));
    }
    const wrong = await app.request("/?token=nope");
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get("set-cookie"), null);
    const elsewhere = await app.request("/api/symbols?token=page-s3cret");
    assert.equal(elsewhere.status, 401, "the token in a URL is taken on / only");

    const login = await app.request("/?token=page-s3cret");
    assert.equal(login.status, 303);
    assert.equal(login.headers.get("location"), "/");
    const cookie = login.headers.get("set-cookie")!;
    const session = new RegExp(`^${SESSION_COOKIE}=(v1\\.\\d+\\.[\\w-]{43});`).exec(cookie)?.[1];
    assert.ok(session, cookie);
    assert.ok(!cookie.includes("page-s3cret"), "the cookie does not hold the token");
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Path=\//);
    assert.match(cookie, /Max-Age=43200/);

    const withCookie = { headers: { Cookie: `${SESSION_COOKIE}=${session}` } };
    assert.equal((await app.request("/", withCookie)).status, 200);
    assert.equal((await app.request("/api/symbols", withCookie)).status, 200);
    const badCookie = { headers: { Cookie: `${SESSION_COOKIE}=${session.slice(0, -1)}A` } };
    assert.equal((await app.request("/api/symbols", badCookie)).status, 401);
    const rawToken = { headers: { Cookie: `${SESSION_COOKIE}=page-s3cret` } };
    assert.equal((await app.request("/api/symbols", rawToken)).status, 401);
    const bearer = { headers: { Authorization: "Bearer page-s3cret" } };
    assert.equal((await app.request("/api/symbols", bearer)).status, 200);
    assert.equal((await app.request("/healthz")).status, 200);
  } finally {
    hub.close();
  }
});

Deno.test("/api/stream sends one symbol's candle updates and health as server-sent events", async () => {
  const { app, hub } = setup();
  const response = await app.request("/api/stream?symbol=AAPL");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type")!, /^text\/event-stream/);
  assert.match(response.headers.get("cache-control")!, /no-transform/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    hub.publish(update(101, { symbol: "MSFT" }));
    hub.publish(update(101));
    hub.publish(update(102));
    let text = "";
    const events: { candles: { symbol: string; close: number }[]; health?: unknown }[] = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      for (const block of text.split("\n\n").slice(0, -1)) {
        const data = /^event: update\ndata: (.*)$/m.exec(block);
        if (data) events.push(JSON.parse(data[1]!));
      }
      text = text.slice(text.lastIndexOf("\n\n") + 2);
      if (events.some((e) => e.candles.length > 0) && events.some((e) => e.health)) break;
    }
    const candles = events.flatMap((e) => e.candles);
    assert.deepEqual(candles.map((c) => [c.symbol, c.close]), [["AAPL", 102]], "coalesced");
    assert.ok(events.some((e) => e.health), "health arrives on the same stream");
    assert.equal(hub.clients(), 1);
  } finally {
    await reader.cancel();
    hub.close();
  }
  assert.equal(hub.clients(), 0);
});

Deno.test("every response says X-Content-Type-Options: nosniff: page, assets, JSON, 401, 404, 421, SSE", async () => {
  for (const token of ["", "page-s3cret"]) {
    const { app, hub } = setup(token);
    const auth = token ? { Authorization: `Bearer ${token}` } : {};
    try {
      const cases: [string, Record<string, string>][] = [
        ["/healthz", {}],
        ["/", auth],
        ["/assets/app.js", auth],
        ["/api/symbols", auth],
        ["/api/candles?symbol=bad", auth],
        ["/api/nope", auth],
        ["/nope", auth],
        ["/metrics", auth],
        ["/status", { ...auth, Host: "evil.example" }],
        ["/status", {}],
        ["/?token=wrong", {}],
        ["/api/stream?symbol=AAPL", auth],
      ];
      if (token) cases.push([`/?token=${token}`, {}]);
      for (const [path, headers] of cases) {
        const response = await app.request(path, { headers });
        assert.equal(
          response.headers.get("x-content-type-options"),
          "nosniff",
          `${path} (${response.status})`,
        );
        await response.body?.cancel();
      }
    } finally {
      hub.close();
    }
  }
});
