import assert from "node:assert/strict";
import { exponentialDelay } from "./backoff.ts";

const low = () => 0;
const high = () => 0.999999;

Deno.test("exponentialDelay() doubles per attempt up to the cap", () => {
  const options = { baseMs: 1_000, maxMs: 30_000 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((a) => exponentialDelay(a, options)),
    [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000],
  );
});

Deno.test("exponentialDelay() stays at the cap for any attempt and reads a bad attempt as 0", () => {
  for (const attempt of [6, 53, 1_000, Number.MAX_SAFE_INTEGER, Infinity]) {
    assert.equal(exponentialDelay(attempt, { baseMs: 500, maxMs: 30_000 }), 30_000, `${attempt}`);
  }
  for (const attempt of [-1, -Infinity, 0.9]) {
    assert.equal(exponentialDelay(attempt, { baseMs: 500, maxMs: 30_000 }), 500, `${attempt}`);
  }
});

Deno.test("exponentialDelay() with equal jitter picks within the upper half of each step", () => {
  const options = { baseMs: 500, maxMs: 30_000, jitter: "equal" as const };
  assert.deepEqual(
    [0, 1, 2, 3, 7].map((a) => exponentialDelay(a, { ...options, random: low })),
    [250, 500, 1_000, 2_000, 15_000],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 7].map((a) => exponentialDelay(a, { ...options, random: high })),
    [500, 1_000, 2_000, 4_000, 30_000],
  );
  const spread = new Set<number>();
  for (let i = 0; i < 50; i++) spread.add(exponentialDelay(4, options));
  assert.ok(spread.size > 10, "Math.random spreads the waits");
});
