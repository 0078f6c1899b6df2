import assert from "node:assert/strict";
import { goldBucket, goldBucketsBetween, windowEnd, windowStart } from "./gold_table.ts";

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
