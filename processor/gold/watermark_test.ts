import assert from "node:assert/strict";
import { observe, reachedAt, watermarkAt } from "./watermark.ts";

const T = Date.parse("2026-11-24T15:00:00Z");

Deno.test("watermarkAt() is -Infinity before any trade", () => {
  assert.equal(watermarkAt(undefined, T, 10_000), -Infinity);
});

Deno.test("the watermark is the latest event time minus the lateness", () => {
  let clock = observe(undefined, { eventTime: T, ingestTime: T + 50 }, T + 60);
  clock = observe(clock, { eventTime: T - 5000, ingestTime: T + 70 }, T + 60);
  assert.equal(watermarkAt(clock, T + 60, 10_000), T - 10_000);
});

Deno.test("a print stamped in the future moves the watermark only to its ingest time", () => {
  const clock = observe(undefined, { eventTime: T + 55_000, ingestTime: T }, T);
  assert.equal(clock.maxEventTime, T);
  assert.equal(watermarkAt(clock, T, 1000), T - 1000);
});

Deno.test("the watermark advances with the wall clock while the partition is idle", () => {
  const clock = observe(undefined, { eventTime: T, ingestTime: T }, T);
  assert.equal(watermarkAt(clock, T + 4000, 10_000), T - 6000);
  assert.equal(watermarkAt(clock, T - 1000, 10_000), T - 10_000, "never below the base");
});

Deno.test("reachedAt() is when the idle-advancing watermark passed a time", () => {
  const clock = observe(undefined, { eventTime: T, ingestTime: T }, T + 100);
  assert.equal(reachedAt(clock, T - 20_000, 10_000), T + 100, "already passed at arrival");
  assert.equal(reachedAt(clock, T + 5_000, 10_000), T + 100 + 15_000);
  assert.equal(watermarkAt(clock, reachedAt(clock, T + 5_000, 10_000), 10_000), T + 5_000);
});

Deno.test("observe() never moves the watermark back", () => {
  let clock = observe(undefined, { eventTime: T, ingestTime: T }, T);
  clock = observe(clock, { eventTime: T - 60_000, ingestTime: T }, T - 5);
  assert.equal(clock.maxEventTime, T);
  assert.equal(clock.lastArrival, T);
});
