/**
 * The schema registry for real: the local Apicurio Registry (started by the project's own
 * scripts through `services()`), or the one SCHEMA_REGISTRY_URL names, spoken to with
 * shared/schema_registry.ts and, as an independent client, npm `@kafkajs/confluent-schema-registry`
 * 4.1.0. Every test uses its own subjects and deletes them at the end.
 *
 * The restart and port tests need the local registry started from this checkout: they stop and
 * start only the registry (never Kafka or Cassandra, which other processes share).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import {
  localServices,
  servicesStatus,
  startService,
  stopService,
} from "../local_services/services.ts";
import { loadConfig } from "../shared/config.ts";
import {
  createSchemaRegistryClient,
  type SchemaRegistryClient,
  SchemaRegistryError,
} from "../shared/schema_registry.ts";
import { services } from "./helpers.ts";
import { randomId } from "../shared/random.ts";

const config = loadConfig(Deno.env.toObject());
const isLocal = localServices(Deno.env.toObject()).includes("registry");

/** Avro `Quote` v1, and BACKWARD-compatible and incompatible successors. */
const V1 = {
  type: "record",
  name: "Quote",
  namespace: "market.test",
  fields: [
    { name: "symbol", type: "string" },
    { name: "price", type: "double" },
  ],
};
/** Adds an optional field with a default: a v2 reader can read v1 data. */
const V2 = {
  ...V1,
  fields: [...V1.fields, { name: "venue", type: ["null", "string"], default: null }],
};
/** Adds a field without a default: a reader of this cannot read v1 data. */
const REQUIRED_FIELD = { ...V1, fields: [...V1.fields, { name: "size", type: "long" }] };
/** Changes a field's type (string -> int). */
const TYPE_CHANGE = {
  ...V1,
  fields: [{ name: "symbol", type: "int" }, { name: "price", type: "double" }],
};

function registryClient(): SchemaRegistryClient {
  return createSchemaRegistryClient(config.registry, { timeoutMs: 15_000 });
}

/** Runs `test` with fresh subject names, deleting them afterwards (best effort). */
async function withSubjects(
  count: number,
  test: (registry: SchemaRegistryClient, subjects: string[]) => Promise<void>,
): Promise<void> {
  await services();
  const registry = registryClient();
  const id = randomId();
  const subjects = Array.from({ length: count }, (_, i) => `test.${id}.${i}-value`);
  try {
    await test(registry, subjects);
  } finally {
    for (const subject of subjects) {
      await registry.deleteSubject(subject, { permanent: true }).catch(() => {});
    }
  }
}

Deno.test("registry: a schema registered comes back by id, to us and to the Confluent client", async () => {
  await withSubjects(1, async (registry, [subject]) => {
    const id = await registry.register(subject!, V1);
    assert.ok(Number.isInteger(id) && id >= 0, `id ${id}`);
    const fetched = await registryClient().schemaById(id);
    assert.equal(fetched.schemaType, "AVRO");
    assert.deepEqual(JSON.parse(fetched.schema), V1);

    // An independent client reads what we registered, and encodes and decodes with that id.
    const confluent = new SchemaRegistry({ host: config.registry.url });
    assert.equal(
      await confluent.getRegistryIdBySchema(subject!, {
        type: SchemaType.AVRO,
        schema: JSON.stringify(V1),
      }),
      id,
    );
    assert.equal(await confluent.getLatestSchemaId(subject!), id);
    const record = { symbol: "AAPL", price: 189.25 };
    const encoded = await confluent.encode(id, record);
    assert.equal(encoded[0], 0, "Confluent wire format: magic byte 0");
    assert.equal(encoded.readInt32BE(1), id, "then the schema id, big-endian");
    assert.deepEqual({ ...await confluent.decode(Buffer.from(encoded)) }, record);
    // And the other way round: an id it registers is one we can fetch.
    const { id: itsId } = await confluent.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(V2) },
      { subject: subject! },
    );
    assert.deepEqual(JSON.parse((await registry.schemaById(itsId)).schema), V2);
  });
});

Deno.test("registry: registering the same schema again returns the same id and adds no version", async () => {
  await withSubjects(2, async (registry, [subject, other]) => {
    const id = await registry.register(subject!, V1);
    // Fresh clients: no cache in between, the registry itself answers.
    assert.equal(await registryClient().register(subject!, V1), id);
    assert.equal(await registryClient().register(subject!, JSON.stringify(V1, null, 2)), id);
    assert.deepEqual(await registry.versions(subject!), [1]);
    // The same schema under another subject: one more version there, the same content.
    const otherId = await registryClient().register(other!, V1);
    assert.deepEqual(await registry.versions(other!), [1]);
    assert.deepEqual(JSON.parse((await registry.schemaById(otherId)).schema), V1);
  });
});

