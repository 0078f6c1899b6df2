import assert from "node:assert/strict";
import { CoverageTracker, gapId, OverflowGaps } from "./feed_gaps.ts";

const FEED = "feed1";
const AB = ["A", "B"] as const;

Deno.test("CoverageTracker: the first start ever has no gap", () => {
  const t = new CoverageTracker({ feedId: FEED });
  assert.equal(t.mark(5), null);
  assert.equal(t.subscribed("r-1", AB, 10), null);
  assert.equal(t.covering, true);
  assert.deepEqual(t.mark(20), { coveredUntilMs: 20, symbols: AB });
});

Deno.test("CoverageTracker: a connection that never subscribed before leaves no gap when it fails", () => {
  const t = new CoverageTracker({ feedId: FEED });
  t.lost("reconnect", 5);
  t.refused();
  assert.equal(t.mark(6), null);
  assert.equal(t.subscribed("r-1", AB, 10), null);
});

Deno.test("CoverageTracker: a closed connection is a reconnect gap from the close to the next subscription", () => {
  const t = new CoverageTracker({ feedId: FEED });
  t.subscribed("r-1", AB, 1_000);
  t.lost("reconnect", 5_000);
  assert.equal(t.covering, false);
  assert.deepEqual(t.mark(5_500), { coveredUntilMs: 5_000, symbols: AB });
  assert.deepEqual(t.subscribed("r-2", AB, 6_250), {
    gapId: "feed1:reconnect:5000",
    fromMs: 5_000,
    toMs: 6_250,
    symbols: ["A", "B"],
    cause: "reconnect",
    connectionId: "r-2",
  });
  assert.deepEqual(t.mark(7_000), { coveredUntilMs: 7_000, symbols: AB });
});

Deno.test("CoverageTracker: a watchdog gap starts at the last frame given", () => {
  const t = new CoverageTracker({ feedId: FEED });
  t.subscribed("r-1", AB, 0);
  t.lost("watchdog", 3_000);
  const gap = t.subscribed("r-2", AB, 13_100)!;
  assert.equal(gap.cause, "watchdog");
  assert.equal(gap.fromMs, 3_000);
  assert.equal(gap.toMs, 13_100);
});

Deno.test("CoverageTracker: failed reconnects extend one gap; the first loss sets its start and cause", () => {
  const t = new CoverageTracker({ feedId: FEED });
  t.subscribed("r-1", AB, 0);
  t.lost("watchdog", 100);
  t.lost("reconnect", 200); // the next dial failed: no covering connection, nothing changes
  t.lost("reconnect", 300);
  const gap = t.subscribed("r-2", AB, 400)!;
  assert.deepEqual([gap.cause, gap.fromMs, gap.toMs], ["watchdog", 100, 400]);
});

Deno.test("CoverageTracker: a refused handshake inside a gap makes it auth_backoff", () => {
  for (const cause of ["reconnect", "watchdog"] as const) {
    const t = new CoverageTracker({ feedId: FEED });
    t.subscribed("r-1", AB, 0);
    t.lost(cause, 100);
    t.refused();
    t.refused();
    const gap = t.subscribed("r-2", AB, 30_000)!;
    assert.deepEqual([gap.cause, gap.fromMs, gap.gapId], [
      "auth_backoff",
      100,
      "feed1:auth_backoff:100",
    ]);
  }
});

Deno.test("CoverageTracker: a refusal while covering changes nothing", () => {
  const t = new CoverageTracker({ feedId: FEED });
  t.subscribed("r-1", AB, 0);
  t.refused();
  t.lost("reconnect", 50);
  assert.equal(t.subscribed("r-2", AB, 60)!.cause, "reconnect");
});

Deno.test("CoverageTracker: adjacent gaps are two gaps, the second starting where coverage ended again", () => {
  const t = new CoverageTracker({ feedId: FEED });
  t.subscribed("r-1", AB, 0);
  t.lost("reconnect", 100);
  const first = t.subscribed("r-2", AB, 200)!;
  t.lost("reconnect", 200); // dropped the moment it subscribed
  const second = t.subscribed("r-3", AB, 350)!;
  assert.deepEqual([first.fromMs, first.toMs, second.fromMs, second.toMs], [100, 200, 200, 350]);
  assert.notEqual(first.gapId, second.gapId);
});

Deno.test("CoverageTracker: the previous run's mark is a producer_down gap ended by the first subscription", () => {
  const t = new CoverageTracker({
    feedId: FEED,
    previous: { coveredUntilMs: 1_000, symbols: AB },
  });
  // Before connecting, the mark stays the previous one: a crash now merges into this downtime.
  assert.deepEqual(t.mark(2_000), { coveredUntilMs: 1_000, symbols: AB });
  t.refused(); // refused at start: the downtime stays producer_down
  t.lost("reconnect", 2_500);
  assert.deepEqual(t.subscribed("s-1", AB, 9_000), {
    gapId: "feed1:producer_down:1000",
    fromMs: 1_000,
    toMs: 9_000,
    symbols: ["A", "B"],
    cause: "producer_down",
    connectionId: "s-1",
  });
  assert.equal(t.subscribed("s-2", AB, 9_500), null);
});

