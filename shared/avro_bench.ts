/**
 * Micro-benchmarks of writing a record in the wire format: the producer does it for every raw
 * trade, silver for every silver trade. Run: `deno bench -A shared/avro_bench.ts`.
 *
 * @module
 */
import { avroType, confluentHeader, encodeFramed, frame } from "./avro.ts";
import { SAMPLE_TRADE } from "./test_records.ts";

const HEADER = confluentHeader(7);
const TRADE = { ...SAMPLE_TRADE, c: ["1", "12"] };
const TYPE = avroType("Trade");

Deno.bench("Trade: avsc toBuffer, then header and body copied into a new buffer", {
  baseline: true,
}, () => {
  frame(HEADER, TYPE.toBuffer(TRADE));
});

Deno.bench("Trade: encodeFramed (written once, copied once)", () => {
  encodeFramed("Trade", TRADE, HEADER);
});
