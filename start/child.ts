/**
 * One child process of `deno task start`: a Deno module run with the same Deno binary
 * (`Deno.execPath()`, so it works when `deno` is not on PATH, e.g. under `npx deno`), in its own
 * session (`setsid`) so a Ctrl-C in the terminal reaches only `start`, which then stops the
 * children one by one in order. Its output is read line by line and handed to `onLine`.
 *
 * @module
 */

/** What to run. */
export interface ChildSpec {
  /** Short name shown to people: `producer`, `bronze`, `status`. */
  readonly name: string;
  /** Absolute path of the module. */
  readonly module: string;
  readonly args: readonly string[];
  /** Flags for `deno run` itself, before the module (e.g. `--v8-flags=…`); none when absent. */
  readonly runtimeFlags?: readonly string[];
  /** The whole environment of the child. */
  readonly env: Readonly<Record<string, string>>;
}

/** How a child ended. */
export interface ChildExit {
  readonly code: number;
  readonly signal: string | null;
}

/** A child that can be started (again), stopped and killed. */
export interface Child {
  readonly spec: ChildSpec;
  pid(): number | null;
  /** Starts it; resolves when it exits (however that happens). */
  run(): Promise<ChildExit>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with its exit (null: was not running). */
  stop(graceMs: number): Promise<ChildExit | null>;
  /** SIGKILL now. */
  kill(): void;
  /** The last lines it wrote, for error reports. */
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

/** Creates a child; nothing runs until `run()`. */
export function createChild(
  spec: ChildSpec,
  onLine: (name: string, line: string) => void,
): Child {
  let process: Deno.ChildProcess | null = null;
  let exited: Promise<ChildExit> | null = null;
  const lines: string[] = [];

  async function pump(stream: ReadableStream<Uint8Array>) {
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

  function emit(line: string) {
    lines.push(line);
    if (lines.length > TAIL_LINES) lines.shift();
    onLine(spec.name, line);
  }

  return {
    spec,
    pid: () => process?.pid ?? null,
    run() {
      const deno = Deno.execPath();
      const argv = ["run", "-A", ...(spec.runtimeFlags ?? []), spec.module, ...spec.args];
      const setsid = findSetsid();
      const command = new Deno.Command(setsid ?? deno, {
        args: setsid ? [deno, ...argv] : argv,
        env: { ...spec.env },
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      });
      const child = command.spawn();
      process = child;
      const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
      exited = (async () => {
        const status = await child.status;
        await pumps;
        if (process === child) process = null;
        return { code: status.code, signal: status.signal };
      })();
      return exited;
    },
    async stop(graceMs) {
      const child = process;
      const done = exited;
      if (!child || !done) return null;
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), graceMs);
      });
      const first = await Promise.race([done, timeout]);
      clearTimeout(timer);
      if (first !== "timeout") return first;
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      return await done;
    },
    kill() {
      try {
        process?.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    },
    tail: () => [...lines],
  };
}
