import assert from "node:assert/strict";
import { localServices, SERVICE_NAMES } from "./services.ts";

Deno.test("localServices() picks the servers left unset, empty or on the local default", () => {
  assert.deepEqual(SERVICE_NAMES, ["kafka", "cassandra", "registry"]);
  assert.deepEqual(localServices({}), ["kafka", "cassandra", "registry"]);
  assert.deepEqual(
    localServices({
      KAFKA_BROKERS: " localhost:9092,127.0.0.1:9092 ",
      CASSANDRA_CONTACT_POINTS: "",
      SCHEMA_REGISTRY_URL: "",
    }),
    ["kafka", "cassandra", "registry"],
  );
  assert.deepEqual(localServices({ CASSANDRA_CONTACT_POINTS: "LOCALHOST" }), [
    "kafka",
    "cassandra",
    "registry",
  ]);
  assert.deepEqual(localServices({ KAFKA_BROKERS: "kafka:9092" }), ["cassandra", "registry"]);
  assert.deepEqual(localServices({ KAFKA_BROKERS: "127.0.0.1:9092,kafka:9092" }), [
    "cassandra",
    "registry",
  ]);
  assert.deepEqual(localServices({ CASSANDRA_CONTACT_POINTS: "10.0.0.7" }), ["kafka", "registry"]);
  assert.deepEqual(
    localServices({ KAFKA_BROKERS: "x:1", CASSANDRA_CONTACT_POINTS: "x", SCHEMA_REGISTRY_URL: "" }),
    ["registry"],
  );
});

Deno.test("localServices() counts the registry local only at the default URL", () => {
  const registry = (url: string) =>
    localServices({ SCHEMA_REGISTRY_URL: url }).includes("registry");
  assert.equal(registry("http://127.0.0.1:8081/apis/ccompat/v7"), true);
  assert.equal(registry("http://localhost:8081/apis/ccompat/v7/"), true);
  assert.equal(registry(" HTTP://LOCALHOST:8081/apis/ccompat/v7 "), true);
  // Another port, path or host is someone else's registry: never started nor stopped here.
  assert.equal(registry("http://127.0.0.1:8082/apis/ccompat/v7"), false);
  assert.equal(registry("http://127.0.0.1:8081"), false);
  assert.equal(registry("https://registry.example.com"), false);
  assert.equal(registry("http://registry:8080/apis/ccompat/v7"), false);
});
