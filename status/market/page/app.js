// The market page: vanilla JavaScript, no build step. Two views, chosen by the address's hash
// (view.js `parseRoute`): the watchlist (`#/`, the first view) from /api/watchlist, and a
// symbol's chart (`#/symbol/AAPL`, `#/symbol/AAPL/1h`) from /api/candles, /api/latest and
// /api/gaps; both live from /api/stream (server-sent events), which also fills the health strip.
// The chart and watchlist elements' data-* attributes say what is shown, for people with
// devtools and for tests.
//
// "lightweight-charts" resolves through the page's import map to /assets/lightweight-charts.mjs
// in the browser, and through deno.json to the same npm package for `deno check`.
import {
  CandlestickSeries,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  LineSeries,
} from "lightweight-charts";
import {
  applyCandleToRow,
  CHART_INTERVALS,
  DEFAULT_INTERVAL,
  formatDecimalText,
  formatPrice,
  gapLines,
  isIncomplete,
  legendFields,
  pageRowOf,
  parseRoute,
  precisionOf,
  routeHash,
  sessionLabel,
  sparklinePoints,
} from "./view.js";

const UP = "#26a69a";
const DOWN = "#ef5350";
const INCOMPLETE = "#f5a623";
const VWAP = "#c9a0ff";
const ROLES = ["producer", "bronze", "silver", "gold"];
const SVG = "http://www.w3.org/2000/svg";
/** How often the watchlist is read again (session states, a new day); live updates between. */
const WATCHLIST_REFRESH_MS = 60_000;
/**
 * A read watchlist may be this old (the server computes it at most every 2 s) when it arrives:
 * live candles of that long are kept and applied over it. At most RECENT_MAX of them.
 */
const RECENT_MS = 10_000;
const RECENT_MAX = 5_000;

const el = {
  chart: document.getElementById("chart"),
  legend: document.getElementById("legend"),
  symbol: document.getElementById("symbol"),
  price: document.getElementById("price"),
  priceTime: document.getElementById("price-time"),
  message: document.getElementById("message"),
  live: document.getElementById("live"),
  dead: document.getElementById("dead"),
  intervals: document.getElementById("intervals"),
  watchlist: document.getElementById("watchlist"),
  rows: document.getElementById("watchlist-rows"),
  note: document.getElementById("watchlist-note"),
  gaps: document.getElementById("gaps"),
  gapList: document.getElementById("gap-list"),
};

const state = {
  view: "watchlist",
  symbol: "",
  interval: DEFAULT_INTERVAL,
  /** Candle start (ms) -> candle, of the symbol and interval shown. */
  bars: new Map(),
  lastTime: -1,
  updates: 0,
  loadSeq: 0,
  source: null,
  streamFor: null,
  price: null,
  priceTime: -1,
  symbols: null,
  /** The watchlist: its candles' interval, and symbol -> row (view.js applyCandleToRow). */
  watch: {
    interval: null,
    rows: new Map(),
    loadSeq: 0,
    timer: null,
    dirty: new Set(),
    /** The live candles of the last RECENT_MS, re-applied over a freshly read list. */
    recent: [],
  },
};

// --- Chart ---------------------------------------------------------------------------------

const chart = createChart(el.chart, {
  autoSize: true,
  layout: { background: { color: "#0f1419" }, textColor: "#d6dde5" },
  grid: { vertLines: { color: "#1c242d" }, horzLines: { color: "#1c242d" } },
  rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.25 }, borderColor: "#2a333d" },
  timeScale: {
    timeVisible: true,
    secondsVisible: false,
    borderColor: "#2a333d",
    barSpacing: 10,
    rightOffset: 4,
  },
  crosshair: { mode: 0 },
});
const candleSeries = chart.addSeries(CandlestickSeries, {
  upColor: UP,
  downColor: DOWN,
  wickUpColor: UP,
  wickDownColor: DOWN,
  borderUpColor: UP,
  borderDownColor: DOWN,
  borderVisible: true,
});
const vwapSeries = chart.addSeries(LineSeries, {
  color: VWAP,
  lineWidth: 1,
  priceLineVisible: false,
  lastValueVisible: false,
  crosshairMarkerVisible: false,
  title: "VWAP",
});
const volumeSeries = chart.addSeries(HistogramSeries, {
  priceScaleId: "volume",
  priceFormat: { type: "volume" },
  lastValueVisible: false,
  priceLineVisible: false,
});
chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
const markers = createSeriesMarkers(candleSeries, []);

