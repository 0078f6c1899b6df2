import assert from "node:assert/strict";
import { lostGroupMembership } from "./stage_runner.ts";

Deno.test("lostGroupMembership() recognises the group refusing a member, also wrapped", () => {
  const unknown = Object.assign(new Error("The coordinator is not aware of this member"), {
    type: "UNKNOWN_MEMBER_ID",
  });
  assert.equal(lostGroupMembership(unknown), true);
  // kafkajs's retrier wraps the protocol error: KafkaJSNonRetriableError { cause }.
  assert.equal(lostGroupMembership(new Error("wrapped", { cause: unknown })), true);
  for (const type of ["ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS", "FENCED_INSTANCE_ID"]) {
    assert.equal(lostGroupMembership(Object.assign(new Error(type), { type })), true, type);
  }
});

Deno.test("lostGroupMembership() is false for every other failure", () => {
  assert.equal(lostGroupMembership(new Error("boom")), false);
  assert.equal(
    lostGroupMembership(Object.assign(new Error("x"), { type: "TOPIC_AUTHORIZATION_FAILED" })),
    false,
  );
  assert.equal(lostGroupMembership(undefined), false);
  assert.equal(lostGroupMembership("UNKNOWN_MEMBER_ID"), false);
});
