import assert from "node:assert/strict";
import {
  GOLD_BUCKET_SPAN,
  GOLD_TABLE,
  goldBucket,
  goldBucketsBetween,
  INTERVAL_MS,
  INTERVALS,
  isStored,
  ROLLUP_INTERVALS,
  ROLLUP_SOURCE,
  SERVED_INTERVALS,
  windowEnd,
  windowStart,
} from "./gold_table.ts";

const t = (iso: string) => Date.parse(iso);

Deno.test("windowStart() aligns 5m and 1h windows to UTC", () => {
  assert.equal(windowStart(t("2026-03-08T06:59:59.999Z"), "5m"), t("2026-03-08T06:55:00Z"));
  assert.equal(windowStart(t("2026-03-08T07:00:00.000Z"), "5m"), t("2026-03-08T07:00:00Z"));
  assert.equal(windowStart(t("2026-03-08T07:04:59.999Z"), "1h"), t("2026-03-08T07:00:00Z"));
  assert.equal(windowEnd(t("2026-03-08T07:00:00Z"), "5m"), t("2026-03-08T07:05:00Z"));
  assert.equal(windowEnd(t("2026-03-08T07:00:00Z"), "1h"), t("2026-03-08T08:00:00Z"));
});

Deno.test("windowStart() puts the last millisecond of a day in that day's last window", () => {
  const last = t("2026-12-31T23:59:59.999Z");
  assert.equal(windowStart(last, "5m"), t("2026-12-31T23:55:00Z"));
  assert.equal(windowStart(last, "1h"), t("2026-12-31T23:00:00Z"));
  assert.equal(windowStart(last + 1, "1h"), t("2027-01-01T00:00:00Z"));
});

Deno.test("every millisecond of a window maps to the same start, for many windows", () => {
  for (let start = t("2026-01-01T00:00:00Z"); start < t("2026-01-01T02:00:00Z"); start += 300_000) {
    for (const offset of [0, 1, 149_999, 299_999]) {
      assert.equal(windowStart(start + offset, "5m"), start);
    }
    assert.equal(windowStart(start + 300_000, "5m"), start + 300_000);
  }
});

Deno.test("goldBucket() is the UTC month for 5m and the UTC year for 1h", () => {
  assert.equal(goldBucket(t("2026-11-24T13:55:00Z"), "5m"), "2026-11-01");
  assert.equal(goldBucket(t("2026-11-30T23:55:00Z"), "5m"), "2026-11-01");
  assert.equal(goldBucket(t("2026-12-01T00:00:00Z"), "5m"), "2026-12-01");
  assert.equal(goldBucket(t("2026-11-24T13:00:00Z"), "1h"), "2026-01-01");
  assert.equal(goldBucket(t("2027-01-01T00:00:00Z"), "1h"), "2027-01-01");
});

Deno.test("goldBucketsBetween() lists every bucket a range touches", () => {
  assert.deepEqual(
    goldBucketsBetween(t("2026-11-30T22:00:00Z"), t("2027-01-02T00:00:00Z"), "5m"),
    ["2026-11-01", "2026-12-01", "2027-01-01"],
  );
  assert.deepEqual(goldBucketsBetween(t("2026-11-30T22:00:00Z"), t("2026-11-30T23:00:00Z"), "5m"), [
    "2026-11-01",
  ]);
  assert.deepEqual(
    goldBucketsBetween(t("2025-06-01T00:00:00Z"), t("2026-02-01T00:00:00Z"), "1h"),
    ["2025-01-01", "2026-01-01"],
  );
  assert.deepEqual(goldBucketsBetween(5, 5, "1h"), []);
});

Deno.test("the served intervals are the stored ones and the roll-ups, shortest first", () => {
  assert.deepEqual(INTERVALS, ["1m", "5m", "1h", "1d"]);
  assert.deepEqual(ROLLUP_INTERVALS, ["15m", "4h"]);
  assert.deepEqual(SERVED_INTERVALS, ["1m", "5m", "15m", "1h", "4h", "1d"]);
  assert.deepEqual(
    [...SERVED_INTERVALS].sort((a, b) => INTERVAL_MS[a] - INTERVAL_MS[b]),
    SERVED_INTERVALS,
  );
  for (const interval of INTERVALS) {
    assert.ok(isStored(interval));
    assert.equal(GOLD_TABLE[interval], `trades_gold_${interval}`);
  }
  for (const interval of ROLLUP_INTERVALS) {
    assert.ok(!isStored(interval));
    const source = ROLLUP_SOURCE[interval];
    assert.ok(isStored(source));
    // A roll-up window is a whole number of source windows, aligned alike.
    assert.equal(INTERVAL_MS[interval] % INTERVAL_MS[source], 0);
  }
  // Every window divides a UTC day, so windows never straddle UTC midnight.
  for (const interval of SERVED_INTERVALS) assert.equal(86_400_000 % INTERVAL_MS[interval], 0);
});

