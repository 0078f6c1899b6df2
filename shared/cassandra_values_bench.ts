/**
 * Micro-benchmarks of gold's bound values: a candle row's decimal and its day bucket, serialised
 * by the driver from its own types or by `cassandra_values.ts`. Run:
 * `deno bench -A shared/cassandra_values_bench.ts`.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { decimalBytes, encodedValues } from "./cassandra_values.ts";
import { formatDecimal, parseDecimal } from "./decimal.ts";

// A 5-minute candle's price x volume sum.
const PV_SUM = parseDecimal("83678.112233445566778899");
const { BigDecimal, LocalDate } = cassandra.types;
const encoder = new (cassandra as unknown as {
  Encoder: new (version: number, options: object) => { encode(v: unknown, t: unknown): unknown };
}).Encoder(4, {});
const DATE = { code: cassandra.types.dataTypes.date };
const dateBytes = encodedValues("date");

Deno.bench("decimal: BigDecimal from its text, serialised by the driver", {
  group: "decimal",
  baseline: true,
}, () => {
  BigDecimal.toBuffer(BigDecimal.fromString(formatDecimal(PV_SUM)));
});

Deno.bench("decimal: decimalBytes", { group: "decimal" }, () => {
  decimalBytes(PV_SUM);
});

Deno.bench("date: LocalDate from its text, serialised by the driver", {
  group: "date",
  baseline: true,
}, () => {
  encoder.encode(LocalDate.fromString("2026-12-07"), DATE);
});

Deno.bench("date: encodedValues('date')", { group: "date" }, () => {
  dateBytes("2026-12-07");
});
