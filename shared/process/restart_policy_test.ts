import assert from "node:assert/strict";
import {
  createRestartTracker,
  describeWindow,
  RESTART_POLICY,
  type RestartDecision,
} from "./restart_policy.ts";

const SECOND = 1_000;
const MINUTE = 60_000;

/** The decisions for runs of these lengths, each started again after the wait decided. */
function deaths(runsMs: readonly number[]): RestartDecision[] {
  const tracker = createRestartTracker(RESTART_POLICY);
  let now = 1_700_000_000_000;
  return runsMs.map((ranMs) => {
    const startedAt = now;
    now += ranMs;
    const decision = tracker.died({ startedAt, diedAt: now });
    if (decision.action === "restart") now += decision.delayMs;
    return decision;
  });
}

const waits = (list: RestartDecision[]) =>
  list.map((d) => d.action === "restart" ? d.delayMs : "give-up");

Deno.test("restarts of a process that keeps dying at once wait 1, 2, 4, 8, 16 s; the sixth death in 5 minutes gives up", () => {
  assert.deepEqual(waits(deaths([100, 100, 100, 100, 100, 100])), [
    1 * SECOND,
    2 * SECOND,
    4 * SECOND,
    8 * SECOND,
    16 * SECOND,
    "give-up",
  ]);
});

Deno.test("the wait is capped at 30 s while deaths are too far apart for the window", () => {
  // Each run 59 s: unhealthy, but no more than five deaths fit in any 5 minutes.
  const list = deaths(Array.from({ length: 9 }, () => 59 * SECOND));
  assert.deepEqual(waits(list), [
    1 * SECOND,
    2 * SECOND,
    4 * SECOND,
    8 * SECOND,
    16 * SECOND,
    30 * SECOND,
    30 * SECOND,
    30 * SECOND,
    30 * SECOND,
  ]);
  assert.ok(list.every((d) => d.deaths <= RESTART_POLICY.maxDeaths));
});

Deno.test("a run that lasted the healthy period resets the wait to 1 s", () => {
  assert.deepEqual(waits(deaths([100, 100, 100, 1 * MINUTE, 100])), [
    1 * SECOND,
    2 * SECOND,
    4 * SECOND,
    1 * SECOND,
    2 * SECOND,
  ]);
});

Deno.test("after six crashes spread over a long time the next restart waits 1 s, not 30 s", () => {
  const list = deaths(Array.from({ length: 7 }, () => 6 * 60 * MINUTE));
  assert.deepEqual(waits(list), Array(7).fill(1 * SECOND));
  assert.deepEqual(list.at(-1), { action: "restart", delayMs: 1 * SECOND, restarts: 7, deaths: 1 });
});

Deno.test("healthy runs still give up when more than five deaths fall in the window", () => {
  const tracker = createRestartTracker({ ...RESTART_POLICY, healthyMs: 10 * SECOND });
  let now = 0;
  const decisions = Array.from({ length: 6 }, () => {
    const startedAt = now;
    now += 30 * SECOND;
    return tracker.died({ startedAt, diedAt: now });
  });
  assert.deepEqual(decisions.map((d) => d.action), [
    "restart",
    "restart",
    "restart",
    "restart",
    "restart",
    "give-up",
  ]);
  assert.deepEqual(decisions.at(-1), { action: "give-up", deaths: 6 });
});

Deno.test("describeWindow() names minutes or seconds", () => {
  assert.equal(describeWindow(5 * MINUTE), "5 minutes");
  assert.equal(describeWindow(MINUTE), "1 minute");
  assert.equal(describeWindow(90 * SECOND), "90 s");
});
