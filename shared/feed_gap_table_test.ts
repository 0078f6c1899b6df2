import assert from "node:assert/strict";
import { schemaStatements } from "./cassandra.ts";
import { feedGapRows, gapDayBuckets, windowGapsWrite } from "./feed_gap_table.ts";
import { GOLD_TABLE, INTERVALS } from "./gold_table.ts";
import type { FeedGap } from "./types.ts";

const DAY = 86_400_000;

Deno.test("gapDayBuckets() lists every UTC day a span overlaps, end exclusive", () => {
  const midnight = Date.UTC(2026, 11, 6);
  assert.deepEqual(gapDayBuckets(midnight, midnight + 1), ["2026-12-06"]);
  assert.deepEqual(gapDayBuckets(midnight - 1, midnight + 1), ["2026-12-05", "2026-12-06"]);
  assert.deepEqual(gapDayBuckets(midnight - DAY + 5, midnight), ["2026-12-05"]);
  assert.deepEqual(gapDayBuckets(Date.UTC(2026, 11, 31, 23), Date.UTC(2027, 0, 2, 1)), [
    "2026-12-31",
    "2027-01-01",
    "2027-01-02",
  ]);
  assert.deepEqual(gapDayBuckets(midnight, midnight), []);
});

const GAP: FeedGap = {
  gapId: "feed:producer_down:1",
  fromMs: Date.UTC(2026, 11, 5, 22),
  toMs: Date.UTC(2026, 11, 7, 1),
  symbols: ["AAPL", "BINANCE:BTCUSDT", "AAPL"],
  cause: "producer_down",
  connectionId: "",
  detectedAtMs: Date.UTC(2026, 11, 7, 1),
};

Deno.test("feedGapRows() writes a gap under each symbol and day, timestamped by its end", () => {
  const rows = feedGapRows("ks", GAP, 0);
  assert.deepEqual(
    rows.map((r) => r.partition),
    ["AAPL", "BINANCE:BTCUSDT"].flatMap((s) =>
      ["2026-12-05", "2026-12-06", "2026-12-07"].map((d) => `${s}\u0000${d}`)
    ),
  );
  assert.ok(rows.every((r) => r.timestamp === BigInt(GAP.toMs) * 1000n));
  assert.ok(rows.every((r) => r.query.startsWith("INSERT INTO ks.feed_gaps")));
});

Deno.test("windowGapsWrite() sets only gap_ms and gap_count of the window's row", () => {
  const write = windowGapsWrite("ks", {
    interval: "5m",
    symbol: "AAPL",
    windowStart: Date.UTC(2026, 11, 7, 15),
  }, { gapMs: 1234, gapCount: 2 });
  assert.match(
    write.query,
    /^UPDATE ks\.trades_gold_5m SET gap_ms = \?, gap_count = \?\s+WHERE symbol = \? AND bucket = \? AND window_start = \?$/,
  );
  assert.deepEqual(write.params.slice(0, 3), [1234n, 2, "AAPL"]);
  assert.equal(write.timestamp, BigInt(Date.UTC(2026, 11, 7, 15)) * 1000n + 2n * 2n ** 27n + 1234n);
});

Deno.test("the schema adds gap_ms and gap_count to every gold table, idempotently", async () => {
  const statements = await schemaStatements("ks", {
    class: "SimpleStrategy",
    replicationFactor: 1,
  });
  for (const interval of INTERVALS) {
    for (const column of ["gap_ms bigint", "gap_count int"]) {
      const alter = `ALTER TABLE ks.${GOLD_TABLE[interval]} ADD IF NOT EXISTS ${column}`;
      assert.ok(statements.includes(alter), `missing in schemas/cassandra/005_*.cql: ${alter}`);
    }
  }
  assert.ok(statements.some((s) => s.startsWith("CREATE TABLE IF NOT EXISTS ks.feed_gaps")));
});

Deno.test("feedGapRows() stores a gap of no length under the day of its instant", () => {
  const rows = feedGapRows("ks", { ...GAP, symbols: ["AAPL"], toMs: GAP.fromMs }, 0);
  assert.deepEqual(rows.map((r) => r.partition), ["AAPL\u00002026-12-05"]);
});
