/**
 * Server processes: started detached, found again through their pid file, and recognised as ours.
 *
 * A server starts as `setsid -f sh -c 'echo $$ > pid; exec <command> >> logs/stdout.log'`:
 * `Deno.Command` cannot send output to a file, and a child the Deno process waits on would tie
 * their lifetimes, so the server outlives the Deno process and a Ctrl-C in its terminal. The shell
 * writes its own pid, which `exec` hands to the server. The environment is minimal (PATH, HOME,
 * LANG, JAVA_HOME...): no secrets of the caller reach a server.
 *
 * A pid counts as our server only when the process is alive (not a zombie: PID 1 of the sandbox
 * does not reap orphans) and its command line holds every part of the server's `signature`
 * (its main class and this checkout's conf dir), so a reused pid is never signalled.
 *
 * @module
 */

import { join } from "node:path";
import { delayUnlessAborted as delay } from "../shared/delay.ts";
import { decode, existsSync, removeIfExists } from "./_util.ts";
import type { ServicePaths } from "./layout.ts";

/**
 * Starts `command` in a new session (setsid -f) from `paths.dir`, with stdout/stderr appended to
 * logs/stdout.log after a `==== <time> starting <name>` line, and waits up to 10 s for its pid
 * file. With `timerSlackNs`, the process and every thread it starts get that timer slack (Linux
 * `/proc/self/timerslack_ns`, inherited across exec; skipped where the file does not exist).
 * @returns the pid, or null when no pid file appeared.
 * @throws Error when setsid itself fails.
 */
export async function spawnDetached(
  name: string,
  paths: ServicePaths,
  command: readonly string[],
  options: { readonly timerSlackNs?: number } = {},
): Promise<number | null> {
  await removeIfExists(paths.pidFile);
  await Deno.mkdir(paths.logDir, { recursive: true });
  await Deno.writeTextFile(
    paths.stdoutLog,
    `==== ${new Date().toISOString()} starting ${name}\n`,
    { append: true },
  );
  const slack = options.timerSlackNs === undefined
    ? ""
    : `{ echo ${Math.round(options.timerSlackNs)} > /proc/self/timerslack_ns; } 2>/dev/null; `;
  const script = slack + 'printf "%s\\n" "$$" > "$LS_PID_FILE.tmp" && mv -f "$LS_PID_FILE.tmp" ' +
    '"$LS_PID_FILE" && exec "$@" >> "$LS_OUT_LOG" 2>&1 < /dev/null';
  const output = await new Deno.Command("setsid", {
    args: ["-f", "sh", "-c", script, "sh", ...command],
    cwd: paths.dir,
    clearEnv: true,
    env: { ...serverEnv(), LS_PID_FILE: paths.pidFile, LS_OUT_LOG: paths.stdoutLog },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `${name}: setsid could not start ${command[0]}: ${decode(output.stderr).trim()}`,
    );
  }
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    const pid = await readPidFile(paths.pidFile);
    if (pid !== null) return pid;
    await delay(50, undefined);
  }
  return null;
}

/** The environment of a server: only what the JVM needs, no secrets of the caller. */
function serverEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "JAVA_HOME", "USER"]) {
    const value = Deno.env.get(key);
    if (value !== undefined) env[key] = value;
  }
  return env;
}

async function readPidFile(file: string): Promise<number | null> {
  try {
    const text = (await Deno.readTextFile(file)).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** The pid in `pidFile` if that process is alive and ours; else removes the stale file. */
export async function ourRunningPid(
  pidFile: string,
  signature: readonly string[],
): Promise<number | null> {
  const pid = await readPidFile(pidFile);
  if (pid === null) return null;
  if (await isOurProcess(pid, signature)) return pid;
  await removeIfExists(pidFile);
  return null;
}

/** Alive (not a zombie) and its command line holds every part of `signature`. */
export async function isOurProcess(pid: number, signature: readonly string[]): Promise<boolean> {
  const cmdline = await processCommandLine(pid);
  return cmdline !== null && signature.every((part) => cmdline.includes(part));
}

/** True while `pid` is alive and not a zombie. */
export function processAlive(pid: number): Promise<boolean> {
  return processCommandLine(pid).then((cmdline) => cmdline !== null);
}

/** Sends `signal` to `pid`; a process already gone is fine. */
export function signalProcess(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Options of {@link waitExit}. */
export interface WaitExitOptions {
  /** What makes the process ours (see {@link isOurProcess}). */
  signature: readonly string[];
  timeoutMs: number;
  /** Aborts waiting (rejects with its reason). */
  signal?: AbortSignal | undefined;
}

/** Waits until `pid` is no longer our process; false when it still is after `timeoutMs`. */
export async function waitExit(pid: number, options: WaitExitOptions): Promise<boolean> {
  const deadline = performance.now() + options.timeoutMs;
  while (performance.now() < deadline) {
    if (!(await isOurProcess(pid, options.signature))) return true;
    await delay(250, options.signal);
  }
  return !(await isOurProcess(pid, options.signature));
}

/** True when an executable `command` is in a folder of PATH. */
export async function commandExists(command: string): Promise<boolean> {
  return (await commandPath(command)) !== null;
}

/** The path of the first executable `command` in a folder of `path` (default: PATH), or null. */
export async function commandPath(
  command: string,
  path = Deno.env.get("PATH") ?? "",
): Promise<string | null> {
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const info = await Deno.stat(join(dir, command));
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return join(dir, command);
    } catch {
      // not in this folder
    }
  }
  return null;
}

/** The command line of a live process, or null when it is gone or a zombie. */
async function processCommandLine(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return null;
    return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && existsSync("/proc/self")) return null;
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // No /proc (not Linux): ask ps.
  const output = await new Deno.Command("ps", {
    args: ["-p", String(pid), "-o", "stat=,command="],
    stdout: "piped",
    stderr: "null",
  }).output();
  const line = decode(output.stdout).trim();
  if (!output.success || line === "" || line.startsWith("Z")) return null;
  return line;
}
