import assert from "node:assert/strict";
import { join } from "node:path";
import type { ServicePaths } from "./layout.ts";
import { renderTemplate } from "./render.ts";
import { SERVERS } from "./services.ts";

/** Paths under a fresh temp dir, reading the real templates of local_services/<name>/. */
async function tempPaths(name: string, mainLog: string): Promise<ServicePaths> {
  const dir = await Deno.makeTempDir({ prefix: `local_services_${name}_` });
  const libDir = join(dir, "lib");
  await Deno.mkdir(libDir);
  await Deno.writeTextFile(join(libDir, "jamm-0.4.0.jar"), "");
  return {
    sourceDir: new URL(name, new URL("./", import.meta.url)).pathname,
    dir,
    libDir,
    markerFile: join(libDir, ".fetched.json"),
    confDir: join(dir, "conf"),
    logDir: join(dir, "logs"),
    dataDir: join(dir, "data"),
    tmpDir: join(dir, "tmp"),
    pidFile: join(dir, "pid"),
    mainLog: join(dir, "logs", mainLog),
    stdoutLog: join(dir, "logs", "stdout.log"),
  };
}

for (const spec of SERVERS) {
  Deno.test(`${spec.name}: its java command line names its process marker and conf dir`, async () => {
    const paths = await tempPaths(spec.name, spec.mainLog);
    try {
      const line = ["java", ...spec.javaArgs(paths)].join(" ");
      assert.ok(line.includes(spec.processMarker), line);
      assert.ok(line.includes(paths.confDir), line);
      assert.ok(line.includes(join(paths.confDir, spec.jvmOptions)), line);
      assert.ok(spec.templates.includes(spec.jvmOptions));
    } finally {
      await Deno.remove(paths.dir, { recursive: true });
    }
  });

  Deno.test(`${spec.name}: every template renders, and the config names the client port`, async () => {
    const paths = await tempPaths(spec.name, spec.mainLog);
    try {
      const port = spec.defaultPort + 10_000;
      const vars = await spec.templateVars(paths, port);
      const rendered: Record<string, string> = {};
      for (const template of spec.templates) {
        const source = join(paths.sourceDir, template);
        rendered[template] = renderTemplate(await Deno.readTextFile(source), vars, source);
        assert.doesNotMatch(rendered[template], /\{\{[A-Z0-9_]+\}\}/, template);
      }
      const { file, pattern } = spec.portInConfig;
      const match = pattern.exec(rendered[file] ?? "");
      assert.equal(match?.[1], String(port), `${file} should name port ${port} via ${pattern}`);
      assert.equal(spec.ports(port)[0]?.port, port);
    } finally {
      await Deno.remove(paths.dir, { recursive: true });
    }
  });
}
