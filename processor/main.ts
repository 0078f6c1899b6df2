/**
 * `deno task processor`: runs the bronze, silver and gold stages, each in its own process and
 * consumer group, restarting a stage that dies (`stage_supervisor.ts`). `--stage
 * bronze|silver|gold` runs one stage in this process (start more of them to split a stage's
 * partitions between instances).
 *
 * SIGINT/SIGTERM stop consuming, let the batch in hand finish and commit, and close clients; a
 * repeat within a second is the same stop, a later one exits at once (`shared/shutdown.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type MainContext, runMain } from "../shared/main.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import type { RunningProcess } from "../shared/process/spawn.ts";
import { prepareLocal } from "../shared/provision.ts";
import { type StageName, STAGES } from "../shared/topology.ts";
import { supervisorPid } from "../shared/supervisor.ts";
import { groupInstanceId } from "./group_instance.ts";
import { PROMOTE_SIGNAL } from "./stage_standby.ts";
import { superviseStage } from "./stage_supervisor.ts";
import { runStageWorker } from "./worker.ts";

const USAGE = `Usage: deno task processor [--stage bronze|silver|gold [--standby]]

Without --stage, runs all three stages as child processes and restarts any that exits.
--standby (used by that supervisor): connects and waits, consuming nothing, until SIGUSR1.`;

/** `--stage` and `--standby`, or a usage error. */
export function parseStage(
  args: string[],
): { help: true } | { stage: StageName | undefined; standby: boolean } {
  const { values } = parseArgs({
    args,
    options: {
      stage: { type: "string" },
      standby: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return { help: true };
  const stage = values.stage as StageName | undefined;
  if (stage !== undefined && !STAGES.includes(stage)) {
    throw new RangeError(
      `--stage must be one of ${STAGES.join(", ")}, got ${JSON.stringify(stage)}`,
    );
  }
  const standby = values.standby ?? false;
  if (standby && stage === undefined) throw new RangeError("--standby needs --stage");
  return { stage, standby };
}

/** Resolves on the first SIGUSR1 (a standby's promotion, `stage_standby.ts`). */
function promotion(): Promise<void> {
  return new Promise((resolve) => {
    const promote = () => {
      Deno.removeSignalListener(PROMOTE_SIGNAL, promote);
      resolve();
    };
    Deno.addSignalListener(PROMOTE_SIGNAL, promote);
  });
}

/** One stage in this process, until the signal. */
async function runOneStage(
  stage: StageName,
  standby: boolean,
  { env, config, log, signal }: MainContext,
) {
  await prepareLocal(env, config, log);
  const instanceId = groupInstanceId({
    configured: config.kafka.groupInstanceId,
    stage,
    hostname: Deno.hostname(),
    supervisorPid: supervisorPid(env),
  });
  await runStageWorker({
    config,
    stage,
    log,
    metrics: new MetricsRegistry(),
    signal,
    ...(instanceId === null ? {} : { groupInstanceId: instanceId }),
    ...(standby ? { promoted: promotion() } : {}),
  });
  log.info("stopped cleanly");
  return 0;
}

/** Every stage as a child process, until the signal or until one keeps dying. */
async function superviseStages(
  children: Set<RunningProcess>,
  { env, config, log, signal }: MainContext,
): Promise<number> {
  await prepareLocal(env, config, log);
  // A stage the restart policy gives up on stops the others: the processor then exits 1.
  const givenUp = new AbortController();
  const stop = AbortSignal.any([signal, givenUp.signal]);
  const ends = await Promise.all(STAGES.map(async (s) => {
    const end = await superviseStage(s, { signal: stop, log, children });
    if (end === "gave-up") givenUp.abort();
    return end;
  }));
  if (ends.includes("gave-up")) {
    log.error("stopped every stage: a stage kept dying");
    return 1;
  }
  log.info("all stages stopped");
  return 0;
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseStage(Deno.args);
  } catch (error) {
    console.error(`processor: ${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if ("help" in parsed) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const { stage, standby } = parsed;
  const children = new Set<RunningProcess>();
  await runMain(
    "processor",
    (context) => stage ? runOneStage(stage, standby, context) : superviseStages(children, context),
    {
      component: stage ? `processor.${stage}` : "processor",
      skipped: stage ? "without committing the batch in hand" : "killing every stage",
      onForce: () => {
        for (const child of children) child.kill();
        Deno.exit(130);
      },
    },
  );
}
