import assert from "node:assert/strict";
import JoinGroup from "kafkajs/src/protocol/requests/joinGroup/index.js";
import Decoder from "kafkajs/src/protocol/decoder.js";
import { joinAsStaticMember, leaveStaticMembership } from "./kafkajs_static_membership.ts";

// deno-lint-ignore no-explicit-any
const definition = JoinGroup as any;

/** The group instance id a JoinGroup request of `version` for `groupId` carries on the wire. */
async function encodedInstanceId(groupId: string, version: number): Promise<string | null> {
  const { request } = definition.protocol({ version })({
    groupId,
    sessionTimeout: 10_000,
    rebalanceTimeout: 60_000,
    memberId: "",
    protocolType: "consumer",
    groupProtocols: [{ name: "RoundRobinAssigner" }],
  });
  const decoder = new Decoder((await request.encode()).buffer);
  decoder.readString(); // group_id
  decoder.readInt32(); // session_timeout
  decoder.readInt32(); // rebalance_timeout
  decoder.readString(); // member_id
  return decoder.readString(); // group_instance_id
}

Deno.test("joinAsStaticMember() makes JoinGroup v5 of that group carry the instance id", async () => {
  try {
    joinAsStaticMember("static-test.gold", "box.77.gold");
    assert.equal(await encodedInstanceId("static-test.gold", 5), "box.77.gold");
    assert.equal(await encodedInstanceId("static-test.silver", 5), null, "other groups: none");
  } finally {
    leaveStaticMembership("static-test.gold");
  }
  assert.equal(await encodedInstanceId("static-test.gold", 5), null);
});

Deno.test("joinAsStaticMember() leaves JoinGroup versions without the field as they were", async () => {
  try {
    joinAsStaticMember("static-test.old", "box.77.gold");
    const { request } = definition.protocol({ version: 2 })({
      groupId: "static-test.old",
      sessionTimeout: 10_000,
      rebalanceTimeout: 60_000,
      memberId: "",
      protocolType: "consumer",
      groupProtocols: [{ name: "RoundRobinAssigner" }],
    });
    assert.equal(request.apiVersion, 2);
    const decoder = new Decoder((await request.encode()).buffer);
    assert.equal(decoder.readString(), "static-test.old");
    decoder.readInt32();
    decoder.readInt32();
    assert.equal(decoder.readString(), "");
    assert.equal(decoder.readString(), "consumer", "no instance id before the protocol type");
  } finally {
    leaveStaticMembership("static-test.old");
  }
});

Deno.test("joinAsStaticMember() refuses an empty id", () => {
  assert.throws(() => joinAsStaticMember("g", ""), /must not be empty/);
});
