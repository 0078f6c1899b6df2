/**
 * The kafkajs fixes that replace one of its internal modules, and so must be in node's module
 * cache before kafkajs's main module loads: the produce retry by partition
 * (`kafkajs_produce_retry.ts`) and the EndTxn retry (`kafkajs_endtxn_retry.ts`). An entry point
 * or module that imports kafkajs imports this first, once; `createKafka` asserts both are in
 * place.
 *
 * @module
 */
import "./kafkajs_produce_retry.ts";
import "./kafkajs_endtxn_retry.ts";
