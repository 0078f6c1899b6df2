/**
 * The `/?token=` login of the status endpoint in a real headless Chromium (Debian's
 * `chromium`, driven by npm `playwright-core`): a link to `http://127.0.0.1:<port>/?token=...`
 * followed from a page of another site (`http://localhost:<port>`, another site for the
 * browser's SameSite rules) must end on the market page with its API and live stream working,
 * not on a 401. The status endpoint runs as `status/main.ts` runs it (`status/server.ts`,
 * `createStatusApp`, the market routes), over a store and hub of the test's own: no Kafka or
 * Cassandra needed.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`): without it the test is ignored, saying
 * so.
 */
import assert from "node:assert/strict";
import { type Browser, chromiumMissing, launchChromium } from "./chromium.ts";
import { SESSION_COOKIE } from "../status/app.ts";
import { marketTestApp } from "../status/test_doubles.ts";
import type { MarketStore } from "../status/market/store.ts";
import { serveStatus } from "../status/server.ts";

// What the callbacks run in the page use of the DOM (see market_page_test.ts).
declare const document: {
  getElementById(id: string): { readonly dataset: Record<string, string | undefined> } | null;
};

const TOKEN = "login-test-token-5b1e";

Deno.test({
  name:
    "a /?token= link followed from another site ends on the market page, with its API and stream",
  ignore: chromiumMissing(),
  async fn() {
    const now = Date.now();
    const window = now - (now % 300_000);
    const store: MarketStore = {
      gaps: () => Promise.resolve([]),
      candles: () =>
        Promise.resolve([{
          time: window,
          end: window + 300_000,
          open: 100,
          high: 101,
          low: 99,
          close: 100.5,
          volume: "3",
          vwap: "100.2",
          trades: 3,
          final: false,
        }]),
      latest: (symbol) =>
        Promise.resolve({ symbol, price: 100.5, volume: 1, time: now, session: null }),
    };
    const { app, hub } = marketTestApp(store, { token: TOKEN, symbols: ["AAPL"] });
    const status = await serveStatus({ hostname: "127.0.0.1", port: 0, handler: app.fetch });
    const target = `http://127.0.0.1:${status.addr.port}/?token=${TOKEN}&symbol=AAPL`;
    // The other site: a page on localhost (not 127.0.0.1, so another site) with the link.
    const other = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response(`<!doctype html><a id="go" href="${target}">market</a>`, {
          headers: { "Content-Type": "text/html; charset=utf-8" },
        }),
    );
    let browser: Browser | undefined;
    try {
      browser = await launchChromium("status-login-chromium-");
      const { context } = browser;
      const page = await context.newPage();
      const statuses: string[] = [];
      page.on("response", (response) => {
        if (response.url().startsWith(`http://127.0.0.1:${status.addr.port}/`)) {
          statuses.push(`${response.status()} ${new URL(response.url()).pathname}`);
        }
      });
      await page.goto(`http://localhost:${other.addr.port}/`);
      const [landed] = await Promise.all([
        page.waitForNavigation({ url: /^http:\/\/127\.0\.0\.1:\d+\/\?symbol=AAPL$/ }),
        page.click("#go"),
      ]);
      assert.equal(landed?.status(), 200, `the link ended on ${landed?.status()}: ${statuses}`);
      // The page opens the old `?symbol=` address as its chart route, `#/symbol/AAPL`.
      await page.waitForURL(`http://127.0.0.1:${status.addr.port}/#/symbol/AAPL`, {
        timeout: 15_000,
      });
      await page.waitForFunction(
        () => {
          const d = document.getElementById("chart")!.dataset;
          return d.ready === "true" && Number(d.bars) > 0;
        },
        null,
        { timeout: 15_000 },
      );
      await page.waitForFunction(
        () => document.getElementById("live")!.dataset.live === "true",
        null,
        { timeout: 10_000 },
      );
      assert.ok(!statuses.some((s) => s.startsWith("401")), `no 401: ${statuses.join(", ")}`);
      const cookies = await context.cookies(`http://127.0.0.1:${status.addr.port}/`);
      const session = cookies.find((c) => c.name === SESSION_COOKIE);
      assert.ok(session, "the session cookie is set");
      assert.equal(session.sameSite, "Lax");
      assert.equal(session.httpOnly, true);
      assert.ok(!session.value.includes(TOKEN), "the cookie does not hold the token");
      const hours = (session.expires * 1000 - Date.now()) / 3_600_000;
      assert.ok(hours > 11.9 && hours <= 12, `the cookie expires in ${hours.toFixed(2)} h`);
    } finally {
      await browser?.close();
      hub.close();
      await status.shutdown();
      await other.shutdown();
    }
  },
});
