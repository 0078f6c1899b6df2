/**
 * A local multi-node cluster on one machine (`deno task services:up --cluster 3`): N Cassandra
 * 5.0 nodes on 127.0.0.1 ... 127.0.0.N (one data centre `datacenter1`, GossipingPropertyFileSnitch,
 * node 1 the seed) and N Kafka 3.9 brokers in KRaft mode, each broker and controller (an N-voter
 * quorum), from the same Maven Central jars as the single-node servers (services.ts).
 *
 * Nothing here touches the single-node servers: the cluster uses other ports (CQL 9142 and
 * storage 7100 on every node's address, JMX 7201..7200+N; Kafka clients 19092..19091+N,
 * controllers 19192..19191+N) and other folders (`.local/cluster/<node>/`; jars are shared with
 * `.local/cassandra/lib` and `.local/kafka/lib`). Cassandra nodes start one at a time (a node
 * joins a ring whose members are up); brokers start together (the quorum needs a majority).
 *
 * The pipeline runs on the cluster by configuration only: {@link clusterEnv} gives the variables.
 *
 * @module
 */

import { join } from "node:path";
import {
  Client as CassandraClient,
  policies as cassandraPolicies,
  types as cassandraTypes,
} from "cassandra-driver";
import { portFree, portHolder } from "../shared/ports.ts";
import { delayUnlessAborted as delay } from "../shared/delay.ts";
import { defaultLog, existsSync, type Log, removeIfExists, seconds, withTimeout } from "./_util.ts";
import { CASSANDRA } from "./cassandra.ts";
import { ensureJars, findJar } from "./jars.ts";
import { runJava, selectJavas } from "./java.ts";
import { KAFKA, kafkaReachable } from "./kafka.ts";
import { type ServicePaths, servicePaths } from "./layout.ts";
import { withLock } from "./lock.ts";
import { markLogs, startFailure } from "./logs.ts";
import {
  isOurProcess,
  ourRunningPid,
  signalProcess,
  spawnDetached,
  waitExit,
} from "./processes.ts";
import { renderTemplate } from "./render.ts";
import type { Server, ServerSpec } from "./server_spec.ts";

/** The cluster's fixed ports (none is a port of the single-node servers). */
export const CLUSTER_PORTS = {
  /** CQL native port, on each node's own address. */
  cql: 9142,
  /** Storage (gossip, internode) port, on each node's own address. */
  storage: 7100,
  /** JMX of node n listens on 127.0.0.1:(jmxBase + n). */
  jmxBase: 7200,
  /** Kafka client listener of broker n: 127.0.0.1:(kafkaBase + n). */
  kafkaBase: 19091,
  /** KRaft controller listener of node n: 127.0.0.1:(controllerBase + n). */
  controllerBase: 19191,
} as const;

/** The Cassandra data centre of every node (cassandra-rackdc.properties). */
export const CLUSTER_DC = "datacenter1";

/** How many nodes of each kind a cluster may have (addresses 127.0.0.1 .. 127.0.0.9). */
export const MAX_CLUSTER_SIZE = 9;

export type NodeKind = "cassandra" | "kafka";

/** One node of the cluster: where it listens, independent of files. */
export interface NodeLayout {
  readonly kind: NodeKind;
  /** 1-based. */
  readonly index: number;
  /** `cassandra-2`, `kafka-3`: its folder under .local/cluster/. */
  readonly name: string;
  /** The address clients use: `127.0.0.2:9142`, `127.0.0.1:19093`. */
  readonly address: string;
  /** The address it binds (Cassandra: 127.0.0.n; Kafka: 127.0.0.1). */
  readonly host: string;
  /** Every port it listens on, with what for. */
  readonly ports: readonly { host: string; port: number; purpose: string }[];
}

/** A node with its files. */
export interface ClusterNode extends NodeLayout {
  readonly paths: ServicePaths;
}

/** What {@link clusterStatus} finds for one node. */
export interface NodeStatus {
  readonly name: string;
  readonly kind: NodeKind;
  readonly address: string;
  /** Pid of this checkout's process for the node, or null. */
  readonly pid: number | null;
  /** A client works against this very node. */
  readonly reachable: boolean;
}

