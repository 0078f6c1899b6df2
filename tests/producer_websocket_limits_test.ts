/**
 * Frames Deno's WebSocket refuses before any JavaScript sees them: a text frame that is not
 * UTF-8, and one over its 64 MiB limit. A raw server (handshake by hand, frames written byte by
 * byte) sends them to the producer's client; the client must report each as an unreadable frame
 * (the producer dead-letters that, with no payload), then reconnect. This pins the error texts
 * `finnhub_client.ts` recognises to what the runtime really says. No Kafka needed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type FrameMeta, runFinnhubClient } from "../producer/finnhub_client.ts";
import { createProducerMetrics } from "../producer/metrics.ts";
import { createLogger } from "../shared/log.ts";
import { Secret } from "../shared/secret.ts";
import { waitFor } from "./helpers.ts";

const encoder = new TextEncoder();

/** One unmasked, final WebSocket frame. */
function wsFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const header = length < 126
    ? [0x80 | opcode, length]
    : length < 65_536
    ? [0x80 | opcode, 126, length >> 8, length & 255]
    : [0x80 | opcode, 127, 0, 0, 0, 0, ...[24, 16, 8, 0].map((shift) => (length >>> shift) & 255)];
  const out = new Uint8Array(header.length + length);
  out.set(header);
  out.set(payload, header.length);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

/** Serves each connection, in turn, the frames of `script[n]` after a ping. */
function rawServer(script: readonly Uint8Array[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const served = (async () => {
    let n = 0;
    for await (const conn of listener) {
      conns.push(conn);
      const buffer = new Uint8Array(8192);
      const read = await conn.read(buffer);
      const request = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
      const key = /sec-websocket-key: *(.+)\r\n/i.exec(request)?.[1]?.trim() ?? "";
      const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
        .digest("base64");
      await writeAll(
        conn,
        encoder.encode(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        ),
      );
      await writeAll(conn, wsFrame(1, encoder.encode('{"type":"ping"}')));
      const frame = script[n++];
      if (frame) await writeAll(conn, frame).catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed by the client
        }
      }
      await served;
    },
  };
}

Deno.test({
  name:
    "a text frame that is not UTF-8 and a frame over 64 MiB are reported as unreadable frames, and the client reconnects",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = rawServer([
      wsFrame(1, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
      wsFrame(1, new Uint8Array(64 * 1024 * 1024 + 1).fill(0x20)),
    ]);
    const refused: { error: string; meta: FrameMeta }[] = [];
    const frames: string[] = [];
    const metrics = createProducerMetrics();
    const controller = new AbortController();
    const done = runFinnhubClient({
      url: server.url,
      apiKey: new Secret(""),
      symbols: ["AAPL"],
      watchdogMs: 60_000,
      reconnectBaseMs: 10,
      reconnectMaxMs: 50,
      authBackoffMs: 1_000,
      log: createLogger("test", { level: "error", write: () => {} }),
      metrics,
      onFrame: (data) => frames.push(String(data)),
      onUnreadableFrame: (error, meta) => refused.push({ error, meta }),
      signal: controller.signal,
      runId: "raw",
    });
    try {
      await waitFor("two refused frames", () => refused.length === 2, { timeoutMs: 30_000 });
      assert.match(refused[0]!.error, /invalid utf-?8/i);
      assert.match(refused[1]!.error, /frame too large/i);
      assert.deepEqual(refused.map((r) => [r.meta.connectionId, r.meta.frameSeq]), [
        ["raw-1", 2],
        ["raw-2", 2],
      ]);
      await waitFor("a third connection", () => metrics.connectionsOpened === 3);
      assert.ok(frames.length >= 2 && frames.every((f) => f === '{"type":"ping"}'), "only pings");
    } finally {
      controller.abort();
      await done;
      await server.close();
    }
  },
});