Deno.test("CoverageTracker: the same downtime found again has the same gap id", () => {
  const previous = { coveredUntilMs: 1_000, symbols: AB };
  const a = new CoverageTracker({ feedId: FEED, previous }).subscribed("x-1", AB, 5_000)!;
  const b = new CoverageTracker({ feedId: FEED, previous }).subscribed("y-1", AB, 8_000)!;
  assert.equal(a.gapId, b.gapId);
  assert.equal(b.toMs, 8_000);
  const other = new CoverageTracker({ feedId: "feed2", previous }).subscribed("z-1", AB, 8_000)!;
  assert.notEqual(other.gapId, a.gapId);
});

Deno.test("CoverageTracker: a mark with no symbols is no gap", () => {
  const t = new CoverageTracker({ feedId: FEED, previous: { coveredUntilMs: 1, symbols: [] } });
  assert.equal(t.subscribed("r-1", AB, 10), null);
});

Deno.test("CoverageTracker: a gap is for the symbols covered before and subscribed again", () => {
  const t = new CoverageTracker({
    feedId: FEED,
    previous: { coveredUntilMs: 0, symbols: ["A", "B", "C"] },
  });
  const gap = t.subscribed("r-1", ["B", "C", "D"], 10)!;
  assert.deepEqual(gap.symbols, ["B", "C"]);
  t.lost("reconnect", 20);
  assert.deepEqual(t.mark(21), { coveredUntilMs: 20, symbols: ["B", "C", "D"] });
  assert.equal(t.subscribed("r-2", ["E"], 30), null, "no symbol resumed: no gap");
  assert.deepEqual(t.mark(31), { coveredUntilMs: 31, symbols: ["E"] });
});

Deno.test("CoverageTracker: a mark later than the resumption (a clock step back) gives an empty gap, never a negative one", () => {
  const t = new CoverageTracker({ feedId: FEED, previous: { coveredUntilMs: 500, symbols: AB } });
  const gap = t.subscribed("r-1", AB, 400)!;
  assert.deepEqual([gap.fromMs, gap.toMs], [400, 400]);
});

Deno.test("CoverageTracker: shutdown marks the stop; a shutdown inside a gap marks the gap's start", () => {
  const covering = new CoverageTracker({ feedId: FEED });
  covering.subscribed("r-1", AB, 0);
  covering.stopped(700);
  assert.deepEqual(covering.mark(900), { coveredUntilMs: 700, symbols: AB });
  assert.equal(covering.stoppedAt, 700);
  const inGap = new CoverageTracker({ feedId: FEED });
  inGap.subscribed("r-1", AB, 0);
  inGap.lost("watchdog", 300);
  inGap.stopped(700);
  assert.deepEqual(inGap.mark(900), { coveredUntilMs: 300, symbols: AB });
});

Deno.test("gapId() names the feed, the cause and the start", () => {
  assert.equal(gapId("f", "producer_down", 12), "f:producer_down:12");
});

Deno.test("OverflowGaps: one episode of drops is one gap over the dropped trades' receive times", () => {
  const o = new OverflowGaps(FEED);
  assert.equal(o.accepted("r-1"), null);
  o.recordDrop("B", 1_000);
  o.recordDrop("A", 1_005);
  o.recordDrop("B", 1_003);
  assert.equal(o.droppedInEpisode, 3);
  assert.deepEqual(o.accepted("r-1"), {
    gapId: "feed1:buffer_overflow:1000",
    fromMs: 1_000,
    toMs: 1_006,
    symbols: ["A", "B"],
    cause: "buffer_overflow",
    connectionId: "r-1",
  });
  assert.equal(o.droppedInEpisode, 0);
  assert.equal(o.accepted("r-1"), null);
});

Deno.test("OverflowGaps: a single dropped trade is a 1 ms gap; episodes apart are gaps apart", () => {
  const o = new OverflowGaps(FEED);
  o.recordDrop("A", 50);
  const first = o.flush("c")!;
  o.recordDrop("A", 50); // a second episode in the same millisecond: adjacent, same span
  o.recordDrop("A", 60);
  const second = o.flush("c")!;
  assert.deepEqual([first.fromMs, first.toMs], [50, 51]);
  assert.deepEqual([second.fromMs, second.toMs], [50, 61]);
  assert.equal(o.flush("c"), null);
});

Deno.test("OverflowGaps: the symbols of one gap are bounded", () => {
  const o = new OverflowGaps(FEED, { maxSymbols: 2 });
  for (const s of ["C", "A", "B", "A"]) o.recordDrop(s, 1);
  const gap = o.flush("")!;
  assert.deepEqual(gap.symbols, ["A", "C"]);
  assert.equal(gap.connectionId, "");
});
