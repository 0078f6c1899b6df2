import assert from "node:assert/strict";
import { renderTemplate } from "./render.ts";

Deno.test("renderTemplate() fills every {{NAME}} and leaves other braces alone", () => {
  const text = 'port: "{{CQL_PORT}}"\nseeds: "127.0.0.1:{{PORT}}" # {{...}} and { x }';
  assert.equal(
    renderTemplate(text, { CQL_PORT: "9042", PORT: "7000" }, "t.yaml"),
    'port: "9042"\nseeds: "127.0.0.1:7000" # {{...}} and { x }',
  );
});

Deno.test("renderTemplate() names an unknown placeholder and its file", () => {
  assert.throws(
    () => renderTemplate("a={{TYPO}}", {}, "/x/server.properties"),
    /Unknown placeholder \{\{TYPO\}\} in \/x\/server\.properties/,
  );
});
