/**
 * Which failures are worth retrying. Kafka errors from kafkajs carry their own `retriable`;
 * Cassandra errors are classified here by driver error type and server error code. Only
 * retriable failures are retried; anything else is a bug or bad input and must surface.
 *
 * @module
 */
import cassandra from "cassandra-driver";

const { errors, types } = cassandra;

/** Server error codes that mean "try again later", not "this request is wrong". */
const RETRIABLE_CODES: ReadonlySet<number> = new Set([
  types.responseErrorCodes.serverError,
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.overloaded,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.writeTimeout,
  types.responseErrorCodes.readTimeout,
  types.responseErrorCodes.truncateError,
]);

/** Whether a Cassandra driver error is transient (node down, timeout, overload). */
export function isRetriableCassandraError(error: unknown): boolean {
  if (error instanceof errors.NoHostAvailableError) return true;
  if (error instanceof errors.OperationTimedOutError) return true;
  if (error instanceof errors.BusyConnectionError) return true;
  if (error instanceof errors.ResponseError) return RETRIABLE_CODES.has(error.code);
  if (error instanceof errors.DriverInternalError) return false;
  if (error instanceof errors.DriverError) return true; // socket closed, connection reset
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)$/.test(code);
}

/** Whether a kafkajs error says it may succeed if tried again. */
export function isRetriableKafkaError(error: unknown): boolean {
  return (error as { retriable?: unknown })?.retriable === true ||
    (error as { name?: unknown })?.name === "KafkaJSNumberOfRetriesExceeded" ||
    (error as { name?: unknown })?.name === "KafkaJSConnectionError";
}

/** An error that says whether to try again, wrapping the original as `cause`. */
export class PipelineError extends Error {
  readonly retriable: boolean;
  constructor(message: string, options: { retriable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "PipelineError";
    this.retriable = options.retriable;
  }
}

/** Whether to retry `error`: its own `retriable` flag, else its kind. */
export function isRetriable(error: unknown): boolean {
  if (error instanceof PipelineError) return error.retriable;
  return isRetriableCassandraError(error) || isRetriableKafkaError(error);
}
