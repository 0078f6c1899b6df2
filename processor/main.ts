/**
 * `deno task processor`: runs the bronze, silver and gold stages, each in its own process and
 * consumer group, restarting a stage that dies. `--stage bronze|silver|gold` runs one stage in
 * this process (start more of them to split a stage's partitions between instances).
 *
 * SIGINT/SIGTERM stop consuming, let the batch in hand finish and commit, and close clients; a
 * repeat within a second is the same stop, a later one exits at once (`shared/shutdown.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { prepareLocal } from "../shared/provision.ts";
import { loadConfig, secretsOf } from "../shared/config.ts";
import { hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { createLogger, describeError } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { stopOnSignals } from "../shared/shutdown.ts";
import type { RunningProcess } from "../shared/process/spawn.ts";
import { stopWhenSupervisorGone } from "../shared/supervisor.ts";
import { superviseStage } from "./stage_supervisor.ts";
import { runStageWorker } from "./worker.ts";
import { type StageName, STAGES } from "../shared/topology.ts";

const USAGE = `Usage: deno task processor [--stage bronze|silver|gold]

Without --stage, runs all three stages as child processes and restarts any that exits.`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { stage: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  hideKafkajsTimeoutWarning();
  const env = Deno.env.toObject();
  const config = loadConfig(env);
  const secrets = secretsOf(config);
  const stage = values.stage as StageName | undefined;
  if (stage !== undefined && !STAGES.includes(stage)) {
    throw new RangeError(
      `--stage must be one of ${STAGES.join(", ")}, got ${JSON.stringify(stage)}`,
    );
  }
  const log = createLogger(stage ? `processor.${stage}` : "processor", {
    level: config.logLevel,
    secrets,
  });
  const controller = new AbortController();
  const children = new Set<RunningProcess>();
  stopOnSignals(controller, {
    log,
    skipped: stage ? "without committing the batch in hand" : "killing every stage",
    onForce: () => {
      for (const child of children) child.kill();
      Deno.exit(130);
    },
  });
  stopWhenSupervisorGone(env, log);
  await prepareLocal(env, config, log);
  if (stage) {
    await runStageWorker({
      config,
      stage,
      log,
      metrics: new MetricsRegistry(),
      signal: controller.signal,
    });
    log.info("stopped cleanly");
    return 0;
  }
  // A stage the restart policy gives up on stops the others: the processor then exits 1.
  const givenUp = new AbortController();
  const signal = AbortSignal.any([controller.signal, givenUp.signal]);
  const ends = await Promise.all(STAGES.map(async (s) => {
    const end = await superviseStage(s, { signal, log, children });
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
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`processor: ${describeError(error)}`);
    Deno.exit(1);
  }
}