/** Options of the cluster functions. */
export interface ClusterOptions {
  log?: Log;
  signal?: AbortSignal;
}

/** @throws RangeError unless `size` is 1..{@link MAX_CLUSTER_SIZE}. */
export function assertClusterSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_CLUSTER_SIZE) {
    throw new RangeError(
      `Invalid cluster size ${size}: expected an integer 1..${MAX_CLUSTER_SIZE}`,
    );
  }
}

/** Where every node of a `size`-node cluster listens (Cassandra nodes first). */
export function clusterLayout(size: number): NodeLayout[] {
  assertClusterSize(size);
  const nodes: NodeLayout[] = [];
  for (let n = 1; n <= size; n++) {
    const host = `127.0.0.${n}`;
    nodes.push({
      kind: "cassandra",
      index: n,
      name: `cassandra-${n}`,
      host,
      address: `${host}:${CLUSTER_PORTS.cql}`,
      ports: [
        { host, port: CLUSTER_PORTS.cql, purpose: "Cassandra CQL native port" },
        { host, port: CLUSTER_PORTS.storage, purpose: "Cassandra storage (gossip) port" },
        { host: "127.0.0.1", port: CLUSTER_PORTS.jmxBase + n, purpose: "Cassandra JMX port" },
      ],
    });
  }
  for (let n = 1; n <= size; n++) {
    const port = CLUSTER_PORTS.kafkaBase + n;
    nodes.push({
      kind: "kafka",
      index: n,
      name: `kafka-${n}`,
      host: "127.0.0.1",
      address: `127.0.0.1:${port}`,
      ports: [
        { host: "127.0.0.1", port, purpose: "Kafka client listener" },
        {
          host: "127.0.0.1",
          port: CLUSTER_PORTS.controllerBase + n,
          purpose: "Kafka KRaft controller listener",
        },
      ],
    });
  }
  return nodes;
}

/**
 * The pipeline's variables for a `size`-node cluster: every broker and contact point, topics
 * and keyspace replicated `min(3, size)` times (`NetworkTopologyStrategy` in `datacenter1`).
 * Producers always send with acks=all; Cassandra writes are at LOCAL_QUORUM.
 */
export function clusterEnv(size: number): Record<string, string> {
  const nodes = clusterLayout(size);
  const of = (kind: NodeKind) => nodes.filter((n) => n.kind === kind).map((n) => n.address);
  const rf = Math.min(3, size);
  return {
    KAFKA_BROKERS: of("kafka").join(","),
    KAFKA_REPLICATION_FACTOR: String(rf),
    CASSANDRA_CONTACT_POINTS: of("cassandra").join(","),
    CASSANDRA_LOCAL_DC: CLUSTER_DC,
    CASSANDRA_REPLICATION: `NetworkTopologyStrategy:${CLUSTER_DC}=${rf}`,
  };
}

/** Murmur3 token of node `index` of `size`: the ring split into equal parts. */
export function initialToken(index: number, size: number): string {
  const min = -(2n ** 63n);
  return String(min + (BigInt(index - 1) * 2n ** 64n) / BigInt(size));
}

/** `1@127.0.0.1:19192,2@127.0.0.1:19193,...`: the KRaft voters of a `size`-node cluster. */
export function quorumVoters(size: number): string {
  return Array.from(
    { length: size },
    (_, i) => `${i + 1}@127.0.0.1:${CLUSTER_PORTS.controllerBase + i + 1}`,
  ).join(",");
}

/** The nodes of a `size`-node cluster with their folders under `.local/cluster/`. */
export function clusterNodes(size: number): ClusterNode[] {
  return clusterLayout(size).map((node) => {
    const spec = specOf(node.kind);
    const paths = servicePaths(`cluster/${node.name}`, spec.mainLog);
    return {
      ...node,
      paths: {
        ...paths,
        sourceDir: join(servicePaths("cluster", spec.mainLog).sourceDir),
        libDir: servicePaths(node.kind, spec.mainLog).libDir,
      },
    };
  });
}

