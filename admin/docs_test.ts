import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { README_CONFIG_BEGIN, README_CONFIG_END, renderReadmeConfigTable } from "./env_example.ts";
import { PRODUCER_V8_FLAGS, STAGE_V8_FLAGS } from "../shared/topology.ts";

const root = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));

/** The cells of each table row between the markers, padding and separator rows dropped. */
function tableRows(text: string): string[][] {
  const begin = text.indexOf(README_CONFIG_BEGIN);
  const end = text.indexOf(README_CONFIG_END);
  assert.ok(begin >= 0 && end > begin, "README.md has no configuration table markers");
  return text.slice(begin, end).split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[\s|:-]+\|$/.test(line))
    .map((line) => line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim()));
}

Deno.test("README's configuration table lists every variable with its current default", async () => {
  const readme = await read("README.md");
  assert.deepEqual(
    tableRows(readme),
    tableRows(renderReadmeConfigTable()),
    "README.md is out of date: run `deno run -A admin/env_example.ts && deno fmt README.md`",
  );
});

Deno.test("README describes every deno task", async () => {
  const readme = await read("README.md");
  const tasks = Object.keys(JSON.parse(await read("deno.json")).tasks as Record<string, string>);
  const missing = tasks.filter((name) => {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return !new RegExp("`(deno task )?" + escaped + "[`\\s]").test(readme);
  });
  assert.deepEqual(missing, [], `README.md does not mention task(s): ${missing.join(", ")}`);
});

Deno.test("deno task producer and processor run with the heap bounds start and compose use", async () => {
  const tasks = JSON.parse(await read("deno.json")).tasks as Record<string, string>;
  assert.match(
    tasks["producer"] ?? "",
    new RegExp(` --v8-flags=${PRODUCER_V8_FLAGS} producer/main\\.ts$`),
  );
  assert.match(
    tasks["processor"] ?? "",
    new RegExp(` --v8-flags=${STAGE_V8_FLAGS} processor/main\\.ts$`),
  );
});

Deno.test("README's start and test commands pin the Deno version CI and the Dockerfile use", async () => {
  const readme = await read("README.md");
  const ci = await read(".ci/run");
  const dockerfile = await read("docker/deno.Dockerfile");
  const version = /^DENO_VERSION=(\S+)$/m.exec(ci)?.[1];
  assert.ok(version, ".ci/run sets no DENO_VERSION");
  assert.ok(readme.includes(`npx -y deno@${version} task start`));
  assert.ok(readme.includes(`npx -y deno@${version} test -A`));
  assert.ok(dockerfile.includes(`FROM denoland/deno:${version}`));
  assert.match(ci, /^deno test -A /m, ".ci/run must run the README's test command");
});

Deno.test("the runbook covers every alert rule", async () => {
  const runbook = await read("docs/RUNBOOK.md");
  const rules = parseYaml(await read("grafana/provisioning/alerting/rules.yml")) as {
    groups: { rules: { title: string }[] }[];
  };
  const titles = rules.groups.flatMap((g) => g.rules.map((r) => r.title));
  assert.ok(titles.length > 0);
  const missing = titles.filter((title) => !runbook.includes(`## ${title}`));
  assert.deepEqual(missing, [], `docs/RUNBOOK.md has no section for: ${missing.join(" | ")}`);
});

Deno.test("the deployment guide names every docker compose service", async () => {
  const deployment = await read("docs/DEPLOYMENT.md");
  const compose = parseYaml(await read("docker-compose.yml")) as {
    services: Record<string, unknown>;
  };
  const missing = Object.keys(compose.services).filter((name) =>
    !deployment.includes(`\`${name}\``)
  );
  assert.deepEqual(missing, [], `docs/DEPLOYMENT.md does not mention: ${missing.join(", ")}`);
});

Deno.test("every metric the docs name is one the code exports", async () => {
  const docs = [
    await read("README.md"),
    await read("docs/RUNBOOK.md"),
    await read("docs/DEPLOYMENT.md"),
  ]
    .join("\n");
  const named = new Set(docs.match(/\bpipeline_[a-z0-9_]+[a-z0-9]\b/g) ?? []);
  const sources: string[] = [];
  for (const dir of ["producer", "processor", "shared", "status"]) {
    for await (const entry of walkTs(new URL(`${dir}/`, root))) sources.push(entry);
  }
  const code = sources.join("\n");
  const unknown = [...named].filter((name) => !code.includes(`"${name}`));
  assert.deepEqual(unknown, [], `docs name metrics no code exports: ${unknown.join(", ")}`);
});

async function* walkTs(dir: URL): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) yield* walkTs(new URL(`${entry.name}/`, dir));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      yield await Deno.readTextFile(new URL(entry.name, dir));
    }
  }
}
