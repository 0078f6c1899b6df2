// The market page's pure helpers: no DOM, no network, so `view_test.ts` tests them in Deno and
// app.js only wires them to the page. Exact decimals (volumes, changes) are handled as text and
// BigInt, never as floats.

/**
 * The interval choices of the chart, in order: one entry per button (`SERVED_INTERVALS` of
 * shared/gold_table.ts; 15m and 4h are rolled up by the API and have no live updates).
 */
export const CHART_INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"];

/** The chart's interval when none is asked for. */
export const DEFAULT_INTERVAL = "5m";

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * Parses a decimal string (or the shortest text of a number) into `{ units, scale }`:
 * value = units x 10^-scale. Throws a SyntaxError naming the text otherwise.
 */
export function parseDecimal(value) {
  const text = typeof value === "number" ? String(value) : value;
  const match = DECIMAL.exec(text);
  if (!match) throw new SyntaxError(`Not a decimal number: ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = "", exponent = "0"] = match;
  let units = BigInt(whole + fraction);
  let scale = fraction.length - Number(exponent);
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { units: sign ? -units : units, scale };
}

function align(a, b) {
  const scale = Math.max(a.scale, b.scale);
  return [
    a.units * 10n ** BigInt(scale - a.scale),
    b.units * 10n ** BigInt(scale - b.scale),
    scale,
  ];
}

/** a + b of two decimal strings (or numbers), exact, as a plain decimal string. */
export function addDecimal(a, b) {
  const [x, y, scale] = align(parseDecimal(a), parseDecimal(b));
  return formatUnits(x + y, scale);
}

/** a - b of two decimal strings (or numbers), exact, as a plain decimal string. */
export function subtractDecimal(a, b) {
  const [x, y, scale] = align(parseDecimal(a), parseDecimal(b));
  return formatUnits(x - y, scale);
}

/**
 * 100 x change / open, rounded half-to-even to 2 places (as the server's `changePercent`);
 * null when `open` is 0.
 */
export function percentOf(change, open) {
  const a = parseDecimal(change);
  const b = parseDecimal(open);
  if (b.units === 0n) return null;
  // (a.units / 10^a.scale) * 100 / (b.units / 10^b.scale), to 2 places.
  const shift = 2 + b.scale - a.scale;
  let numerator = a.units * 100n;
  let denominator = b.units;
  if (shift >= 0) numerator *= 10n ** BigInt(shift);
  else denominator *= 10n ** BigInt(-shift);
  if (denominator < 0n) {
    numerator = -numerator;
    denominator = -denominator;
  }
  let quotient = numerator / denominator;
  const remainder = numerator % denominator;
  const twice = (remainder < 0n ? -remainder : remainder) * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n !== 0n)) {
    quotient += numerator < 0n ? -1n : 1n;
  }
  return formatUnits(quotient, 2);
}

function formatUnits(units, scale) {
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale--;
  }
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString();
  if (scale === 0) return (negative && units !== 0n ? "-" : "") + digits;
  const padded = digits.padStart(scale + 1, "0");
  const point = padded.length - scale;
  return `${negative ? "-" : ""}${padded.slice(0, point)}.${padded.slice(point)}`;
}

/**
 * A decimal string for people: thousands grouped, at least `minFraction` fraction digits (zeros
 * added, never rounded away), `+` before a positive value when `signed`.
 */
export function formatDecimalText(text, { minFraction = 0, signed = false } = {}) {
  const { units, scale } = parseDecimal(text);
  const plain = formatUnits(units, scale);
  const negative = plain.startsWith("-");
  const [whole, fraction = ""] = (negative ? plain.slice(1) : plain).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const digits = fraction.padEnd(minFraction, "0");
  const sign = negative ? "-" : signed && plain !== "0" ? "+" : "";
  return `${sign}${grouped}${digits ? "." + digits : ""}`;
}

/** Fraction digits a price is shown with. */
export function precisionOf(price) {
  if (price >= 1000) return 2;
  if (price >= 10) return 3;
  return 5;
}

/** A price for people: grouped, 2 to `precisionOf(price)` fraction digits. */
export function formatPrice(price) {
  return price.toLocaleString("en-US", {
    minimumFractionDigits: 2,
    maximumFractionDigits: precisionOf(price),
  });
}

/** The page's views: `#/` the watchlist, `#/symbol/AAPL` or `#/symbol/AAPL/1h` a chart. */
export function parseRoute(hash) {
  const match = /^#\/symbol\/([^/]+)(?:\/([^/]+))?$/.exec(hash);
  if (!match) return { view: "watchlist" };
  let symbol;
  try {
    symbol = decodeURIComponent(match[1]);
  } catch {
    return { view: "watchlist" };
  }
  const interval = CHART_INTERVALS.includes(match[2]) ? match[2] : DEFAULT_INTERVAL;
  return { view: "chart", symbol, interval };
}

/** The hash of a view (see {@linkcode parseRoute}). */
export function routeHash(route) {
  if (route.view !== "chart") return "#/";
  const interval = route.interval && route.interval !== DEFAULT_INTERVAL
    ? `/${route.interval}`
    : "";
  return `#/symbol/${encodeURIComponent(route.symbol)}${interval}`;
}

/** A candle's coverage (1 when the API does not say). */
export function coverageOf(candle) {
  return typeof candle.coverage === "number" ? candle.coverage : 1;
}

/** Whether a candle's window was not fully covered by the feed. */
export function isIncomplete(candle) {
  return coverageOf(candle) < 1;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** `2026-12-04 15:00` (UTC), as the chart's time scale shows times. */
export function formatUtc(ms, seconds = false) {
  const d = new Date(ms);
  const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return `${date} ${time}${seconds ? ":" + pad(d.getUTCSeconds()) : ""}`;
}

/** The crosshair legend's fields of a candle: `[label, text]` pairs. */
export function legendFields(candle) {
  const coverage = coverageOf(candle);
  const gaps = candle.gapCount ?? 0;
  return [
    ["", `${formatUtc(candle.time)} UTC`],
    ["O", formatPrice(candle.open)],
    ["H", formatPrice(candle.high)],
    ["L", formatPrice(candle.low)],
    ["C", formatPrice(candle.close)],
    ["Vol", formatDecimalText(candle.volume)],
    [
      "VWAP",
      candle.vwap === null || candle.vwap === undefined ? "–" : formatDecimalText(candle.vwap),
    ],
    ["Trades", String(candle.trades)],
    [
      "Coverage",
      `${formatPercent(coverage)}${gaps > 0 ? ` (${gaps} gap${gaps === 1 ? "" : "s"})` : ""}`,
    ],
  ];
}

/** 0.98765 -> `98.8%`; 1 -> `100%`. */
export function formatPercent(fraction) {
  if (fraction >= 1) return "100%";
  return `${(Math.floor(fraction * 1000) / 10).toFixed(1)}%`;
}

/** `35 s`, `4 min 5 s`, `2 h 3 min`. */
export function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(s / 3600)} h${
    Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ""
  }`;
}

/** The lines of the gap list: one per gap of `/api/gaps`, in its order. */
export function gapLines(gaps) {
  return gaps.map((g) => ({
    id: g.gapId,
    text: `${formatUtc(g.from, true)} – ${formatUtc(g.to, true).slice(11)} UTC · ${
      formatDuration(g.to - g.from)
    } · ${g.cause}`,
  }));
}

/** The label of a session state of `/api/watchlist`. */
export function sessionLabel(session) {
  return {
    PRE_MARKET: "Pre-market",
    REGULAR: "Regular",
    AFTER_HOURS: "After-hours",
    CLOSED: "Closed",
    OPEN: "Open 24h",
  }[session] ?? session;
}

/**
 * Whether a candle starting at `time` is a better open for a row than the one at `current`
 * (null: none yet): a candle at or after `openFrom` beats one before it; the earlier wins
 * otherwise; the same window (an update of it) replaces it.
 */
export function opensBefore(time, current, openFrom) {
  if (current === null) return true;
  const rank = (t) => (t >= openFrom ? 0 : 1);
  if (rank(time) !== rank(current)) return rank(time) < rank(current);
  return time <= current;
}

/**
 * The page's copy of a row of `/api/watchlist`: its `windows` as a map of candle start ->
 * `{ close, volume, trades }` (what a live update of a window replaces) and its `closes`
 * (`[start, close]`, oldest first: the sparkline).
 */
export function pageRowOf(json) {
  return {
    ...json,
    windows: new Map(
      json.windows.map(([t, close, volume, trades]) => [t, { close, volume, trades }]),
    ),
    closes: json.windows.map(([t, close]) => [t, close]),
  };
}

/**
 * Applies a live candle of the watchlist's interval to a row of {@linkcode pageRowOf}: O(1) but
 * for the closes list. Returns false when the candle is outside the row's day, or older than
 * the state of its window the row holds: a window's trade count only grows, so a candle with
 * fewer trades than the row's is a stale one (replayed after the row was read).
 */
export function applyCandleToRow(row, c) {
  if (c.time < row.day.from || c.time >= row.day.to) return false;
  const before = row.windows.get(c.time);
  if (before && c.trades < before.trades) return false;
  row.volume = subtractDecimal(addDecimal(row.volume, c.volume), before ? before.volume : "0");
  row.trades += c.trades - (before ? before.trades : 0);
  row.windows.set(c.time, { close: c.close, volume: c.volume, trades: c.trades });
  if (row.lastTime === null || c.time >= row.lastTime) {
    row.last = c.close;
    row.lastTime = c.time;
  }
  if (opensBefore(c.time, row.openTime, row.day.openFrom)) {
    row.open = c.open;
    row.openTime = c.time;
  }
  if (row.open !== null && row.last !== null) {
    row.change = subtractDecimal(row.last, row.open);
    row.changePercent = percentOf(row.change, row.open);
  }
  const i = row.closes.findIndex(([t]) => t >= c.time);
  if (i === -1) row.closes.push([c.time, c.close]);
  else if (row.closes[i][0] === c.time) row.closes[i] = [c.time, c.close];
  else row.closes.splice(i, 0, [c.time, c.close]);
  return true;
}

/** The `points` of a sparkline polyline of `closes` in a `width` x `height` box. */
export function sparklinePoints(closes, width, height) {
  if (closes.length === 0) return "";
  if (closes.length === 1) {
    return `0.0,${(height / 2).toFixed(1)} ${width.toFixed(1)},${(height / 2).toFixed(1)}`;
  }
  let min = Infinity;
  let max = -Infinity;
  for (const [, close] of closes) {
    if (close < min) min = close;
    if (close > max) max = close;
  }
  const first = closes[0][0];
  const span = closes[closes.length - 1][0] - first || 1;
  const range = max - min || 1;
  return closes.map(([t, close]) => {
    const x = ((t - first) / span) * width;
    const y = max === min ? height / 2 : height - ((close - min) / range) * height;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");
}
