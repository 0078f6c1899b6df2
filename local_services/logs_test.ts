import assert from "node:assert/strict";
import { join } from "node:path";
import { CASSANDRA } from "./cassandra.ts";
import { KAFKA } from "./kafka.ts";
import { servicePaths } from "./layout.ts";
import { diagnose, readableLines, tailFile } from "./logs.ts";
import type { Server, ServerSpec } from "./server_spec.ts";

function serverOf(spec: ServerSpec): Server {
  const paths = servicePaths(spec.name, spec.mainLog);
  return { spec, paths, port: spec.defaultPort, address: `127.0.0.1:${spec.defaultPort}` };
}

Deno.test("diagnose() tries the generic JVM causes before the server's own", () => {
  const jna = "UnsatisfiedLinkError: jnidispatch\nNoClassDefFoundError: com.sun.jna.Native";
  assert.match(diagnose(serverOf(CASSANDRA), jna).cause, /JNA could not load/);
  const bind = "BindException: Address already in use\nInvalid cluster.id";
  assert.match(diagnose(serverOf(KAFKA), bind).cause, /port it needs is already taken/);
});

Deno.test("diagnose() applies a server's own rules to that server only", () => {
  const kafka = serverOf(KAFKA);
  const cassandra = serverOf(CASSANDRA);
  assert.match(diagnose(kafka, "Invalid cluster.id in meta.properties").cause, /Kafka's storage/);
  assert.match(diagnose(cassandra, "CommitLogReplayException").fix, /commitlog/);
  assert.match(diagnose(cassandra, "Invalid cluster.id").cause, /killed from outside/);
  assert.match(diagnose(kafka, "CorruptSSTable").cause, /killed from outside/);
});

Deno.test("diagnose() names the server's JVM options file when the heap does not fit", () => {
  const oom = "Error: Could not reserve enough space for object heap";
  assert.match(diagnose(serverOf(KAFKA), oom).fix, /local_services\/kafka\/jvm\.options$/);
  assert.match(
    diagnose(serverOf(CASSANDRA), oom).fix,
    /local_services\/cassandra\/jvm17_server\.options$/,
  );
  assert.match(diagnose(serverOf(KAFKA), "Exiting Kafka due to fatal").cause, /configuration/);
});

Deno.test("readableLines() drops start markers and classpath dumps, cuts endless lines", () => {
  const lines = readableLines(["==== start", "INFO Classpath: a.jar", "x".repeat(500), "ok"]);
  assert.deepEqual(lines, [`${"x".repeat(400)}...`, "ok"]);
});

Deno.test("tailFile() returns the last lines written after a byte offset", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "system.log");
  try {
    await Deno.writeTextFile(file, "old 1\nold 2\n");
    const mark = (await Deno.stat(file)).size;
    await Deno.writeTextFile(file, "new 1\nnew 2\nnew 3\n", { append: true });
    assert.deepEqual(await tailFile(file, 2), ["new 2", "new 3"]);
    assert.deepEqual(await tailFile(file, 10, mark), ["new 1", "new 2", "new 3"]);
    assert.deepEqual(await tailFile(file, 10, 10_000), [
      "old 1",
      "old 2",
      "new 1",
      "new 2",
      "new 3",
    ]);
    assert.deepEqual(await tailFile(join(dir, "missing.log"), 5), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
