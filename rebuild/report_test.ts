import assert from "node:assert/strict";
import type { SilverTrade } from "../shared/types.ts";
import type { GoldPlan, SilverDiff } from "./plan.ts";
import { formatReport, progressLine, type RebuildOutcome } from "./report.ts";

const H = Date.parse("2026-12-07T10:00:00Z");
const TRADE: SilverTrade = {
  symbol: "AAPL",
  price: 190.5,
  eventTime: H + 1000,
  volume: 10,
  priceOnly: false,
  conditions: [],
  session: "REGULAR",
  ingestTime: H + 1005,
  rawTopic: "raw",
  rawPartition: 1,
  rawOffset: 42,
};
const NO_SILVER: SilverDiff = { added: [], removed: [], changed: [], unchanged: 7, kept: [] };
const NO_GOLD: GoldPlan = {
  writes: [],
  unchanged: 3,
  leftOpen: [],
  openDiffer: [],
  liveAhead: [],
};

function outcome(fields: Partial<RebuildOutcome> = {}): RebuildOutcome {
  return {
    asked: { from: H, to: H + 3_600_000 },
    span: { from: H, to: H + 3_600_000 },
    source: "kafka topic raw, offsets 0:0-10",
    recordsRead: 10,
    rejected: {},
    silver: NO_SILVER,
    gold: new Map([["5m", NO_GOLD], ["1h", NO_GOLD]]),
    written: { silver: true, gold: true },
    dryRun: false,
    ...fields,
  };
}

Deno.test("formatReport() says nothing changed for an untouched span", () => {
  assert.deepEqual(formatReport(outcome(), true), [
    "span (event time): 2026-12-07T10:00:00.000Z .. 2026-12-07T11:00:00.000Z",
    "source: kafka topic raw, offsets 0:0-10; 10 records read",
    "silver: 0 added, 0 removed, 0 changed, 7 unchanged",
    "gold 5m: 0 added, 0 amended, 0 removed, 3 unchanged",
    "gold 1h: 0 added, 0 amended, 0 removed, 3 unchanged",
    "nothing changed",
  ]);
});

Deno.test("formatReport() counts each change per layer and lists a few with --verbose", () => {
  const gold: GoldPlan = {
    writes: [{
      kind: "remove",
      key: "k",
      before: undefined,
      after: undefined,
      timestamp: 1n,
      window: { interval: "5m", symbol: "AAPL", start: H },
    }],
    unchanged: 0,
    leftOpen: ["a", "b"],
    openDiffer: [],
    liveAhead: ["c"],
  };
  const lines = formatReport(
    outcome({
      asked: { from: H + 60_000, to: H + 120_000 },
      rejected: { bad_price_range: 2 },
      silver: { ...NO_SILVER, added: [TRADE], removed: [TRADE], kept: [TRADE] },
      gold: new Map([["5m", gold]]),
      written: { silver: false, gold: true },
    }),
    true,
  );
  assert.match(lines[0]!, /\(asked 2026-12-07T10:01:00.000Z .* widened to whole windows\)$/);
  assert.ok(lines.includes("rejected by silver's rules: bad_price_range 2"));
  assert.ok(
    lines.includes(
      "silver (not written: --layers): 1 added, 1 removed, 0 changed, 7 unchanged, 1 kept as stored (raw record not in the source read)",
    ),
  );
  assert.ok(lines.includes("  + AAPL 2026-12-07T10:00:01.000Z p=190.5 v=10 @1:42"));
  assert.ok(lines.includes("  - AAPL 2026-12-07T10:00:01.000Z p=190.5 v=10 @1:42"));
  assert.ok(
    lines.includes(
      "gold 5m: 0 added, 0 amended, 1 removed, 0 unchanged, 2 left open to live gold (not final yet), 1 skipped (live gold folded trades received after the read)",
    ),
  );
  assert.ok(lines.some((l) => l.startsWith("  remove AAPL 2026-12-07T10:00:00.000Z: ")));
  assert.ok(!lines.includes("nothing changed"));
  assert.ok(
    !formatReport(outcome({ silver: { ...NO_SILVER, added: [TRADE] } }), false)
      .some((l) => l.startsWith("  ")),
    "no examples without --verbose",
  );
});

Deno.test("formatReport() says which open windows differ and to run again once final", () => {
  const day = Date.parse("2026-12-07T00:00:00Z");
  const gold: GoldPlan = {
    ...NO_GOLD,
    leftOpen: ["a", "b", "c"],
    openDiffer: [
      { interval: "1d", symbol: "AAPL", start: day },
      { interval: "5m", symbol: "AAPL", start: H },
    ],
  };
  const lines = formatReport(outcome({ gold: new Map([["1d", gold]]) }), false);
  assert.ok(
    lines.includes(
      "gold 1d: 0 added, 0 amended, 0 removed, 3 unchanged, 3 left open to live gold (not final yet; 2 differ from the rebuild)",
    ),
    lines.join("\n"),
  );
  assert.ok(
    lines.includes(
      "2 open windows differ from the rebuild (the last ends 2026-12-08T00:00:00.000Z): live gold writes them final; run the rebuild again once they are final (a trade of every partition past their end plus GOLD_ALLOWED_LATENESS_MS) to make them exact",
    ),
    lines.join("\n"),
  );
  assert.equal(lines.at(-1), "nothing written");
  assert.ok(!lines.includes("nothing changed"));
});

Deno.test("formatReport() marks a dry run", () => {
  assert.ok(formatReport(outcome({ dryRun: true }), false).some((l) => l.includes("(dry run")));
});

Deno.test("progressLine() shows records read, of the total, and the rate", () => {
  assert.equal(progressLine(500, 2000, 2000), "rebuild: read 500/2000 (25%) records, 250/s");
  assert.equal(progressLine(10, undefined, 0), "rebuild: read 10 records, 0/s");
});
