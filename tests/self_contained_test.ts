/**
 * A user has only the repository: no test, script or module may read a file outside it. Every
 * relative `new URL("…", import.meta.url)` in the checkout's TypeScript must resolve inside the
 * checkout, and no source names a machine-local path.
 */
import assert from "node:assert/strict";
import { relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = fromFileUrl(new URL("../", import.meta.url)).replace(/\/$/, "");
const SKIP = new Set([".git", ".local", ".artifacts", "node_modules"]);
const RELATIVE_URL = /new URL\(\s*(["'`])(\.{1,2}\/[^"'`$]*)\1\s*,\s*import\.meta\.url\s*\)/g;

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    if (SKIP.has(entry.name)) continue;
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* sources(path);
    else if (entry.isFile && /\.(ts|js)$/.test(entry.name)) yield path;
  }
}

Deno.test("every relative URL a module resolves from import.meta.url stays inside the repository", async () => {
  const outside: string[] = [];
  let checked = 0;
  for await (const path of sources(ROOT)) {
    const text = await Deno.readTextFile(path);
    for (const match of text.matchAll(RELATIVE_URL)) {
      checked++;
      const target = fromFileUrl(new URL(match[2]!, `file://${path}`));
      if (relative(ROOT, target).startsWith("..")) {
        outside.push(`${relative(ROOT, path)}: ${match[2]} -> ${target}`);
      }
    }
  }
  assert.ok(checked > 10, `found only ${checked} relative URLs: the pattern is wrong`);
  assert.deepEqual(outside, [], "files outside the repository are read");
});

Deno.test("no module names the reference folder beside the checkout or a machine-local path", async () => {
  const found: string[] = [];
  for await (const path of sources(ROOT)) {
    if (path.endsWith("/self_contained_test.ts")) continue;
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines.forEach((line, i) => {
      if (/\.\.\/\.\.\/shared\/fixtures|\/work\/shared|\/work\/main/.test(line)) {
        found.push(`${relative(ROOT, path)}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(found, []);
});
