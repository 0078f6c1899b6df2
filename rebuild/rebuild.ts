/**
 * A rebuild of silver and gold for a span, as a list of steps: widen the span to whole windows,
 * choose the source (Kafka while its retention covers the scan, else bronze), read it, re-derive
 * silver with silver's validation, compare with the stored rows, fold gold with gold's fold from
 * the silver trades as they will be, compare with the stored candles, write what differs (silver
 * first, then gold), and say what changed (`report.ts`). Decisions are in `plan.ts` and
 * `span.ts`; this shell only reads and writes.
 *
 * Stopping (Ctrl-C, `signal`): before the writes nothing is written; during them each write is a
 * whole row keyed by raw source position, so what was written is right and a rerun writes the
 * rest.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Kafka } from "kafkajs";
import { type RowWrite, writeRows } from "../shared/cassandra_writer.ts";
import type { Config } from "../shared/config.ts";
import { type Interval, INTERVALS } from "../shared/gold_table.ts";
import { randomId } from "../shared/random.ts";
import type { WireCodec } from "../shared/wire.ts";
import { createCandleRows } from "../processor/gold/candle_rows.ts";
import {
  type DerivedSilver,
  deriveSilver,
  diffSilver,
  foldableKept,
  foldCandles,
  type GoldPlan,
  planGold,
  type SilverDiff,
} from "./plan.ts";
import type { RebuildOutcome } from "./report.ts";
import { planKafkaScan, type Progress, readBronze, readKafka } from "./sources.ts";
import type { SourceRecord } from "./plan.ts";
import {
  ingestScan,
  largestInterval,
  type RebuildArgs,
  showSpan,
  wholeWindowSpan,
} from "./span.ts";
import {
  goldWrites,
  knownSymbols,
  lowestWatermark,
  readGold,
  readSilver,
  silverWrites,
} from "./store.ts";

/** What a rebuild works with. */
export interface RebuildDeps {
  readonly config: Config;
  readonly session: cassandra.Client;
  readonly kafka: Kafka;
  readonly wire: WireCodec;
  readonly signal: AbortSignal;
  /** Progress of the read (stderr). */
  readonly progress: Progress;
  /** Says a step (stderr). */
  readonly say: (line: string) => void;
  /** Clock. Default `Date.now`. */
  readonly now?: () => number;
}

/** Thrown when the signal stopped a rebuild: `written` rows were written before it. */
export class RebuildStopped extends Error {
  constructor(readonly written: number, readonly planned: number) {
    super(
      written === 0
        ? "rebuild stopped before writing anything"
        : `rebuild stopped after writing ${written} of ${planned} rows (each whole); run it again to finish`,
    );
    this.name = "RebuildStopped";
  }
}

/** Runs a rebuild; throws {@linkcode RebuildStopped} when `signal` stops it. */
export async function rebuild(deps: RebuildDeps, args: RebuildArgs): Promise<RebuildOutcome> {
  const { config, session, signal } = deps;
  const keyspace = config.cassandra.keyspace;
  const now = (deps.now ?? Date.now)();
  const span = wholeWindowSpan(args.from, args.to);
  const scan = ingestScan(span, {
    maxFutureMs: config.silver.maxFutureMs,
    lateMarginMs: args.lateMarginMs,
    now,
  });
  deps.say(
    `rebuild: span ${showSpan(span)} (whole ${largestInterval()} windows); scanning ingest ` +
      `times ${
        showSpan(scan)
      } (SILVER_MAX_FUTURE_MS before, late margin ${args.lateMarginMs} ms after)`,
  );
  const { records, recordsRead, source, knownEnd } = await readSource(deps, args, scan, span);
  if (signal.aborted) throw new RebuildStopped(0, 0);
  const { derived, silver, gold } = await compare(deps, args, span, records, knownEnd);
  if (signal.aborted) throw new RebuildStopped(0, 0);
  const writeSilver = args.layers.includes("silver") && !args.dryRun;
  const writeGold = args.layers.includes("gold") && !args.dryRun;
  const at = new Date(deps.now?.() ?? Date.now());
  const silverRows = writeSilver
    ? silverWrites(
      keyspace,
      [...silver.added, ...silver.changed.map((c) => c.after)],
      silver.removed,
      at,
    )
    : [];
  const goldRows = writeGold
    ? goldWrites(
      keyspace,
      createCandleRows({ session, keyspace, concurrency: 16 }),
      [...gold.values()].flatMap((p) => p.writes),
      at,
    )
    : [];
  await writeInSteps(session, [silverRows, goldRows], signal);
  return {
    asked: { from: args.from, to: args.to },
    span,
    source,
    recordsRead,
    rejected: derived.rejected,
    silver,
    gold,
    written: { silver: writeSilver, gold: writeGold },
    dryRun: args.dryRun,
  };
}

/** What the source says silver and gold should hold, against what they hold. */
interface Comparison {
  readonly derived: DerivedSilver;
  readonly silver: SilverDiff;
  readonly gold: Map<Interval, GoldPlan>;
}

/**
 * Re-derives silver from `records`, compares it with the stored rows, folds gold from the silver
 * trades as they will be, and plans each interval's windows.
 */
