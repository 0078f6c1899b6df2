/**
 * The hostile frame stream's own labels against the code that must honour them (no services):
 * every frame the generator says is refused whole is refused whole with that reason by the
 * producer's parser, and every trade's fate (kept, refused by the producer, refused by silver
 * with a code) is what the parser and silver's rules do with it. The fault suite then checks the
 * running pipeline against the same labels.
 */
import assert from "node:assert/strict";
import { parseFrame } from "../../producer/frame_parser.ts";
import { toSilverTrade, TradeRejection } from "../../processor/silver/validate.ts";
import { loadConfig } from "../../shared/config.ts";
import type { RawTrade } from "../../shared/types.ts";
import {
  generateHostileFrames,
  HOSTILE_GOOD_SYMBOLS,
  hostileExpectations,
} from "../../simulator/hostile.ts";

Deno.test("hostile frames: the producer and silver do with each frame what its label says", () => {
  const start = Date.UTC(2026, 10, 24, 15, 0);
  const frames = generateHostileFrames({ seed: 99, count: 3000, start });
  const rules = loadConfig({}).silver;
  const ingestTime = start + 20 * 60_000;
  // The producer subscribes the good trades' symbols, and no other.
  const subscribed = new Set(HOSTILE_GOOD_SYMBOLS);
  for (const [n, frame] of frames.entries()) {
    const parsed = parseFrame(frame.text, { subscribed });
    const where = `frame ${n} (${frame.kind})`;
    if (frame.frameFate === "unknown_type") {
      assert.equal(parsed.kind, "unknown", where);
      continue;
    }
    if (frame.frameFate !== undefined) {
      assert.equal(parsed.kind, "invalid", where);
      assert.equal(parsed.kind === "invalid" && parsed.reasonCode, frame.frameFate, where);
      continue;
    }
    assert.equal(parsed.kind, "trades", where);
    if (parsed.kind !== "trades") continue;
    const refused = new Map(parsed.rejected.map((r) => [r.index, r.reasonCode]));
    const kept = new Map(parsed.trades.map((t) => [t.index, t]));
    frame.trades.forEach((trade, i) => {
      const at = `${where} trade ${i} (${trade.kind})`;
      if (trade.fate.startsWith("producer:")) {
        assert.equal(`producer:${refused.get(i)}`, trade.fate, `${at} is refused by the producer`);
        return;
      }
      const t = kept.get(i);
      assert.ok(t, `${at} is forwarded by the producer`);
      const raw: RawTrade = {
        s: t.s,
        p: t.p,
        t: t.t,
        v: t.v,
        c: t.c,
        ingestTime,
        connectionId: "x-1",
        frameSeq: n + 1,
        tradeIndex: i,
      };
      let code = "good";
      try {
        toSilverTrade(raw, { topic: "raw", partition: 0, offset: 0 }, rules);
      } catch (error) {
        assert.ok(error instanceof TradeRejection, at);
        code = `silver:${error.code}`;
      }
      assert.equal(code, trade.fate, at);
    });
  }
  const expected = hostileExpectations(frames);
  assert.ok(expected.good.length > 1000 && expected.badTrades > 1000);
  for (
    const code of [
      "invalid_json",
      "bad_frame_shape",
      "frame_too_large",
      "bad_trade_shape",
      "unsubscribed_symbol",
      "inexact_integer",
    ]
  ) assert.ok((expected.producerLetters[code] ?? 0) > 0, `some ${code}`);
  assert.ok((expected.kinds["large-frame"] ?? 0) > 0, "some frame over 512 KiB kept");
  // No bad_symbol: a malformed symbol was never subscribed, so the producer refuses it first.
  for (
    const code of [
      "bad_price",
      "bad_price_range",
      "bad_volume_range",
      "bad_time",
      "bad_time_floor",
      "bad_volume",
      "bad_time_future",
    ]
  ) assert.ok((expected.silverLetters[code] ?? 0) > 0, `some ${code}`);
});

Deno.test("hostile frames: the same seed gives the same frames", () => {
  const a = generateHostileFrames({ seed: 5, count: 200, start: 1_700_000_000_000 });
  const b = generateHostileFrames({ seed: 5, count: 200, start: 1_700_000_000_000 });
  assert.deepEqual(a.map((f) => f.text), b.map((f) => f.text));
});
