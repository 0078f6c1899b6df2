import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { letterPayload, MAX_DEAD_LETTER_PAYLOAD_BYTES } from "./letter_payload.ts";

Deno.test("letterPayload() keeps an input up to 512 KiB whole, unmarked", () => {
  const input = new Uint8Array(MAX_DEAD_LETTER_PAYLOAD_BYTES).fill(7);
  const kept = letterPayload(input);
  assert.equal(kept.payload, input);
  assert.equal(kept.originalSize, null);
  assert.equal(kept.originalSha256, null);
  assert.deepEqual(letterPayload(new Uint8Array()), {
    payload: new Uint8Array(),
    originalSize: null,
    originalSha256: null,
  });
});

Deno.test("letterPayload() keeps the first bytes of a larger input, with its size and SHA-256", () => {
  const input = new Uint8Array(MAX_DEAD_LETTER_PAYLOAD_BYTES + 1).map((_, i) => i % 251);
  const kept = letterPayload(input);
  assert.deepEqual(kept.payload, input.subarray(0, MAX_DEAD_LETTER_PAYLOAD_BYTES));
  assert.equal(kept.originalSize, MAX_DEAD_LETTER_PAYLOAD_BYTES + 1);
  assert.equal(kept.originalSha256, createHash("sha256").update(input).digest("hex"));
  assert.match(kept.originalSha256!, /^[0-9a-f]{64}$/);
  assert.equal(letterPayload(new Uint8Array([1, 2, 3]), 2).originalSize, 3);
});
