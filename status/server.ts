/**
 * The status endpoint's HTTP server: Deno's `node:http` serving a fetch-style handler (the Hono
 * app), because `Deno.serve` (Deno 2.9) has no header timeout, no idle timeout and no connection
 * cap: sockets with partial headers, with no bytes at all, or idle after a keep-alive response
 * were all still open after 321 s. Here, on every connection:
 * - a request's head must arrive within `headersTimeoutMs` (10 s) and the whole request within
 *   `requestTimeoutMs` (30 s), or it gets `408` and is closed;
 * - a keep-alive connection with no request is closed after `keepAliveTimeoutMs` (5 s; Deno's
 *   `node:http` adds 1 s);
 * - a connection on which no byte moves either way for `idleTimeoutMs` (60 s) is closed. A
 *   response still being sent is not idle: the market page's event streams send a comment at
 *   least every 15 s, and a client that stops reading one is closed after this long;
 * - at most `maxConnections` (STATUS_MAX_CONNECTIONS) are open; one more is closed at once.
 * Counted in `pipeline_status_connections` (open now), `pipeline_status_connections_refused_total`
 * and `pipeline_status_connections_closed_total{reason="request_timeout|idle|bad_request"}`.
 *
 * Request bodies are not read (every route is a GET); a request whose target is not a path
 * (`GET http://other/ HTTP/1.1`, `OPTIONS *`) or whose head `Headers` refuses is a 400.
 *
 * @module
 */
import http from "node:http";
import type { Socket } from "node:net";
import { MetricsRegistry } from "../shared/metrics.ts";

/** Where a request came from. */
export interface ServeInfo {
  readonly remoteAddr: { readonly hostname: string; readonly port: number };
}

/** What the server calls for each request. */
export type FetchHandler = (request: Request, info: ServeInfo) => Response | Promise<Response>;

/** Options of {@linkcode serveStatus}. */
export interface StatusServerOptions {
  readonly hostname: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly handler: FetchHandler;
  /** Aborting it shuts the server down, as {@linkcode StatusServer.shutdown}. */
  readonly signal?: AbortSignal;
  /** A request's head must arrive within this. Default 10000 ms. */
  readonly headersTimeoutMs?: number;
  /** The whole request must arrive within this. Default 30000 ms. */
  readonly requestTimeoutMs?: number;
  /** A keep-alive connection with no request closes after this (plus 1 s). Default 5000 ms. */
  readonly keepAliveTimeoutMs?: number;
  /** A connection on which no byte moves either way closes after this. Default 60000 ms. */
  readonly idleTimeoutMs?: number;
  /** Connections open at once; one more is closed at once. Default 256. */
  readonly maxConnections?: number;
  /** Where connections are counted. Default a registry of its own. */
  readonly metrics?: MetricsRegistry;
  /** The response when the handler throws. Default a plain 500. */
  readonly onError?: (error: unknown) => Response | Promise<Response>;
}

/** A listening server. */
export interface StatusServer {
  /** The address it listens on (the port chosen when 0 was asked). */
  readonly addr: { readonly hostname: string; readonly port: number };
  /** Settles once the server is closed and every connection ended. */
  readonly finished: Promise<void>;
  /** Connections open now. */
  connections(): number;
  /** Stops accepting, closes idle connections and waits for the others to end. */
  shutdown(): Promise<void>;
}

function plainResponse(status: number, text: string): Response {
  return new Response(text, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" },
  });
}

/** The `Request` of a `node:http` request; throws a `RangeError` saying what is malformed. */
export function requestOf(req: http.IncomingMessage, signal: AbortSignal): Request {
  const target = req.url ?? "";
  if (!target.startsWith("/")) {
    throw new RangeError(
      `the request target must be a path, got ${JSON.stringify(target.slice(0, 60))}`,
    );
  }
  const headers = new Headers();
  const raw = req.rawHeaders;
  try {
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  } catch (error) {
    throw new RangeError(`a request header is malformed: ${(error as Error).message}`);
  }
  // The authority only shapes `request.url`: routes read the path; `app.ts` checks Host itself.
  const host = req.headers.host ?? "";
  const base = /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)
    ? `http://${host}`
    : "http://unknown.invalid";
  return new Request(new URL(target, base), { method: req.method ?? "GET", headers, signal });
}

/** Resolves once `res` can take more, or is closed. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Writes `response` to `res`, streaming its body; a client gone cancels the body. */
async function send(
  method: string,
  response: Response,
  res: http.ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  res.writeHead(response.status, headers);
  if (!response.body || method === "HEAD") {
    await response.body?.cancel();
    res.end();
    return;
  }
  const reader = response.body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    signal.removeEventListener("abort", cancel);
    if (res.destroyed) cancel();
  }
}

