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
 * Each stage also has a warm standby (`stage_standby.ts`), started 20 s after the stage (so the
 * two do not load at once): when the stage dies and its standby is ready, the standby is
 * promoted at once, without the restart delay, and a new standby started. The stage joins its
 * group as a static member named after this supervisor (`group_instance.ts`), which the promoted
 * standby shares, so it gets the dead process's partitions as soon as it joins: within a second
 * of a `kill -9` instead of the 30 s session timeout (`tests/processor_resume_test.ts`). A death
 * with no standby ready restarts as above.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import { describeWindow, RESTART_POLICY } from "../shared/process/restart_policy.ts";
import { roleEnv, roleProcess } from "../shared/process/role.ts";
import {
  type ProcessSpec,
  type RunningProcess,
  type SpawnOptions,
  spawnProcess,
} from "../shared/process/spawn.ts";
import { delay } from "../shared/delay.ts";
import { createStandby, superviseWithStandby } from "./stage_standby.ts";
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
  readonly spawn?: (spec: ProcessSpec, options: SpawnOptions) => RunningProcess;
  /** Keep a warm standby of the stage. Default true. */
  readonly standby?: boolean;
  /** Where a standby's output goes (the stage's own is inherited). Default: stderr. */
  readonly standbyOutput?: (line: string) => void;
  /** Called with the stage's active process each time one starts or a standby is promoted. */
  readonly onActive?: (child: RunningProcess) => void;
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
  const env = options.env ?? roleEnv({ supervised: true });
  const spec = roleProcess(stage, { env });
  const spawn = options.spawn ?? spawnProcess;
  const wait = options.wait ?? delay;
  const track = (child: RunningProcess) => {
    children.add(child);
    child.exited.finally(() => children.delete(child));
  };
  const standby = options.standby === false ? null : createStandby({
    spec: roleProcess(stage, { env, name: `${stage}-standby`, args: ["--standby"] }),
    spawn,
    output: options.standbyOutput ?? writeStderr,
    log,
    onSpawn: track,
  });
  const cold = () => spawn(spec, {});
  const withStandby = standby
    ? superviseWithStandby(standby, { stage, spawn: cold, wait, signal, log })
    : null;
  let current: RunningProcess | undefined;
  const stop = () => void current?.stop(STAGE_STOP_GRACE_MS);
  signal.addEventListener("abort", stop, { once: true });
  try {
    const end = await supervise({
      spawn: withStandby?.spawn ?? cold,
      signal,
      policy: RESTART_POLICY,
      ...(options.now ? { now: options.now } : {}),
      wait: withStandby?.wait ?? wait,
      onStart: (child) => {
        current = child;
        if (!children.has(child)) track(child);
        options.onActive?.(child);
        withStandby?.started(child);
      },
      onDeath: (exit, decision) => {
        const fields = { code: exit.code, signal: exit.signal };
        if (decision.action === "restart") {
          if (standby?.ready()) log.error(`stage ${stage} exited; its standby takes over`, fields);
          else {log.error(`stage ${stage} exited; restarting`, {
              ...fields,
              inMs: decision.delayMs,
            });}
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
    await standby?.stop(STAGE_STOP_GRACE_MS);
  }
}

function writeStderr(line: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
  } catch {
    // Nobody reads stderr any more: the standby's line is not worth the supervisor.
  }
}
