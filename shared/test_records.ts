/**
 * Sample records for the codec unit tests (`avro_test.ts`, `wire_test.ts`): a Finnhub trade with
 * every field set, and the dead letter of a frame that is not JSON with the fields the first
 * DeadLetter schema had (no excerpt fields).
 *
 * @module
 */
import type { DeadLetter, RawTrade } from "./types.ts";

/** A trade with every field set. */
export const SAMPLE_TRADE: RawTrade = Object.freeze({
  s: "AAPL",
  p: 129.575,
  t: 1672348887785,
  v: 1,
  c: ["1", "24", "12"],
  ingestTime: 1672348887900,
  connectionId: "a1b2c3d4-1",
  frameSeq: 7,
  tradeIndex: 3,
});

/** A dead letter as the first DeadLetter schema had it. */
export type DeadLetterV1 = Omit<DeadLetter, "originalSize" | "originalSha256">;

/** A producer's dead letter of the frame `{not json`, without the excerpt fields. */
export const SAMPLE_LETTER_V1: DeadLetterV1 = Object.freeze({
  payload: new TextEncoder().encode("{not json"),
  reason: "frame is not valid JSON",
  reasonCode: "invalid_json",
  source: "producer",
  time: 1700000000000,
  sourceTopic: null,
  sourcePartition: null,
  sourceOffset: null,
});
