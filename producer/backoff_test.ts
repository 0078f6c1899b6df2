import assert from "node:assert/strict";
import { reconnectDelay, refusedHandshakeDelay } from "./backoff.ts";

const low = () => 0;
const high = () => 0.999999;

Deno.test("reconnectDelay() doubles per attempt within the upper half of each step", () => {
  const options = { baseMs: 500, maxMs: 30_000 };
  assert.deepEqual(
    [0, 1, 2, 3].map((a) => reconnectDelay(a, { ...options, random: low })),
    [250, 500, 1000, 2000],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((a) => reconnectDelay(a, { ...options, random: high })),
    [500, 1000, 2000, 4000],
  );
});

Deno.test("reconnectDelay() never exceeds the cap, even after many attempts", () => {
  for (const attempt of [6, 10, 50, 1_000, Number.MAX_SAFE_INTEGER]) {
    const delay = reconnectDelay(attempt, { baseMs: 500, maxMs: 30_000, random: high });
    assert.ok(delay <= 30_000 && delay >= 15_000, `attempt ${attempt}: ${delay}`);
  }
});

Deno.test("reconnectDelay() spreads delays with jitter", () => {
  const delays = new Set<number>();
  for (let i = 0; i < 50; i++) delays.add(reconnectDelay(4, { baseMs: 500, maxMs: 30_000 }));
  assert.ok(delays.size > 10);
});

Deno.test("refusedHandshakeDelay() backs off hard and harder for refusals in a row", () => {
  const options = { baseMs: 500, maxMs: 30_000, random: low };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => refusedHandshakeDelay(n, 60_000, options)),
    [60_000, 120_000, 240_000, 480_000, 480_000],
  );
  assert.equal(refusedHandshakeDelay(1, 60_000, { ...options, random: high }), 66_000);
  assert.equal(refusedHandshakeDelay(1, 0, options), 500, "never below the ordinary delay");
});
