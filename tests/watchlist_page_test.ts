/**
 * The market page's watchlist and chart legend in a real headless Chromium against the real
 * pipeline (simulator -> producer -> bronze/silver/gold -> Cassandra -> the status endpoint),
 * plus a few 5m gold rows the test writes for a US equity's trading day (so an equity has a day
 * whatever the hour the test runs at). Checks that the watchlist is the first view and lists the
 * symbols of `/api/symbols`, updates live, and, once gold is stopped, shows exactly the last
 * price, change since the open, volume and session state computed here from `/api/candles` (an
 * independent reference); that a click opens the chart with the URL `#/symbol/<symbol>`, reload
 * keeps it, the back link returns; that the crosshair legend shows the candle under the mouse,
 * candles with coverage < 1 (served through a stub of `/api/candles` here, as gold's coverage
 * comes from another branch) are marked and the gap list shows `/api/gaps` (stubbed with a
 * fixture). Screenshots: `.artifacts/watchlist_page.png`, `.artifacts/watchlist_chart.png`,
 * `.artifacts/watchlist_page_narrow.png` (360 px wide); figures in `.artifacts/watchlist_page.json`.
 *
 * Needs /usr/bin/chromium: without it the test is ignored, saying so.
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import type { Page } from "playwright-core";
import { add, decimalFromNumber, formatDecimal, parseDecimal, ZERO } from "../shared/decimal.ts";
import { GOLD_TABLE, goldBucket, INTERVAL_MS } from "../shared/gold_table.ts";
import { isUsEquity, sessionFor } from "../shared/trading_session.ts";
import { type Browser, chromiumMissing, launchChromium } from "./chromium.ts";
import { session as cassandraSession, waitFor } from "./helpers.ts";
import { observedTestOptions, startObservedPipeline } from "./observed_pipeline.ts";
import { legendFields } from "../status/market/page/view.js";
import type { CandleJson } from "../status/market/store.ts";
import type { WatchlistJson } from "../status/market/market.ts";

// What the callbacks run in the page use of the DOM (see market_page_test.ts).
interface PageElement {
  readonly dataset: Record<string, string | undefined>;
  readonly textContent: string | null;
  readonly hidden: boolean;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
}
declare function requestAnimationFrame(callback: () => void): number;
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
  readonly body: PageElement;
  readonly documentElement: { readonly scrollWidth: number };
};

const ARTIFACTS = new URL("../.artifacts/", import.meta.url);
const FIVE_MINUTES = INTERVAL_MS["5m"];

/** What the page's row of a symbol says (its data-* attributes). */
interface RowState {
  symbol: string;
  last: string;
  change: string;
  changePercent: string;
  volume: string;
  session: string;
}

function pageRows(page: Page): Promise<RowState[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("#watchlist-rows tr")).map((tr) => ({
      symbol: tr.dataset.symbol ?? "",
      last: tr.dataset.last ?? "",
      change: tr.dataset.change ?? "",
      changePercent: tr.dataset.changePercent ?? "",
      volume: tr.dataset.volume ?? "",
      session: tr.dataset.session ?? "",
    }))
  );
}