Deno.test("registry: BACKWARD by default: an optional field with a default passes, a breaking change gets 409 and registers nothing", async () => {
  await withSubjects(1, async (registry, [subject]) => {
    const global = await fetch(`${config.registry.url}/config`, {
      signal: AbortSignal.timeout(15_000),
    }).then((r) => r.json());
    assert.equal(global.compatibilityLevel, "BACKWARD");

    assert.equal(await registry.isCompatible(subject!, V1), true, "a new subject takes anything");
    const v1 = await registry.register(subject!, V1);
    assert.equal(await registry.isCompatible(subject!, V2), true);
    const v2 = await registry.register(subject!, V2);
    assert.notEqual(v2, v1);
    assert.deepEqual(await registry.versions(subject!), [1, 2]);

    for (const breaking of [REQUIRED_FIELD, TYPE_CHANGE]) {
      assert.equal(await registry.isCompatible(subject!, breaking), false);
      const error = await registry.register(subject!, breaking).then(
        () => assert.fail("an incompatible schema was registered"),
        (error: unknown) => error,
      );
      assert.ok(error instanceof SchemaRegistryError, String(error));
      assert.equal(error.kind, "incompatible");
      assert.equal(error.status, 409);
      assert.equal(error.retriable, false);
      assert.match(error.message, /SCHEMA_REGISTRY_URL/);
    }
    // Nothing was written: the subject still has v1 and v2, and v2 is the latest.
    assert.deepEqual(await registry.versions(subject!), [1, 2]);
    const confluent = new SchemaRegistry({ host: config.registry.url });
    assert.equal(await confluent.getLatestSchemaId(subject!), v2);
  });
});

Deno.test({
  name: "registry: a restart of the local registry keeps every id and schema",
  ignore: !isLocal,
  fn: async () => {
    await withSubjects(2, async (registry, [first, second]) => {
      const status = (await servicesStatus({ log: () => {} })).registry;
      assert.ok(
        status.running,
        `the registry at ${status.address} was not started from this checkout, so this test ` +
          'cannot restart it: stop that one, or run "deno task services:up registry" here',
      );
      const id1 = await registry.register(first!, V1);
      const id2 = await registry.register(second!, V2);
      const log = () => {};

      await stopService("registry", { log });
      const stopped = await servicesStatus({ log });
      assert.equal(stopped.registry.running, false);
      assert.equal(stopped.registry.reachable, false);
      await startService("registry", { log });

      const after = registryClient(); // no cache: every answer comes from the restarted registry
      assert.deepEqual(JSON.parse((await after.schemaById(id1)).schema), V1);
      assert.deepEqual(JSON.parse((await after.schemaById(id2)).schema), V2);
      assert.equal(await after.register(first!, V1), id1, "the same schema keeps its id");
      assert.deepEqual(await after.versions(first!), [1]);
      // The compatibility rule survives too (it is configuration, not data).
      assert.equal(await after.isCompatible(first!, TYPE_CHANGE), false);
    });
  },
});

/** A listening TCP socket in `/proc/net/tcp{,6}`: its local address (hex) and port. */
interface Listening {
  address: string;
  port: number;
  inode: string;
}

function listeningSockets(procNetTcp: string): Listening[] {
  return procNetTcp.split("\n").slice(1).flatMap((line) => {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== "0A") return [];
    const [address = "", port = ""] = fields[1]!.split(":");
    return [{ address, port: parseInt(port, 16), inode: fields[9]! }];
  });
}

/** 127.0.0.1 (`0100007F`), ::1, or ::ffff:127.0.0.1, as /proc/net/tcp{,6} write them. */
function isLoopback(hexAddress: string): boolean {
  return hexAddress === "0100007F" ||
    hexAddress === "00000000000000000000000001000000" ||
    hexAddress === "0000000000000000FFFF00000100007F";
}

Deno.test({
  name: "registry: the local registry listens on 127.0.0.1 only, on its HTTP and management ports",
  ignore: !isLocal,
  fn: async () => {
    await services();
    const { registry } = await servicesStatus({ log: () => {} });
    assert.ok(registry.running && registry.pid !== null, "the registry runs from this checkout");
    const inodes = new Set<string>();
    for await (const fd of Deno.readDir(`/proc/${registry.pid}/fd`)) {
      const target = await Deno.readLink(`/proc/${registry.pid}/fd/${fd.name}`).catch(() => "");
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match) inodes.add(match[1]!);
    }
    const sockets: Listening[] = [];
    for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      const text = await Deno.readTextFile(file).catch(() => "");
      sockets.push(...listeningSockets(text).filter((s) => inodes.has(s.inode)));
    }
    const port = Number(new URL(config.registry.url).port);
    assert.deepEqual([...new Set(sockets.map((s) => s.port))].sort(), [port, port + 1]);
    for (const socket of sockets) {
      assert.ok(
        isLoopback(socket.address),
        `the registry listens on ${socket.address}:${socket.port}, not on 127.0.0.1`,
      );
    }
    // And `ss` agrees, where it exists: nothing of it on 0.0.0.0, [::] or *.
    const ss = await new Deno.Command("ss", { args: ["-ltnH"], stdout: "piped", stderr: "null" })
      .output().catch(() => null);
    if (ss?.success) {
      const lines = new TextDecoder().decode(ss.stdout).split("\n");
      for (const p of [port, port + 1]) {
        const bound = lines.map((l) => l.trim().split(/\s+/)[3] ?? "").filter((a) =>
          a.endsWith(`:${p}`)
        );
        assert.ok(bound.length > 0, `ss shows nothing on port ${p}`);
        for (const address of bound) {
          assert.match(address, /^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]|\[::1\]):/);
        }
      }
    }
  },
});

Deno.test("registry: a registry that is not there is a retriable error naming SCHEMA_REGISTRY_URL", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${listener.addr.port}/apis/ccompat/v7`;
  listener.close();
  const registry = createSchemaRegistryClient(
    loadConfig({ SCHEMA_REGISTRY_URL: url }).registry,
    { timeoutMs: 2_000 },
  );
  const error = await registry.register("x-value", V1).catch((e: unknown) => e);
  assert.ok(error instanceof SchemaRegistryError);
  assert.equal(error.retriable, true);
  assert.match(error.message, new RegExp(`^schema registry at ${url} \\(SCHEMA_REGISTRY_URL\\)`));
});
