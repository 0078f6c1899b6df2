import assert from "node:assert/strict";
import { parseJavaMajor } from "./java.ts";

Deno.test("parseJavaMajor() reads the major of old and new version strings", () => {
  assert.equal(parseJavaMajor('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime'), 17);
  assert.equal(parseJavaMajor('java version "1.8.0_292"'), 8);
  assert.equal(parseJavaMajor('openjdk version "21" 2023-09-19'), 21);
  assert.ok(Number.isNaN(parseJavaMajor("bash: java: command not found")));
});
