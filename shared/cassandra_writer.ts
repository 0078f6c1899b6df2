/**
 * Writing many rows to Cassandra well: prepared statements, unlogged batches only of rows that
 * share one partition (a batch spanning partitions makes the coordinator do the fan-out and
 * hurts), and a bound on how many requests are in flight.
 *
 * A retriable failure (a node down, a timeout) throws, so the caller retries the whole batch
 * and commits nothing. A non-retriable failure of a multi-row batch is narrowed down: its rows
 * are written one by one and only the rows that fail on their own are reported back, so one
 * bad row never blocks the others.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { isRetriableCassandraError } from "./errors.ts";
import type { MetricsRegistry } from "./metrics.ts";
import { METRIC } from "./metric_names.ts";

/** One row to write. */
export interface RowWrite<R = unknown> {
  /** The CQL statement (prepared once by the driver, cached). */
  readonly query: string;
  readonly params: readonly unknown[];
  /** Rows with equal `partition` (and query) may share an unlogged batch. */
  readonly partition: string;
  /** Write timestamp in microseconds (`USING TIMESTAMP`), when the row needs one. */
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
   * Most rows in one unlogged batch. Default 500: a batch holds rows of one partition only,
   * which Cassandra exempts from its batch size thresholds (CASSANDRA-10876), and each request
   * costs the server far more than each row in it.
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
  const batchSize = options.batchSize ?? 500;
  const groups = new Map<string, RowWrite<R>[]>();
  for (const row of rows) {
    // Rows with their own write timestamp go alone: a batch has one default timestamp.
    const key = row.timestamp === undefined
      ? `${row.query}\u0000${row.partition}`
      : `${groups.size}`;
    let group = groups.get(key);
    if (!group) groups.set(key, group = []);
    group.push(row);
  }
  const units: RowWrite<R>[][] = [];
  for (const group of groups.values()) {
    for (let i = 0; i < group.length; i += batchSize) units.push(group.slice(i, i + batchSize));
  }
  const failures: RowFailure<R>[] = [];
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
        failures.push({ ref: unit[0]!.ref, error: error as Error });
        return;
      }
      for (const row of unit) {
        try {
          await execute(client, [row], options.observe);
        } catch (rowError) {
          if (isRetriableCassandraError(rowError)) retriable ??= rowError;
          else failures.push({ ref: row.ref, error: rowError as Error });
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
  const first = unit[0]!;
  if (unit.length === 1) {
    await client.execute(first.query, [...first.params], {
      prepare: true,
      ...(first.timestamp !== undefined ? { timestamp: toLong(first.timestamp) } : {}),
    });
    return;
  }
  await client.batch(
    unit.map((row) => ({ query: row.query, params: [...row.params] })),
    { prepare: true, logged: false },
  );
}

function toLong(value: bigint): cassandra.types.Long {
  // The write timestamp option takes a Long whatever the encoding options say.
  return cassandra.types.Long.fromString(value.toString());
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
