/**
 * Checking, before anything starts, that the ports `deno task start` will listen on are free,
 * and naming who holds one that is not (from `/proc`, so it works without `ss` or `lsof`).
 *
 * @module
 */

/** A port the start task needs, and the variable that moves it. */
export interface NeededPort {
  readonly host: string;
  readonly port: number;
  /** `STATUS_PORT`, `SIMULATOR_PORT`. */
  readonly variable: string;
  /** What listens there: `the status endpoint`. */
  readonly purpose: string;
}

/** The process holding a port, when it could be found. */
export interface PortHolder {
  readonly pid: number;
  readonly command: string;
}

/** True when `host:port` can be bound now (it is released again at once). */
export function portFree(host: string, port: number): boolean {
  try {
    const listener = Deno.listen({ hostname: host, port, transport: "tcp" });
    listener.close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return false;
    if (error instanceof Deno.errors.PermissionDenied) return false;
    throw error;
  }
}

/**
 * The socket inodes listening on `port` in the text of `/proc/net/tcp` or `/proc/net/tcp6`
 * (state `0A` is LISTEN; the local address is `HEXIP:HEXPORT`).
 */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const out: string[] = [];
  for (const line of procNetTcp.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const local = fields[1]!;
    const state = fields[3]!;
    const inode = fields[9]!;
    const hexPort = local.slice(local.lastIndexOf(":") + 1);
    if (state === "0A" && parseInt(hexPort, 16) === port && inode !== "0") out.push(inode);
  }
  return out;
}

/** Who listens on `port` on this machine, or `null` when it cannot be told (another user). */
export async function portHolder(port: number): Promise<PortHolder | null> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const inode of listeningInodes(await Deno.readTextFile(file), port)) inodes.add(inode);
    } catch {
      // No such file (no IPv6) or no /proc: nothing to add.
    }
  }
  if (inodes.size === 0) return null;
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        for await (const fd of Deno.readDir(`/proc/${entry.name}/fd`)) {
          const target = await Deno.readLink(`/proc/${entry.name}/fd/${fd.name}`).catch(() => "");
          const match = /^socket:\[(\d+)\]$/.exec(target);
          if (match && inodes.has(match[1]!)) {
            const raw = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
            return { pid: Number(entry.name), command: commandLine(raw) };
          }
        }
      } catch {
        // A process of another user, or one that just exited.
      }
    }
  } catch {
    // No /proc.
  }
  return null;
}

/** A `/proc/<pid>/cmdline` (NUL-separated) as one readable line, cut at 160 characters. */
export function commandLine(raw: string): string {
  const text = raw.split("\0").filter((part) => part !== "").join(" ");
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
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
