/**
 * A value that must never be printed: a key, a password, a token. Its string, JSON and
 * `Deno.inspect` forms are all `[redacted]`; only `reveal()` gives the value, and only the code
 * that hands it to a client should call it.
 *
 * @module
 */

const REDACTED = "[redacted]";

/** Wraps a secret string so logging, JSON and inspection never show it. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself: pass it to a client, never to a log line. */
  reveal(): string {
    return this.#value;
  }

  /** Whether the secret is set to a non-empty value. */
  get isSet(): boolean {
    return this.#value.length > 0;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}

/**
 * Replaces every occurrence of each secret's value in `text` with `[redacted]`. Use it on any
 * text that might echo a secret back (an error from a client library, a URL).
 */
export function redact(text: string, secrets: Iterable<Secret | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret?.isSet) continue;
    const value = secret.reveal();
    out = out.split(value).join(REDACTED);
    const encoded = encodeURIComponent(value);
    if (encoded !== value) out = out.split(encoded).join(REDACTED);
  }
  return out;
}
