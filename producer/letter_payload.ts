/**
 * What a producer dead letter holds of its input: the input whole when it fits a Kafka record,
 * otherwise its first {@linkcode MAX_DEAD_LETTER_PAYLOAD_BYTES} bytes with the whole input's size
 * and SHA-256, so the excerpt is marked as one and the original can still be matched. Pure.
 *
 * @module
 */
import { createHash } from "node:crypto";

/**
 * Largest payload a producer dead letter carries whole, bytes. Kafka's default record limit
 * (`message.max.bytes`) is 1 MiB and the sink sends dead letters in batches of at most 768 KiB,
 * so 512 KiB leaves room for the reason and the Avro framing in every case.
 */
export const MAX_DEAD_LETTER_PAYLOAD_BYTES = 512 * 1024;

/** A dead letter's `payload`, `originalSize` and `originalSha256`. */
export interface LetterPayload {
  readonly payload: Uint8Array;
  /** `null` when `payload` is the input whole. */
  readonly originalSize: number | null;
  /** `null` when `payload` is the input whole; else the whole input's SHA-256, lower-case hex. */
  readonly originalSha256: string | null;
}

/** The payload fields of a dead letter of `input`, cut to `maxBytes` when it is larger. */
export function letterPayload(
  input: Uint8Array,
  maxBytes: number = MAX_DEAD_LETTER_PAYLOAD_BYTES,
): LetterPayload {
  if (input.length <= maxBytes) return { payload: input, originalSize: null, originalSha256: null };
  return {
    payload: input.subarray(0, maxBytes),
    originalSize: input.length,
    originalSha256: createHash("sha256").update(input).digest("hex"),
  };
}
