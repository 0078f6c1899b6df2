import assert from "node:assert/strict";
import { touchedWindows } from "./gap_stage.ts";

const MINUTE = 60_000;

Deno.test("touchedWindows() lists each window a span overlaps once, end exclusive", () => {
  assert.deepEqual(touchedWindows([{ from: 4 * MINUTE, to: 5 * MINUTE }], "5m"), [0]);
  assert.deepEqual(touchedWindows([{ from: 4 * MINUTE, to: 5 * MINUTE + 1 }], "5m"), [
    0,
    5 * MINUTE,
  ]);
  assert.deepEqual(touchedWindows([{ from: 5 * MINUTE, to: 11 * MINUTE }], "5m"), [
    5 * MINUTE,
    10 * MINUTE,
  ]);
});

Deno.test("touchedWindows() lists a window two spans share once", () => {
  assert.deepEqual(
    touchedWindows([
      { from: MINUTE, to: 2 * MINUTE },
      { from: 3 * MINUTE, to: 7 * MINUTE },
      { from: 8 * MINUTE, to: 9 * MINUTE },
      { from: 61 * MINUTE, to: 62 * MINUTE },
    ], "5m"),
    [0, 5 * MINUTE, 60 * MINUTE],
  );
  assert.deepEqual(
    touchedWindows([{ from: MINUTE, to: 2 * MINUTE }, { from: 3 * MINUTE, to: 61 * MINUTE }], "1h"),
    [0, 60 * MINUTE],
  );
});
