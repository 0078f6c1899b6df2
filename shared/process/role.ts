/**
 * How each runnable role of the pipeline runs as a process: the module, its arguments and the
 * heap flags it runs with everywhere (`shared/topology.ts`), and how a parent builds its
 * environment. `deno task start`, `deno task processor`, the fault harness, the processor fault
 * tests and the benchmarks describe their children with {@linkcode roleProcess}, so a role runs
 * the same way in each, and a change to how one runs is made here once.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type Config, configEnv } from "../config.ts";
import { supervisedEnv } from "../supervisor.ts";
import { PRODUCER_V8_FLAGS, STAGE_V8_FLAGS, type StageName } from "../topology.ts";
import type { ProcessSpec } from "./spawn.ts";

/** A role that runs as its own process. */
export type RoleName = "producer" | StageName | "status" | "simulator";

/** What a role runs. */
export interface Role {
  /** The module, relative to the repository root. */
  readonly module: string;
  readonly args: readonly string[];
  /** Its `--v8-flags` (`null`: none). */
  readonly v8Flags: string | null;
}

/** Every role, as `deno task producer|processor --stage X|status|simulator` runs it. */
export const ROLES: Readonly<Record<RoleName, Role>> = {
  producer: { module: "producer/main.ts", args: [], v8Flags: PRODUCER_V8_FLAGS },
  bronze: { module: "processor/main.ts", args: ["--stage", "bronze"], v8Flags: STAGE_V8_FLAGS },
  silver: { module: "processor/main.ts", args: ["--stage", "silver"], v8Flags: STAGE_V8_FLAGS },
  gold: { module: "processor/main.ts", args: ["--stage", "gold"], v8Flags: STAGE_V8_FLAGS },
  status: { module: "status/main.ts", args: [], v8Flags: null },
  simulator: { module: "simulator/main.ts", args: [], v8Flags: null },
};

/** The repository root, as a directory path. */
export const REPOSITORY_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Options of {@linkcode roleEnv}; each later part wins over the ones before. */
export interface RoleEnvOptions {
  /**
   * The environment underneath (PATH, HOME and Deno's cache among it). Default: this process's.
   */
  readonly inherit?: Readonly<Record<string, string>>;
  /** Settings the child is to resolve, written out with `configEnv` (secrets left out). */
  readonly config?: Config;
  /** Secret variables passed on by name: `configEnv` never writes a secret. */
  readonly secrets?: Readonly<Record<string, string>>;
  /**
   * Name this process as the child's supervisor, so the child stops when this process is gone
   * (`shared/supervisor.ts`). Default false.
   */
  readonly supervised?: boolean;
  /** Last word: variables for this child only (e.g. `FINNHUB_WS_URL`). */
  readonly overrides?: Readonly<Record<string, string>>;
}

/** A child's whole environment: inherited, then config, secrets, supervisor, overrides. */
export function roleEnv(options: RoleEnvOptions = {}): Record<string, string> {
  return {
    ...(options.inherit ?? Deno.env.toObject()),
    ...(options.config ? configEnv(options.config) : {}),
    ...options.secrets,
    ...(options.supervised ? supervisedEnv() : {}),
    ...options.overrides,
  };
}

/** Options of {@linkcode roleProcess}. */
export interface RoleProcessOptions {
  /** The whole environment (see {@linkcode roleEnv}). */
  readonly env: Readonly<Record<string, string>>;
  /** The name shown and logged. Default: the role's. */
  readonly name?: string;
  /** Arguments after the role's own. */
  readonly args?: readonly string[];
  /** Replaces the role's heap flags (`null` or `""`: none), e.g. for a benchmark. */
  readonly v8Flags?: string | null;
  /** More `deno run` flags (e.g. `--cpu-prof`), before the heap flags. */
  readonly denoFlags?: readonly string[];
  /** Working directory. Default: this process's. */
  readonly cwd?: string;
}

/** What {@linkcode spawnProcess} runs for `role`. */
export function roleProcess(role: RoleName, options: RoleProcessOptions): ProcessSpec {
  const { module, args, v8Flags } = ROLES[role];
  const flags = options.v8Flags === undefined ? v8Flags : options.v8Flags;
  return {
    name: options.name ?? role,
    module: `${REPOSITORY_ROOT}${module}`,
    args: [...args, ...(options.args ?? [])],
    runtimeFlags: [...(options.denoFlags ?? []), ...(flags ? [`--v8-flags=${flags}`] : [])],
    env: options.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  };
}