/** One node of a `size`-node cluster by name (`cassandra-2`). @throws RangeError when unknown. */
export function clusterNode(size: number, name: string): ClusterNode {
  const node = clusterNodes(size).find((n) => n.name === name);
  if (!node) throw new RangeError(`No node ${JSON.stringify(name)} in a ${size}-node cluster`);
  return node;
}

function specOf(kind: NodeKind): ServerSpec {
  return kind === "cassandra" ? CASSANDRA : KAFKA;
}

// ---------------------------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------------------------

/**
 * A cassandra-driver client that talks to the node at `address` only (a whitelist of that one
 * host): a read at consistency ONE through it is answered by that node's own data when it is a
 * replica. Call `shutdown()` when done.
 */
export function pinnedCassandraClient(
  address: string,
  options: { keyspace?: string } = {},
): CassandraClient {
  const { loadBalancing } = cassandraPolicies;
  return new CassandraClient({
    contactPoints: [address],
    queryOptions: { prepare: true, consistency: cassandraTypes.consistencies.one },
    localDataCenter: CLUSTER_DC,
    ...(options.keyspace ? { keyspace: options.keyspace } : {}),
    protocolOptions: { port: CLUSTER_PORTS.cql },
    socketOptions: { connectTimeout: 2_000, readTimeout: 10_000 },
    encoding: { useBigIntAsLong: true, useBigIntAsVarint: true, map: Map },
    policies: {
      loadBalancing: new loadBalancing.WhiteListPolicy(
        new loadBalancing.DCAwareRoundRobinPolicy(CLUSTER_DC),
        [address],
      ),
      reconnection: new cassandraPolicies.reconnection.ConstantReconnectionPolicy(1_000),
    },
  });
}

