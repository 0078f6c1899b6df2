/**
 * Realistic, deterministic trades for the simulator. Pure: the same seed and the same calls
 * (wall times, counts, symbols) give the same trades, byte for byte.
 *
 * What it produces, because the real feed does: random-walk prices on each symbol's tick size,
 * several trades in one millisecond, bursts of one symbol, identical prints inside one frame,
 * crypto with fractional volume and `c: null`, price-only updates with `v: 0` (FX always, crypto
 * sometimes), every shape of `c` (numeric strings, `[]`, `null`, no key), and prints slightly out
 * of time order.
 *
 * @module
 */

export { mulberry32 } from "../shared/random.ts";
import { mulberry32 } from "../shared/random.ts";

/** FNV-1a hash of a string, mixed with a seed: per-symbol seeds independent of call order. */
export function hashSeed(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** What a symbol trades as. */
export type SymbolKind = "stock" | "crypto" | "fx";

const FX_EXCHANGES = new Set(["OANDA", "FXCM", "FOREX", "FXPRO", "IC MARKETS", "ICMTRADER"]);

/** `AAPL` is a stock, `OANDA:EUR_USD` FX, any other `EXCHANGE:PAIR` crypto. */
export function symbolKind(symbol: string): SymbolKind {
  const colon = symbol.indexOf(":");
  if (colon < 0) return "stock";
  return FX_EXCHANGES.has(symbol.slice(0, colon).toUpperCase()) ? "fx" : "crypto";
}

/** One trade as the simulator sends it; `c` is left out of the object when absent. */
export interface GeneratedTrade {
  readonly s: string;
  readonly p: number;
  readonly t: number;
  readonly v: number;
  readonly c?: readonly string[] | null;
}

/** Options of {@linkcode createTradeGenerator}. */
export interface GeneratorOptions {
  readonly seed: number;
  /** Most trades in one frame. Default 50. */
  readonly maxTradesPerFrame?: number;
}

/** Makes frames of trades; see {@linkcode createTradeGenerator}. */
export interface TradeGenerator {
  /**
   * Exactly `count` trades of `symbols` at wall time `now` (epoch ms), split into frames of
   * 1 to `maxTradesPerFrame` trades. Returns no frames when `symbols` is empty.
   */
  frames(now: number, count: number, symbols: readonly string[]): GeneratedTrade[][];
}

interface SymbolState {
  readonly kind: SymbolKind;
  readonly tick: number;
  readonly decimals: number;
  readonly sigma: number;
  /** Relative activity: a few symbols trade much more than the rest, as on a real feed. */
  readonly weight: number;
  price: number;
  lastTime: number;
}

const STOCK_CONDITIONS: readonly (readonly string[])[] = [
  ["1", "12"],
  ["1", "24", "12"],
  ["1", "8", "24", "12"],
  ["12", "37"],
  ["1"],
];

/** A generator of trades; each symbol's walk is seeded by `seed` and its name. */
export function createTradeGenerator(options: GeneratorOptions): TradeGenerator {
  const random = mulberry32(options.seed);
  const maxPerFrame = Math.max(1, options.maxTradesPerFrame ?? 50);
  const states = new Map<string, SymbolState>();

  function state(symbol: string): SymbolState {
    let s = states.get(symbol);
    if (s) return s;
    s = newSymbolState(symbol, options.seed);
    states.set(symbol, s);
    return s;
  }

  function pickSymbol(symbols: readonly string[], total: number): string {
    let r = random() * total;
    for (const symbol of symbols) {
      r -= state(symbol).weight;
      if (r < 0) return symbol;
    }
    return symbols[symbols.length - 1]!;
  }

  function trade(symbol: string, now: number, sameTime: number | null): GeneratedTrade {
    const s = state(symbol);
    const move = Math.exp(s.sigma * normal(random));
    s.price = Math.max(s.tick, roundTo(s.price * move, s.tick, s.decimals));
    let t = sameTime ?? now;
    // About 2% of prints arrive slightly late: up to 250 ms before the previous one.
    if (sameTime === null && s.lastTime > 0 && random() < 0.02) {
      t = s.lastTime - 1 - Math.floor(random() * 250);
    }
    s.lastTime = Math.max(s.lastTime, t);
    const p = s.price;
    if (s.kind === "stock") {
      const roll = random();
      const v = roll < 0.6
        ? 1 + Math.floor(random() * 99)
        : roll < 0.9
        ? 100 * (1 + Math.floor(random() * 5))
        : 1 + Math.floor(random() * 5_000);
      const shape = random();
      if (shape < 0.05) return { s: symbol, p, t, v };
      if (shape < 0.1) return { s: symbol, p, t, v, c: [] };
      return {
        s: symbol,
        p,
        t,
        v,
        c: STOCK_CONDITIONS[Math.floor(random() * STOCK_CONDITIONS.length)]!,
      };
    }
    if (s.kind === "crypto") {
      const v = random() < 0.05 ? 0 : roundTo(random() ** 3 * 2, 0.000001, 6);
      return { s: symbol, p, t, v, c: null };
    }
    // FX: price-only updates; the key is sometimes missing, sometimes null.
    return random() < 0.5 ? { s: symbol, p, t, v: 0 } : { s: symbol, p, t, v: 0, c: null };
  }

  return {
    frames(now, count, symbols) {
      const frames: GeneratedTrade[][] = [];
      if (symbols.length === 0 || count <= 0) return frames;
      let total = 0;
      for (const symbol of symbols) total += state(symbol).weight;
      let left = count;
      while (left > 0) {
        const size = Math.min(left, 1 + Math.floor(random() * maxPerFrame));
        const frame: GeneratedTrade[] = [];
        while (frame.length < size) {
          const roll = random();
          const previous = frame[frame.length - 1];
          if (previous && roll < 0.03) {
            // An identical print: same symbol, price, time, volume and conditions.
            frame.push(previous);
          } else if (roll < 0.05) {
            // A burst: one symbol trading several times in the same millisecond.
            const symbol = pickSymbol(symbols, total);
            const burst = Math.min(size - frame.length, 2 + Math.floor(random() * 12));
            for (let i = 0; i < burst; i++) frame.push(trade(symbol, now, now));
          } else {
            frame.push(trade(pickSymbol(symbols, total), now, null));
          }
        }
        frames.push(frame);
        left -= frame.length;
      }
      return frames;
    },
  };
}

/** A symbol's starting price, tick and volatility, drawn from its own seed (see the module doc). */
function newSymbolState(symbol: string, seed: number): SymbolState {
  const own = mulberry32(hashSeed(symbol, seed));
  const kind = symbolKind(symbol);
  let price: number;
  let tick: number;
  let sigma: number;
  if (kind === "stock") {
    price = 10 + own() * 590;
    tick = own() < 0.2 ? 0.0001 : 0.01;
    sigma = 0.0004;
  } else if (kind === "crypto") {
    price = symbol.includes("BTC")
      ? 20_000 + own() * 40_000
      : symbol.includes("ETH")
      ? 1_000 + own() * 3_000
      : 0.05 + own() * 100;
    tick = price > 1_000 ? 0.01 : 0.0001;
    sigma = 0.0008;
  } else {
    price = symbol.includes("JPY") ? 100 + own() * 60 : 0.5 + own() * 1.5;
    tick = symbol.includes("JPY") ? 0.001 : 0.00001;
    sigma = 0.00008;
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(tick)));
  return {
    kind,
    tick,
    decimals,
    sigma,
    weight: 0.2 + own() ** 3 * 5,
    price: roundTo(price, tick, decimals),
    lastTime: 0,
  };
}

/** A standard normal draw (Box-Muller); `1 - random()` keeps the log argument above 0. */
function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function roundTo(value: number, tick: number, decimals: number): number {
  return Number((Math.round(value / tick) * tick).toFixed(decimals));
}