/** A candle as the chart draws it: hollow and amber when the feed did not cover its window. */
function bar(c) {
  const out = { time: c.time / 1000, open: c.open, high: c.high, low: c.low, close: c.close };
  if (isIncomplete(c)) {
    out.color = "rgba(0, 0, 0, 0)";
    out.borderColor = INCOMPLETE;
    out.wickColor = INCOMPLETE;
  }
  return out;
}

function volumeBar(c) {
  return {
    time: c.time / 1000,
    value: Number(c.volume),
    color: isIncomplete(c) ? INCOMPLETE + "80" : c.close >= c.open ? UP + "80" : DOWN + "80",
  };
}

function vwapPoint(c) {
  return c.vwap === null || c.vwap === undefined
    ? { time: c.time / 1000 } // whitespace: no trade with a volume in the window
    : { time: c.time / 1000, value: Number(c.vwap) };
}

function say(text) {
  el.message.textContent = text;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    throw new Error("Not authorised: open this page once as /?token=<STATUS_TOKEN>");
  }
  if (!response.ok) {
    throw Object.assign(new Error(body.error ?? response.statusText), { status: response.status });
  }
  return body;
}

function describe() {
  const d = el.chart.dataset;
  d.symbol = state.symbol;
  d.interval = state.interval;
  d.bars = String(state.bars.size);
  d.updates = String(state.updates);
  const last = state.bars.get(state.lastTime);
  d.lastTime = last ? String(last.time) : "";
  d.lastClose = last ? String(last.close) : "";
  d.lastTrades = last ? String(last.trades) : "";
}

function sortedBars() {
  return [...state.bars.values()].sort((a, b) => a.time - b.time);
}

function renderMarkers(sorted) {
  const incomplete = sorted.filter(isIncomplete);
  markers.setMarkers(incomplete.map((c) => ({
    time: c.time / 1000,
    position: "aboveBar",
    shape: "circle",
    color: INCOMPLETE,
    size: 0.6,
  })));
  el.chart.dataset.incomplete = String(incomplete.length);
}

function renderAll() {
  const sorted = sortedBars();
  candleSeries.setData(sorted.map(bar));
  volumeSeries.setData(sorted.map(volumeBar));
  vwapSeries.setData(sorted.map(vwapPoint));
  renderMarkers(sorted);
  state.lastTime = sorted.length ? sorted[sorted.length - 1].time : -1;
  if (sorted.length) {
    const precision = precisionOf(sorted[sorted.length - 1].close);
    const priceFormat = { type: "price", precision, minMove: 10 ** -precision };
    candleSeries.applyOptions({ priceFormat });
    vwapSeries.applyOptions({ priceFormat });
  }
  if (sorted.length > 150) {
    chart.timeScale().setVisibleLogicalRange({ from: sorted.length - 150, to: sorted.length + 2 });
  } else {
    chart.timeScale().scrollToRealTime(); // few candles: keep their width, newest at the right
  }
  showLegend(null);
  describe();
}

/** The legend: the candle under the crosshair, else the newest. */
function showLegend(time) {
  const candle = (time === null ? undefined : state.bars.get(time)) ??
    state.bars.get(state.lastTime);
  el.legend.replaceChildren();
  if (!candle) {
    delete el.legend.dataset.time;
    return;
  }
  for (const [label, text] of legendFields(candle)) {
    const item = document.createElement("span");
    if (label) {
      const b = document.createElement("b");
      b.textContent = label;
      item.append(b, " ");
    }
    item.append(text);
    item.dataset.field = label || "time";
    el.legend.append(item);
  }
  el.legend.dataset.time = String(candle.time);
  el.legend.dataset.hover = String(time !== null);
  el.legend.dataset.incomplete = String(isIncomplete(candle));
}

chart.subscribeCrosshairMove((param) => {
  showLegend(param.time === undefined ? null : Number(param.time) * 1000);
});

function showPrice(price, time) {
  const previous = state.price;
  state.price = price;
  state.priceTime = time;
  el.price.textContent = formatPrice(price);
  el.price.dataset.value = String(price);
  if (previous !== null && price !== previous) {
    el.price.dataset.direction = price > previous ? "up" : "down";
  }
  el.priceTime.textContent = new Date(time).toLocaleTimeString([], { hour12: false });
}

