/**
 * The one way the kafkajs fixes replace an internal kafkajs module: in node's module cache,
 * before the kafkajs module that takes it with `require` loads (`kafkajs_fixes.ts` imports them
 * first).
 *
 * @module
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** What {@linkcode swapKafkajsModule} replaces, and for whom. */
export interface KafkajsModuleSwap {
  /** The internal module replaced, e.g. `kafkajs/src/producer/sendMessages.js`. */
  readonly module: string;
  /** The kafkajs module that takes {@linkcode module} with `require` when it loads. */
  readonly takenBy: string;
  /** What {@linkcode module} exports from now on. */
  readonly replacement: unknown;
}

/**
 * Makes `module` export `replacement`. Returns false, changing nothing, when `takenBy` has loaded
 * already: it holds the original, and the swap came too late. `module` itself must have loaded
 * (the fix imports it, to wrap or fall back on it).
 */
export function swapKafkajsModule({ module, takenBy, replacement }: KafkajsModuleSwap): boolean {
  if (require.resolve(takenBy) in require.cache) return false;
  const path = require.resolve(module);
  const cached = require.cache[path];
  if (cached === undefined) throw new Error(`kafkajs module ${path} is not loaded`);
  cached.exports = replacement;
  return true;
}