/** Whether this very node answers (Cassandra: a query pinned to it; Kafka: an admin on it). */
export async function nodeReachable(node: NodeLayout, timeoutMs = 5_000): Promise<boolean> {
  if (node.kind === "kafka") return await kafkaReachable([node.address], { timeoutMs });
  const client = pinnedCassandraClient(node.address);
  const check = (async () => {
    await client.connect();
    const rs = await client.execute("SELECT release_version FROM system.local");
    return rs.first() !== null;
  })().catch(() => false);
  try {
    return await withTimeout(check, timeoutMs, false);
  } finally {
    await client.shutdown().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Up, down, status
// ---------------------------------------------------------------------------------------------

/** The lock of cluster starts and stops (not the single-node servers' lock). */
function clusterLock(): string {
  return join(servicePaths("cluster", "x").dir, "cluster.lock");
}

/**
 * Starts every node of a `size`-node cluster that is not up and waits until each answers:
 * Kafka's brokers together, then Cassandra's nodes one at a time (seed first). Idempotent.
 * @returns milliseconds from the call until every node answered.
 */
export async function clusterUp(size: number, options: ClusterOptions = {}): Promise<number> {
  const log = options.log ?? defaultLog;
  const t0 = performance.now();
  const nodes = clusterNodes(size);
  await withLock(
    { file: clusterLock(), purpose: "cluster up", log, signal: options.signal },
    async () => {
      const javas = await selectJavas(nodes.map(asServer), () => {});
      for (const kind of ["kafka", "cassandra"] as const) {
        const spec = specOf(kind);
        await ensureJars(
          asServer({
            ...nodes.find((n) => n.kind === kind)!,
            paths: servicePaths(kind, spec.mainLog),
          }),
          log,
        );
      }
      const kafka = nodes.filter((n) => n.kind === "kafka");
      await prepareKafka(kafka, javas.get("kafka")!.java, log);
      await Promise.all(
        kafka.map((n) => startNodeUnlocked(n, size, javas.get("kafka")!.java, options)),
      );
      for (const node of nodes.filter((n) => n.kind === "cassandra")) {
        await startNodeUnlocked(node, size, javas.get("cassandra")!.java, options);
      }
    },
  );
  const ms = performance.now() - t0;
  log(`cluster of ${size} Cassandra nodes and ${size} Kafka brokers up in ${seconds(ms)}`);
  return ms;
}

/** Starts one node of the cluster (reusing its data) and waits until it answers. */
export async function startNode(
  size: number,
  name: string,
  options: ClusterOptions = {},
): Promise<void> {
  const node = clusterNode(size, name);
  const log = options.log ?? defaultLog;
  await withLock(
    { file: clusterLock(), purpose: `start ${name}`, log, signal: options.signal },
    async () => {
      const javas = await selectJavas([asServer(node)], () => {});
      await startNodeUnlocked(node, size, javas.get(node.kind)!.java, options);
    },
  );
}

/**
 * Stops one node: SIGTERM and up to 60 s for a clean stop (then SIGKILL), or at once with
 * `kill: true` (`kill -9`, as a crash). Does nothing when it is not running.
 */
export async function stopNode(
  size: number,
  name: string,
  options: ClusterOptions & { kill?: boolean } = {},
): Promise<void> {
  const node = clusterNode(size, name);
  const log = options.log ?? defaultLog;
  const pid = await nodePid(node);
  if (pid === null) {
    log(`${name}: not running`);
    return;
  }
  const t0 = performance.now();
  const wait = (timeoutMs: number) =>
    waitExit(pid, { signature: signature(node), timeoutMs, signal: options.signal });
  signalProcess(pid, options.kill ? "SIGKILL" : "SIGTERM");
  if (!options.kill && !(await wait(60_000))) {
    log(`${name}: pid ${pid} still running after 60 s; sending SIGKILL`);
    signalProcess(pid, "SIGKILL");
  }
  if (!(await wait(10_000))) throw new Error(`${name}: pid ${pid} did not exit`);
  await removeIfExists(node.paths.pidFile);
  log(
    `${name}: ${options.kill ? "killed (SIGKILL)" : "stopped"} pid ${pid} in ${
      seconds(performance.now() - t0)
    }`,
  );
}

/** Stops every node of the cluster (Cassandra nodes one at a time, then the brokers). */
export async function clusterDown(size: number, options: ClusterOptions = {}): Promise<void> {
  const log = options.log ?? defaultLog;
  await withLock(
    { file: clusterLock(), purpose: "cluster down", log, signal: options.signal },
    async () => {
      const nodes = clusterNodes(size);
      await Promise.all(
        nodes.filter((n) => n.kind === "cassandra").map((n) => stopNode(size, n.name, options)),
      );
      await Promise.all(
        nodes.filter((n) => n.kind === "kafka").map((n) => stopNode(size, n.name, options)),
      );
    },
  );
}

/** Every node: pid, address, whether it answers; one line each to `log`. */
export async function clusterStatus(
  size: number,
  options: ClusterOptions = {},
): Promise<NodeStatus[]> {
  const log = options.log ?? defaultLog;
  const statuses = await Promise.all(
    clusterNodes(size).map(async (node) => ({
      name: node.name,
      kind: node.kind,
      address: node.address,
      pid: await nodePid(node),
      reachable: await nodeReachable(node),
    })),
  );
  for (const s of statuses) {
    log(
      `${s.name.padEnd(12)} ${s.reachable ? "up  " : "down"} ${s.address.padEnd(16)} ` +
        (s.pid === null ? "not running from this checkout" : `pid ${s.pid}`),
    );
  }
  return statuses;
}

/** Pid of this checkout's process for `node`, or null. */
export function nodePid(node: ClusterNode): Promise<number | null> {
  return ourRunningPid(node.paths.pidFile, signature(node));
}

/**
 * The node id of the active KRaft controller, from the quorum state the nodes keep on disk (the
 * newest epoch wins), or null when no node has one yet. kafkajs' describeCluster cannot tell: in
 * KRaft mode brokers report a random broker as the "controller".
 */
export async function activeController(size: number): Promise<number | null> {
  let best: { leaderId: number; leaderEpoch: number } | null = null;
  for (const node of clusterNodes(size).filter((n) => n.kind === "kafka")) {
    const file = join(node.paths.dataDir, "__cluster_metadata-0", "quorum-state");
    try {
      const state = JSON.parse(await Deno.readTextFile(file));
      if (state.leaderId >= 1 && (best === null || state.leaderEpoch > best.leaderEpoch)) {
        best = { leaderId: state.leaderId, leaderEpoch: state.leaderEpoch };
      }
    } catch {
      // not formatted or being rewritten: the other nodes tell
    }
  }
  return best?.leaderId ?? null;
}

/** The JMX port of Cassandra node `index` (for nodetool). */
export function jmxPort(index: number): number {
  return CLUSTER_PORTS.jmxBase + index;
}

// ---------------------------------------------------------------------------------------------
// Starting one node
// ---------------------------------------------------------------------------------------------

function signature(node: ClusterNode): string[] {
  return [specOf(node.kind).processMarker, node.paths.confDir];
}

/** The node as a {@link Server}, for the generic helpers (jars, Java, failure reports). */
function asServer(node: ClusterNode): Server {
  const spec = specOf(node.kind);
  return {
    spec: { ...spec, name: node.kind, jvmOptions: templatesOf(node.kind)[0]!.target },
    paths: node.paths,
    port: Number(node.address.split(":")[1]),
    address: node.address,
  };
}

/** Each kind's templates: source file (local_services/...) and rendered name in conf/. */
function templatesOf(kind: NodeKind): { source: string; target: string }[] {
  return kind === "cassandra"
    ? [
      { source: "cluster/cassandra_jvm17_server.options", target: "jvm17_server.options" },
      { source: "cluster/cassandra.yaml", target: "cassandra.yaml" },
      { source: "cluster/cassandra-rackdc.properties", target: "cassandra-rackdc.properties" },
      { source: "cassandra/logback.xml", target: "logback.xml" },
    ]
    : [
      { source: "cluster/kafka_jvm.options", target: "jvm.options" },
      { source: "cluster/kafka_server.properties", target: "server.properties" },
      { source: "kafka/log4j.properties", target: "log4j.properties" },
      { source: "kafka/tools_log4j.properties", target: "tools_log4j.properties" },
    ];
}

async function templateVars(node: ClusterNode, size: number): Promise<Record<string, string>> {
  const { paths } = node;
  if (node.kind === "cassandra") {
    return {
      CQL_PORT: String(CLUSTER_PORTS.cql),
      STORAGE_PORT: String(CLUSTER_PORTS.storage),
      JMX_PORT: String(jmxPort(node.index)),
      LISTEN_ADDRESS: node.host,
      SEEDS: `127.0.0.1:${CLUSTER_PORTS.storage}`,
      INITIAL_TOKEN: initialToken(node.index, size),
      CASSANDRA_DIR: paths.dir,
      CASSANDRA_CONF_DIR: paths.confDir,
      JAMM_JAR: await findJar(paths.libDir, /^jamm-.*\.jar$/),
    };
  }
  return {
    NODE_ID: String(node.index),
    QUORUM_VOTERS: quorumVoters(size),
    KAFKA_PORT: String(CLUSTER_PORTS.kafkaBase + node.index),
    CONTROLLER_PORT: String(CLUSTER_PORTS.controllerBase + node.index),
    KAFKA_DATA_DIR: paths.dataDir,
    KAFKA_LOG_DIR: paths.logDir,
    KAFKA_CONF_DIR: paths.confDir,
    KAFKA_TMP_DIR: paths.tmpDir,
  };
}

async function renderNode(node: ClusterNode, size: number): Promise<void> {
  const { paths } = node;
  for (const dir of [paths.confDir, paths.logDir, paths.dataDir, paths.tmpDir]) {
    await Deno.mkdir(dir, { recursive: true });
  }
  for (const sub of specOf(node.kind).extraDirs) {
    await Deno.mkdir(join(paths.dir, sub), { recursive: true });
  }
  const vars = await templateVars(node, size);
  const root = join(paths.sourceDir, "..");
  for (const { source, target } of templatesOf(node.kind)) {
    const file = join(root, source);
    const text = renderTemplate(await Deno.readTextFile(file), vars, file);
    await Deno.writeTextFile(join(paths.confDir, target), text);
  }
}

function javaArgs(node: ClusterNode): string[] {
  const { confDir, libDir } = node.paths;
  return node.kind === "cassandra"
    ? [
      `@${join(confDir, "jvm17_server.options")}`,
      "-cp",
      join(libDir, "*"),
      "org.apache.cassandra.service.CassandraDaemon",
    ]
    : [
      `@${join(confDir, "jvm.options")}`,
      "-cp",
      join(libDir, "*"),
      "kafka.Kafka",
      join(confDir, "server.properties"),
    ];
}

/** Renders every broker's config and formats the storage of those not formatted yet. */
async function prepareKafka(nodes: ClusterNode[], java: string, log: Log): Promise<void> {
  const size = nodes.length;
  for (const node of nodes) await renderNode(node, size);
  const unformatted = nodes.filter((n) => !existsSync(join(n.paths.dataDir, "meta.properties")));
  if (unformatted.length === 0) return;
  const idFile = join(servicePaths("cluster", "x").dir, "kafka-cluster-id");
  let clusterId = await Deno.readTextFile(idFile).then((t) => t.trim()).catch(() => "");
  if (!clusterId) {
    clusterId = randomClusterId();
    await Deno.writeTextFile(idFile, `${clusterId}\n`);
  }
  await Promise.all(unformatted.map((node) =>
    runJava(java, [
      "-Xmx256m",
      `-Dlog4j.configuration=file:${join(node.paths.confDir, "tools_log4j.properties")}`,
      "-cp",
      join(node.paths.libDir, "*"),
      "kafka.tools.StorageTool",
      "format",
      "-t",
      clusterId,
      "-c",
      join(node.paths.confDir, "server.properties"),
      "--ignore-formatted",
    ], `format the storage of ${node.name}`)
  ));
  log(`kafka: formatted ${unformatted.map((n) => n.name).join(", ")} (cluster id ${clusterId})`);
}

/** A Kafka cluster id: 16 random bytes, base64url without padding, not starting with '-'. */
export function randomClusterId(): string {
  while (true) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const id = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
      .replace(/=+$/, "");
    if (!id.startsWith("-")) return id;
  }
}

const READY_TIMEOUT_MS = { cassandra: 300_000, kafka: 120_000 } as const;

async function startNodeUnlocked(
  node: ClusterNode,
  size: number,
  java: string,
  options: ClusterOptions,
): Promise<void> {
  const log = options.log ?? defaultLog;
  const running = await nodePid(node);
  if (running !== null && (await nodeReachable(node))) {
    log(`${node.name}: already running (pid ${running}) at ${node.address}`);
    return;
  }
  const server = asServer(node);
  let pid = running;
  const t0 = performance.now();
  let mark = { mainLog: 0, stdoutLog: 0 };
  if (pid === null) {
    for (const { host, port, purpose } of node.ports) {
      // A node just stopped may hold its ports for a moment while its process is torn down.
      for (let i = 0; i < 60 && !portFree(host, port); i++) await delay(500, options.signal);
      if (portFree(host, port)) continue;
      const holder = await portHolder(port);
      throw new Error(
        `${node.name} cannot start: port ${port} (${purpose}) on ${host} is taken` +
          `${holder ? ` by pid ${holder.pid} (${holder.command})` : ""}`,
      );
    }
    await renderNode(node, size);
    mark = await markLogs(node.paths);
    // The same timer slack as the single node's (cassandra.ts: its shared pool's wake-ups).
    const slack = node.kind === "cassandra" && CASSANDRA.timerSlackNs !== undefined
      ? { timerSlackNs: CASSANDRA.timerSlackNs }
      : {};
    pid = await spawnDetached(node.name, node.paths, [java, ...javaArgs(node)], slack);
    if (pid === null) throw await startFailure(server, "no pid file appeared within 10 s", mark);
    log(`${node.name}: started (pid ${pid}) at ${node.address}; log ${node.paths.mainLog}`);
  }
  const deadline = t0 + READY_TIMEOUT_MS[node.kind];
  while (true) {
    options.signal?.throwIfAborted();
    if (!(await isOurProcess(pid, signature(node)))) {
      await delay(500, options.signal);
      throw await startFailure(server, `the process (pid ${pid}) exited before it was ready`, mark);
    }
    if (await nodeReachable(node, 3_000)) break;
    if (performance.now() > deadline) {
      throw await startFailure(server, `it did not answer at ${node.address} in time`, mark);
    }
    await delay(1_000, options.signal);
  }
  log(`${node.name}: ready at ${node.address} in ${seconds(performance.now() - t0)}`);
}