/** The gaps of the shown range from /api/gaps; a 404 (no such route) hides the list. */
async function loadGaps(seq, symbol, sorted) {
  if (sorted.length === 0) {
    el.gaps.hidden = true;
    return;
  }
  const from = sorted[0].time;
  const to = sorted[sorted.length - 1].end;
  let body;
  try {
    body = await getJson(
      `/api/gaps?symbol=${encodeURIComponent(symbol)}&from=${from}&to=${to}`,
    );
  } catch {
    if (seq === state.loadSeq) {
      el.gaps.hidden = true;
      el.gaps.dataset.state = "unavailable";
    }
    return;
  }
  if (seq !== state.loadSeq) return;
  const lines = gapLines(body.gaps ?? []);
  el.gapList.replaceChildren(...lines.map(({ id, text }) => {
    const li = document.createElement("li");
    li.textContent = text;
    li.dataset.gapId = id;
    return li;
  }));
  if (lines.length === 0) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No feed gaps in this range.";
    el.gapList.append(li);
  }
  el.gaps.dataset.state = "shown";
  el.gaps.dataset.count = String(lines.length);
  el.gaps.hidden = false;
}

async function load() {
  const seq = ++state.loadSeq;
  const { symbol, interval } = state;
  el.chart.dataset.ready = "false";
  say("Loading…");
  try {
    const [candles, latest] = await Promise.all([
      getJson(`/api/candles?symbol=${encodeURIComponent(symbol)}&interval=${interval}`),
      getJson(`/api/latest?symbol=${encodeURIComponent(symbol)}`).catch((error) => {
        if (error.status === 404) return null;
        throw error;
      }),
    ]);
    if (seq !== state.loadSeq) return;
    state.bars = new Map(candles.candles.map((c) => [c.time, c]));
    state.updates = 0;
    renderAll();
    if (latest && latest.time !== null && latest.time >= state.priceTime) {
      showPrice(latest.price, latest.time);
    }
    say(
      candles.candles.length ? "" : `No ${interval} candles for ${symbol} yet: waiting for trades…`,
    );
    el.chart.dataset.ready = "true";
    if (!el.chart.dataset.firstRenderMs) {
      el.chart.dataset.firstRenderMs = String(Math.round(performance.now()));
    }
    loadGaps(seq, symbol, sortedBars());
  } catch (error) {
    if (seq === state.loadSeq) say(String(error.message ?? error));
  }
}

function applyLive(c) {
  if (c.symbol !== state.symbol) return;
  // A candle's close is its latest trade in event time, so a window ending after the price shown
  // holds that trade or a newer one (comparing window starts would freeze the price for the rest
  // of the window once /api/latest gave a trade time inside it).
  if (state.price === null || c.end > state.priceTime) {
    showPrice(c.close, Math.max(c.time, state.priceTime));
  }
  if (c.interval !== state.interval || el.chart.dataset.ready !== "true") return;
  const before = state.bars.get(c.time);
  // A live update carries no coverage (gold's fold never reads it): keep what /api/candles said.
  if (before && typeof c.coverage !== "number" && typeof before.coverage === "number") {
    c = { ...c, coverage: before.coverage, gapCount: before.gapCount };
  }
  state.bars.set(c.time, c);
  state.updates++;
  if (c.time >= state.lastTime && isIncomplete(c) === (before ? isIncomplete(before) : false)) {
    candleSeries.update(bar(c));
    volumeSeries.update(volumeBar(c));
    vwapSeries.update(vwapPoint(c));
    state.lastTime = c.time;
    if (el.legend.dataset.hover !== "true") showLegend(null);
    say("");
  } else {
    renderAll(); // an amendment of an older candle (a late trade), or its coverage changed
  }
  describe();
}

// --- Watchlist -----------------------------------------------------------------------------

function cell(className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  return td;
}

/** The table row of a symbol, made once; `renderRow` fills it. */
function rowElement(symbol) {
  const tr = document.createElement("tr");
  tr.dataset.symbol = symbol;
  const name = cell("sym");
  const link = document.createElement("a");
  link.href = routeHash({ view: "chart", symbol, interval: state.interval });
  link.textContent = symbol;
  name.append(link);
  const spark = cell("spark");
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 120 28");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  svg.append(document.createElementNS(SVG, "polyline"));
  spark.append(svg);
  const session = cell("session");
  session.append(document.createElement("span"));
  tr.append(name, cell("num last"), cell("num change"), cell("num pct"), cell("num volume"));
  tr.append(spark, session);
  // The whole row opens the chart, not only the symbol's link.
  tr.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest("a")) return;
    location.hash = link.getAttribute("href");
  });
  return tr;
}

