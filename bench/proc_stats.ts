/**
 * Reading CPU and memory of processes from Linux's /proc, for the benchmarks.
 *
 * @module
 */

/** Clock ticks per second of /proc CPU figures (USER_HZ on Linux). */
export const CLOCK_TICKS = 100;

/** User + system CPU ticks of `pid` (all its threads), or NaN once it is gone. */
export function cpuTicks(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, whole line).
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/** Busy and total ticks of the whole machine, all cores. */
export function machineTicks(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = values[3]! + (values[4] ?? 0);
  const total = values.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Resident memory of `pid` in bytes (VmRSS), or NaN once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The pid of a local server started by `local_services/`, if it is alive. */
export function servicePid(service: "kafka" | "cassandra"): number | null {
  try {
    const root = new URL("../", import.meta.url);
    const pid = Number(Deno.readTextFileSync(new URL(`.local/${service}/pid`, root)).trim());
    return Number.isInteger(pid) && pid > 0 && !Number.isNaN(cpuTicks(pid)) ? pid : null;
  } catch {
    return null;
  }
}
