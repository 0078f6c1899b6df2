import assert from "node:assert/strict";
import { loadConfig } from "../shared/config.ts";
import {
  clusterEnv,
  clusterLayout,
  clusterNodes,
  initialToken,
  quorumVoters,
  randomClusterId,
} from "./cluster.ts";

Deno.test("clusterLayout: Cassandra on 127.0.0.n:9142, brokers on 127.0.0.1:1909n, no single-node port", () => {
  const nodes = clusterLayout(3);
  assert.deepEqual(nodes.map((n) => `${n.name} ${n.address}`), [
    "cassandra-1 127.0.0.1:9142",
    "cassandra-2 127.0.0.2:9142",
    "cassandra-3 127.0.0.3:9142",
    "kafka-1 127.0.0.1:19092",
    "kafka-2 127.0.0.1:19093",
    "kafka-3 127.0.0.1:19094",
  ]);
  const ports = nodes.flatMap((n) => n.ports.map((p) => `${p.host}:${p.port}`));
  assert.equal(new Set(ports).size, ports.length, "every listener is distinct");
  for (const single of [9042, 7000, 7199, 9092, 9093, 8081, 8082]) {
    assert.ok(
      !ports.includes(`127.0.0.1:${single}`),
      `127.0.0.1:${single} stays the single node's`,
    );
  }
  assert.throws(() => clusterLayout(0), /Invalid cluster size 0/);
  assert.throws(() => clusterLayout(10), /Invalid cluster size 10/);
});

Deno.test("clusterEnv: the pipeline's variables for the cluster, accepted by the config", () => {
  const env = clusterEnv(3);
  assert.deepEqual(env, {
    KAFKA_BROKERS: "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094",
    KAFKA_REPLICATION_FACTOR: "3",
    CASSANDRA_CONTACT_POINTS: "127.0.0.1:9142,127.0.0.2:9142,127.0.0.3:9142",
    CASSANDRA_LOCAL_DC: "datacenter1",
    CASSANDRA_REPLICATION: "NetworkTopologyStrategy:datacenter1=3",
  });
  const config = loadConfig(env);
  assert.equal(config.kafka.replicationFactor, 3);
  assert.deepEqual(config.cassandra.replication, {
    class: "NetworkTopologyStrategy",
    dataCenters: { datacenter1: 3 },
  });
  assert.equal(clusterEnv(1).KAFKA_REPLICATION_FACTOR, "1");
});

Deno.test("initialToken: the Murmur3 ring split evenly", () => {
  assert.deepEqual([1, 2, 3].map((i) => initialToken(i, 3)), [
    "-9223372036854775808",
    "-3074457345618258603",
    "3074457345618258602",
  ]);
  assert.equal(initialToken(1, 1), "-9223372036854775808");
});

Deno.test("quorumVoters: every node a voter on its controller port", () => {
  assert.equal(quorumVoters(3), "1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194");
});

Deno.test("randomClusterId: 22 base64url characters, never a leading '-'", () => {
  for (let i = 0; i < 200; i++) assert.match(randomClusterId(), /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
});

Deno.test("clusterNodes: each node its own folder under .local/cluster, shared jars", () => {
  const [c2, k3] = [clusterNodes(3)[1]!, clusterNodes(3)[5]!];
  assert.match(c2.paths.dir, /\/\.local\/cluster\/cassandra-2$/);
  assert.match(c2.paths.libDir, /\/\.local\/cassandra\/lib$/);
  assert.match(k3.paths.dataDir, /\/\.local\/cluster\/kafka-3\/data$/);
  assert.match(k3.paths.libDir, /\/\.local\/kafka\/lib$/);
});
