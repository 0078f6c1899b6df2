/**
 * A stage's consumer offsets, committed together: batches record what they made durable, and
 * one OffsetCommit request carries every partition's offset, instead of a request per batch.
 *
 * Why: live, a stage's batches are small (10-50 records at 500-2,000 trades/s) and arrive for six
 * partitions at once; one commit round trip per batch, awaited before the next fetch, cost a
 * request and a Kafka log append per partition per fetch. The runner (`stage_runner.ts`) flushes
 * when a fetch round's batches are all done, before the next fetch goes out (at most every
 * `COMMIT_INTERVAL_MS`), when the group rebalances and when it stops: one commit covers every
 * partition and as many rounds as that interval holds.
 *
 * What keeps it exact:
 * - only offsets made durable are recorded, so a commit never goes past what is durable;
 * - per partition the highest offset wins, and flushes run one after another, so an older
 *   offset is never sent after a newer one by this process;
 * - a commit the group refuses (this member lost its partitions: {@linkcode lostGroupMembership})
 *   is dropped: the batches are redelivered to the partition's new owner and rewritten
 *   idempotently, as before; any other failure puts the offsets back for the next flush.
 *
 * @module
 */

/** One partition's offset to commit: the next offset to read (one past the last durable). */
export interface PartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** Sends one OffsetCommit request for `offsets`. */
export type CommitRequest = (offsets: readonly PartitionOffset[]) => Promise<void>;

/** Options of {@linkcode OffsetCommits}. */
export interface OffsetCommitsOptions {
  /** True when the error says the group no longer counts this consumer as the owner. */
  readonly lostMembership: (error: unknown) => boolean;
  /** Called after a commit succeeded, with what it committed. Default none. */
  readonly onCommitted?: (offsets: readonly PartitionOffset[]) => void;
  /** Called when the group refused a commit; its offsets are dropped. Default none. */
  readonly onRefused?: (offsets: readonly PartitionOffset[], error: unknown) => void;
  /** Called when a commit failed otherwise; its offsets are kept for the next flush. */
  readonly onFailed?: (offsets: readonly PartitionOffset[], error: unknown) => void;
}

/** Durable offsets waiting for a commit, and the commits in flight, of one consumer. */
export class OffsetCommits {
  readonly #options: OffsetCommitsOptions;
  /** `topic|partition` -> next offset to read, as a bigint. */
  readonly #pending = new Map<string, { topic: string; partition: number; next: bigint }>();
  #chain: Promise<void> = Promise.resolve();

  constructor(options: OffsetCommitsOptions) {
    this.#options = options;
  }

  /** Partitions with an offset waiting for a commit. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Records that every record of `topic`/`partition` before `next` is durable. A lower offset
   * than one already recorded changes nothing.
   */
  durable(topic: string, partition: number, next: bigint): void {
    const key = `${topic}|${partition}`;
    const known = this.#pending.get(key);
    if (known === undefined || next > known.next) {
      this.#pending.set(key, { topic, partition, next });
    }
  }

  /**
   * Forgets the offsets of `topic`'s partitions not in `partitions` (the group gave them to
   * another member: their batches are its to redeliver and commit).
   */
  retain(topic: string, partitions: readonly number[]): void {
    const kept = new Set(partitions);
    for (const [key, entry] of this.#pending) {
      if (entry.topic === topic && !kept.has(entry.partition)) this.#pending.delete(key);
    }
  }

  /**
   * Commits every offset recorded so far with `send`, after the commits already in flight.
   * Resolves when that commit is done or failed (failures go to the callbacks); never rejects.
   */
  flush(send: CommitRequest): Promise<void> {
    const next = this.#chain.then(() => this.#commitPending(send));
    // A callback that threw must not stop the flushes after it.
    this.#chain = next.catch(() => {});
    return this.#chain;
  }

  async #commitPending(send: CommitRequest): Promise<void> {
    if (this.#pending.size === 0) return;
    const taken = [...this.#pending.values()];
    this.#pending.clear();
    const offsets = taken.map(({ topic, partition, next }) => ({
      topic,
      partition,
      offset: next.toString(),
    }));
    try {
      await send(offsets);
    } catch (error) {
      if (this.#options.lostMembership(error)) {
        this.#options.onRefused?.(offsets, error);
      } else {
        for (const { topic, partition, next } of taken) this.durable(topic, partition, next);
        this.#options.onFailed?.(offsets, error);
      }
      return;
    }
    this.#options.onCommitted?.(offsets);
  }
}