const CLIENT_ERROR_RESPONSES: Readonly<Record<string, string>> = {
  ERR_HTTP_REQUEST_TIMEOUT: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n",
  HPE_HEADER_OVERFLOW: "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n",
};
const BAD_REQUEST = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";

/**
 * Starts the server; resolves once it listens. Rejects with an error naming the address and
 * `STATUS_PORT` when the port is taken.
 */
export function serveStatus(options: StatusServerOptions): Promise<StatusServer> {
  const headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
  const requestTimeoutMs = Math.max(options.requestTimeoutMs ?? 30_000, headersTimeoutMs);
  const maxConnections = options.maxConnections ?? 256;
  const metrics = options.metrics ?? new MetricsRegistry();
  const openGauge = metrics.gauge(
    "pipeline_status_connections",
    "Connections open to the status endpoint.",
  );
  const refused = metrics.counter(
    "pipeline_status_connections_refused_total",
    `Connections the status endpoint closed at once because ${maxConnections} (STATUS_MAX_CONNECTIONS) were open.`,
  );
  const closed = metrics.counter(
    "pipeline_status_connections_closed_total",
    "Connections the status endpoint closed: request_timeout (head or request too slow), idle (no byte either way, or keep-alive unused), bad_request.",
  );
  const onError = options.onError ?? (() => plainResponse(500, "internal error\n"));

  const server = http.createServer({
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    // How often the head and request timeouts are checked.
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeoutMs / 4))),
  });
  server.timeout = options.idleTimeoutMs ?? 60_000;

  const open = new Set<Socket>();
  // Before node:http's own listener, so a connection over the cap never reaches the parser.
  server.prependListener("connection", (socket: Socket) => {
    if (open.size >= maxConnections) {
      refused.inc();
      socket.destroy();
      return;
    }
    open.add(socket);
    openGauge.set(open.size);
    socket.once("close", () => {
      open.delete(socket);
      openGauge.set(open.size);
    });
  });
  // With a listener here, closing is ours: node:http would otherwise destroy the socket itself.
  server.on("timeout", (socket: Socket) => {
    closed.inc({ reason: "idle" });
    socket.destroy();
  });
  server.on("clientError", (error: Error & { code?: string }, socket: Socket) => {
    const timedOut = error.code === "ERR_HTTP_REQUEST_TIMEOUT";
    closed.inc({ reason: timedOut ? "request_timeout" : "bad_request" });
    const message = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    try {
      if (socket.writable && !message?.headersSent) {
        socket.write(CLIENT_ERROR_RESPONSES[error.code ?? ""] ?? BAD_REQUEST);
      }
    } finally {
      socket.destroy();
    }
  });

  let shutting: Promise<void> | undefined;
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const controller = new AbortController();
    res.once("close", () => controller.abort());
    res.on("error", () => {}); // a client gone mid-write: "close" ends the response

    // Shutting down: a connection whose response ends is idle, and closed.
    res.once("finish", () => {
      if (shutting) setTimeout(() => server.closeIdleConnections(), 0);
    });
    req.resume(); // bodies are not read; drained so keep-alive goes on
    const method = req.method ?? "GET";
    const info: ServeInfo = {
      remoteAddr: { hostname: req.socket.remoteAddress ?? "", port: req.socket.remotePort ?? 0 },
    };
    void (async () => {
      let response: Response;
      try {
        response = await options.handler(requestOf(req, controller.signal), info);
      } catch (error) {
        response = error instanceof RangeError
          ? plainResponse(400, `bad request: ${error.message}\n`)
          : await Promise.resolve(onError(error)).catch(() =>
            plainResponse(500, "internal error\n")
          );
      }
      await send(method, response, res, controller.signal);
    })().catch(() => res.destroy());
  });

  const finished = new Promise<void>((resolve) => server.once("close", () => resolve()));
  function shutdown(): Promise<void> {
    shutting ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    return shutting;
  }
  options.signal?.addEventListener("abort", () => void shutdown(), { once: true });

  return new Promise((resolve, reject) => {
    server.once("error", (error: Error & { code?: string }) => {
      reject(
        error.code === "EADDRINUSE"
          ? new Error(
            `cannot listen on ${options.hostname}:${options.port}: the address is in use (set STATUS_PORT to another port)`,
            { cause: error },
          )
          : error,
      );
    });
    // STATUS_HOST may write an IPv6 address in brackets, as in a URL.
    server.listen(options.port, options.hostname.replace(/^\[(.*)\]$/, "$1"), () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : options.port;
      resolve({
        addr: { hostname: options.hostname, port },
        finished,
        connections: () => open.size,
        shutdown,
      });
    });
  });
}
