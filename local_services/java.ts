/**
 * The `java` on PATH: its version checked against what each server needs, and short tool runs
 * (Kafka's StorageTool) whose output is wanted.
 *
 * @module
 */

import { decode, indent, lastLines, type Log } from "./_util.ts";
import { LOG_TAIL_LINES } from "./logs.ts";
import type { ServerSpec } from "./server_spec.ts";

/**
 * Checks `java -version` against every spec's requirement: below its `min` is an error, above
 * its `max` a warning. @throws Error naming the Java found, the Java needed and how to install it.
 */
export async function checkJava(specs: readonly ServerSpec[], log: Log): Promise<void> {
  const wanted = Math.max(...specs.map((spec) => spec.java.min));
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("java", {
      args: ["-version"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        `java not found: install OpenJDK ${wanted} (apt-get install ` +
          `openjdk-${wanted}-jre-headless) or put its bin folder on PATH`,
      );
    }
    throw error;
  }
  const text = decode(output.stderr) + decode(output.stdout);
  const major = parseJavaMajor(text);
  if (!output.success || Number.isNaN(major)) {
    throw new Error(`"java -version" failed: ${text.trim() || `exit code ${output.code}`}`);
  }
  for (const { title, java: { min, reason, max } } of specs) {
    if (major < min) {
      throw new Error(
        `java ${major} found on PATH, but ${title} needs Java ${min} (${reason}): install ` +
          `OpenJDK ${min} (apt-get install openjdk-${min}-jre-headless)`,
      );
    }
    if (max && major > max.major) log(`warning: java ${major} found; ${max.warning}`);
  }
}

/** The major version in `java -version` output (`1.8.0` is 8), or NaN when there is none. */
export function parseJavaMajor(versionOutput: string): number {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  return match ? Number(match[1] === "1" ? match[2] : match[1]) : NaN;
}

/** Runs `java args` to completion. @returns its stdout. @throws Error with the output's tail. */
export async function runJava(args: string[], what: string): Promise<string> {
  const output = await new Deno.Command("java", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    const tail = lastLines(decode(output.stderr) + decode(output.stdout), LOG_TAIL_LINES);
    throw new Error(`Cannot ${what} (java exit code ${output.code}):\n${indent(tail)}`);
  }
  return decode(output.stdout);
}
