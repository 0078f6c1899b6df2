/**
 * What every entry point does around its own work, done once: read the config (a bad variable is
 * one clear line and exit 1), a logger that redacts every secret of the config, kafkajs's
 * timeout warning hidden, SIGINT/SIGTERM turned into one `AbortSignal` (`shared/shutdown.ts`:
 * repeats within a second are the same stop, a later one exits at once), a stop when the
 * supervisor that started this process is gone (`shared/supervisor.ts`), and any error that
 * escapes logged (secrets redacted) with exit 1.
 *
 *   if (import.meta.main) await runMain("status", async ({ config, log, signal }) => { ... });
 *
 * {@linkcode runTool} does the same for an entry point that reads no pipeline config (the
 * simulator, whose options are flags).
 *
 * @module
 */
import { type Config, loadConfig, secretsOf } from "./config.ts";
import { hideKafkajsTimeoutWarning } from "./kafka.ts";
import { createLogger, describeError, type Logger } from "./log.ts";
import type { Secret } from "./secret.ts";
import { stopOnSignals } from "./shutdown.ts";
import { stopWhenSupervisorGone } from "./supervisor.ts";

/** What the body of an entry point without config gets. */
export interface ToolContext {
  /** The environment, read once. */
  readonly env: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** Aborts on the first SIGINT/SIGTERM (and so when the supervisor is gone). */
  readonly signal: AbortSignal;
}

/** What the body of an entry point gets. */
export interface MainContext extends ToolContext {
  readonly config: Config;
  /** Every secret of the config, for text that does not go through the logger. */
  readonly secrets: readonly Secret[];
}

/** Options of {@linkcode runMain} and {@linkcode runTool}. */
export interface RunMainOptions {
  /** The logger's component (e.g. `processor.gold`). Default: the name. */
  readonly component?: string;
  /** More checks of the config before anything starts; a throw is a "cannot start". */
  readonly check?: (config: Config) => void;
  /**
   * Turn SIGINT/SIGTERM into the stop signal. Default true; `false` leaves Deno's default
   * (exit at once), for a command with nothing to finish.
   */
  readonly signals?: boolean;
  /** What a forced exit (a signal after the first second) skips, for its log line. */
  readonly skipped?: string;
  /** What a forced exit does once logged (e.g. kill children). Default `Deno.exit(130)`. */
  readonly onForce?: () => void;
}

type Body<C> = (context: C) => Promise<number>;

/**
 * Runs `body` as the entry point `name` and exits with the code it returns: 1 when the config is
 * bad (one line naming the variable) or when `body` throws (logged, secrets redacted).
 */
export async function runMain(
  name: string,
  body: Body<MainContext>,
  options: RunMainOptions = {},
): Promise<never> {
  hideKafkajsTimeoutWarning();
  const env = Deno.env.toObject();
  let config: Config;
  try {
    config = loadConfig(env);
    options.check?.(config);
  } catch (error) {
    console.error(`${name}: cannot start: ${(error as Error).message}`);
    Deno.exit(1);
  }
  const secrets = secretsOf(config);
  const log = createLogger(options.component ?? name, { level: config.logLevel, secrets });
  const run = (signal: AbortSignal) => body({ env, config, secrets, log, signal });
  Deno.exit(await runBody(name, env, log, options, run));
}

/** {@linkcode runMain} for an entry point that reads no pipeline config. */
export async function runTool(
  name: string,
  body: Body<ToolContext>,
  options: RunMainOptions = {},
): Promise<never> {
  const env = Deno.env.toObject();
  const log = createLogger(options.component ?? name);
  Deno.exit(await runBody(name, env, log, options, (signal) => body({ env, log, signal })));
}

async function runBody(
  name: string,
  env: Readonly<Record<string, string>>,
  log: Logger,
  options: RunMainOptions,
  body: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const controller = new AbortController();
  const { skipped, onForce } = options;
  const stopSignals = options.signals === false ? () => {} : stopOnSignals(controller, {
    log,
    ...(skipped === undefined ? {} : { skipped }),
    ...(onForce === undefined ? {} : { onForce }),
  });
  let stopWatch = () => {};
  try {
    stopWatch = stopWhenSupervisorGone(env, log);
    return await body(controller.signal);
  } catch (error) {
    log.error(`${name} failed`, { error: describeError(error) });
    return 1;
  } finally {
    stopWatch();
    stopSignals();
  }
}
