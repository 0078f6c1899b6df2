import assert from "node:assert/strict";
import { redact, Secret } from "./secret.ts";

Deno.test("redact() removes a secret and its URL-encoded form from text", () => {
  const key = new Secret("a+b/c=d");
  const text = "wss://ws.finnhub.io?token=a%2Bb%2Fc%3Dd failed; key a+b/c=d";
  assert.equal(redact(text, [key]), "wss://ws.finnhub.io?token=[redacted] failed; key [redacted]");
});

Deno.test("redact() ignores unset secrets", () => {
  assert.equal(redact("nothing here", [new Secret(""), undefined]), "nothing here");
});

Deno.test("a Secret prints as [redacted] everywhere", () => {
  const secret = new Secret("pw");
  assert.equal(`${secret}`, "[redacted]");
  assert.equal(JSON.stringify({ secret }), '{"secret":"[redacted]"}');
  assert.equal(Deno.inspect({ secret }), "{ secret: [redacted] }");
});
