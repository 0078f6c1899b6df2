/**
 * The one way a part of the pipeline runs another as an OS process: `deno run -A [flags]
 * <module> <args>` with the same Deno binary as this process (`Deno.execPath()`, so it works when
 * `deno` is not on PATH, e.g. under `npx deno`) and exactly the environment it is given (nothing
 * is inherited behind its back). Optionally in its own session (`setsid`), so a Ctrl-C in the
 * terminal reaches only the supervisor, which then stops its children in order. Its output is
 * either the supervisor's own (inherited) or read line by line and handed to `onLine`, the last
 * lines kept for error reports. Stopping is SIGTERM, then SIGKILL once a grace period has passed.
 *
 * `deno task start`, `deno task processor`, the fault harness, the processor fault tests and the
 * benchmarks run their children through it; what each runs is described in `role.ts`.
 *
 * @module
 */

/** What to run. */
export interface ProcessSpec {
  /** Short name shown to people: `producer`, `bronze`, `gold-a`. */
  readonly name: string;
  /** Absolute path of the module. */
  readonly module: string;
  readonly args: readonly string[];
  /** Flags for `deno run` itself, before the module (e.g. `--v8-flags=…`); none when absent. */
  readonly runtimeFlags?: readonly string[];
  /** The whole environment of the child. */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory. Default: this process's. */
  readonly cwd?: string;
}

/** How a process ended. */
export interface ProcessExit {
  readonly code: number;
  readonly signal: Deno.Signal | null;
}

/** Options of {@linkcode spawnProcess}. */
export interface SpawnOptions {
  /** Run it in a session of its own (`setsid`, when installed). Default false. */
  readonly newSession?: boolean;
  /**
   * Receives each line it writes to stdout or stderr. Default: none, and its output goes where
   * this process's goes.
   */
  readonly onLine?: (line: string) => void;
}

/** One run of a process. */
export interface RunningProcess {
  readonly spec: ProcessSpec;
  readonly pid: number;
  /** Resolves once it exited and its output was read to the end. */
  readonly exited: Promise<ProcessExit>;
  /** How it ended; `null` while it runs. */
  readonly exit: ProcessExit | null;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with its exit. */
  stop(graceMs: number): Promise<ProcessExit>;
  /** Sends `signal` (default SIGKILL) now; nothing when it is gone. */
  kill(signal?: Deno.Signal): void;
  /** The last lines it wrote (none when its output is inherited). */
  tail(): readonly string[];
}

const TAIL_LINES = 30;

let setsidPath: string | null | undefined;

/** `setsid` when it is installed (util-linux), else `null` (children then share our session). */
function findSetsid(): string | null {
  if (setsidPath !== undefined) return setsidPath;
  setsidPath = null;
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/bin", "/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      if (Deno.statSync(`${dir}/setsid`).isFile) {
        setsidPath = `${dir}/setsid`;
        break;
      }
    } catch {
      // Not there.
    }
  }
  return setsidPath;
}

/** Hands each line of `stream` to `emit`, the last one even without a newline. */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  emit: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let at: number;
    while ((at = rest.indexOf("\n")) >= 0) {
      emit(rest.slice(0, at));
      rest = rest.slice(at + 1);
    }
  }
  if (rest !== "") emit(rest);
}

/** Starts `spec` now. */
export function spawnProcess(spec: ProcessSpec, options: SpawnOptions = {}): RunningProcess {
  const deno = Deno.execPath();
  const argv = ["run", "-A", ...(spec.runtimeFlags ?? []), spec.module, ...spec.args];
  const setsid = options.newSession ? findSetsid() : null;
  const output = options.onLine ? "piped" : "inherit";
  const child = new Deno.Command(setsid ?? deno, {
    args: setsid ? [deno, ...argv] : argv,
    env: { ...spec.env },
    clearEnv: true,
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    stdin: "null",
    stdout: output,
    stderr: output,
  }).spawn();
  const lines: string[] = [];
  const onLine = options.onLine;
  const emit = (line: string) => {
    lines.push(line);
    if (lines.length > TAIL_LINES) lines.shift();
    onLine?.(line);
  };
  const read = onLine
    ? Promise.all([readLines(child.stdout, emit), readLines(child.stderr, emit)]).catch(() => {})
    : Promise.resolve();
  let exit: ProcessExit | null = null;
  const exited = (async () => {
    const status = await child.status;
    await read;
    exit = { code: status.code, signal: status.signal };
    return exit;
  })();
  const kill = (signal: Deno.Signal = "SIGKILL") => {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  };
  return {
    spec,
    pid: child.pid,
    exited,
    get exit() {
      return exit;
    },
    async stop(graceMs) {
      if (exit) return exit;
      kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<"grace">((resolve) => {
        timer = setTimeout(() => resolve("grace"), graceMs);
      });
      const first = await Promise.race([exited, grace]);
      clearTimeout(timer);
      if (first !== "grace") return first;
      kill("SIGKILL");
      return await exited;
    },
    kill,
    tail: () => [...lines],
  };
}
