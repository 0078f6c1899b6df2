/**
 * What a gold worker knows of each silver partition it works on (its watermark clock, the window
 * ends that may hold open windows, the index deletes still to write), and how it takes
 * partitions over after a start, restart or rebalance.
 *
 * Invariants:
 * - a rebalance is only noted when it happens (it may come while a batch runs); the next batch
 *   or tick takes the assigned partitions over: it reads each one's clock and open window ends
 *   from Cassandra (`finality_store.ts`), reads again if assigned again meanwhile, and only then
 *   replaces every state and has the caller forget every candle in memory, since another worker
 *   may have moved those rows on while a partition was away;
 * - a partition taken over holds its finalization until its first batch or
 *   `TAKEOVER_GRACE_MS` (see `open_windows.ts`), and all its ends are unread: the windows they
 *   may hold are read back from the index when the watermark passes them;
 * - a partition that comes with a batch but was in no assignment is read the same way, once.
 *
 * @module
 */
import type { Logger } from "../../shared/log.ts";
import type { FinalityStore } from "./finality_store.ts";
import { TAKEOVER_GRACE_MS } from "./open_windows.ts";
import type { RowWrite } from "../../shared/cassandra_writer.ts";
import type { PartitionClock } from "./watermark.ts";

/** What this worker knows of one silver partition it works on. */
export interface PartitionState {
  clock: PartitionClock | undefined;
  /** The clock as last written to Cassandra. */
  saved: PartitionClock | undefined;
  /** The partition's `open_window_ends`, as far as this worker wrote or read them. */
  readonly ends: Set<number>;
  /** Ends whose index entries may hold open windows that are not in memory. */
  readonly unread: Set<number>;
  /** Index deletes of windows written final, still to be written. */
  readonly deletes: RowWrite<number>[];
  /** After a takeover: finalization waits for the first batch until then. */
  heldUntil: number | undefined;
}

/** The partition's state as Cassandra holds it, on taking the partition over at `at`. */
export async function readPartitionState(
  store: FinalityStore,
  partition: number,
  at: number,
): Promise<PartitionState> {
  const record = await store.readPartition(partition);
  return {
    clock: record.clock,
    saved: record.clock,
    ends: new Set(record.ends),
    unread: new Set(record.ends),
    deletes: [],
    heldUntil: at + TAKEOVER_GRACE_MS,
  };
}

/** Options of {@linkcode PartitionStates}. */
export interface PartitionStatesOptions {
  readonly store: FinalityStore;
  readonly now: () => number;
  readonly log: Logger;
}

/** The states of the partitions this worker works on. */
export class PartitionStates {
  readonly #store: FinalityStore;
  readonly #now: () => number;
  readonly #log: Logger;
  #states = new Map<number, PartitionState>();
  /** Partitions assigned by the last rebalance, until their state is read. */
  #assignment: readonly number[] | undefined;

  constructor(options: PartitionStatesOptions) {
    this.#store = options.store;
    this.#now = options.now;
    this.#log = options.log;
  }

  /** Notes a rebalance; {@linkcode takeOver} reads the states. */
  assign(partitions: readonly number[]): void {
    this.#assignment = partitions;
  }

  /** Whether a rebalance was noted that {@linkcode takeOver} has not taken over yet. */
  takeOverDue(): boolean {
    return this.#assignment !== undefined;
  }

  /**
   * After a rebalance: reads the state of every assigned partition, then replaces every state
   * and calls `forget` (in the same step) to drop what memory holds of the old ones.
   */
  async takeOver(forget: () => void): Promise<void> {
    while (this.#assignment !== undefined) {
      const partitions = this.#assignment;
      const at = this.#now();
      const restored = new Map<number, PartitionState>();
      for (const partition of partitions) {
        restored.set(partition, await readPartitionState(this.#store, partition, at));
      }
      if (this.#assignment !== partitions) continue; // assigned again meanwhile: read again
      this.#assignment = undefined;
      this.#states = restored;
      forget();
      const ends = [...restored.values()].reduce((n, s) => n + s.unread.size, 0);
      this.#log.info("took partitions over", { partitions, windowEndsToRead: ends });
    }
  }

  get(partition: number): PartitionState | undefined {
    return this.#states.get(partition);
  }

  /** The state of `partition`, read on its first batch when no rebalance named it. */
  async getOrRead(partition: number): Promise<PartitionState> {
    let state = this.#states.get(partition);
    if (!state) {
      this.#states.set(
        partition,
        state = await readPartitionState(this.#store, partition, this.#now()),
      );
    }
    return state;
  }

  /** The partitions with a state. */
  partitions(): number[] {
    return [...this.#states.keys()];
  }
}
