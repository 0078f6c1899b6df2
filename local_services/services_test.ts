import assert from "node:assert/strict";
import { localServices, SERVICE_NAMES } from "./services.ts";

Deno.test("localServices() picks the servers left unset, empty or on the local default", () => {
  assert.deepEqual(SERVICE_NAMES, ["kafka", "cassandra"]);
  assert.deepEqual(localServices({}), ["kafka", "cassandra"]);
  assert.deepEqual(
    localServices({
      KAFKA_BROKERS: " localhost:9092,127.0.0.1:9092 ",
      CASSANDRA_CONTACT_POINTS: "",
    }),
    ["kafka", "cassandra"],
  );
  assert.deepEqual(localServices({ CASSANDRA_CONTACT_POINTS: "LOCALHOST" }), [
    "kafka",
    "cassandra",
  ]);
  assert.deepEqual(localServices({ KAFKA_BROKERS: "kafka:9092" }), ["cassandra"]);
  assert.deepEqual(localServices({ KAFKA_BROKERS: "127.0.0.1:9092,kafka:9092" }), ["cassandra"]);
  assert.deepEqual(localServices({ CASSANDRA_CONTACT_POINTS: "10.0.0.7" }), ["kafka"]);
  assert.deepEqual(localServices({ KAFKA_BROKERS: "x:1", CASSANDRA_CONTACT_POINTS: "x" }), []);
});
