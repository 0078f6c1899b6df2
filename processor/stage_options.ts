/**
 * What every stage is built over (bronze, silver, gold and gold's feed-gap consumer): its
 * clients, where its dead letters go and how many Cassandra requests it may have in flight.
 *
 * @module
 */
import type cassandra from "cassandra-driver";
import type { Producer } from "kafkajs";
import type { Logger } from "../shared/log.ts";
import type { MetricsRegistry } from "../shared/metrics.ts";
import type { WireCodec } from "../shared/wire.ts";

/** The dependencies every stage constructor takes; each stage adds its own. */
export interface StageOptions {
  readonly session: cassandra.Client;
  readonly keyspace: string;
  /** Publishes the stage's dead letters and whatever else it writes to Kafka. */
  readonly producer: Producer;
  readonly deadLetterTopic: string;
  /** Decodes the stage's input records and encodes what it publishes. */
  readonly wire: WireCodec;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Most Cassandra requests in flight. Default 32. */
  readonly concurrency?: number;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
}
