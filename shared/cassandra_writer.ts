/**
 * Writing many rows to Cassandra well: prepared statements, unlogged batches, and a bound on how
 * many requests are in flight.
 *
 * A request costs more than a row in it, in Cassandra and in the stage (README, Scaling,
 * "Cassandra's cost"), so rows share batches as far as Cassandra lets them without extra work:
 * - rows of one partition (and statement) share a batch of up to `batchSize` rows, which Cassandra
 *   exempts from its batch size thresholds (CASSANDRA-10876);
 * - against a single node, where every partition is local, the small ones of those batches are
 *   packed together up to the node's own `batch_size_warn_threshold` (which applies to batches
 *   spanning partitions), read from it once ({@linkcode crossPartitionBatchBytes}); against a
 *   cluster they are not: a batch spanning partitions makes its coordinator fan the rows out to
 *   other replicas.
 * A row with its own write timestamp is sent as `... USING TIMESTAMP ?` with the timestamp bound
 * (see {@linkcode timestampedQuery}), so rows of different timestamps share a batch too.
 *
 * A retriable failure (a node down, a timeout) throws, so the caller retries the whole batch
 * and commits nothing. A non-retriable failure of a multi-row batch is narrowed down: its rows
 * are written one by one and only the rows that fail on their own are reported back, so one
 * bad row never blocks the others.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import cassandra from "cassandra-driver";
import { encodedListLength } from "./cassandra_values.ts";
import { isRetriableCassandraError } from "./errors.ts";
import type { MetricsRegistry } from "./metrics.ts";
import { METRIC } from "./metric_names.ts";

/** One row to write. */
export interface RowWrite<R = unknown> {
  /** The CQL statement (prepared once by the driver, cached). */
  readonly query: string;
  readonly params: readonly unknown[];
  /** The row's partition: against a cluster, only rows of one partition share a batch. */
  readonly partition: string;
  /**
   * Write timestamp in microseconds (`USING TIMESTAMP`), when the row needs one. Its query is
   * then an INSERT, UPDATE or DELETE without a `USING` clause ({@linkcode timestampedQuery}).
   */
  readonly timestamp?: bigint;
  /** The caller's handle for this row, returned with a failure. */
  readonly ref: R;
}

/** A row that failed with a non-retriable error. */
export interface RowFailure<R = unknown> {
  readonly ref: R;
  readonly error: Error;
}

/** Options of {@linkcode writeRows}. */
export interface WriteRowsOptions {
  /** Most requests in flight. Default 32. */
  readonly concurrency?: number;
  /**
   * Most rows in one single-partition batch (against a cluster). Default 500: Cassandra exempts
   * such a batch from its batch size thresholds (CASSANDRA-10876).
   */
  readonly batchSize?: number;
  /** Called after every request with its duration and outcome. Default none. */
  readonly observe?: (seconds: number, outcome: WriteOutcome) => void;
}

/** How one Cassandra request ended. */
export type WriteOutcome = "ok" | "retriable_error" | "error";

/**
 * An `observe` for {@linkcode writeRows} that records every request of `stage` in
 * `pipeline_cassandra_write_duration_seconds` and failures in
 * `pipeline_cassandra_write_errors_total`.
 */
export function writeMetrics(
  metrics: MetricsRegistry,
  stage: string,
): (seconds: number, outcome: WriteOutcome) => void {
  const duration = metrics.histogram(
    "pipeline_cassandra_write_duration_seconds",
    "Duration of one Cassandra write request (a row or a one-partition batch).",
  );
  const errors = metrics.counter(
    METRIC.cassandraWriteErrors,
    "Cassandra write requests that failed, by kind (retriable or not).",
  );
  return (seconds, outcome) => {
    duration.observe(seconds, { stage });
    if (outcome !== "ok") errors.inc({ stage, kind: outcome });
  };
}

/**
 * Writes `rows`. Resolves with the rows that failed for a non-retriable reason (usually none);
 * throws the first retriable error after every request in flight has settled.
 */
export async function writeRows<R>(
  client: cassandra.Client,
  rows: readonly RowWrite<R>[],
  options: WriteRowsOptions = {},
): Promise<RowFailure<R>[]> {
  const failed = await writeRowsFailing(client, rows, options);
  return failed.map(({ row, error }) => ({ ref: row.ref, error }));
}

/**
 * Writes through {@linkcode writeRows}, coalescing: the rows of every call made before the
 * pending write starts (at the end of the current run of microtasks) go out in one
 * `writeRows`, so they share its batches. A stage that works on several partitions at once
 * hands over each partition's batch of a fetch round in the same run of microtasks; written
 * apart, each small batch left a part-filled request of its own (measured, silver at 2,000
 * trades/s: 5.6 partition batches a round, 1.2 requests each). Nothing waits for a timer, so
 * no latency is added.
 *
 * Each call resolves, once the whole write is done, with the failures of its own rows, or
 * rejects with the write's retriable error: the calls that shared the write retry their rows.
 */
