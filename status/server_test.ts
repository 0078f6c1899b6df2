import assert from "node:assert/strict";
import { silentLogger } from "../shared/log.ts";
import { MetricsRegistry, renderPrometheus } from "../shared/metrics.ts";
import { createMarketHub } from "./market/hub.ts";
import { serveStatus, type StatusServer, type StatusServerOptions } from "./server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A raw TCP client: what it sent, what it read, and when the server closed it. */
interface Probe {
  readonly conn: Deno.TcpConn;
  /** Everything read so far. */
  text(): string;
  /** Settles with the milliseconds from connect to the server closing the connection. */
  readonly closed: Promise<number>;
  close(): void;
}

async function probe(port: number, send = ""): Promise<Probe> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  if (send) await conn.write(encoder.encode(send));
  let text = "";
  let open = true;
  const closed = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += decoder.decode(buffer.subarray(0, n));
      }
    } catch { /* reset or closed by us */ }
    return performance.now() - started;
  })();
  return {
    conn,
    text: () => text,
    closed,
    close() {
      if (open) conn.close();
      open = false;
    },
  };
}

/** `promise`, or a rejection after `ms` saying what did not happen. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** Resolves when `check()` is true, polling; rejects after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function start(options: Partial<StatusServerOptions> = {}) {
  const metrics = new MetricsRegistry();
  const server: StatusServer = await serveStatus({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => new Response("ok\n"),
    metrics,
    ...options,
  });
  const exposition = () => renderPrometheus([{ snapshot: metrics.snapshot() }]);
  return { server, port: server.addr.port, exposition };
}

const GET = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

Deno.test("a connection with partial headers, or no bytes at all, is closed after the header timeout with 408", async () => {
  const { server, port, exposition } = await start({ headersTimeoutMs: 300 });
  const partial = await probe(port, "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  const silent = await probe(port);
  try {
    for (const p of [partial, silent]) {
      const ms = await within(p.closed, 3000, "closed by the server");
      assert.ok(ms >= 250, `closed after ${ms} ms, not before the timeout`);
      assert.match(p.text(), /^HTTP\/1.1 408 Request Timeout\r\n/);
    }
    assert.match(
      exposition(),
      /^pipeline_status_connections_closed_total\{reason="request_timeout"\} 2$/m,
    );
  } finally {
    partial.close();
    silent.close();
    await server.shutdown();
  }
});

Deno.test("a client sending its head a byte at a time is still cut at the header timeout", async () => {
  const { server, port } = await start({ headersTimeoutMs: 300, idleTimeoutMs: 10_000 });
  const slow = await probe(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  const drip = setInterval(() => void slow.conn.write(encoder.encode("a")).catch(() => {}), 50);
  try {
    const ms = await within(slow.closed, 3000, "closed by the server");
    assert.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms`);
    assert.match(slow.text(), /^HTTP\/1.1 408 Request Timeout\r\n/);
  } finally {
    clearInterval(drip);
    slow.close();
    await server.shutdown();
  }
});

Deno.test("an idle keep-alive connection is closed after the keep-alive timeout", async () => {
  const { server, port, exposition } = await start({ keepAliveTimeoutMs: 200 });
  const client = await probe(port, GET);
  try {
    const ms = await within(client.closed, 4000, "closed by the server");
    assert.match(client.text(), /^HTTP\/1.1 200 OK\r\n[\s\S]*\r\n\r\n3\r\nok\n\r\n0\r\n\r\n$/);
    assert.ok(ms >= 200, `closed after ${ms} ms`);
    assert.match(exposition(), /^pipeline_status_connections_closed_total\{reason="idle"\} 1$/m);
  } finally {
    client.close();
    await server.shutdown();
  }
});

Deno.test("over the connection cap a new connection is closed at once and counted; freed slots serve again", async () => {
  const { server, port, exposition } = await start({ maxConnections: 3 });
  const held = await Promise.all([probe(port), probe(port), probe(port)]);
  await until(() => server.connections() === 3, 2000, "three connections open");
  const extra = await Promise.all([probe(port, GET), probe(port, GET)]);
  try {
    for (const p of extra) {
      await within(p.closed, 2000, "the connection over the cap closed");
      assert.equal(p.text(), "", "nothing is answered over the cap");
    }
    const text = exposition();
    assert.match(text, /^pipeline_status_connections_refused_total 2$/m);
    assert.match(text, /^pipeline_status_connections 3$/m);
    held[0]!.close();
    await until(() => server.connections() === 2, 2000, "a slot freed");
    const again = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(await again.text(), "ok\n");
  } finally {
    for (const p of [...held, ...extra]) p.close();
    await server.shutdown();
  }
});

Deno.test("an event stream outlives the idle and request timeouts while it sends, and ends when its client goes", async () => {
  const hub = createMarketHub({
    health: () => Promise.reject(new Error("no health in this test")),
    log: silentLogger(),
    healthIntervalMs: 50,
    keepAliveMs: 100,
  });
  const { server, port } = await start({
    headersTimeoutMs: 200,
    requestTimeoutMs: 200,
    keepAliveTimeoutMs: 200,
    idleTimeoutMs: 400,
    handler: () =>
      new Response(hub.connect({}), { headers: { "Content-Type": "text/event-stream" } }),
  });
  const stream = await probe(port, "GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  try {
    await until(
      () => (stream.text().match(/: keep-alive/g) ?? []).length >= 15,
      5000,
      "15 comments",
    );
    assert.match(stream.text(), /^HTTP\/1.1 200 OK\r\n/);
    assert.equal(hub.clients(), 1, "the stream is still open, 1.5 s in (idle timeout 0.4 s)");
    stream.close();
    await until(() => hub.clients() === 0, 2000, "the hub lets the client go");
  } finally {
    stream.close();
    hub.close();
    await server.shutdown();
  }
});

Deno.test("a client that stops reading an event stream is closed after the idle timeout", async () => {
  let sent = 0;
  const { server, port } = await start({
    idleTimeoutMs: 300,
    handler: () =>
      new Response(
        new ReadableStream({
          pull(controller) {
            sent++;
            controller.enqueue(new Uint8Array(64 * 1024));
          },
        }),
      ),
  });
  // Connects and never reads: the kernel buffers fill, then nothing moves.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(GET));
  try {
    await until(() => server.connections() === 0, 5000, "the stalled connection closed");
    assert.ok(sent > 1, `${sent} chunks made before the stall`);
  } finally {
    conn.close();
    await server.shutdown();
  }
});

Deno.test("a request target that is not a path is a 400; a handler that throws is a 500", async () => {
  const { server, port } = await start({
    handler: (request) => {
      if (new URL(request.url).pathname === "/boom") throw new Error("boom");
      return new Response(request.headers.get("host"));
    },
  });
  try {
    const absolute = await probe(port, "GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n");
    await until(() => absolute.text().includes("\r\n\r\n"), 2000, "an answer");
    assert.match(absolute.text(), /^HTTP\/1.1 400 Bad Request\r\n/);
    absolute.close();
    const boom = await fetch(`http://127.0.0.1:${port}/boom`);
    assert.equal(boom.status, 500);
    assert.equal(await boom.text(), "internal error\n");
    const host = await probe(port, "GET / HTTP/1.1\r\nHost: status:8080\r\n\r\n");
    await until(() => host.text().endsWith("\r\n0\r\n\r\n"), 2000, "an answer");
    assert.match(host.text(), /\r\n\r\nb\r\nstatus:8080\r\n/, "the handler sees the Host header");
    host.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("a taken port is an error naming the address and STATUS_PORT", async () => {
  const { server, port } = await start();
  try {
    await assert.rejects(
      serveStatus({ hostname: "127.0.0.1", port, handler: () => new Response() }),
      new RegExp(`cannot listen on 127.0.0.1:${port}: the address is in use \\(set STATUS_PORT`),
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("shutdown() waits for an open event stream, and finishes once it ends", async () => {
  const hub = createMarketHub({
    health: () => Promise.reject(new Error("no health in this test")),
    log: silentLogger(),
  });
  const { server, port } = await start({
    handler: (request) =>
      new URL(request.url).pathname === "/api/stream"
        ? new Response(hub.connect({}), { headers: { "Content-Type": "text/event-stream" } })
        : new Response("ok\n"),
  });
  const stream = await probe(port, GET.replace("/healthz", "/api/stream"));
  const idle = await probe(port, GET);
  try {
    await until(() => hub.clients() === 1, 2000, "the stream open");
    let finished = false;
    const shutdown = server.shutdown().then(() => finished = true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(finished, false, "the stream keeps the server");
    hub.close();
    await within(shutdown, 3000, "shutdown once the stream ended");
    assert.match(idle.text(), /\r\n\r\n3\r\nok\n/, "the keep-alive connection was answered");
    await within(server.finished, 100, "finished");
    await within(stream.closed, 1000, "the stream's connection closed");
  } finally {
    stream.close();
    idle.close();
    hub.close();
  }
});
