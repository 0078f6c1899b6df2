import assert from "node:assert/strict";
import { nativePort } from "./cassandra.ts";

Deno.test("nativePort: the contact points' one port, for the nodes the driver discovers too", () => {
  assert.equal(nativePort(["127.0.0.1:9042"]), 9042);
  assert.equal(nativePort(["127.0.0.1:9142", "127.0.0.2:9142", "127.0.0.3:9142"]), 9142);
  assert.equal(nativePort(["[::1]:9200", "db.example:9200"]), 9200);
  assert.equal(nativePort(["db.example"]), 9042);
});

Deno.test("nativePort: contact points on different ports are an error naming them", () => {
  assert.throws(
    () => nativePort(["127.0.0.1:9042", "127.0.0.2:9142"]),
    /CASSANDRA_CONTACT_POINTS names several ports \(9042, 9142\)/,
  );
  assert.throws(() => nativePort([]), /names no ports/);
});
