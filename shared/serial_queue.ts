/**
 * One piece of work at a time, in call order.
 *
 * @module
 */

/**
 * Returns a function that runs the work it is given one at a time, in call order: each starts
 * once the one before has settled, whether it failed or not, and resolves or rejects as that work
 * does.
 */
export function createSerialQueue(): <T>(work: () => Promise<T>) => Promise<T> {
  let chain: Promise<unknown> = Promise.resolve();
  return (work) => {
    const next = chain.then(work, work);
    chain = next.catch(() => {});
    return next;
  };
}
