import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { AssignerProtocol } from "kafkajs";
import { loadConfig } from "../shared/config.ts";
import {
  chooseHolder,
  decodeClaim,
  encodeClaim,
  heartbeatIntervalFor,
  leaseAssigner,
  leaseExpired,
  leaseNames,
  stepDownAfterMs,
  transactionalIdOf,
} from "./lease.ts";

Deno.test("chooseHolder: the member active since the latest time holds the lease", () => {
  const cases: [string, Parameters<typeof chooseHolder>[0], string | undefined][] = [
    ["no members", [], undefined],
    ["no claims: the first by member id", [
      { memberId: "b", claim: { activeSince: null } },
      { memberId: "a", claim: null },
    ], "a"],
    ["the one claiming stays, whatever its id (a standby joining moves nothing)", [
      { memberId: "a", claim: { activeSince: null } },
      { memberId: "z", claim: { activeSince: 100 } },
    ], "z"],
    ["a paused old leader coming back loses to the newer one", [
      { memberId: "a", claim: { activeSince: 100 } },
      { memberId: "b", claim: { activeSince: 200 } },
      { memberId: "c", claim: { activeSince: null } },
    ], "b"],
    ["a tie goes to the first by member id", [
      { memberId: "b", claim: { activeSince: 5 } },
      { memberId: "a", claim: { activeSince: 5 } },
    ], "a"],
    ["another client's metadata counts as no claim", [
      { memberId: "a", claim: null },
      { memberId: "b", claim: { activeSince: 0 } },
    ], "b"],
  ];
  for (const [name, members, expected] of cases) {
    assert.equal(chooseHolder(members), expected, name);
  }
});

Deno.test("decodeClaim reads what encodeClaim writes and refuses anything else", () => {
  assert.deepEqual(decodeClaim(encodeClaim({ activeSince: 1234 })), { activeSince: 1234 });
  assert.deepEqual(decodeClaim(encodeClaim({ activeSince: null })), { activeSince: null });
  for (const bad of ["", "{", "[]", '{"activeSince":"5"}', '{"activeSince":1e999}', "null"]) {
    assert.equal(decodeClaim(Buffer.from(bad)), null, bad);
  }
  assert.equal(decodeClaim(null), null);
  assert.equal(decodeClaim(undefined), null);
});

Deno.test("leaseExpired: past three sessions since the last heartbeat answered", () => {
  assert.equal(stepDownAfterMs(6_000), 18_000);
  assert.equal(leaseExpired(20_000, 5_000, 6_000), false); // 15 000 ms: a coordinator move
  assert.equal(leaseExpired(23_000, 5_000, 6_000), false); // 18 000 ms: still held
  assert.equal(leaseExpired(23_000, 5_000 - 1, 6_000), true); // 18 001 ms: gone
  assert.equal(leaseExpired(60_000, 0, 6_000), true); // resumed after a long pause
});

Deno.test("heartbeatIntervalFor: a sixth of the session, 100 ms to 1 s", () => {
  assert.equal(heartbeatIntervalFor(6_000), 1_000);
  assert.equal(heartbeatIntervalFor(3_000), 500);
  assert.equal(heartbeatIntervalFor(60_000), 1_000);
  assert.equal(heartbeatIntervalFor(300), 100);
});

Deno.test("leaseNames: by a hash of the key, which never appears; one transactional id per key", () => {
  const env = { FINNHUB_API_KEY: "secret-key-123", KAFKA_GROUP_PREFIX: "market" };
  const names = leaseNames(loadConfig(env));
  assert.match(names.groupId, /^market\.producer\.[0-9a-f]{16}$/);
  assert.equal(names.topic, "market.producer.lease");
  assert.equal(names.transactionalId, names.groupId);
  assert.ok(!JSON.stringify(names).includes("secret-key-123"));
  assert.equal(transactionalIdOf(names), `${names.groupId}-0`);
  const other = leaseNames(loadConfig({ ...env, FINNHUB_API_KEY: "another-key" }));
  assert.notEqual(other.groupId, names.groupId, "each key its own lease");
  assert.equal(leaseNames(loadConfig({})).groupId, "market.producer.nokey");
});

Deno.test("leaseAssigner: partition 0 to the holder, nothing to the others; protocol carries the claim", async () => {
  let claim = { activeSince: null as number | null };
  const assigner = leaseAssigner(() => claim)({} as never);
  const metadata = (activeSince: number | null) =>
    AssignerProtocol.MemberMetadata.encode({
      version: 1,
      topics: ["lease"],
      userData: encodeClaim({ activeSince }),
    });
  const assignments = await assigner.assign({
    members: [
      { memberId: "a", memberMetadata: metadata(null) },
      { memberId: "b", memberMetadata: metadata(42) },
    ],
    topics: ["lease"],
  });
  const decoded = Object.fromEntries(
    assignments.map((a) => [
      a.memberId,
      AssignerProtocol.MemberAssignment.decode(a.memberAssignment)?.assignment,
    ]),
  );
  assert.deepEqual(decoded, { a: {}, b: { lease: [0] } });
  claim = { activeSince: 7 };
  const protocol = assigner.protocol({ topics: ["lease"] });
  assert.equal(protocol.name, "ProducerLease");
  const userData = AssignerProtocol.MemberMetadata.decode(protocol.metadata)?.userData;
  assert.deepEqual(decodeClaim(userData), { activeSince: 7 });
});
