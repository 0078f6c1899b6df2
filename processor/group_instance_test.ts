import assert from "node:assert/strict";
import { groupInstanceId, type InstanceContext } from "./group_instance.ts";

const base: InstanceContext = {
  configured: "auto",
  stage: "gold",
  hostname: "box-1",
  supervisorPid: null,
};

Deno.test("groupInstanceId() names a supervised stage after its host and supervisor", () => {
  assert.equal(groupInstanceId({ ...base, supervisorPid: 77 }), "box-1.77.gold");
  assert.equal(groupInstanceId({ ...base, supervisorPid: 77, stage: "bronze" }), "box-1.77.bronze");
});

Deno.test("groupInstanceId() keeps two supervisors' stages apart", () => {
  const a = groupInstanceId({ ...base, supervisorPid: 77 });
  const b = groupInstanceId({ ...base, supervisorPid: 78 });
  assert.notEqual(a, b);
});

Deno.test("groupInstanceId() names a stage after its host when told to (compose, systemd)", () => {
  assert.equal(
    groupInstanceId({ ...base, configured: "host", hostname: "3f2a9c1b7d0e" }),
    "3f2a9c1b7d0e.gold",
  );
  assert.equal(groupInstanceId({ ...base, configured: "host", supervisorPid: 77 }), "box-1.gold");
});

Deno.test("groupInstanceId() leaves a stage started by hand dynamic", () => {
  assert.equal(groupInstanceId(base), null);
});

Deno.test("groupInstanceId() is null when turned off, even under a supervisor", () => {
  assert.equal(groupInstanceId({ ...base, configured: "off", supervisorPid: 77 }), null);
  assert.equal(groupInstanceId({ ...base, configured: "off" }), null);
});

Deno.test("groupInstanceId() appends the stage to a name of the operator's", () => {
  assert.equal(groupInstanceId({ ...base, configured: "rack2-a" }), "rack2-a.gold");
  assert.equal(
    groupInstanceId({ ...base, configured: "rack2-a", supervisorPid: 77 }),
    "rack2-a.gold",
  );
});

Deno.test("groupInstanceId() replaces characters a host name may have that an id should not", () => {
  assert.equal(groupInstanceId({ ...base, hostname: "a b/c", supervisorPid: 5 }), "a_b_c.5.gold");
  assert.equal(groupInstanceId({ ...base, hostname: "", supervisorPid: 5 }), "localhost.5.gold");
});