Deno.test("windowStart() aligns 1m, 15m, 4h and 1d windows to UTC", () => {
  const at = t("2026-03-08T06:59:59.999Z");
  assert.equal(windowStart(at, "1m"), t("2026-03-08T06:59:00Z"));
  assert.equal(windowStart(at, "15m"), t("2026-03-08T06:45:00Z"));
  assert.equal(windowStart(at, "4h"), t("2026-03-08T04:00:00Z"));
  assert.equal(windowStart(at, "1d"), t("2026-03-08T00:00:00Z"));
  assert.equal(windowStart(t("2026-03-08T23:59:59.999Z"), "1d"), t("2026-03-08T00:00:00Z"));
  assert.equal(windowStart(t("2026-03-09T00:00:00Z"), "1d"), t("2026-03-09T00:00:00Z"));
  assert.equal(windowEnd(t("2026-03-08T00:00:00Z"), "1d"), t("2026-03-09T00:00:00Z"));
  assert.equal(windowEnd(t("2026-03-08T06:59:00Z"), "1m"), t("2026-03-08T07:00:00Z"));
  // Before the epoch too (floor, not truncation).
  assert.equal(windowStart(-1, "1d"), -86_400_000);
});

Deno.test("goldBucket() is the UTC day for 1m and the UTC year for 1d", () => {
  assert.equal(goldBucket(t("2026-11-24T00:00:00Z"), "1m"), "2026-11-24");
  assert.equal(goldBucket(t("2026-11-24T23:59:00Z"), "1m"), "2026-11-24");
  assert.equal(goldBucket(t("2026-11-25T00:00:00Z"), "1m"), "2026-11-25");
  assert.equal(goldBucket(t("2028-02-29T12:00:00Z"), "1m"), "2028-02-29");
  assert.equal(goldBucket(t("2026-11-24T00:00:00Z"), "1d"), "2026-01-01");
  assert.equal(goldBucket(t("2026-12-31T00:00:00Z"), "1d"), "2026-01-01");
  assert.equal(goldBucket(t("2027-01-01T00:00:00Z"), "1d"), "2027-01-01");
});

Deno.test("a partition holds at most 1,440 1m, 8,928 5m, 8,784 1h or 366 1d rows", () => {
  const most = { "1m": 1_440, "5m": 8_928, "1h": 8_784, "1d": 366 } as const;
  for (const interval of INTERVALS) {
    // Count the windows of each bucket over two years, a leap year among them.
    const counts = new Map<string, number>();
    const step = INTERVAL_MS[interval];
    for (let w = t("2027-06-01T00:00:00Z"); w < t("2029-01-01T00:00:00Z"); w += step) {
      const bucket = goldBucket(w, interval);
      counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
    }
    assert.equal(Math.max(...counts.values()), most[interval], interval);
  }
  assert.deepEqual(GOLD_BUCKET_SPAN, { "1m": "day", "5m": "month", "1h": "year", "1d": "year" });
});

Deno.test("goldBucketsBetween() lists the days of a 1m range and the years of a 1d range", () => {
  assert.deepEqual(
    goldBucketsBetween(t("2026-12-30T22:00:00Z"), t("2027-01-02T00:00:00Z"), "1m"),
    ["2026-12-30", "2026-12-31", "2027-01-01"],
  );
  assert.deepEqual(
    goldBucketsBetween(t("2028-02-28T23:59:00Z"), t("2028-03-01T00:00:01Z"), "1m"),
    ["2028-02-28", "2028-02-29", "2028-03-01"],
  );
  assert.deepEqual(goldBucketsBetween(t("2026-12-30T22:00:00Z"), t("2026-12-30T22:01:00Z"), "1m"), [
    "2026-12-30",
  ]);
  assert.deepEqual(
    goldBucketsBetween(t("2017-03-01T00:00:00Z"), t("2019-01-01T00:00:00Z"), "1d"),
    ["2017-01-01", "2018-01-01"],
  );
  assert.deepEqual(goldBucketsBetween(5, 5, "1m"), []);
});

Deno.test("goldBucketsBetween() holds the bucket of every window of the range, for every interval", () => {
  const from = t("2026-12-29T21:17:00Z");
  const to = t("2027-01-03T02:00:00Z");
  for (const interval of INTERVALS) {
    const buckets = new Set(goldBucketsBetween(from, to, interval));
    for (let w = windowStart(from, interval); w < to; w += INTERVAL_MS[interval]) {
      assert.ok(buckets.has(goldBucket(w, interval)), `${interval} ${new Date(w).toISOString()}`);
    }
  }
});
