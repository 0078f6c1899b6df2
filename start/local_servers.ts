/**
 * The local servers (Kafka, Cassandra, the schema registry) as `deno task start` treats them: on the local defaults
 * (`localServices`), a server that already answers is used and left running; one that does not
 * is started (`local_services/`) and remembered, so that the run stops exactly what it started.
 *
 * @module
 */
import type { Config } from "../shared/config.ts";
import { describeError } from "../shared/log.ts";
import {
  ensureServices,
  localServiceReachable,
  localServices,
  type ServiceName,
  stopService,
} from "../local_services/services.ts";
import { type Output, seconds } from "./output.ts";

/** The local servers of a run. */
export interface LocalServers {
  /** The servers of this machine the config points at (none for external ones). */
  readonly local: readonly ServiceName[];
  /** Those this run started (and stops at the end), filled in as they start. */
  readonly started: ServiceName[];
}

/** The local servers `env` points at; none started yet. */
export function localServersOf(env: Readonly<Record<string, string>>): LocalServers {
  return { local: localServices(env), started: [] };
}

/** `a`, `a and b`, `a, b and c`. */
function listNames(names: readonly string[]): string {
  return names.length <= 1
    ? names.join("")
    : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

/** Starts the local servers that do not answer yet, adding each to `servers.started`. */
export async function startLocalServers(
  servers: LocalServers,
  options: {
    config: Config;
    env: Readonly<Record<string, string>>;
    out: Output;
    signal: AbortSignal;
  },
): Promise<void> {
  const { out } = options;
  const { local } = servers;
  if (local.length === 0) return;
  const before = await Promise.all(local.map(localServiceReachable));
  const missing = local.filter((_, i) => !before[i]);
  if (missing.length === 0) {
    out.say(
      local.length > 1
        ? `local ${listNames(local)} already running: using them (they stay running)`
        : `local ${local[0]} already running: using it (it stays running)`,
    );
    return;
  }
  out.say(
    `starting local ${listNames(missing)} (first time: fetching jars with Maven, ` +
      "about a minute)",
  );
  const t = performance.now();
  try {
    await ensureServices(options.env, { log: (line) => out.say(line), signal: options.signal });
  } finally {
    // Whatever answers now and did not before, this run started.
    for (const name of missing) if (await localServiceReachable(name)) servers.started.push(name);
  }
  out.say(`local ${listNames(missing)} ready in ${seconds(performance.now() - t)}`);
}

/**
 * Stops the servers this run started, last first; says which stay running when it started none
 * (only when the pipeline got ready). False when one could not be stopped.
 */
export async function stopLocalServers(
  servers: LocalServers,
  out: Output,
  { wasReady }: { wasReady: boolean },
): Promise<boolean> {
  const { local, started } = servers;
  let clean = true;
  if (started.length > 0) {
    for (const name of [...started].reverse()) {
      out.say(`stopping local ${name} (this run started it)...`);
      try {
        await stopService(name, { log: (line) => out.say(line) });
      } catch (error) {
        clean = false;
        out.warn(`could not stop ${name}: ${describeError(error)}`);
      }
    }
  } else if (local.length > 0 && wasReady) {
    out.say(
      local.length > 1
        ? `local ${listNames(local)} left running (they were running before start)`
        : `local ${local[0]} left running (it was running before start)`,
    );
  }
  return clean;
}