function renderRow(row) {
  const tr = row.element;
  const d = tr.dataset;
  d.session = row.session;
  d.last = row.last === null ? "" : String(row.last);
  d.change = row.change ?? "";
  d.changePercent = row.changePercent ?? "";
  d.volume = row.volume;
  d.trades = String(row.trades);
  d.direction = row.change === null || row.change === "0"
    ? "flat"
    : row.change.startsWith("-")
    ? "down"
    : "up";
  const [, last, change, pct, volume, , session] = tr.children;
  last.textContent = row.last === null ? "–" : formatPrice(row.last);
  change.textContent = row.change === null
    ? "–"
    : formatDecimalText(row.change, { minFraction: 2, signed: true });
  pct.textContent = row.changePercent === null
    ? "–"
    : `${formatDecimalText(row.changePercent, { minFraction: 2, signed: true })}%`;
  volume.textContent = formatDecimalText(row.volume);
  const badge = session.firstChild;
  badge.textContent = sessionLabel(row.session);
  badge.className = `badge ${row.session.toLowerCase()}`;
  badge.title = `day ${row.day.date}`;
  renderSparkline(row);
}

function renderSparkline(row) {
  const polyline = row.element.querySelector("polyline");
  polyline.setAttribute("points", sparklinePoints(row.closes, 120, 28));
}

async function loadWatchlist() {
  const seq = ++state.watch.loadSeq;
  let body;
  try {
    body = await getJson("/api/watchlist");
  } catch (error) {
    if (seq === state.watch.loadSeq) el.note.textContent = String(error.message ?? error);
    return;
  }
  if (seq !== state.watch.loadSeq) return;
  const { watch } = state;
  watch.interval = body.interval;
  const next = new Map();
  for (const json of body.rows) {
    const element = watch.rows.get(json.symbol)?.element ?? rowElement(json.symbol);
    const row = { ...pageRowOf(json), element };
    next.set(json.symbol, row);
    renderRow(row);
  }
  watch.rows = next;
  el.rows.replaceChildren(...[...next.values()].map((row) => row.element));
  el.watchlist.dataset.ready = "true";
  applyCandles(watch.recent.map(({ c }) => c)); // those that came while it was read
  el.note.textContent = (body.omitted > 0 ? `${body.omitted} more symbols not listed. ` : "") +
    "US equities: the New York trading day (04:00–20:00), change since the regular open " +
    "(09:30) once it has passed; crypto and FX: the UTC day.";
  el.watchlist.dataset.time = String(body.time);
  el.watchlist.dataset.rows = String(next.size);
}

/** Keeps the live candles of one event for RECENT_MS, and applies them to the watchlist. */
function applyWatchlist(candles) {
  const { watch } = state;
  const now = Date.now();
  for (const c of candles) watch.recent.push({ at: now, c });
  let old = 0;
  while (old < watch.recent.length && now - watch.recent[old].at > RECENT_MS) old++;
  watch.recent.splice(0, Math.max(old, watch.recent.length - RECENT_MAX));
  if (el.watchlist.dataset.ready === "true") applyCandles(candles);
}

/**
 * Applies live candles to the watchlist's rows (stale ones change nothing: see view.js
 * applyCandleToRow): O(1) a candle, each changed row's sparkline redrawn once.
 */
function applyCandles(candles) {
  const { watch } = state;
  for (const c of candles) {
    if (c.interval !== watch.interval) continue;
    const row = watch.rows.get(c.symbol);
    if (!row || !applyCandleToRow(row, c)) continue;
    watch.dirty.add(row);
  }
  for (const row of watch.dirty) renderRow(row);
  if (watch.dirty.size > 0) {
    el.watchlist.dataset.updates = String(Number(el.watchlist.dataset.updates) + watch.dirty.size);
  }
  watch.dirty.clear();
}

// --- Health and the stream -----------------------------------------------------------------

function renderHealth(health) {
  for (const role of ROLES) {
    const item = document.querySelector(`.stage[data-role="${role}"]`);
    const h = health.roles[role];
    if (!item || !h) continue;
    item.dataset.up = String(h.up);
    const lag = h.lag === null ? "" : ` · lag ${h.lag}`;
    item.querySelector("b").textContent = h.up === 0 ? "down" : `${h.inPerSecond}/s${lag}`;
  }
  el.dead.querySelector("b").textContent =
    `${health.deadLetters} (${health.deadLettersPerSecond}/s)`;
  el.dead.dataset.count = String(health.deadLetters);
  document.getElementById("health").dataset.time = String(health.time);
}