export function createCoalescingWriter<R>(
  client: cassandra.Client,
  options: WriteRowsOptions = {},
): (rows: readonly RowWrite<R>[]) => Promise<RowFailure<R>[]> {
  interface Call {
    readonly rows: readonly RowWrite<R>[];
    readonly done: PromiseWithResolvers<RowFailure<R>[]>;
  }
  let open: Call[] | undefined;
  async function write(calls: readonly Call[]): Promise<void> {
    const rows = calls.length === 1 ? calls[0]!.rows : calls.flatMap((call) => call.rows);
    let failed: { row: RowWrite<R>; error: Error }[];
    try {
      failed = await writeRowsFailing(client, rows, options);
    } catch (error) {
      for (const call of calls) call.done.reject(error);
      return;
    }
    for (const call of calls) {
      const own = failed.length === 0 ? [] : failed.filter(({ row }) => call.rows.includes(row));
      call.done.resolve(own.map(({ row, error }) => ({ ref: row.ref, error })));
    }
  }
  return (rows) => {
    const call: Call = { rows, done: Promise.withResolvers() };
    if (open === undefined) {
      const calls: Call[] = [];
      open = calls;
      queueMicrotask(() => {
        // From here the group is closed: later calls start the next one.
        open = undefined;
        void write(calls);
      });
    }
    open.push(call);
    return call.done.promise;
  };
}

/** {@linkcode writeRows}, its failures naming the rows themselves. */
async function writeRowsFailing<R>(
  client: cassandra.Client,
  rows: readonly RowWrite<R>[],
  options: WriteRowsOptions,
): Promise<{ row: RowWrite<R>; error: Error }[]> {
  // Connected, the client knows the cluster's nodes (a no-op once it is).
  if (rows.length > 0 && client.hosts.length === 0) await client.connect();
  const singleNode = client.hosts.length === 1;
  const units = batchUnits(rows, {
    crossPartitionBytes: singleNode && rows.length > 1 ? await crossPartitionBatchBytes(client) : 0,
    batchSize: options.batchSize ?? 500,
  });
  const failures: { row: RowWrite<R>; error: Error }[] = [];
  let retriable: unknown;
  await forEachLimited(units, options.concurrency ?? 32, async (unit) => {
    try {
      await execute(client, unit, options.observe);
    } catch (error) {
      if (isRetriableCassandraError(error)) {
        retriable ??= error;
        return;
      }
      if (unit.length === 1) {
        failures.push({ row: unit[0]!, error: error as Error });
        return;
      }
      for (const row of unit) {
        try {
          await execute(client, [row], options.observe);
        } catch (rowError) {
          if (isRetriableCassandraError(rowError)) retriable ??= rowError;
          else failures.push({ row, error: rowError as Error });
        }
      }
    }
  });
  if (retriable !== undefined) throw retriable;
  return failures;
}

async function execute(
  client: cassandra.Client,
  unit: readonly RowWrite[],
  observe?: (seconds: number, outcome: WriteOutcome) => void,
): Promise<void> {
  if (!observe) return await request(client, unit);
  const started = performance.now();
  try {
    await request(client, unit);
    observe((performance.now() - started) / 1000, "ok");
  } catch (error) {
    const outcome = isRetriableCassandraError(error) ? "retriable_error" : "error";
    observe((performance.now() - started) / 1000, outcome);
    throw error;
  }
}

async function request(client: cassandra.Client, unit: readonly RowWrite[]): Promise<void> {
  // A bigint parameter takes a BigInt or a Long, as the client's encoding options say.
  const { options } = client as unknown as { options: cassandra.ClientOptions };
  const bigInts = options.encoding?.useBigIntAsLong === true;
  if (unit.length === 1) {
    const { query, params } = statementOf(unit[0]!, bigInts);
    await client.execute(query, params, { prepare: true });
    return;
  }
  await client.batch(unit.map((row) => statementOf(row, bigInts)), {
    prepare: true,
    logged: false,
  });
}

/** The statement that writes `row`, its write timestamp bound (see {@linkcode timestampedQuery}). */
function statementOf(row: RowWrite, bigInts: boolean): { query: string; params: unknown[] } {
  if (row.timestamp === undefined) return { query: row.query, params: [...row.params] };
  const { query, timestampFirst } = timestampedQuery(row.query);
  const timestamp = bigInts
    ? row.timestamp
    : cassandra.types.Long.fromString(row.timestamp.toString());
  return {
    query,
    params: timestampFirst ? [timestamp, ...row.params] : [...row.params, timestamp],
  };
}

