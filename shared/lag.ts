/**
 * Consumer lag computed from Kafka itself: for each consumer group, topic and partition, the log
 * end offset minus the group's committed offset. A dead worker therefore shows growing lag, not
 * silence.
 *
 * @module
 */
import type { Admin } from "kafkajs";

/** The lag of one group on one partition. */
export interface PartitionLag {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  /** Next offset to be written. */
  readonly logEnd: number;
  /** Next offset the group will read; -1 when it has committed nothing. */
  readonly committed: number;
  /** Records written and not yet committed by the group. */
  readonly lag: number;
}

/** The lag of every partition of `topic` for each group. */
export async function consumerLag(
  admin: Admin,
  subscriptions: readonly { readonly group: string; readonly topic: string }[],
): Promise<PartitionLag[]> {
  const out: PartitionLag[] = [];
  const ends = new Map<string, { partition: number; high: number; low: number }[]>();
  for (const { topic } of subscriptions) {
    if (ends.has(topic)) continue;
    const offsets = await admin.fetchTopicOffsets(topic);
    ends.set(
      topic,
      offsets.map((o) => ({ partition: o.partition, high: Number(o.high), low: Number(o.low) })),
    );
  }
  for (const { group, topic } of subscriptions) {
    const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const byPartition = new Map(
      (committed.find((t) => t.topic === topic)?.partitions ?? []).map((p) => [
        p.partition,
        Number(p.offset),
      ]),
    );
    for (const end of ends.get(topic) ?? []) {
      const offset = byPartition.get(end.partition) ?? -1;
      // Nothing committed yet: everything still retained is unread.
      const lag = offset < 0 ? end.high - end.low : Math.max(0, end.high - offset);
      out.push({
        group,
        topic,
        partition: end.partition,
        logEnd: end.high,
        committed: offset,
        lag,
      });
    }
  }
  return out.sort((a, b) =>
    a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic) || a.partition - b.partition
  );
}
