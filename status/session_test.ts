import assert from "node:assert/strict";
import { createSessions, safeEqual, SESSION_TTL_MS } from "./session.ts";

const NOW = Date.parse("2026-12-01T12:00:00Z");

Deno.test("a session value holds its expiry and a MAC, never the token", async () => {
  const sessions = createSessions("tok-123");
  const value = await sessions.issue(NOW);
  assert.match(value, new RegExp(`^v1\\.${NOW + SESSION_TTL_MS}\\.[A-Za-z0-9_-]{43}$`));
  assert.ok(!value.includes("tok-123"));
  assert.equal(await sessions.verify(value, NOW), true);
  assert.equal(await sessions.verify(value, NOW + SESSION_TTL_MS), false, "expired");
  assert.equal(await createSessions("tok-124").verify(value, NOW), false, "another token");
  for (const bad of ["", "v1", "v1.1.x", `v2${value.slice(2)}`, `${value}A`, "tok-123"]) {
    assert.equal(await sessions.verify(bad, NOW), false, bad);
  }
  assert.throws(() => createSessions(""), /needs a token/);
});

Deno.test("safeEqual() compares whole strings", () => {
  assert.ok(safeEqual("abc", "abc"));
  assert.ok(!safeEqual("abc", "abd"));
  assert.ok(!safeEqual("abc", "abcd"));
  assert.ok(!safeEqual("", "a"));
});
