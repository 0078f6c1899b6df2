/**
 * Browser sessions of the status endpoint, with no server state: a session value is
 * `v1.<expiry ms>.<mac>`, where `mac` is HMAC-SHA-256 of `v1.<expiry ms>` under a key derived
 * from STATUS_TOKEN (itself an HMAC of the token). So the cookie never holds the token, cannot
 * be forged or extended without it, ends at its expiry (12 hours by default) whatever the
 * browser keeps, survives a restart of the endpoint, and every session ends when the token
 * changes. Values are compared in constant time.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** How long a session lasts by default: 12 hours. */
export const SESSION_TTL_MS = 12 * 3_600_000;

/** Issues and checks session values. */
export interface Sessions {
  /** How long a session lasts, ms (the cookie's Max-Age). */
  readonly ttlMs: number;
  /** A new session value, valid until `now + ttlMs`. */
  issue(now: number): Promise<string>;
  /** Whether `value` is a session this token issued that has not expired at `now`. */
  verify(value: string, now: number): Promise<boolean>;
}

const encoder = new TextEncoder();
const VALUE = /^v1\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/;

/** Compares two strings in time that does not depend on where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

async function hmacKey(secret: Uint8Array): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

async function mac(key: CryptoKey, text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
}

/** Sessions for `token` (not empty), lasting `ttlMs` (default {@linkcode SESSION_TTL_MS}). */
export function createSessions(token: string, options: { ttlMs?: number } = {}): Sessions {
  if (token === "") {
    throw new RangeError("createSessions() needs a token: sessions are keyed by it");
  }
  const ttlMs = options.ttlMs ?? SESSION_TTL_MS;
  // The token itself never signs: a key derived from it does, made once.
  const key = (async () =>
    await hmacKey(
      await mac(await hmacKey(encoder.encode(token)), "market-pipeline status session key v1"),
    ))();
  async function sign(expiry: number): Promise<string> {
    return Buffer.from(await mac(await key, `v1.${expiry}`)).toString("base64url");
  }
  return {
    ttlMs,
    async issue(now) {
      const expiry = now + ttlMs;
      return `v1.${expiry}.${await sign(expiry)}`;
    },
    async verify(value, now) {
      const match = VALUE.exec(value);
      if (!match) return false;
      const expiry = Number(match[1]);
      const expected = await sign(expiry);
      return safeEqual(match[2]!, expected) && now < expiry;
    },
  };
}
