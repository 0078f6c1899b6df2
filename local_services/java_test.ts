import assert from "node:assert/strict";
import { join } from "node:path";
import { chooseJava, findJavas, type JavaRuntime, parseJavaMajor } from "./java.ts";

Deno.test("parseJavaMajor() reads the major of old and new version strings", () => {
  assert.equal(parseJavaMajor('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime'), 17);
  assert.equal(parseJavaMajor('java version "1.8.0_292"'), 8);
  assert.equal(parseJavaMajor('openjdk version "21" 2023-09-19'), 21);
  assert.ok(Number.isNaN(parseJavaMajor("bash: java: command not found")));
});

const runtime = (major: number, source: string): JavaRuntime => ({
  java: `/jdk${major}/bin/java`,
  major,
  source,
});

Deno.test("chooseJava() takes the first Java in range, in the order found", () => {
  const path17 = runtime(17, "PATH");
  const jvm25 = runtime(25, "/usr/lib/jvm/temurin-25");
  const jvm21 = runtime(21, "/usr/lib/jvm/temurin-21");
  // Kafka and Cassandra keep the Java 17 on PATH although a newer one is installed.
  assert.deepEqual(chooseJava([path17, jvm25], { min: 17, reason: "" }), {
    runtime: path17,
    warning: null,
  });
  // The registry needs 21+: the PATH's 17 is passed over.
  assert.equal(chooseJava([path17, jvm25, jvm21], { min: 21, reason: "" })?.runtime, jvm25);
  // Nothing new enough: null (the caller installs the fallback or says what to install).
  assert.equal(chooseJava([path17], { min: 21, reason: "" }), null);
  assert.equal(chooseJava([], { min: 17, reason: "" }), null);
});

Deno.test("chooseJava() prefers a Java within max, and warns when only a newer one exists", () => {
  const cassandra = {
    min: 17,
    reason: "",
    max: { major: 17, warning: "Cassandra 5.0 supports Java 11 and 17 only" },
  };
  const path25 = runtime(25, "PATH");
  const jvm17 = runtime(17, "/usr/lib/jvm/java-17");
  assert.deepEqual(chooseJava([path25, jvm17], cassandra), { runtime: jvm17, warning: null });
  const only25 = chooseJava([path25], cassandra);
  assert.equal(only25?.runtime, path25);
  assert.match(only25?.warning ?? "", /java 25 .*Cassandra 5\.0 supports Java 11 and 17 only/);
});

/** A fake JDK at `<root>/<name>` whose `java -version` prints `version "<major>"`. */
async function fakeJdk(root: string, name: string, major: number): Promise<string> {
  const bin = join(root, name, "bin");
  await Deno.mkdir(bin, { recursive: true });
  const java = join(bin, "java");
  await Deno.writeTextFile(
    java,
    `#!/bin/sh\necho 'openjdk version "${major}.0.1" 2026-01-20' >&2\n`,
    { mode: 0o755 },
  );
  return java;
}

Deno.test("findJavas() lists PATH, then JAVA_HOME, then /usr/lib/jvm newest first, each once", async () => {
  const root = await Deno.makeTempDir({ prefix: "java_test_" });
  try {
    const jvm = join(root, "jvm");
    const java17 = await fakeJdk(jvm, "java-17-openjdk-amd64", 17);
    await Deno.symlink(join(jvm, "java-17-openjdk-amd64"), join(jvm, "java-1.17.0-openjdk-amd64"));
    const java25 = await fakeJdk(jvm, "temurin-25-jdk-amd64", 25);
    const java21 = await fakeJdk(jvm, "temurin-21-jdk-amd64", 21);
    await Deno.mkdir(join(jvm, "openjdk-17")); // docs only, no bin/java
    await Deno.writeTextFile(join(jvm, ".java-1.17.0-openjdk-amd64.jinfo"), "");
    const home11 = join(root, "home");
    const java11 = await fakeJdk(home11, "jdk-11", 11);
    const broken = join(jvm, "broken-jdk", "bin");
    await Deno.mkdir(broken, { recursive: true });
    await Deno.writeTextFile(join(broken, "java"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });

    const found = await findJavas({
      path: `${join(root, "empty")}:${join(jvm, "java-17-openjdk-amd64", "bin")}`,
      javaHome: join(home11, "jdk-11"),
      jvmRoot: jvm,
    });
    assert.deepEqual(
      found.map((r) => [r.java, r.major, r.source]),
      [
        [java17, 17, "PATH"],
        [java11, 11, "JAVA_HOME"],
        [java25, 25, join(jvm, "temurin-25-jdk-amd64")],
        [java21, 21, join(jvm, "temurin-21-jdk-amd64")],
      ],
    );
    // No PATH java, no JAVA_HOME, no /usr/lib/jvm: nothing.
    assert.deepEqual(
      await findJavas({ path: "", javaHome: undefined, jvmRoot: join(root, "none") }),
      [],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
