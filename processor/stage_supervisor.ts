/**
 * `deno task processor` without `--stage`: each stage runs as its own process (`deno run
 * processor/main.ts --stage X` with the stage's heap bound, `shared/process/role.ts`), its
 * output going where the supervisor's goes, and is started again with backoff when it exits
 * unasked. On stop each stage gets SIGTERM (it finishes its batch and commits), then SIGKILL
 * after {@linkcode STAGE_STOP_GRACE_MS}.
 *
 * @module
 */
import { delay } from "../shared/delay.ts";
import type { Logger } from "../shared/log.ts";
import { roleEnv, roleProcess } from "../shared/process/role.ts";
import { type ProcessSpec, type RunningProcess, spawnProcess } from "../shared/process/spawn.ts";
import type { StageName } from "../shared/topology.ts";

/** How long a stage may take to finish its batch and commit once asked to stop. */
export const STAGE_STOP_GRACE_MS = 60_000;

/** Options of {@linkcode superviseStage}. */
export interface SuperviseStageOptions {
  /** Aborted: stop the stage and return. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** The live stage processes, for a forced exit to kill. */
  readonly children: Set<RunningProcess>;
  /** The stage's environment. Default: this process's, naming it as the supervisor. */
  readonly env?: Readonly<Record<string, string>>;
  /** Starts a stage process. Default `spawnProcess`. */
  readonly spawn?: (spec: ProcessSpec) => RunningProcess;
  /** Epoch ms. Default `Date.now`. */
  readonly now?: () => number;
  /** The wait before a restart. Default `delay`. */
  readonly wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Runs `stage` as a child process until `signal` aborts, restarting it when it exits unasked. */
export async function superviseStage(
  stage: StageName,
  options: SuperviseStageOptions,
): Promise<void> {
  const { signal, log, children } = options;
  const spec = roleProcess(stage, { env: options.env ?? roleEnv({ supervised: true }) });
  const spawn = options.spawn ?? spawnProcess;
  const wait = options.wait ?? delay;
  let failures = 0;
  while (!signal.aborted) {
    const child = spawn(spec);
    children.add(child);
    const stop = () => void child.stop(STAGE_STOP_GRACE_MS);
    signal.addEventListener("abort", stop, { once: true });
    const status = await child.exited;
    children.delete(child);
    signal.removeEventListener("abort", stop);
    if (signal.aborted) return;
    failures++;
    const delayMs = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
    log.error(`stage ${stage} exited; restarting`, {
      code: status.code,
      signal: status.signal,
      inMs: delayMs,
    });
    await wait(delayMs, signal);
  }
}
