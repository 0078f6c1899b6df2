/**
 * The names of the metrics one process declares and another reads: workers report them (through
 * the metrics topic), and the status endpoint (throughput, the market page's health strip) and
 * `deno task start`'s live view read them back. Declared here once, so a rename is one edit and
 * the readers never match a string that no worker writes any more.
 *
 * Metrics only their own process reads are named where they are declared.
 *
 * @module
 */

/** Metric names shared between the workers and their readers. */
export const METRIC = {
  /** Counter: records a stage read from its input topic (`stage`). */
  stageMessagesIn: "pipeline_stage_messages_in_total",
  /** Counter: rows a stage wrote to Cassandra (`stage`, `table`). */
  stageRowsWritten: "pipeline_stage_rows_written_total",
  /** Counter: batches a stage retried without committing (`stage`). */
  stageRetries: "pipeline_stage_retries_total",
  /** Counter: records a stage sent to the dead-letter topic (`stage`, `reason`). */
  deadLetters: "pipeline_dead_letters_total",
  /** Counter: Cassandra writes that failed (`stage`, `table`). */
  cassandraWriteErrors: "pipeline_cassandra_write_errors_total",
  /** Counter: trades the producer parsed from trade frames. */
  producerTradesReceived: "pipeline_producer_trades_received_total",
  /** Counter: trades Kafka acknowledged to the producer. */
  producerTradesAcked: "pipeline_producer_trades_acked_total",
  /** Counter: trades the producer dropped (buffer full). */
  producerTradesDropped: "pipeline_producer_trades_dropped_total",
  /** Counter: dead letters the producer sent (`reason`). */
  producerDeadLetters: "pipeline_producer_dead_letters_total",
  /** Counter: Kafka sends of the producer that failed. */
  producerKafkaErrors: "pipeline_producer_kafka_errors_total",
  /** Counter: feed gaps the producer found (`cause`). */
  producerFeedGaps: "pipeline_producer_feed_gaps_total",
  /** Counter: seconds of the feed gaps the producer found (`cause`). */
  producerFeedGapSeconds: "pipeline_producer_feed_gap_seconds_total",
  /** Gauge: 1 while the producer's feed connection is open. */
  producerConnected: "pipeline_producer_connected",
} as const;
