/**
 * The ports `deno task start` will listen on, the message when one is taken (the check and the
 * holder lookup are shared/ports.ts, also used by local_services/), and the address to show for a
 * bind address.
 *
 * @module
 */

import type { PortHolder } from "../shared/ports.ts";

/** A port the start task needs, and the variable that moves it. */
export interface NeededPort {
  readonly host: string;
  readonly port: number;
  /** `STATUS_PORT`, `SIMULATOR_PORT`. */
  readonly variable: string;
  /** What listens there: `the status endpoint`. */
  readonly purpose: string;
}

/** The message for a taken port: which, by whom (when known), and how to move ours. */
export function portTakenMessage(needed: NeededPort, holder: PortHolder | null): string {
  const who = holder
    ? `pid ${holder.pid} (${holder.command || "unknown command"})`
    : "another process (not visible to this user)";
  const another = holder && /\b(status|simulator)\/main\.ts\b/.test(holder.command)
    ? " It looks like another `deno task start` (or `deno task status`/`simulator`) is running: stop it first, or"
    : " Stop it, or";
  return `port ${needed.port} on ${needed.host}, needed for ${needed.purpose}, is already in use by ${who}.` +
    `${another} choose another port: set ${needed.variable}=<free port> in .env (or the environment).`;
}

/** `127.0.0.1` for a wildcard bind address, brackets for IPv6: where to reach `host`. */
export function displayHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
