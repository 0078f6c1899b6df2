/**
 * A server's runtime jars in `.local/<name>/lib`, fetched from Maven Central with
 * `local_services/<name>/pom.xml` (pinned versions, pinned maven-dependency-plugin 3.8.1):
 * `dependency:copy-dependencies` copies the jars, `dependency:unpack-dependencies` unpacks an
 * archive (a tar.gz distribution) into lib/. The plugin's unpack markers go to a folder under
 * `.local/<name>/` that is emptied first: with its default (`target/` next to the pom) a marker
 * left from an earlier fetch would make it skip the unpacking.
 *
 * Fetching writes into `lib.partial` and renames it to `lib` only when Maven succeeded, with a
 * marker `lib/.fetched.json` holding the version and the pom's SHA-256: jars are refetched when
 * the pom changes, never half-used. Maven runs one at a time ({@link createSerialQueue}): the
 * local Maven repository is not safe for parallel writers.
 *
 * @module
 */

import { join } from "node:path";
import {
  decode,
  existsSync,
  ignoreNotFound,
  indent,
  lastLines,
  type Log,
  seconds,
} from "./_util.ts";
import { LOG_TAIL_LINES } from "./logs.ts";
import { commandExists } from "./processes.ts";
import type { Server } from "./server_spec.ts";

interface JarMarker {
  version: string;
  pomSha256: string;
  fetchedAt: string;
}

/** Runs tasks one at a time, in the order given. */
export type SerialQueue = <T>(task: () => Promise<T>) => Promise<T>;

export function createSerialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task);
    tail = run.catch(() => {});
    return run;
  };
}

/** True when lib/ holds the jars of the current pom. */
export async function jarsFetched(server: Server): Promise<boolean> {
  const { pomSha256, marker } = await jarState(server);
  return marker?.pomSha256 === pomSha256;
}

/** The version of the jars fetched last, or null when none are. */
export async function fetchedVersion(server: Server): Promise<string | null> {
  return (await readMarker(server.paths.markerFile))?.version ?? null;
}

/**
 * Fetches the runtime jars with Maven unless the marker says this exact pom was fetched.
 * @returns the server version named in the pom.
 */
export async function ensureJars(server: Server, log: Log): Promise<string> {
  const { spec: { name, fetch }, paths } = server;
  const { pomFile, version, pomSha256, marker } = await jarState(server);
  if (marker?.pomSha256 === pomSha256) return version;
  await requireMaven(name);
  const partial = `${paths.libDir}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(ignoreNotFound);
  const why = marker ? `pom changed (was ${marker.version})` : "first run";
  log(`${name}: fetching ${name} ${version} jars with Maven (${why}) into ${paths.libDir}`);
  const t0 = performance.now();
  const markers = join(paths.dir, ".maven-markers");
  await Deno.remove(markers, { recursive: true }).catch(ignoreNotFound);
  const output = await new Deno.Command("mvn", {
    args: [
      "-q",
      "-B",
      "-Dstyle.color=never",
      "-f",
      pomFile,
      `dependency:${fetch.goal}`,
      "-DincludeScope=runtime",
      `-DoutputDirectory=${partial}`,
      `-DmarkersDirectory=${markers}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(markers, { recursive: true }).catch(ignoreNotFound);
  if (!output.success) {
    const tail = lastLines(decode(output.stdout) + decode(output.stderr), LOG_TAIL_LINES);
    throw new Error(
      `${name}: Maven could not fetch the jars (exit code ${output.code}). Fix: check that ` +
        `Maven Central is reachable (proxy settings in ~/.m2/settings.xml) and that ${pomFile} ` +
        `names versions that exist.\nLast lines of mvn output:\n${indent(tail)}`,
    );
  }
  if (fetch.expect && !existsSync(join(partial, fetch.expect))) {
    throw new Error(
      `${name}: Maven ran, but ${partial} holds no ${fetch.expect}: ${pomFile} names an ` +
        "artifact that is not the runnable distribution (check its classifier and type)",
    );
  }
  const next: JarMarker = { version, pomSha256, fetchedAt: new Date().toISOString() };
  await Deno.writeTextFile(join(partial, ".fetched.json"), JSON.stringify(next, null, 2) + "\n");
  await Deno.remove(paths.libDir, { recursive: true }).catch(ignoreNotFound);
  await Deno.rename(partial, paths.libDir);
  const { jars, bytes } = await countJars(paths.libDir);
  log(
    `${name}: fetched ${jars} jars (${(bytes / 1e6).toFixed(0)} MB) in ` +
      seconds(performance.now() - t0),
  );
  return version;
}

/** The jars under `dir` (at any depth) and their total size. */
async function countJars(dir: string): Promise<{ jars: number; bytes: number }> {
  let jars = 0;
  let bytes = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      const inner = await countJars(path);
      jars += inner.jars;
      bytes += inner.bytes;
    } else if (entry.isFile && entry.name.endsWith(".jar")) {
      jars++;
      bytes += (await Deno.stat(path)).size;
    }
  }
  return { jars, bytes };
}

/** @throws Error when mvn is not on PATH, saying that `name`'s jars still need it. */
export async function requireMaven(name: string): Promise<void> {
  if (!(await commandExists("mvn"))) {
    throw new Error(
      `mvn not found, and the ${name} jars are not fetched yet: install Maven 3.8+ ` +
        "(apt-get install maven) or put it on PATH",
    );
  }
}

/** The path of the first jar in `libDir` whose name matches `pattern`. */
export async function findJar(libDir: string, pattern: RegExp): Promise<string> {
  for await (const entry of Deno.readDir(libDir)) {
    if (pattern.test(entry.name)) return join(libDir, entry.name);
  }
  throw new Error(
    `No jar matching ${pattern} in ${libDir}: the jars look incomplete; delete ${libDir} and ` +
      "run up again",
  );
}

/** The pom's version and hash, and the marker of the jars fetched last (null: none). */
async function jarState({ spec, paths }: Server) {
  const pomFile = join(paths.sourceDir, "pom.xml");
  const pom = await Deno.readTextFile(pomFile);
  const property = spec.fetch.versionProperty;
  const version = new RegExp(`<${property}>([^<]+)</${property}>`).exec(pom)?.[1]?.trim();
  if (!version) throw new Error(`Cannot read <${property}> from ${pomFile}`);
  return {
    pomFile,
    version,
    pomSha256: await sha256Hex(pom),
    marker: await readMarker(paths.markerFile),
  };
}

async function readMarker(file: string): Promise<JarMarker | null> {
  try {
    const value: unknown = JSON.parse(await Deno.readTextFile(file));
    if (
      typeof value === "object" && value !== null &&
      typeof (value as JarMarker).version === "string" &&
      typeof (value as JarMarker).pomSha256 === "string"
    ) {
      return value as JarMarker;
    }
    return null;
  } catch {
    return null;
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
