/**
 * A server's logs (`logs/<mainLog>` and `logs/stdout.log`): tails, and the report when a start
 * fails. The report names the server, what happened, the likely cause and fix (from known
 * patterns in the log lines written since that start), and the last 20 lines of each log.
 *
 * @module
 */

import { decode, existsSync, indent } from "./_util.ts";
import type { ServicePaths } from "./layout.ts";
import type { Diagnosis, Server } from "./server_spec.ts";

/** Lines of log or tool output shown in an error. */
export const LOG_TAIL_LINES = 20;

/** Byte offsets of a server's logs when it was started: failure reports show only what follows. */
export interface LogMark {
  mainLog: number;
  stdoutLog: number;
}

/** The current ends of both logs (0 for a log not written yet). */
export async function markLogs(paths: ServicePaths): Promise<LogMark> {
  return { mainLog: await fileSize(paths.mainLog), stdoutLog: await fileSize(paths.stdoutLog) };
}

/** An Error naming the server, what happened, the likely cause and fix, and the last log lines. */
export async function startFailure(server: Server, what: string, mark: LogMark): Promise<Error> {
  const { paths } = server;
  const main = readableLines(await tailFile(paths.mainLog, 200, mark.mainLog));
  const stdout = readableLines(await tailFile(paths.stdoutLog, 200, mark.stdoutLog));
  const { cause, fix } = diagnose(server, [...main, ...stdout].join("\n"));
  main.splice(0, Math.max(0, main.length - LOG_TAIL_LINES));
  stdout.splice(0, Math.max(0, stdout.length - LOG_TAIL_LINES));
  const sections = [
    `${server.spec.name} did not start: ${what}.`,
    `Cause: ${cause}`,
    `Fix: ${fix}`,
  ];
  if (main.length > 0) sections.push(`Last lines of ${paths.mainLog}:\n${indent(main.join("\n"))}`);
  if (stdout.length > 0) {
    sections.push(`Last lines of ${paths.stdoutLog}:\n${indent(stdout.join("\n"))}`);
  }
  if (main.length === 0 && stdout.length === 0) sections.push("(no log lines were written)");
  return new Error(sections.join("\n"));
}

/** Log lines worth showing a person: no start markers, no classpath dumps, no endless lines. */
export function readableLines(lines: string[]): string[] {
  return lines
    .filter((line) => !line.startsWith("====") && !/Classpath:|JVM Arguments:/.test(line))
    .map((line) => line.length > 400 ? `${line.slice(0, 400)}...` : line);
}

/**
 * The first known failure found in `logText`: the generic JVM ones, then the server's own, then
 * "rejected its configuration"; when none matches, a kill from outside.
 */
export function diagnose(server: Server, logText: string): { cause: string; fix: string } {
  const { spec, paths } = server;
  const rules = [...jvmDiagnoses(server), ...spec.diagnoses(paths), {
    pattern:
      /ConfigurationException|Invalid yaml|Exception encountered during startup|Fatal error|Exiting Kafka|Failed to start application/i,
    cause: "the server rejected its configuration or failed during startup (see the log)",
    fix: `read the log lines below; the rendered config is in ${paths.confDir}`,
  }];
  for (const rule of rules) {
    if (rule.pattern.test(logText)) return { cause: rule.cause, fix: rule.fix };
  }
  return {
    cause: "the log shows no error; the process may have been killed from outside " +
      "(kill -9, or the kernel's OOM killer: check dmesg)",
    fix: `read ${paths.mainLog} and ${paths.stdoutLog}, then run up again`,
  };
}

/** Failures any JVM server can meet: ports, memory, Java version and options, disk, jars. */
function jvmDiagnoses({ spec, paths }: Server): Diagnosis[] {
  return [
    {
      pattern: /Address already in use|Failed to bind|BindException|Unable to bind/i,
      cause: "a port it needs is already taken by another process",
      fix: 'find the process with "ss -ltnp" and stop it, then run up again',
    },
    {
      pattern: /Could not reserve enough space|java\.lang\.OutOfMemoryError|Cannot allocate memory/,
      cause: "not enough memory for the JVM heap",
      fix: `free memory, or lower -Xmx in local_services/${spec.name}/${spec.jvmOptions}`,
    },
    {
      pattern: /UnsupportedClassVersionError/,
      cause: "java is too old for these jars",
      fix: `install Java ${spec.java.min}+ (on PATH, in JAVA_HOME or under /usr/lib/jvm)`,
    },
    {
      pattern: /Unrecognized VM option|Unrecognized option|Could not create the Java Virtual/,
      cause: "the JVM rejected an option",
      fix: `use Java ${spec.java.min} (java -version), or fix the option named above in the ` +
        "jvm options file",
    },
    {
      pattern: /jnidispatch|UnsatisfiedLinkError|JNA not found|native library/i,
      cause: "JNA could not load its native library",
      fix: `make sure ${paths.tmpDir} is on a filesystem that allows executing files`,
    },
    {
      pattern: /No space left on device/i,
      cause: "the disk is full",
      fix: `free disk space (data is in ${paths.dir})`,
    },
    {
      pattern: /ClassNotFoundException|NoClassDefFoundError|Error opening zip file|ZipException/,
      cause: "the jars are missing or incomplete",
      fix: `delete ${paths.libDir} and run up again to refetch them`,
    },
  ];
}

/** The last lines of a server's main log and stdout log (the ones that exist). */
export async function logTails(
  paths: ServicePaths,
  lines: number,
): Promise<{ file: string; lines: string[] }[]> {
  const result = [];
  for (const file of [paths.mainLog, paths.stdoutLog]) {
    if (existsSync(file)) result.push({ file, lines: await tailFile(file, lines) });
  }
  return result;
}

/** The last `n` lines of `file`, reading at most its last 64 KiB and nothing before `from`. */
export async function tailFile(file: string, n: number, from = 0): Promise<string[]> {
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(file, { read: true });
  } catch {
    return [];
  }
  try {
    const size = (await handle.stat()).size;
    const floor = from <= size ? from : 0; // a smaller file was rotated: read it all
    const start = Math.max(floor, size - 64 * 1024);
    await handle.seek(start, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size - start);
    let read = 0;
    while (read < buffer.length) {
      const count = await handle.read(buffer.subarray(read));
      if (count === null) break;
      read += count;
    }
    const lines = decode(buffer.subarray(0, read)).split("\n");
    if (start > floor) lines.shift(); // partial first line
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.slice(-n);
  } finally {
    handle.close();
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}
