/**
 * Static group membership (KIP-345, Kafka 2.3+) for kafkajs 2.2.4 consumers.
 *
 * A consumer killed with SIGKILL never leaves its group: the broker keeps its partitions for it
 * until its session times out (`KAFKA_SESSION_TIMEOUT_MS`), and a restarted process joining
 * meanwhile waits just as long, since the rebalance it starts waits for the dead member. A
 * *static* member names itself with a `group.instance.id`: when a process joins under the id of
 * a member the group still holds, the broker hands it that member's partitions at once, with no
 * rebalance and no wait (measured: a stage killed with `kill -9` under `deno task processor`
 * resumed in about 3 s instead of 33 s, `tests/processor_resume_test.ts`).
 *
 * kafkajs encodes JoinGroup v5, the version that carries the id, but never passes one (it has
 * no such option). {@linkcode joinAsStaticMember} makes its JoinGroup requests of one group
 * carry an id; everything else stays kafkajs's: heartbeats, SyncGroup and commits go out
 * without the id, which the broker accepts (it then checks the member id alone), and a clean
 * disconnect still sends LeaveGroup, so a stopped stage hands its partitions over at once as
 * before. With a broker older than 2.3 (JoinGroup below v5) the id is not sent: the consumer is a
 * dynamic member as before.
 *
 * Two live processes must never share an id: the broker would give the partitions to whichever
 * joined last and the other, fenced, would rejoin and fence it back. The ids come from
 * `processor/group_instance.ts`, which keeps them apart.
 *
 * @module
 */
import JoinGroup from "kafkajs/src/protocol/requests/joinGroup/index.js";

/** What kafkajs's request lookup asks of a request definition. */
interface RequestDefinition {
  protocol(options: { version: number }): (request: Record<string, unknown>) => unknown;
}

const definition = JoinGroup as unknown as RequestDefinition;

/** kafkajs's own lookup of a JoinGroup version. */
const originalProtocol = definition.protocol;

/** group id -> the `group.instance.id` its members of this process join with. */
const instanceIds = new Map<string, string>();

let installed = false;

/**
 * From now on, this process's consumers of `groupId` join it as the static member `instanceId`
 * (replacing an earlier id for the group). Call before the consumer connects.
 */
export function joinAsStaticMember(groupId: string, instanceId: string): void {
  if (instanceId === "") throw new RangeError("A group instance id must not be empty");
  instanceIds.set(groupId, instanceId);
  if (installed) return;
  installed = true;
  definition.protocol = ({ version }) => {
    const build = originalProtocol({ version });
    return (request) =>
      build({
        ...request,
        groupInstanceId: request["groupInstanceId"] ??
          instanceIds.get(String(request["groupId"])) ?? null,
      });
  };
}

/** Undoes {@linkcode joinAsStaticMember} for `groupId` (its consumers join as dynamic members). */
export function leaveStaticMembership(groupId: string): void {
  instanceIds.delete(groupId);
}
