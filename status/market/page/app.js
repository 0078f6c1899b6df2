// The market page: vanilla JavaScript, no build step. Candles from /api/candles, the latest
// price from /api/latest, then live updates and the health strip from /api/stream (server-sent
// events). The chart element's data-* attributes say what is shown (bars, updates, last close),
// for people with devtools and for tests.
//
// "lightweight-charts" resolves through the page's import map to /assets/lightweight-charts.mjs
// in the browser, and through deno.json to the same npm package for `deno check`.
import { CandlestickSeries, createChart, HistogramSeries } from "lightweight-charts";

const UP = "#26a69a";
const DOWN = "#ef5350";
const ROLES = ["producer", "bronze", "silver", "gold"];

const el = {
  chart: document.getElementById("chart"),
  symbol: document.getElementById("symbol"),
  price: document.getElementById("price"),
  priceTime: document.getElementById("price-time"),
  message: document.getElementById("message"),
  live: document.getElementById("live"),
  dead: document.getElementById("dead"),
  intervals: [...document.querySelectorAll("[data-interval]")],
};

const params = new URLSearchParams(location.search);
const state = {
  symbol: params.get("symbol") ?? "",
  interval: params.get("interval") === "1h" ? "1h" : "5m",
  /** Candle start (ms) -> candle, of the symbol and interval shown. */
  bars: new Map(),
  lastTime: -1,
  updates: 0,
  loadSeq: 0,
  source: null,
  price: null,
  priceTime: -1,
};

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
  borderVisible: false,
});
const volumeSeries = chart.addSeries(HistogramSeries, {
  priceScaleId: "volume",
  priceFormat: { type: "volume" },
  lastValueVisible: false,
  priceLineVisible: false,
});
chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });

function bar(c) {
  return { time: c.time / 1000, open: c.open, high: c.high, low: c.low, close: c.close };
}

function volumeBar(c) {
  return {
    time: c.time / 1000,
    value: Number(c.volume),
    color: c.close >= c.open ? UP + "80" : DOWN + "80",
  };
}

function precisionOf(price) {
  if (price >= 1000) return 2;
  if (price >= 10) return 3;
  return 5;
}

function formatPrice(price) {
  return price.toLocaleString("en-US", {
    minimumFractionDigits: 2,
    maximumFractionDigits: precisionOf(price),
  });
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

function renderAll() {
  const sorted = [...state.bars.values()].sort((a, b) => a.time - b.time);
  candleSeries.setData(sorted.map(bar));
  volumeSeries.setData(sorted.map(volumeBar));
  state.lastTime = sorted.length ? sorted[sorted.length - 1].time : -1;
  if (sorted.length) {
    const precision = precisionOf(sorted[sorted.length - 1].close);
    candleSeries.applyOptions({
      priceFormat: { type: "price", precision, minMove: 10 ** -precision },
    });
  }
  if (sorted.length > 150) {
    chart.timeScale().setVisibleLogicalRange({ from: sorted.length - 150, to: sorted.length + 2 });
  } else {
    chart.timeScale().scrollToRealTime(); // few candles: keep their width, newest at the right
  }
  describe();
}

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
  state.bars.set(c.time, c);
  state.updates++;
  if (c.time >= state.lastTime) {
    candleSeries.update(bar(c));
    volumeSeries.update(volumeBar(c));
    state.lastTime = c.time;
    say("");
  } else {
    renderAll(); // an amendment of an older candle (a late trade)
  }
  describe();
}

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

function connectStream() {
  state.source?.close();
  const source = new EventSource(`/api/stream?symbol=${encodeURIComponent(state.symbol)}`);
  state.source = source;
  source.addEventListener("open", () => setLive(true));
  source.addEventListener("error", () => setLive(false));
  source.addEventListener("update", (event) => {
    const data = JSON.parse(event.data);
    for (const c of data.candles) applyLive(c);
    if (data.health) renderHealth(data.health);
    el.chart.dataset.events = String(Number(el.chart.dataset.events ?? 0) + 1);
  });
}

function remember() {
  const url = new URL(location.href);
  url.searchParams.set("symbol", state.symbol);
  url.searchParams.set("interval", state.interval);
  history.replaceState(null, "", url);
}

function selectInterval(interval) {
  state.interval = interval;
  for (const button of el.intervals) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === interval));
  }
}

async function start() {
  selectInterval(state.interval);
  const listed = getJson("/api/symbols");
  // A symbol in the address: load it at once, while the list arrives.
  const early = state.symbol !== "" ? state.symbol : null;
  if (early !== null) {
    connectStream();
    load();
  }
  let symbols;
  try {
    symbols = (await listed).symbols;
  } catch (error) {
    say(String(error.message ?? error));
    return;
  }
  for (const symbol of symbols) el.symbol.append(new Option(symbol, symbol));
  if (!symbols.includes(state.symbol)) state.symbol = symbols[0] ?? "";
  el.symbol.value = state.symbol;
  el.symbol.addEventListener("change", () => {
    state.symbol = el.symbol.value;
    state.price = null;
    state.priceTime = -1;
    el.price.textContent = "–";
    remember();
    connectStream();
    load();
  });
  for (const button of el.intervals) {
    button.addEventListener("click", () => {
      if (button.dataset.interval === state.interval) return;
      selectInterval(button.dataset.interval);
      remember();
      load();
    });
  }
  remember();
  if (state.symbol !== early) {
    connectStream();
    await load();
  }
}

start();
