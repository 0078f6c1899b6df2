import assert from "node:assert/strict";
import { parseReplay, recordedDelays, replayedTrades } from "./replay.ts";

Deno.test("parseReplay() keeps every line verbatim and reads arrival times", () => {
  const frames = parseReplay(
    [
      '{"data":[{"s":"A","p":1,"t":1000,"v":1},{"s":"A","p":1,"t":1200,"v":1}],"type":"trade"}',
      "",
      '{"type":"ping"}',
      "not json",
      '{"receivedAt":5000,"frame":{"type":"ping"}}',
      '{"receivedAt":5100,"frame":"{\\"type\\":\\"trade\\",\\"data\\":[]}"}',
    ].join("\r\n"),
  );
  assert.deepEqual(frames, [
    {
      text:
        '{"data":[{"s":"A","p":1,"t":1000,"v":1},{"s":"A","p":1,"t":1200,"v":1}],"type":"trade"}',
      at: 1200,
    },
    { text: '{"type":"ping"}', at: null },
    { text: "not json", at: null },
    { text: '{"type":"ping"}', at: 5000 },
    { text: '{"type":"trade","data":[]}', at: 5100 },
  ]);
});

Deno.test("recordedDelays() follows the recorded gaps, capped, never negative", () => {
  const at = (t: number | null) => ({ text: "", at: t });
  assert.deepEqual(
    recordedDelays([at(1000), at(null), at(1300), at(1200), at(99_000), at(99_050)], 2_000),
    [0, 0, 300, 0, 2_000, 50],
  );
});

Deno.test("replayedTrades() returns a trade frame's data and nothing for other lines", () => {
  assert.deepEqual(replayedTrades('{"type":"trade","data":[{"s":"A"},7]}'), [{ s: "A" }, 7]);
  assert.deepEqual(replayedTrades('{"type":"ping"}'), []);
  assert.deepEqual(replayedTrades("{oops"), []);
});