function setLive(live) {
  el.live.dataset.live = String(live);
  el.live.textContent = live ? "● live" : "○ reconnecting…";
}

/** One stream: every symbol's candles for the watchlist, one symbol's for its chart. */
function connectStream(symbol) {
  const key = symbol ?? "*";
  if (state.source && state.streamFor === key) return;
  state.source?.close();
  const url = symbol === null ? "/api/stream" : `/api/stream?symbol=${encodeURIComponent(symbol)}`;
  const source = new EventSource(url);
  state.source = source;
  state.streamFor = key;
  let lost = false;
  source.addEventListener("open", () => {
    setLive(true);
    // Back after a cut: what changed meanwhile is read again.
    if (lost && state.view === "watchlist") loadWatchlist();
    lost = false;
  });
  source.addEventListener("error", () => {
    lost = true;
    setLive(false);
  });
  source.addEventListener("update", (event) => {
    const data = JSON.parse(event.data);
    if (state.view === "watchlist") applyWatchlist(data.candles);
    else for (const c of data.candles) applyLive(c);
    if (data.health) renderHealth(data.health);
    el.chart.dataset.events = String(Number(el.chart.dataset.events ?? 0) + 1);
  });
}

// --- Views ---------------------------------------------------------------------------------

function selectInterval(interval) {
  state.interval = interval;
  for (const button of el.intervals.children) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === interval));
  }
}

function navigate(route, { replace = false } = {}) {
  const url = new URL(location.href);
  url.search = "";
  url.hash = routeHash(route);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  show(parseRoute(url.hash));
}

/** The symbol picker: the listed symbols, and the one shown if it is not among them. */
function fillSymbols() {
  const listed = [...(state.symbols ?? [])];
  if (state.symbol && !listed.includes(state.symbol)) listed.unshift(state.symbol);
  const options = [...el.symbol.options].map((o) => o.value);
  if (options.join("\n") !== listed.join("\n")) {
    el.symbol.replaceChildren(...listed.map((s) => new Option(s, s)));
  }
  el.symbol.value = state.symbol;
}

async function showChart(route) {
  const changed = route.symbol !== state.symbol || route.interval !== state.interval ||
    state.view !== "chart";
  state.view = "chart";
  document.body.dataset.view = "chart";
  if (route.symbol !== state.symbol) {
    state.price = null;
    state.priceTime = -1;
    el.price.textContent = "–";
  }
  state.symbol = route.symbol;
  selectInterval(route.interval);
  fillSymbols();
  document.title = `${route.symbol} · Market`;
  connectStream(route.symbol);
  if (changed) await load();
}

function showWatchlist() {
  state.view = "watchlist";
  document.body.dataset.view = "watchlist";
  document.title = "Market · watchlist";
  state.loadSeq++; // a chart load under way is not shown
  el.gaps.hidden = true;
  connectStream(null);
  loadWatchlist();
  if (state.watch.timer === null) {
    state.watch.timer = setInterval(() => {
      if (state.view === "watchlist") loadWatchlist();
    }, WATCHLIST_REFRESH_MS);
  }
}

function show(route) {
  if (route.view === "chart") showChart(route);
  else showWatchlist();
}

function start() {
  for (const interval of CHART_INTERVALS) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.interval = interval;
    button.textContent = interval;
    button.addEventListener("click", () => {
      if (interval === state.interval) return;
      navigate({ view: "chart", symbol: state.symbol, interval }, { replace: true });
    });
    el.intervals.append(button);
  }
  el.symbol.addEventListener("change", () => {
    navigate({ view: "chart", symbol: el.symbol.value, interval: state.interval }, {
      replace: true,
    });
  });
  getJson("/api/symbols").then(({ symbols }) => {
    state.symbols = symbols;
    fillSymbols();
  }, (error) => say(String(error.message ?? error)));
  addEventListener("popstate", () => show(parseRoute(location.hash)));
  addEventListener("hashchange", () => show(parseRoute(location.hash)));
  // The address of the page before the watchlist (`/?symbol=AAPL&interval=1h`) opens that chart.
  const params = new URLSearchParams(location.search);
  const legacy = params.get("symbol");
  if (legacy) {
    const interval = CHART_INTERVALS.includes(params.get("interval"))
      ? params.get("interval")
      : DEFAULT_INTERVAL;
    navigate({ view: "chart", symbol: legacy, interval }, { replace: true });
  } else {
    show(parseRoute(location.hash));
  }
}

start();