/** The New York wall clock of `ms` by the time-zone database: weekday, date, hh:mm. */
function newYork(ms: number): { weekday: string; date: string; time: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: "America/New_York",
      weekday: "short",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).formatToParts(ms).map((p) => [p.type, p.value]),
  );
  return {
    weekday: parts.weekday!,
    date: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}`,
  };
}

/** Windows a test row may take: ended 10 minutes ago, so gold never writes them now. */
function settledWindow(start: number, now: number): boolean {
  return start + FIVE_MINUTES <= now - 10 * 60_000;
}

/** Writes 5m gold rows `[start, open, close, volume]` of `symbol`; how many were written. */
async function writeCandles(
  client: cassandra.Client,
  keyspace: string,
  symbol: string,
  rows: readonly (readonly [number, number, number, string])[],
): Promise<number> {
  for (const [start, open, close, volume] of rows) {
    await client.execute(
      `INSERT INTO ${keyspace}.${GOLD_TABLE["5m"]} (symbol, bucket, window_start, window_end,
        open, high, low, close, volume, vwap, trade_count, is_final)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        symbol,
        cassandra.types.LocalDate.fromString(goldBucket(start, "5m")),
        new Date(start),
        new Date(start + FIVE_MINUTES),
        open,
        Math.max(open, close) + 0.05,
        Math.min(open, close) - 0.05,
        close,
        cassandra.types.BigDecimal.fromString(volume),
        cassandra.types.BigDecimal.fromString(String((open + close) / 2)),
        2n,
        true,
      ],
      { prepare: true },
    );
  }
  return rows.length;
}

/** Rows in the pre-market and regular session of an equity's trading day, those settled. */
function equityDayRows(
  day: WatchlistJson["rows"][number]["day"],
  now: number,
): [number, number, number, string][] {
  const regularOpen = day.from + 5.5 * 3_600_000;
  const rows: [number, number, number, string][] = [
    [day.from, 100, 100.2, "0.1"],
    [day.from + FIVE_MINUTES, 100.2, 100.4, "0.2"],
    [regularOpen, 101.5, 101.9, "0.30000000000000004"],
    [regularOpen + 6 * FIVE_MINUTES, 101.9, 102.1, "0.0000001"],
  ];
  return rows.filter(([start]) => settledWindow(start, now));
}

/** Ten settled windows of the last hour, so the chart has candles to hover. */
function recentRows(now: number, price: number): [number, number, number, string][] {
  const newest = Math.floor((now - 10 * 60_000) / FIVE_MINUTES) * FIVE_MINUTES - FIVE_MINUTES;
  return Array.from({ length: 10 }, (_, i) => {
    const open = price * (1 + 0.002 * Math.sin(i));
    const close = price * (1 + 0.002 * Math.sin(i + 1));
    return [newest - (9 - i) * FIVE_MINUTES, open, close, `${i + 1}.25`];
  });
}

/**
 * The reference row of a symbol, computed here from `/api/candles` over the day the watchlist
 * names (whose bounds are checked against the time-zone database): the last close, the open of
 * the first candle at or after the open boundary (else the day's first), exact sums.
 */
function referenceRow(
  row: WatchlistJson["rows"][number],
  candles: readonly CandleJson[],
  time: number,
): RowState {
  let volume = ZERO;
  for (const c of candles) volume = add(volume, parseDecimal(c.volume));
  const opening = candles.find((c) => c.time >= row.day.openFrom) ?? candles[0];
  const last = candles.at(-1);
  let change = "";
  if (opening && last) {
    const open = decimalFromNumber(opening.open);
    change = formatDecimal(
      add(decimalFromNumber(last.close), { units: -open.units, scale: open.scale }),
    );
  }
  return {
    symbol: row.symbol,
    last: last ? String(last.close) : "",
    change,
    changePercent: row.changePercent ?? "", // rounding is unit-tested; the rest is checked here
    volume: formatDecimal(volume),
    session: sessionFor(row.symbol, time) ?? "OPEN",
  };
}

function checkDay(row: WatchlistJson["rows"][number], time: number): void {
  const { from, to, openFrom } = row.day;
  if (!isUsEquity(row.symbol)) {
    assert.equal(from, Math.floor(time / 86_400_000) * 86_400_000, `${row.symbol}: the UTC day`);
    assert.equal(to - from, 86_400_000);
    return;
  }
  const start = newYork(from);
  assert.deepEqual(
    [start.time, newYork(to).time, newYork(to).date],
    ["04:00", "20:00", start.date],
    `${row.symbol}: 04:00 to 20:00 New York`,
  );
  assert.ok(!["Sat", "Sun"].includes(start.weekday), `${row.symbol}: a weekday`);
  assert.equal(row.day.date, start.date);
  assert.ok(from <= time, "the day has begun");
  const regular = newYork(openFrom).time === "09:30";
  assert.ok(regular || openFrom === from, `${row.symbol}: open boundary ${openFrom}`);
  assert.equal(regular, time >= from + 5.5 * 3_600_000, "09:30 once the regular open passed");
}

