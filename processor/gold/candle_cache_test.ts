import assert from "node:assert/strict";
import type { SilverTrade } from "../../shared/types.ts";
import { type CacheEntry, CandleCache, entryKey } from "./candle_cache.ts";
import { finalize, foldTrade } from "./candle.ts";

const T = Date.parse("2026-11-24T15:00:00Z");
const M5 = 300_000;

function entry(start: number, over: Partial<CacheEntry> = {}): CacheEntry {
  const trade: SilverTrade = {
    symbol: "AAPL",
    price: 100,
    eventTime: start,
    volume: 1,
    priceOnly: false,
    conditions: [],
    session: "REGULAR",
    ingestTime: start,
    rawTopic: "raw",
    rawPartition: 0,
    rawOffset: 0,
  };
  return {
    candle: foldTrade(undefined, trade, "5m"),
    dirty: false,
    partition: 0,
    index: "written",
    ...over,
  };
}

function fill(cache: CandleCache, count: number, over: Partial<CacheEntry> = {}): string[] {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = entryKey("5m", "AAPL", T + i * M5);
    cache.set(key, entry(T + i * M5, over));
    keys.push(key);
  }
  return keys;
}

Deno.test("CandleCache.evict() drops the least recently used down to 90% of the bound", () => {
  const cache = new CandleCache(10);
  const keys = fill(cache, 10);
  assert.deepEqual(cache.evict(), [], "nothing leaves at the bound");
  cache.set(entryKey("5m", "AAPL", T + 10 * M5), entry(T + 10 * M5));
  cache.touch([keys[0]!]);
  const dropped = cache.evict();
  assert.deepEqual(dropped.map((e) => e.candle.windowStart), [T + M5, T + 2 * M5]);
  assert.equal(cache.size, 9);
  assert.ok(cache.has(keys[0]!), "a touched entry is the most recently used");
});

Deno.test("CandleCache.evict() keeps what is dirty or open and not findable in the index", () => {
  const cache = new CandleCache(2);
  fill(cache, 2, { dirty: true });
  cache.set(entryKey("5m", "MSFT", T), entry(T, { index: "unknown" }));
  cache.set(entryKey("5m", "IBM", T), entry(T, { index: "none" }));
  assert.deepEqual(cache.evict(), [], "unwritten or unindexed entries stay");
  const final = entry(T, { index: "none" });
  final.candle = finalize(final.candle);
  cache.set(entryKey("5m", "ORCL", T), final);
  assert.deepEqual(cache.evict(), [final], "a written final candle may leave");
});

Deno.test("CandleCache.ofPartition() gives one partition's entries and survives deletes", () => {
  const cache = new CandleCache(10);
  const keys = fill(cache, 3);
  cache.set(entryKey("5m", "MSFT", T), entry(T, { partition: 1 }));
  const seen: string[] = [];
  for (const [key] of cache.ofPartition(0)) {
    seen.push(key);
    cache.delete(key);
  }
  assert.deepEqual(seen, keys);
  assert.equal(cache.size, 1);
});
