/**
 * Fails when the TypeScript types in `types.ts` and the `.avsc` files drift apart. Each map below
 * must name every field of its interface and nothing else (the compiler enforces that), and the
 * test checks each against the schema file, field by field, type by type.
 */
import assert from "node:assert/strict";
import { avroType, type SchemaName } from "./avro.ts";
import type {
  CandleUpdate,
  DeadLetter,
  FeedCoverage,
  FeedGap,
  RawTrade,
  SilverTrade,
  TradingSession,
  WorkerReport,
} from "./types.ts";

type FieldTypes<T> = { readonly [K in keyof Required<T>]: string };

const TRADE: FieldTypes<RawTrade> = {
  s: "string",
  p: "double",
  t: "long",
  v: "double",
  c: "null|enum(ABSENT)|array<string>",
  ingestTime: "long",
  connectionId: "string",
  frameSeq: "long",
  tradeIndex: "int",
};

const SILVER: FieldTypes<SilverTrade> = {
  symbol: "string",
  price: "double",
  eventTime: "long",
  volume: "double",
  priceOnly: "boolean",
  conditions: "array<string>",
  session: "null|enum(PRE_MARKET,REGULAR,AFTER_HOURS,CLOSED)",
  ingestTime: "long",
  rawTopic: "string",
  rawPartition: "int",
  rawOffset: "long",
};

const DEAD_LETTER: FieldTypes<DeadLetter> = {
  payload: "bytes",
  reason: "string",
  reasonCode: "string",
  source: "string",
  time: "long",
  sourceTopic: "null|string",
  sourcePartition: "null|int",
  sourceOffset: "null|long",
  originalSize: "null|long",
  originalSha256: "null|string",
};

const WORKER_REPORT: FieldTypes<WorkerReport> = {
  workerId: "string",
  role: "string",
  host: "string",
  pid: "int",
  startedAt: "long",
  time: "long",
  state: "string",
  metrics: "string",
};

const CANDLE_UPDATE: FieldTypes<CandleUpdate> = {
  symbol: "string",
  interval: "string",
  windowStart: "long",
  windowEnd: "long",
  open: "double",
  high: "double",
  low: "double",
  close: "double",
  volume: "string",
  vwap: "null|string",
  tradeCount: "long",
  isFinal: "boolean",
  updatedAt: "long",
};

const FEED_GAP: FieldTypes<FeedGap> = {
  gapId: "string",
  fromMs: "long",
  toMs: "long",
  symbols: "array<string>",
  cause: "string",
  connectionId: "string",
  detectedAtMs: "long",
};

const FEED_COVERAGE: FieldTypes<FeedCoverage> = {
  feedId: "string",
  coveredUntilMs: "long",
  symbols: "array<string>",
  writtenAtMs: "long",
};

const SESSIONS = ["PRE_MARKET", "REGULAR", "AFTER_HOURS", "CLOSED"] as const;
// Compile-time: every TradingSession is listed, and nothing else.
const _sessionsComplete: Exclude<TradingSession, typeof SESSIONS[number]> extends never ? true
  : never = true;
const _sessionsExact: typeof SESSIONS[number] extends TradingSession ? true : never = true;

function describe(schema: unknown): string {
  if (typeof schema === "string") return schema;
  if (Array.isArray(schema)) return schema.map(describe).join("|");
  const s = schema as { type: string; items?: unknown; symbols?: string[] };
  if (s.type === "array") return `array<${describe(s.items)}>`;
  if (s.type === "enum") return `enum(${s.symbols!.join(",")})`;
  return s.type;
}

function fieldsOf(name: SchemaName): Record<string, string> {
  const schema = avroType(name).schema() as { fields: { name: string; type: unknown }[] };
  return Object.fromEntries(schema.fields.map((f) => [f.name, describe(f.type)]));
}

Deno.test("RawTrade matches schemas/avro/trade.avsc field for field", () => {
  assert.deepEqual(fieldsOf("Trade"), { ...TRADE });
});

Deno.test("SilverTrade matches schemas/avro/silver_trade.avsc field for field", () => {
  assert.deepEqual(fieldsOf("SilverTrade"), { ...SILVER });
  assert.equal(SILVER.session, `null|enum(${SESSIONS.join(",")})`);
});

Deno.test("DeadLetter matches schemas/avro/dead_letter.avsc field for field", () => {
  assert.deepEqual(fieldsOf("DeadLetter"), { ...DEAD_LETTER });
});

Deno.test("WorkerReport matches schemas/avro/worker_report.avsc field for field", () => {
  assert.deepEqual(fieldsOf("WorkerReport"), { ...WORKER_REPORT });
});

Deno.test("CandleUpdate matches schemas/avro/candle_update.avsc field for field", () => {
  assert.deepEqual(fieldsOf("CandleUpdate"), { ...CANDLE_UPDATE });
});

Deno.test("FeedGap matches schemas/avro/feed_gap.avsc field for field", () => {
  assert.deepEqual(fieldsOf("FeedGap"), { ...FEED_GAP });
});

Deno.test("FeedCoverage matches schemas/avro/feed_coverage.avsc field for field", () => {
  assert.deepEqual(fieldsOf("FeedCoverage"), { ...FEED_COVERAGE });
});
