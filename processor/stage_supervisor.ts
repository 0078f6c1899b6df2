/**
 * `deno task processor` without `--stage`: each stage runs as its own process (`deno run
 * processor/main.ts --stage X` with the stage's heap bound, `shared/process/role.ts`), its
 * output going where the supervisor's goes, under the supervisors' restart policy
 * (`shared/process/restart_policy.ts`): a stage that exits unasked is started again after 1 s,
 * doubling while it keeps dying within a minute of its start, up to 30 s, and back to 1 s after a
 * run of a minute or more; a sixth death within 5 minutes is not transient, and the supervisor
 * gives up. On stop each stage gets SIGTERM (it finishes its batch and commits), then SIGKILL
 * after {@linkcode STAGE_STOP_GRACE_MS}.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import { describeWindow, RESTART_POLICY } from "../shared/process/restart_policy.ts";
import { roleEnv, roleProcess } from "../shared/process/role.ts";
import { type ProcessSpec, type RunningProcess, spawnProcess } from "../shared/process/spawn.ts";
import { supervise } from "../shared/process/supervise.ts";
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

/**
 * Runs `stage` as a child process until `signal` aborts (`"stopped"`), restarting it when it
 * exits unasked, or until the restart policy gives up on it (`"gave-up"`).
 */
export async function superviseStage(
  stage: StageName,
  options: SuperviseStageOptions,
): Promise<"stopped" | "gave-up"> {
  const { signal, log, children } = options;
  const spec = roleProcess(stage, { env: options.env ?? roleEnv({ supervised: true }) });
  const spawn = options.spawn ?? spawnProcess;
  let current: RunningProcess | undefined;
  const stop = () => void current?.stop(STAGE_STOP_GRACE_MS);
  signal.addEventListener("abort", stop, { once: true });
  try {
    const end = await supervise({
      spawn: () => spawn(spec),
      signal,
      policy: RESTART_POLICY,
      ...(options.now ? { now: options.now } : {}),
      ...(options.wait ? { wait: options.wait } : {}),
      onStart: (child) => {
        current = child;
        children.add(child);
        child.exited.finally(() => children.delete(child));
      },
      onDeath: (exit, decision) => {
        const fields = { code: exit.code, signal: exit.signal };
        if (decision.action === "restart") {
          log.error(`stage ${stage} exited; restarting`, { ...fields, inMs: decision.delayMs });
        } else {
          log.error(
            `stage ${stage} exited, the ${decision.deaths}th time in ${
              describeWindow(RESTART_POLICY.deathWindowMs)
            }: not a transient failure, giving up`,
            fields,
          );
        }
      },
    });
    return end.outcome === "stopped" ? "stopped" : "gave-up";
  } finally {
    signal.removeEventListener("abort", stop);
  }
}
