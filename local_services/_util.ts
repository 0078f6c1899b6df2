/**
 * Small helpers private to local_services/ (the `_` prefix says so: nothing outside imports them).
 *
 * Twins elsewhere, left for the project-wide clean-up: `seconds` and `indent` (start/output.ts).
 * The waiting loops here use `delayUnlessAborted` from `shared/delay.ts`, which rejects with the
 * abort reason.
 *
 * @module
 */

/** Receives one human-readable progress line at a time. */
export type Log = (line: string) => void;

export function defaultLog(line: string): void {
  console.error(line);
}

/** `promise`, or `fallback` when it has not settled after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Throws the one rejection, or an AggregateError listing all of them. */
export function throwIfAnyRejected(results: PromiseSettledResult<unknown>[]): void {
  const errors = results
    .filter((r): r is PromiseRejectedResult => r.status === "rejected")
    .map((r) => r.reason instanceof Error ? r.reason : new Error(String(r.reason)));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    throw new AggregateError(errors, errors.map((e) => e.message).join("\n\n"));
  }
}

export function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

export async function removeIfExists(path: string): Promise<void> {
  await Deno.remove(path).catch(ignoreNotFound);
}

export function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}

export function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

export function indent(text: string): string {
  return text.split("\n").map((line) => `  ${line}`).join("\n");
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
