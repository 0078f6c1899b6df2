/**
 * A transaction's EndTxn (commit or abort) retried when its coordinator moves, for kafkajs 2.2.4.
 *
 * kafkajs's transaction manager (`eosManager`) commits by moving to state COMMITTING, finding the
 * transaction coordinator and sending EndTxn once; when that fails, the error is thrown and the
 * state stays COMMITTING, from which nothing is legal: not `abort()`, not a new transaction. A
 * broker restarting moves the coordinator, and EndTxn then fails with NOT_COORDINATOR (kafkajs
 * names codes 14-16 after groups: `NOT_COORDINATOR_FOR_GROUP`, `GROUP_COORDINATOR_NOT_AVAILABLE`,
 * `GROUP_LOAD_IN_PROGRESS`), CONCURRENT_TRANSACTIONS or a connection error. Measured with the
 * cluster suite (`tests/cluster/cluster_test.ts`, `PRODUCER_LEASE=kafka`): a rolling restart of
 * three brokers at 1,000 trades/s stopped the producer's sink with 145 of 371,149 trades not
 * written (reported, not silent). The Java client instead finds the coordinator again and resends
 * EndTxn until it is answered, and the coordinator answers a repeated EndTxn of the same outcome
 * with success, so a retry cannot commit twice or turn a commit into an abort.
 *
 * {@linkcode createEosManager} is kafkajs's own transaction manager given a view of the cluster in
 * which EndTxn does that: each attempt finds the transaction coordinator anew (kafkajs's
 * `cluster.findGroupCoordinator` sends FindCoordinator each time; it caches nothing) and sends
 * EndTxn to it, retried by kafkajs's retrier with the cluster's retry settings (the ones the
 * manager retries InitProducerId with) for as long as the error is `retriable`. A fenced producer
 * (`INVALID_PRODUCER_EPOCH`, or `PRODUCER_FENCED`, which kafkajs reads as an unknown,
 * non-retriable code) or any other non-retriable error is thrown at once, unchanged. The state
 * moves on only when EndTxn is answered, as in kafkajs; if the retries run out it stays where
 * kafkajs leaves it. Every other request goes to the coordinator exactly as before: found when
 * the request is made, sent once.
 *
 * Why wrap rather than copy: the state machine lives inside the manager's closure, and the only
 * seam it exposes is the `cluster` it is built with, from which it takes the coordinator for every
 * transactional request. Giving it a cluster whose transaction coordinator retries EndTxn changes
 * those two lines of `commit()` and `abort()` and nothing else; a vendored copy would be 464 lines
 * of kafkajs to keep in step for the same change.
 *
 * kafkajs's producer takes the manager's factory with `require` when its module loads, so the
 * replacement must be in node's module cache before kafkajs's main module loads: importing this
 * module does that, and `shared/kafka.ts` imports it before kafkajs. If kafkajs was loaded first,
 * {@linkcode assertEndTxnRetryFixed} (called by `createKafka`) throws, naming this module.
 *
 * @module
 */
import { swapKafkajsModule } from "./kafkajs_module_swap.ts";
import createRetry from "kafkajs/src/retry/index.js";
import COORDINATOR_TYPES from "kafkajs/src/protocol/coordinatorTypes.js";
import originalCreateEosManager from "kafkajs/src/producer/eosManager/index.js";

// deno-lint-ignore no-explicit-any
type Any = any;

/** What kafkajs's producer passes its transaction manager's factory. */
export interface EosManagerOptions {
  logger: Any;
  cluster: Any;
  transactionTimeout?: number;
  transactional?: boolean;
  transactionalId?: string;
}

/** kafkajs's transaction manager factory, as shipped (for tests showing what it does). */
export const ORIGINAL_CREATE_EOS_MANAGER = originalCreateEosManager as unknown as (
  options: EosManagerOptions,
) => Any;

/** One EndTxn request, as kafkajs's manager sends it. */
interface EndTxnRequest {
  transactionalId: string;
  producerId: number;
  producerEpoch: number;
  transactionResult: boolean;
}

/** kafkajs's transaction manager, its EndTxn retried on a fresh coordinator (see the module). */
export function createEosManager(options: EosManagerOptions): Any {
  return ORIGINAL_CREATE_EOS_MANAGER({
    ...options,
    cluster: endTxnRetryingCluster(options.cluster, options.logger),
  });
}

/**
 * The part of `cluster` kafkajs's manager uses (`retry`, `refreshMetadataIfNecessary`,
 * `findControllerBroker`, `findGroupCoordinator`), in which the transaction coordinator is
 * {@linkcode transactionCoordinator}.
 */
function endTxnRetryingCluster(cluster: Any, logger: Any): Any {
  const retrier = createRetry(cluster.retry);
  return {
    retry: cluster.retry,
    refreshMetadataIfNecessary: () => cluster.refreshMetadataIfNecessary(),
    findControllerBroker: () => cluster.findControllerBroker(),
    findGroupCoordinator: (lookup: { groupId: string; coordinatorType?: number }) =>
      lookup.coordinatorType === COORDINATOR_TYPES.TRANSACTION
        ? Promise.resolve(transactionCoordinator(() => cluster.findGroupCoordinator(lookup)))
        : cluster.findGroupCoordinator(lookup),
  };

  /**
   * The transaction coordinator's requests the manager sends: each finds the coordinator when it
   * is sent; EndTxn does so on every attempt.
   */
  function transactionCoordinator(find: () => Promise<Any>) {
    return {
      initProducerId: async (request: unknown) => (await find()).initProducerId(request),
      addPartitionsToTxn: async (request: unknown) => (await find()).addPartitionsToTxn(request),
      addOffsetsToTxn: async (request: unknown) => (await find()).addOffsetsToTxn(request),
      endTxn: (request: EndTxnRequest) =>
        retrier(async (bail: (e: unknown) => void, retryCount: number, retryTime: number) => {
          try {
            return await (await find()).endTxn(request);
          } catch (error) {
            if ((error as { retriable?: unknown }).retriable !== true) return bail(error);
            logger.warn(
              `EndTxn failed, finding the transaction coordinator again: ${
                (error as Error).message
              }`,
              {
                transactionalId: request.transactionalId,
                commit: request.transactionResult,
                retryCount,
                retryTime,
              },
            );
            throw error;
          }
        }),
    };
  }
}

/** Whether kafkajs's producer module loaded before the replacement could be put in place. */
const loadedTooLate = !swapKafkajsModule({
  module: "kafkajs/src/producer/eosManager/index.js",
  takenBy: "kafkajs/src/producer/index.js",
  replacement: createEosManager,
});

/**
 * Throws unless kafkajs's producers use {@linkcode createEosManager}: that is, unless this module
 * was imported before kafkajs's main module loaded.
 */
export function assertEndTxnRetryFixed(): void {
  if (loadedTooLate) {
    throw new Error(
      "kafkajs was loaded before shared/kafkajs_endtxn_retry.ts, so its transactional producers " +
        "give up a commit or abort at the first coordinator error: import that module before " +
        "anything imports kafkajs",
    );
  }
}
