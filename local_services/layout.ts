/**
 * Where a local server's files live. Sources: `local_services/<name>/` (pom.xml, config
 * templates). Runtime files: `<repo>/.local/<name>/` (jars, rendered config, data, logs, pid),
 * where `<repo>` is the nearest folder above this module that holds deno.json, so every checkout
 * runs its own servers and finds them again.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { existsSync } from "./_util.ts";

/** The files of one server. */
export interface ServicePaths {
  /** local_services/<name>: pom.xml and config templates. */
  sourceDir: string;
  /** .local/<name>. */
  dir: string;
  libDir: string;
  /** lib/.fetched.json: which pom the jars in lib/ were fetched for. */
  markerFile: string;
  confDir: string;
  logDir: string;
  dataDir: string;
  tmpDir: string;
  pidFile: string;
  /** The server's own log (logs/<mainLog>). */
  mainLog: string;
  /** The JVM's console output (logs/stdout.log). */
  stdoutLog: string;
}

/** The paths of server `name`, whose own log is `logs/<mainLog>`. */
export function servicePaths(name: string, mainLog: string): ServicePaths {
  const dir = join(localDir(), name);
  const logDir = join(dir, "logs");
  return {
    sourceDir: join(dirname(fileURLToPath(import.meta.url)), name),
    dir,
    libDir: join(dir, "lib"),
    markerFile: join(dir, "lib", ".fetched.json"),
    confDir: join(dir, "conf"),
    logDir,
    dataDir: join(dir, "data"),
    tmpDir: join(dir, "tmp"),
    pidFile: join(dir, "pid"),
    mainLog: join(logDir, mainLog),
    stdoutLog: join(logDir, "stdout.log"),
  };
}

/** .local/services.lock: held while a process starts or stops servers. */
export function lockFile(): string {
  return join(localDir(), "services.lock");
}

/** `<repo>/.local`. @throws Error when the repo path would break the JVM argfiles. */
function localDir(): string {
  const root = repoRoot();
  if (/["\\\s%]/.test(root)) {
    throw new Error(
      `The repository path ${JSON.stringify(root)} contains a space, quote, backslash or %: ` +
        "the JVM argfiles and Cassandra's file URL need a plain path; move the checkout",
    );
  }
  return join(root, ".local");
}

/** The repository root: the nearest folder above this module that holds deno.json. */
function repoRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  while (true) {
    if (existsSync(join(dir, "deno.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`Cannot find the repository root: no deno.json in ${start} or above`);
    }
    dir = parent;
  }
}