/** Memo of {@linkcode timestampedQuery}: the statements are few and written over and over. */
const timestamped = new Map<string, { query: string; timestampFirst: boolean }>();

/**
 * `query` (an INSERT, UPDATE or DELETE without a `USING` clause) with `USING TIMESTAMP ?`, and
 * whether that marker comes before the query's own markers (UPDATE, DELETE) or after them
 * (INSERT). Each statement of a batch may carry its own timestamp this way; the batch's
 * timestamp applies to the others.
 *
 * @throws Error when `query` is none of the three or already has a `USING` or `IF` clause.
 */
export function timestampedQuery(query: string): { query: string; timestampFirst: boolean } {
  let known = timestamped.get(query);
  if (known) return known;
  const fail = (why: string) =>
    new Error(`Cannot write a row with its own timestamp: ${why}, in: ${query.trim()}`);
  if (/\bUSING\b|\bIF\b/i.test(query)) throw fail("the query has a USING or IF clause");
  const update = /^(\s*UPDATE\s+\S+)(\s+SET\s)/i;
  const remove = /^(\s*DELETE\s[\s\S]*?\bFROM\s+\S+)(\s+WHERE\s)/i;
  if (/^\s*INSERT\s/i.test(query)) {
    known = { query: `${query.trimEnd()} USING TIMESTAMP ?`, timestampFirst: false };
  } else if (update.test(query)) {
    known = { query: query.replace(update, "$1 USING TIMESTAMP ?$2"), timestampFirst: true };
  } else if (remove.test(query)) {
    known = { query: query.replace(remove, "$1 USING TIMESTAMP ?$2"), timestampFirst: true };
  } else {
    throw fail("only INSERT, UPDATE and DELETE take one");
  }
  if (timestamped.size >= 1000) timestamped.clear();
  timestamped.set(query, known);
  return known;
}

/**
 * Cassandra's default `batch_size_warn_threshold`: above it a batch spanning partitions is logged
 * as a warning, every one (and refused at ten times that, `batch_size_fail_threshold`).
 */
export const DEFAULT_BATCH_WARN_BYTES = 5 * 1024;

/**
 * Most bytes of a batch spanning partitions, whatever the node allows: about 150 silver rows or
 * 70 gold rows, so a round of silver at 2,000 trades/s (about 17 KiB) is one request instead of
 * four, and one of gold (up to four rows a symbol, about 150 KiB with 40 symbols) three instead
 * of about thirty. The local node allows this much (`local_services/cassandra/cassandra.yaml`);
 * one with Cassandra's defaults, 5 KiB.
 */
export const MAX_CROSS_PARTITION_BATCH_BYTES = 64 * 1024;

const BATCH_SETTINGS_QUERY = "SELECT name, value FROM system_views.settings WHERE name IN " +
  "('batch_size_warn_threshold', 'batch_size_warn_threshold_in_kb')";

const crossPartitionBounds = new WeakMap<cassandra.Client, Promise<number>>();

/**
 * Most bytes of a batch spanning partitions that `client`'s node takes without a warning: its
 * `batch_size_warn_threshold` (`system_views.settings`, read once per client), at most
 * {@linkcode MAX_CROSS_PARTITION_BATCH_BYTES}. A node that cannot say (before Cassandra 4.0, no
 * `system_views`) gets {@linkcode DEFAULT_BATCH_WARN_BYTES}; a retriable failure of the read
 * throws, as a write's would, and the next write reads again.
 *
 * At 2,000 trades/s against the local node, 64 KiB instead of 5 KiB: the stages, Kafka and
 * Cassandra took 80% and 78% of a core against 101% and 82% (two pairs, alternating, `deno task
 * bench:pipeline --rates 2000 --latency-rate 2000 --duration-s 45 --warmup-s 20`, alone, load
 * 1.9-3.7): the runs are noisy, the direction is not.
 */
export function crossPartitionBatchBytes(client: cassandra.Client): Promise<number> {
  let bound = crossPartitionBounds.get(client);
  if (bound === undefined) {
    bound = readBatchWarnThreshold(client).then((bytes) =>
      Math.min(bytes, MAX_CROSS_PARTITION_BATCH_BYTES)
    );
    crossPartitionBounds.set(client, bound);
    bound.catch(() => crossPartitionBounds.delete(client));
  }
  return bound;
}

