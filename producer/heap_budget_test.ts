import assert from "node:assert/strict";
import { BUFFERED_TRADE_HEAP_BYTES, checkBufferFitsHeap, maxBufferTrades } from "./heap_budget.ts";
import { PRODUCER_V8_FLAGS } from "../shared/topology.ts";

const MIB = 1024 * 1024;
/** `heap_size_limit` under PRODUCER_V8_FLAGS: 128 MiB old space and three 8 MiB semi-spaces. */
const LIMIT = 152 * MIB;

Deno.test("checkBufferFitsHeap() accepts the default buffer under the producer's flags", () => {
  assert.match(PRODUCER_V8_FLAGS, /--max-old-space-size=128\b/);
  checkBufferFitsHeap(200_000, LIMIT);
});

Deno.test("checkBufferFitsHeap() accepts up to half the heap and refuses one trade more", () => {
  const max = maxBufferTrades(LIMIT);
  assert.equal(max, Math.floor((LIMIT / 2) / BUFFERED_TRADE_HEAP_BYTES));
  assert.ok(max * BUFFERED_TRADE_HEAP_BYTES <= LIMIT / 2);
  assert.ok((max + 1) * BUFFERED_TRADE_HEAP_BYTES > LIMIT / 2);
  checkBufferFitsHeap(max, LIMIT);
  checkBufferFitsHeap(1, LIMIT);
  assert.throws(() => checkBufferFitsHeap(max + 1, LIMIT), RangeError);
});

Deno.test("checkBufferFitsHeap() names the variable, the need, the limit and both ways out", () => {
  assert.throws(
    () => checkBufferFitsHeap(1_000_000, LIMIT),
    {
      name: "RangeError",
      message: "PRODUCER_BUFFER_MAX_TRADES=1000000 needs about 245 MiB of heap when full " +
        "(256 bytes a trade), more than half of this process's heap limit of 152 MiB: set it to " +
        "at most 311296, or raise --max-old-space-size in the producer's --v8-flags (default " +
        "--max-old-space-size=128,--max-semi-space-size=8)",
    },
  );
});

Deno.test("checkBufferFitsHeap() scales with a larger heap", () => {
  assert.throws(() => checkBufferFitsHeap(1_000_000, LIMIT), RangeError);
  checkBufferFitsHeap(1_000_000, 1024 * MIB);
  assert.equal(maxBufferTrades(1024 * MIB), 2_097_152);
});

Deno.test("checkBufferFitsHeap() refuses a heap limit that is not a positive number", () => {
  for (const limit of [0, -1, NaN, Infinity]) {
    assert.throws(() => checkBufferFitsHeap(10, limit), /heap limit must be a positive number/);
  }
});
