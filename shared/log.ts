/**
 * A small structured logger: one line per event, `time level component message key=value…`,
 * to stderr. Every line passes through `redact()` with the config's secrets, so a key or
 * password that a client library echoes back never reaches the output.
 *
 * @module
 */
import type { LogLevel } from "./config.ts";
import { redact, type Secret } from "./secret.ts";

/** Fields attached to a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** The logger every component receives from its `main.ts`. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose lines name a sub-component. */
  child(component: string): Logger;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default `info`. */
  readonly level?: LogLevel;
  /** Secrets to scrub from every line. Default none. */
  readonly secrets?: readonly Secret[];
  /** Where lines go. Default: stderr. */
  readonly write?: (line: string) => void;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
}

/** Creates a logger for `component`. */
export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const level = RANK[options.level ?? "info"];
  const secrets = options.secrets ?? [];
  const encoder = new TextEncoder();
  const write = options.write ?? ((line: string) => {
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // Nobody reads stderr any more (a supervisor killed with -9 took the pipe with it): a log
      // line is not worth the process; it goes on stopping or working without it.
    }
  });
  const now = options.now ?? Date.now;
  function emit(lvl: LogLevel, name: string, message: string, fields?: LogFields) {
    if (RANK[lvl] < level) return;
    let line = `${new Date(now()).toISOString()} ${
      lvl.toUpperCase().padEnd(5)
    } ${name}: ${message}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        line += ` ${key}=${formatValue(value)}`;
      }
    }
    write(redact(line, secrets));
  }
  function make(name: string): Logger {
    return {
      debug: (m, f) => emit("debug", name, m, f),
      info: (m, f) => emit("info", name, m, f),
      warn: (m, f) => emit("warn", name, m, f),
      error: (m, f) => emit("error", name, m, f),
      child: (sub) => make(`${name}.${sub}`),
    };
  }
  return make(component);
}

/** A logger that writes nothing, for tests. */
export function silentLogger(): Logger {
  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error() {},
    child: () => logger,
  };
  return logger;
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(describeError(value));
  if (typeof value === "string") return /^[\w.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return JSON.stringify(String(value));
    }
  }
  return String(value);
}

/** One line describing an error and its causes, for logs. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      parts.push(`${current.name}: ${current.message}`);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(" <- ");
}