async function readBatchWarnThreshold(client: cassandra.Client): Promise<number> {
  let settings: Map<string, unknown>;
  try {
    const result = await client.execute(BATCH_SETTINGS_QUERY);
    settings = new Map((result?.rows ?? []).map((row) => [row["name"], row["value"]]));
  } catch (error) {
    if (isRetriableCassandraError(error)) throw error;
    return DEFAULT_BATCH_WARN_BYTES;
  }
  const named = settings.get("batch_size_warn_threshold");
  const inKb = settings.get("batch_size_warn_threshold_in_kb");
  return (typeof named === "string" ? storageBytes(named) : null) ??
    (typeof inKb === "string" ? storageBytes(`${inKb}KiB`) : null) ?? DEFAULT_BATCH_WARN_BYTES;
}

const STORAGE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/**
 * The bytes of a Cassandra data storage setting as `system_views.settings` shows it ("5KiB",
 * "640KiB", "1MiB", "512B"), or null when it is not one.
 */
export function storageBytes(text: string): number | null {
  const match = /^\s*(\d+)\s*(B|KiB|MiB|GiB)\s*$/.exec(text);
  return match ? Number(match[1]) * STORAGE_UNITS[match[2]!]! : null;
}

/**
 * The requests that write `rows`: per query and partition, `batchSize` rows at most; with a
 * `crossPartitionBytes` bound (0: none, against a cluster), the groups under it are then packed,
 * in order, into batches of at most that many bytes as {@linkcode estimatedBytes} counts them (a
 * larger group stays a batch of its own, which Cassandra exempts from the threshold).
 */
export function batchUnits<R>(
  rows: readonly RowWrite<R>[],
  options: { readonly crossPartitionBytes: number; readonly batchSize: number },
): RowWrite<R>[][] {
  const packing = options.crossPartitionBytes > 0;
  const bound = options.crossPartitionBytes;
  const groups = new Map<string, RowWrite<R>[]>();
  for (const row of rows) {
    const key = `${row.query}\u0000${row.partition}`;
    let group = groups.get(key);
    if (!group) groups.set(key, group = []);
    group.push(row);
  }
  const units: RowWrite<R>[][] = [];
  let packed: RowWrite<R>[] = [];
  let packedBytes = 0;
  for (const group of groups.values()) {
    for (let i = 0; i < group.length; i += options.batchSize) {
      const unit = group.slice(i, i + options.batchSize);
      const bytes = packing ? unit.reduce((n, row) => n + estimatedBytes(row), 0) : 0;
      if (!packing || bytes >= bound) {
        units.push(unit);
        continue;
      }
      if (packedBytes + bytes > bound) {
        units.push(packed);
        packed = [];
        packedBytes = 0;
      }
      packed.push(...unit);
      packedBytes += bytes;
    }
  }
  if (packed.length > 0) units.push(packed);
  return units;
}

/**
 * Bytes `row` adds to a batch, at least what Cassandra counts against its batch size
 * thresholds (`PartitionUpdate.dataSize()`: each cell's value, timestamp, TTL and local deletion
 * time, a collection's elements each a cell with its path; the clustering and the row's
 * liveness info; the partition key is not counted): Cassandra counted 473, 369 and 798 bytes for
 * a bronze, silver and gold row, this estimates 495, 415 and 913, and 868 for the gold row with
 * its decimals and bucket serialised ahead, as gold sends them (`cassandra_writer_test.ts`).
 * A list the stages serialised ahead (the conditions) counts as the list would: counted as its
 * bytes, it made bronze's and silver's packed batches up to 4% larger than the estimate, and
 * Cassandra logged a warning for most of them (78,774 in one day's log of the local node).
 */
export function estimatedBytes(row: RowWrite): number {
  let bytes = 32;
  for (const param of row.params) bytes += cellBytes(param);
  return bytes;
}

/**
 * A cell: its value and 16 bytes (timestamp, TTL, local deletion time); a collection's elements
 * are cells each, with a path (a list's: 16 bytes; a map's: its key).
 */
function cellBytes(value: unknown): number {
  if (value === null || value === undefined) return 16;
  if (typeof value === "string") return 16 + Buffer.byteLength(value);
  if (value instanceof Uint8Array) {
    // A list serialised ahead (`cassandra_values.ts`): each element is a cell with a path, where
    // the bytes give it a 4-byte length; as for an array below.
    const elements = encodedListLength(value);
    return elements === undefined ? 16 + value.byteLength : 12 + value.byteLength + 28 * elements;
  }
  if (typeof value === "boolean") return 17;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + 16 + cellBytes(v), 16);
  if (value instanceof Map) {
    let n = 16;
    for (const [k, v] of value) n += cellBytes(k) + cellBytes(v);
    return n;
  }
  // Numbers, bigints, dates, Longs, LocalDates: 8 bytes at most; decimals: 24 (scale and up to
  // 38 digits).
  return value instanceof cassandra.types.BigDecimal ? 40 : 24;
}

/** Runs `work` over `items` with at most `limit` at once. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  });
  await Promise.all(runners);
}
