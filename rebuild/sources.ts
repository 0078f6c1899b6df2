/**
 * Where a rebuild reads the raw trades: the raw topic, between offsets found by timestamp, or the
 * bronze table, by symbol and ingest hour. Both give each record with its raw source position,
 * the identity of every silver row and every fold.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Kafka } from "kafkajs";
import type { RawTrade } from "../shared/types.ts";
import type { WireCodec } from "../shared/wire.ts";
import type { SourceRecord } from "./plan.ts";
import { hoursBetween, kafkaCovers, tooManyTrades } from "./span.ts";

/** Reports progress: records read so far, and the total when known. */
export type Progress = (read: number, total: number | undefined) => void;

/** Offsets [start, end) of one partition of the raw topic. */
export interface OffsetRange {
  readonly partition: number;
  readonly start: number;
  readonly end: number;
}

/** What Kafka holds of a scan. */
export interface KafkaScan {
  /** Whether the topic exists and its retention still covers the scan's start everywhere. */
  readonly covers: boolean;
  readonly ranges: OffsetRange[];
}

/** The offset ranges of the raw topic for an ingest-time scan, and whether Kafka covers it. */
export async function planKafkaScan(
  kafka: Kafka,
  topic: string,
  scan: { readonly from: number; readonly to: number },
): Promise<KafkaScan> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return { covers: false, ranges: [] };
    const bounds = await admin.fetchTopicOffsets(topic);
    const atStart = await admin.fetchTopicOffsetsByTimestamp(topic, scan.from);
    const atEnd = await admin.fetchTopicOffsetsByTimestamp(topic, scan.to);
    let covers = true;
    const ranges = bounds.map((b) => {
      const low = Number(b.low);
      const high = Number(b.high);
      const start = Number(atStart.find((o) => o.partition === b.partition)?.offset ?? low);
      const endAt = Number(atEnd.find((o) => o.partition === b.partition)?.offset ?? high);
      if (!kafkaCovers(low, start)) covers = false;
      return { partition: b.partition, start: Math.max(start, low), end: Math.min(endAt, high) };
    }).sort((a, b) => a.partition - b.partition);
    return { covers, ranges };
  } finally {
    await admin.disconnect();
  }
}

/** Options of {@linkcode readKafka}. */
export interface ReadKafkaOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly ranges: readonly OffsetRange[];
  readonly wire: WireCodec;
  readonly groupId: string;
  readonly signal: AbortSignal;
  readonly progress: Progress;
  /**
   * Which decoded records to hold (default all): the others are counted as read and dropped at
   * once, so memory follows the trades of the span and symbols asked, not the whole scan.
   */
  readonly keep?: (raw: RawTrade) => boolean;
  /** At most this many records held: more stops the read with a `RangeError`. */
  readonly maxRecords: number;
}

/**
 * Every record of `ranges` that `keep` wants, decoded as `Trade` (a record that is not one is
 * skipped and counted: bronze dead-letters it, silver never sees it), and how many were read.
 * Commits nothing. Stops early when `signal` aborts (then what was read is incomplete: the
 * caller writes nothing); throws {@linkcode tooManyTrades} past `maxRecords`.
 */
export async function readKafka(
  options: ReadKafkaOptions,
): Promise<{ records: SourceRecord[]; undecodable: number; read: number }> {
  const { kafka, topic, wire, signal, progress } = options;
  const ranges = options.ranges.filter((r) => r.end > r.start);
  const total = ranges.reduce((n, r) => n + r.end - r.start, 0);
  const records: SourceRecord[] = [];
  if (total === 0) return { records, undecodable: 0, read: 0 };
  const keep = options.keep ?? (() => true);
  let undecodable = 0;
  let read = 0;
  const next = new Map(ranges.map((r) => [r.partition, r.start]));
  const endOf = new Map(ranges.map((r) => [r.partition, r.end]));
  const consumer = kafka.consumer({ groupId: options.groupId, maxWaitTimeInMs: 250 });
  let tooMany = false;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  const onAbort = () => finish();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = endOf.get(batch.partition);
        if (end === undefined || tooMany) return;
        const wanted = batch.messages.filter((m) => {
          const offset = Number(m.offset);
          return offset >= next.get(batch.partition)! && offset < end;
        });
        await wire.resolve(wanted.map((m) => m.value));
        for (const message of wanted) {
          const offset = Number(message.offset);
          try {
            const raw = wire.decode("Trade", message.value!) as RawTrade;
            if (keep(raw)) {
              records.push({ raw, position: { topic, partition: batch.partition, offset } });
            }
            if (records.length > options.maxRecords) {
              tooMany = true;
              finish();
              return;
            }
          } catch {
            undecodable++;
          }
          next.set(batch.partition, offset + 1);
          read++;
        }
        progress(read, total);
        // Done at the end, or past it (offsets skipped by compaction or transaction markers).
        if (next.get(batch.partition)! >= end || Number(batch.lastOffset()) >= end - 1) {
          consumer.pause([{ topic, partitions: [batch.partition] }]);
          endOf.delete(batch.partition);
          if (endOf.size === 0) finish();
        }
      },
    });
    for (const r of ranges) {
      consumer.seek({ topic, partition: r.partition, offset: String(r.start) });
    }
    await finished;
  } finally {
    signal.removeEventListener("abort", onAbort);
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect().then(() => admin.deleteGroups([options.groupId])).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
  if (tooMany) throw tooManyTrades(options.maxRecords);
  return { records, undecodable, read };
}