async function compare(
  deps: RebuildDeps,
  args: RebuildArgs,
  span: { from: number; to: number },
  records: readonly SourceRecord[],
  knownEnd: ReadonlyMap<number, number>,
): Promise<Comparison> {
  const { config, session } = deps;
  const keyspace = config.cassandra.keyspace;
  const wanted = args.symbols ? new Set(args.symbols) : undefined;
  const derived = deriveSilver(records, span, config.silver, wanted);
  const symbols = args.symbols ?? [
    ...new Set([
      ...derived.trades.map((t) => t.symbol),
      ...await knownSymbols(session, keyspace),
    ]),
  ].sort();
  const stored = await readSilver(session, keyspace, symbols, span);
  const silver = diffSilver(stored, derived.trades, derived.read);
  // A window holding any trade past what the source read is skipped (`knownEnd`): its silver
  // rows may not all be there yet (or one was deleted by hand, which nothing can tell).
  const candles = foldCandles([...derived.trades, ...foldableKept(silver.kept, knownEnd)]);
  const storedGold = await readGold(session, keyspace, symbols, span);
  const finalBefore = await lowestWatermark(session, keyspace, config.gold.allowedLatenessMs);
  const gold = new Map<Interval, GoldPlan>();
  for (const interval of INTERVALS) {
    gold.set(
      interval,
      planGold(only(storedGold, interval), only(candles, interval), { knownEnd, finalBefore }),
    );
  }
  return { derived, silver, gold };
}

/** The entries of `map` (keyed by `windowKey`) of one interval. */
function only<V>(map: ReadonlyMap<string, V>, interval: Interval): Map<string, V> {
  const prefix = `${interval}\u0000`;
  return new Map([...map].filter(([key]) => key.startsWith(prefix)));
}

/** What {@linkcode readSource} read. */
interface SourceRead {
  /** The records of the span (and symbols asked) only, when read from Kafka. */
  readonly records: SourceRecord[];
  /** Every record read, in the span or not. */
  readonly recordsRead: number;
  readonly source: string;
  readonly knownEnd: Map<number, number>;
}

/**
 * Reads the raw trades of the scan from the source chosen; says which and why. From Kafka it
 * holds only the records with event time in `span` (of the symbols asked): no other can be a
 * silver row of the span, so which stored rows were read (`DerivedSilver.read`) is unchanged.
 */
async function readSource(
  deps: RebuildDeps,
  args: RebuildArgs,
  scan: { from: number; to: number },
  span: { from: number; to: number },
): Promise<SourceRead> {
  const { config, kafka, session, signal } = deps;
  const topic = config.kafka.topics.raw;
  let why = "--source bronze";
  if (args.source !== "bronze") {
    const plan = await planKafkaScan(kafka, topic, scan);
    if (plan.covers) {
      const wanted = args.symbols ? new Set(args.symbols) : undefined;
      const { records, undecodable, read } = await readKafka({
        kafka,
        topic,
        ranges: plan.ranges,
        wire: deps.wire,
        groupId: `${config.kafka.groupPrefix}.rebuild.${randomId()}`,
        signal,
        progress: deps.progress,
        maxRecords: args.maxTrades,
        keep: (raw) => raw.t >= span.from && raw.t < span.to && (wanted?.has(raw.s) ?? true),
      });
      const ranges = plan.ranges.map((r) => `${r.partition}:${r.start}-${r.end}`).join(" ");
      const knownEnd = new Map(plan.ranges.map((r) => [r.partition, r.end]));
      return {
        records,
        recordsRead: read,
        knownEnd,
        source: `kafka topic ${topic}, offsets ${ranges}` +
          (undecodable > 0 ? ` (${undecodable} undecodable records skipped)` : ""),
      };
    }
    why = plan.ranges.length === 0
      ? `Kafka has no topic ${topic}`
      : `Kafka's retention of ${topic} no longer covers ${new Date(scan.from).toISOString()}`;
    if (args.source === "kafka") throw new RangeError(`${why}: use --source bronze (or auto)`);
  }
  const symbols = args.symbols ?? await knownSymbolsOf(deps);
  const records = await readBronze({
    session,
    keyspace: config.cassandra.keyspace,
    symbols,
    scan,
    signal,
    progress: deps.progress,
    maxRecords: args.maxTrades,
  });
  const knownEnd = new Map<number, number>();
  for (const { position } of records) {
    knownEnd.set(
      position.partition,
      Math.max(knownEnd.get(position.partition) ?? 0, position.offset + 1),
    );
  }
  return {
    records,
    recordsRead: records.length,
    knownEnd,
    source: `bronze (trades_bronze, ${symbols.length} symbols): ${why}`,
  };
}

/** Symbols to read bronze for: those of `latest_prices` and the configured feed. */
async function knownSymbolsOf(deps: RebuildDeps): Promise<string[]> {
  const known = await knownSymbols(deps.session, deps.config.cassandra.keyspace);
  return [...new Set([...known, ...deps.config.finnhub.symbols])].sort();
}

/**
 * Writes each step's rows after the one before (silver, then gold), in chunks so a stop lands
 * between chunks; throws {@linkcode RebuildStopped} when `signal` aborts.
 */
async function writeInSteps(
  session: cassandra.Client,
  steps: readonly (readonly RowWrite<number>[])[],
  signal: AbortSignal,
): Promise<void> {
  const planned = steps.reduce((n, s) => n + s.length, 0);
  let written = 0;
  for (const rows of steps) {
    for (let i = 0; i < rows.length; i += 500) {
      if (signal.aborted) throw new RebuildStopped(written, planned);
      const chunk = rows.slice(i, i + 500);
      const failures = await writeRows(session, chunk, { concurrency: 16 });
      if (failures.length > 0) throw failures[0]!.error;
      written += chunk.length;
    }
  }
}