Deno.test({
  name:
    "watchlist page in headless Chromium: symbols, live, exact values, session, click to chart, legend, gaps",
  ignore: chromiumMissing(),
  ...observedTestOptions,
  async fn() {
    const pipeline = await startObservedPipeline({ rate: 200, market: true });
    const client = cassandraSession(pipeline.config);
    let browser: Browser | undefined;
    try {
      const base = pipeline.statusUrl;
      const api = async (path: string) => {
        const response = await fetch(`${base}${path}`);
        const body = await response.json();
        if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${body.error}`);
        return body;
      };
      const { symbols } = await api("/api/symbols") as { symbols: string[] };
      const keyspace = pipeline.config.cassandra.keyspace;
      const equity = symbols.find(isUsEquity)!;
      const chartSymbol = symbols.find((s) => s !== equity)!;
      const first = await api("/api/watchlist") as WatchlistJson;
      const equityRow = first.rows.find((r) => r.symbol === equity)!;
      const written = await writeCandles(
        client,
        keyspace,
        equity,
        equityDayRows(equityRow.day, Date.now()),
      );
      // Live candles of the chart's symbol and another, and the live feed joined.
      await waitFor("live 5m candles of the chart's symbol and another", async () => {
        let live = 0;
        for (const symbol of symbols) {
          const { candles } = await api(`/api/candles?symbol=${encodeURIComponent(symbol)}`);
          const newest = candles.at(-1) as CandleJson | undefined;
          if (newest && !settledWindow(newest.time, Date.now())) live++;
          else if (symbol === chartSymbol) return false;
        }
        return live >= 2;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      const { candles: live } = await api(`/api/candles?symbol=${encodeURIComponent(chartSymbol)}`);
      await writeCandles(client, keyspace, chartSymbol, recentRows(Date.now(), live.at(-1).open));
      await waitFor("the status endpoint's live candle feed", async () => {
        return (await api("/api/health")).live === true;
      }, { timeoutMs: 30_000, intervalMs: 250 });

      browser = await launchChromium("watchlist-page-chromium-", {
        viewport: { width: 1280, height: 800 },
      });
      const page = await browser.context.newPage();
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console error: ${message.text()}`);
      });
      page.on("requestfailed", (request) => {
        if (!request.url().includes("/api/stream")) {
          problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
        }
      });

      // The first view is the watchlist, every symbol of /api/symbols in order, updating live.
      await page.goto(`${base}/`);
      await page.waitForFunction(
        () => document.getElementById("watchlist")!.dataset.ready === "true",
        null,
        { timeout: 15_000 },
      );
      assert.equal(await page.getAttribute("body", "data-view"), "watchlist");
      assert.deepEqual((await pageRows(page)).map((r) => r.symbol), symbols);
      await page.waitForFunction(
        () => Number(document.getElementById("watchlist")!.dataset.updates) > 0,
        null,
        { timeout: 15_000 },
      ).catch((error) => {
        throw new Error("the watchlist got no live update within 15 s", { cause: error });
      });

      // Gold stopped, the values settle: the page shows exactly the reference.
      await pipeline.stopStage("gold");
      const stoppedAt = Date.now();
      let computeMs = 0;
      const settled = await waitFor("a watchlist computed after gold stopped", async () => {
        const started = performance.now();
        const body = await api("/api/watchlist") as WatchlistJson;
        computeMs = performance.now() - started;
        return body.time >= stoppedAt ? body : undefined;
      }, { timeoutMs: 10_000, intervalMs: 250 });
      const expected: RowState[] = [];
      for (const row of settled.rows) {
        checkDay(row, settled.time);
        const { candles } = await api(
          `/api/candles?symbol=${
            encodeURIComponent(row.symbol)
          }&interval=5m&from=${row.day.from}&to=${row.day.to}&limit=288`,
        ) as { candles: CandleJson[] };
        expected.push(referenceRow(row, candles, settled.time));
      }
      const withTrades = expected.filter((r) => r.last !== "");
      assert.ok(withTrades.length >= 1, `symbols with a day: ${JSON.stringify(expected)}`);
      if (written > 0) {
        assert.ok(withTrades.some((r) => r.symbol === equity), `${equity}'s day is listed`);
      }
      await page.reload();
      await page.waitForFunction(
        () => document.getElementById("watchlist")!.dataset.ready === "true",
        null,
        { timeout: 15_000 },
      );
      await waitFor("the page's rows equal to the reference", async () => {
        const shown = await pageRows(page);
        return JSON.stringify(shown) === JSON.stringify(expected) || undefined;
      }, { timeoutMs: 10_000, intervalMs: 250 }).catch(async (error) => {
        assert.deepEqual(await pageRows(page), expected, String(error));
      });
      // And as people read it: the formatted last price of a symbol with trades.
      const sample = withTrades[0]!;
      const lastText = await page.textContent(`tr[data-symbol="${sample.symbol}"] td.last`);
      assert.equal(
        lastText,
        Number(sample.last).toLocaleString("en-US", {
          minimumFractionDigits: 2,
          maximumFractionDigits: Number(sample.last) >= 1000
            ? 2
            : Number(sample.last) >= 10
            ? 3
            : 5,
        }),
      );
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: new URL("watchlist_page.png", ARTIFACTS).pathname });

      // The chart: candles with coverage < 1 (every third window) and a gap list, stubbed.
      const gapFixture = {
        gaps: [{
          gapId: "fixture-gap-1",
          from: Date.now() - 30 * 60_000,
          to: Date.now() - 29 * 60_000,
          cause: "reconnect",
          symbols: [chartSymbol],
        }],
      };
      // Every other candle but the newest (which the stream replays as gold wrote it).
      const withCoverage = (candles: CandleJson[]) =>
        candles.map((c, i) =>
          i % 2 === 0 && i < candles.length - 1 ? { ...c, coverage: 0.5, gapCount: 1 } : c
        );
      await page.route((url) => url.pathname === "/api/candles", async (route) => {
        const response = await route.fetch();
        const json = await response.json();
        json.candles = withCoverage(json.candles);
        await route.fulfill({ response, json });
      });
      const gapRequests: string[] = [];
      await page.route((url) => url.pathname === "/api/gaps", async (route) => {
        gapRequests.push(route.request().url());
        await route.fulfill({ json: gapFixture });
      });
      await page.click(`tr[data-symbol="${chartSymbol}"] a`);
      await page.waitForFunction(
        (s) => {
          const d = document.getElementById("chart")!.dataset;
          return d.symbol === s && d.ready === "true" && Number(d.bars) > 0;
        },
        chartSymbol,
        { timeout: 15_000 },
      );
      assert.equal(new URL(page.url()).hash, `#/symbol/${encodeURIComponent(chartSymbol)}`);
      assert.equal(await page.getAttribute("body", "data-view"), "chart");
      const { candles: shownCandles } = await api(
        `/api/candles?symbol=${encodeURIComponent(chartSymbol)}`,
      ) as { candles: CandleJson[] };
      const marked = withCoverage(shownCandles);
      assert.equal(
        Number(await page.getAttribute("#chart", "data-incomplete")),
        marked.filter((c) => (c.coverage ?? 1) < 1).length,
        "every candle with coverage < 1 is marked",
      );
      await page.waitForFunction(() => document.getElementById("gaps")!.dataset.state === "shown");
      assert.deepEqual(
        await page.evaluate(() =>
          Array.from(document.querySelectorAll("#gap-list li")).map((li) => li.dataset.gapId)
        ),
        ["fixture-gap-1"],
      );
      const gapUrl = new URL(gapRequests.at(-1)!);
      assert.equal(gapUrl.searchParams.get("symbol"), chartSymbol);
      assert.equal(Number(gapUrl.searchParams.get("from")), shownCandles[0]!.time);
      assert.equal(Number(gapUrl.searchParams.get("to")), shownCandles.at(-1)!.end);

      // The legend follows the crosshair: the candle under the mouse, field by field. The
      // candles sit at the right of the chart: the mouse sweeps leftwards from there.
      const box = (await page.locator("#chart").boundingBox())!;
      const seen = new Set<number>();
      let incompleteSeen = false;
      for (
        let dx = 60;
        dx < Math.min(box.width, 600) && (seen.size < 3 || !incompleteSeen);
        dx += 5
      ) {
        await page.mouse.move(box.x + box.width - dx, box.y + box.height * 0.4);
        await page.evaluate(() =>
          new Promise<void>((resolve) =>
            requestAnimationFrame(() => requestAnimationFrame(resolve))
          )
        );
        const legend = await page.evaluate(() => {
          const l = document.getElementById("legend")!;
          return {
            hover: l.dataset.hover,
            time: Number(l.dataset.time),
            fields: Array.from(l.querySelectorAll("span")).map((s) => s.textContent),
          };
        });
        if (legend.hover !== "true" || seen.has(legend.time)) continue;
        const candle = marked.find((c) => c.time === legend.time);
        assert.ok(candle, `the legend's time ${legend.time} is a candle of the chart`);
        assert.deepEqual(
          legend.fields,
          (legendFields(candle) as [string, string][]).map(([label, text]) =>
            label ? `${label} ${text}` : text
          ),
        );
        seen.add(legend.time);
        incompleteSeen ||= "coverage" in candle;
      }
      assert.ok(incompleteSeen, "the legend showed the coverage of an incomplete candle");
      assert.ok(
        seen.size >= 3,
        `the legend follows the crosshair over ${shownCandles.length} candles: saw ${seen.size}`,
      );
      await page.screenshot({ path: new URL("watchlist_chart.png", ARTIFACTS).pathname });

      // Reload keeps the chart; the back link returns to the watchlist.
      await page.reload();
      await page.waitForFunction(
        (s) =>
          document.getElementById("chart")!.dataset.symbol === s &&
          document.getElementById("chart")!.dataset.ready === "true",
        chartSymbol,
        { timeout: 15_000 },
      );
      await page.click("#back");
      await page.waitForFunction(() => document.body.dataset.view === "watchlist");
      assert.equal(new URL(page.url()).hash, "#/");

      // A narrow window: the watchlist fits without scrolling the page sideways.
      await page.setViewportSize({ width: 360, height: 740 });
      await page.waitForFunction(
        () => document.getElementById("watchlist")!.dataset.ready === "true",
      );
      const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(scrollWidth <= 360, `page is ${scrollWidth}px wide at 360`);
      await page.screenshot({ path: new URL("watchlist_page_narrow.png", ARTIFACTS).pathname });

      assert.deepEqual(problems, [], "no page errors, console errors or failed requests");
      const figures = {
        watchlistComputeMs: Math.round(computeMs),
        symbols: settled.rows.length,
        rowsWithTrades: withTrades.length,
        chartCandles: shownCandles.length,
        incompleteMarked: marked.filter((c) => "coverage" in c).length,
      };
      await Deno.writeTextFile(
        new URL("watchlist_page.json", ARTIFACTS),
        JSON.stringify(figures, null, 2) + "\n",
      );
      console.log(`watchlist page: ${JSON.stringify(figures)}`);
    } finally {
      await browser?.close();
      await client.shutdown();
      await pipeline.stop();
    }
  },
});