/** Options of {@linkcode readBronze}. */
export interface ReadBronzeOptions {
  readonly session: cassandra.Client;
  readonly keyspace: string;
  readonly symbols: readonly string[];
  /** Ingest-time span to read (bronze buckets are ingest hours). */
  readonly scan: { readonly from: number; readonly to: number };
  readonly signal: AbortSignal;
  readonly progress: Progress;
  /** At most this many records held: more stops the read with a `RangeError`. */
  readonly maxRecords: number;
}

/**
 * Every bronze row of `symbols` received in `scan`, as the raw trade it was; throws
 * {@linkcode tooManyTrades} past `maxRecords`.
 */
export async function readBronze(options: ReadBronzeOptions): Promise<SourceRecord[]> {
  const { session, keyspace, scan, signal, progress } = options;
  const query = `SELECT symbol, source_topic, source_partition, source_offset, price,
    event_time, volume, conditions, conditions_kind, ingest_time, connection_id, frame_seq,
    trade_index FROM ${keyspace}.trades_bronze WHERE symbol = ? AND bucket = ?`;
  const records: SourceRecord[] = [];
  for (const symbol of options.symbols) {
    for (const hour of hoursBetween(scan.from, scan.to)) {
      if (signal.aborted) return records;
      for await (const row of pages(session, query, [symbol, new Date(hour)])) {
        const ingestTime = (row.get("ingest_time") as Date).getTime();
        if (ingestTime < scan.from || ingestTime >= scan.to) continue;
        records.push({ raw: rawOfBronze(row, ingestTime), position: positionOfBronze(row) });
        if (records.length > options.maxRecords) throw tooManyTrades(options.maxRecords);
      }
      progress(records.length, undefined);
    }
  }
  return records;
}

/** The raw trade a bronze row holds (bronze keeps every field of it). */
function rawOfBronze(row: cassandra.types.Row, ingestTime: number): RawTrade {
  const kind = row.get("conditions_kind") as string;
  const conditions = (row.get("conditions") as string[] | null) ?? [];
  return {
    s: row.get("symbol"),
    p: row.get("price"),
    t: Number(row.get("event_time")),
    v: row.get("volume"),
    c: kind === "absent" ? "ABSENT" : kind === "null" ? null : conditions,
    ingestTime,
    connectionId: row.get("connection_id") ?? "",
    frameSeq: Number(row.get("frame_seq") ?? 0n),
    tradeIndex: row.get("trade_index") ?? 0,
  };
}

function positionOfBronze(row: cassandra.types.Row) {
  return {
    topic: row.get("source_topic") as string,
    partition: row.get("source_partition") as number,
    offset: Number(row.get("source_offset")),
  };
}

/** Every row of a query, a page at a time. */
export async function* pages(
  session: cassandra.Client,
  query: string,
  params: unknown[],
  fetchSize = 5000,
): AsyncGenerator<cassandra.types.Row> {
  let pageState: string | undefined;
  do {
    const result = await session.execute(query, params, {
      prepare: true,
      fetchSize,
      ...(pageState === undefined ? {} : { pageState }),
    });
    yield* result.rows;
    pageState = result.pageState ?? undefined;
  } while (pageState !== undefined);
}
