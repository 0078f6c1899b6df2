/**
 * The `group.instance.id` a stage process joins its consumer group with (static membership,
 * `shared/kafkajs_static_membership.ts`), from `KAFKA_GROUP_INSTANCE_ID`:
 *
 * - `auto` (the default): under a supervisor (`deno task start`, `deno task processor`: it names
 *   itself in `PIPELINE_SUPERVISOR_PID`), `<host>.<supervisor pid>.<stage>`, the same for every
 *   restart of the stage by that supervisor and different for any other live process; otherwise
 *   none (a stage started by hand, or two of them in one container, must not share an id).
 * - `host`: `<host>.<stage>`, for one process per stage on a host, restarted in place: a compose
 *   container (its host name is its own and survives a restart; compose sets this) or a
 *   systemd unit.
 * - `off`: none (dynamic membership: a killed process keeps its partitions until its session
 *   times out).
 * - anything else: `<it>.<stage>`; the operator keeps it unique among the stage's live
 *   processes.
 *
 * The one thing an id must never do is name two live processes of one group: the broker would
 * hand the partitions back and forth between them.
 *
 * @module
 */
import type { StageName } from "../shared/topology.ts";

/** What {@linkcode groupInstanceId} decides from. */
export interface InstanceContext {
  /** `KAFKA_GROUP_INSTANCE_ID`. */
  readonly configured: string;
  readonly stage: StageName;
  readonly hostname: string;
  /** The supervisor that started this process, when one did. */
  readonly supervisorPid: number | null;
}

/** The id to join the stage's group with, or `null` to join as a dynamic member. */
export function groupInstanceId(context: InstanceContext): string | null {
  const { configured, stage } = context;
  if (configured === "off") return null;
  const host = safeName(context.hostname);
  if (configured === "host") return `${host}.${stage}`;
  if (configured !== "auto") return `${configured}.${stage}`;
  if (context.supervisorPid !== null) return `${host}.${context.supervisorPid}.${stage}`;
  return null;
}

/** `hostname` in the characters an id is made of here (`.`, `_`, `-`, letters, digits). */
function safeName(hostname: string): string {
  const name = hostname.replace(/[^A-Za-z0-9._-]/g, "_");
  return name === "" ? "localhost" : name;
}
