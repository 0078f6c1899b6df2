/**
 * Is a TCP port free, and who holds it when it is not: one home for the port checks of
 * `deno task start` (start/) and of the local servers (local_services/).
 *
 * The holder is found from `/proc` (a listening socket's inode in `/proc/net/tcp{,6}`, then the
 * process with that inode among its fds), so it works without `ss` or `lsof`. Where it cannot be
 * told (no `/proc`, or a process of another user) the answer is `null` and callers say "another
 * process": `ss -p` reads the same `/proc` and would see no more.
 *
 * @module
 */

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
