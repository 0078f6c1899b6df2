import assert from "node:assert/strict";
import { firstShown, type ShownCandle } from "./live_page_latency.ts";

const rows = [
  { price: 10, ingest: 1_000 },
  { price: 11, ingest: 1_100 },
  { price: 12, ingest: 1_200 },
  { price: 13, ingest: 1_300 },
];

function shown(at: number, trades: number, close: number): ShownCandle {
  return { at, symbol: "AAPL", time: 0, close, trades };
}

Deno.test("firstShown() times each trade to the first event whose count reaches it", () => {
  // Events arrive out of order in the list; the repeat at 1_600 shows nothing new.
  const result = firstShown(
    rows,
    [shown(1_700, 4, 13), shown(1_500, 2, 11), shown(1_600, 2, 11)],
    0,
    10_000,
  );
  assert.deepEqual(result, { delays: [500, 400, 500, 400], notShown: 0, unmatched: 0 });
});

Deno.test("firstShown() counts trades no event reached, within the span only", () => {
  const result = firstShown(rows, [shown(1_500, 1, 10)], 1_100, 1_250);
  assert.deepEqual(result, { delays: [], notShown: 2, unmatched: 0 });
});

Deno.test("firstShown() skips an event whose close is not its n-th row's price", () => {
  const result = firstShown(rows, [shown(1_500, 2, 99), shown(1_800, 3, 12)], 0, 10_000);
  assert.deepEqual(result, { delays: [800, 700, 600], notShown: 1, unmatched: 1 });
});
