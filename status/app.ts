/**
 * The status endpoint's routes, on Hono:
 * - `GET /healthz`: the process is alive (never needs the token);
 * - `GET /readyz`: Kafka reachable, Cassandra answering at LOCAL_QUORUM and every expected worker reporting;
 * - `GET /metrics`: Prometheus text exposition of every worker's metrics plus consumer lag;
 * - `GET /status`: the same facts as JSON for people and scripts.
 * Every route but `/healthz` answers only requests whose `Host` names this machine by a loopback
 * name, the bind address or a name of STATUS_ALLOWED_HOSTS (any port); others get a 421, so a
 * page of another site that rebinds its name to 127.0.0.1 reads nothing, token or not.
 * With a token configured, every route but `/healthz` needs `Authorization: Bearer <token>` (the
 * scheme in any case, RFC 9110), or the session cookie a browser gets by opening
 * `/?token=<token>` once, which redirects to `/` (other parameters kept) so the token leaves
 * the address bar: that is how the market page (mounted through `extend`) and its server-sent
 * events pass. The cookie holds a signed expiry, not the token (`session.ts`, 12 hours), and is
 * HttpOnly and SameSite=Lax: Strict was not sent on the redirect when the `/?token=` link was
 * followed from another site (a page of another site starts that navigation, and Strict counts
 * the whole redirect chain as cross-site), so such a link ended in 401. Lax is still CSRF-safe
 * here: every route is a read-only GET, Lax cookies go with top-level navigations only (never
 * with another site's fetch, EventSource or image), and what a navigation shows goes to the
 * user, not to the other site. Responses never contain a secret, and every one says
 * `X-Content-Type-Options: nosniff`.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { Logger } from "../shared/log.ts";
import type { WorkerRole } from "../shared/types.ts";
import { type Labels, MetricsRegistry, renderPrometheus } from "../shared/metrics.ts";
import type { Secret } from "../shared/secret.ts";
import type { WorkerView } from "../shared/report_collector.ts";
import type { PartitionLag } from "../shared/lag.ts";
import type { ServeInfo } from "./server.ts";
import { createSessions, safeEqual, SESSION_TTL_MS } from "./session.ts";
import { METRIC } from "../shared/metric_names.ts";

/** What the app reads; `main.ts` wires the real sources, tests pass their own. */
export interface StatusSources {
  workers(): WorkerView[];
  lag(): Promise<PartitionLag[]>;
  kafkaUp(): Promise<boolean>;
  cassandraUp(): Promise<boolean>;
}

/** Options of {@linkcode createStatusApp}. */
export interface StatusAppOptions {
  readonly sources: StatusSources;
  readonly token: Secret;
  readonly expectedWorkers: readonly WorkerRole[];
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
  /** How long a browser session lasts. Default {@linkcode SESSION_TTL_MS} (12 hours). */
  readonly sessionTtlMs?: number;
  /**
   * Host names answered besides {@linkcode LOOPBACK_HOSTS} (lower case, IPv6 in brackets, no
   * port): STATUS_HOST and STATUS_ALLOWED_HOSTS ({@linkcode allowedHostsOf}). Default none.
   */
  readonly allowedHosts?: readonly string[];
  /** The status endpoint's own counters (its bounds and connections), shown on `/metrics`. */
  readonly metrics?: MetricsRegistry;
  /**
   * Where to write one line per request (STATUS_ACCESS_LOG=true): method, path with any `token`
   * parameter removed, status, milliseconds to the response head, client address. Headers
   * (Authorization, Cookie) are never written. Default none.
   */
  readonly accessLog?: Logger;
  /** Extra routes (the market page) mounted after auth. */
  readonly extend?: (app: Hono) => void;
}

/** The names of this machine a browser uses for a local server; always answered. */
export const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost", "[::1]"];

/**
 * The host names to answer besides loopback: the bind address (unless a wildcard) and the
 * configured ones.
 */
export function allowedHostsOf(
  status: { host: string; allowedHosts: readonly string[] },
): string[] {
  const bind = status.host.toLowerCase();
  const names = [...status.allowedHosts];
  if (bind !== "0.0.0.0" && bind !== "::" && bind !== "[::]") {
    names.push(bind.includes(":") && !bind.startsWith("[") ? `[${bind}]` : bind);
  }
  return names;
}

/**
 * The host name of a `Host` header, lower case, without port or trailing dot (`[::1]` keeps its
 * brackets), or undefined when it is not a host name at all.
 */
export function hostNameOf(header: string): string | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.\-]+?)\.?(?::\d{1,5})?$/.exec(
    header.trim().toLowerCase(),
  );
  return match?.[1];
}

/** The cookie that carries a browser's session (see `session.ts`). */
export const SESSION_COOKIE = "market_status_session";

/** The token of an `Authorization` header of the Bearer scheme (any case), or undefined. */
export function bearerToken(header: string): string | undefined {
  // Any visible characters, not only RFC 6750's b64token: STATUS_TOKEN is the user's own text
  // (a generated password may hold "=" or "!" anywhere), and it is compared in constant time.
  return /^bearer +([\x21-\x7e]+) *$/i.exec(header)?.[1];
}

/** The path and query of `url` for a log line: no `token` parameter, at most 300 characters. */
export function loggedPath(url: string): string {
  const { pathname, searchParams } = new URL(url);
  searchParams.delete("token");
  const query = searchParams.toString();
  const path = query === "" ? pathname : `${pathname}?${query}`;
  return path.length > 300 ? `${path.slice(0, 300)}...` : path;
}

/** Sets a header on the response, copying it first if its headers are immutable. */
function setHeader(c: Context, name: string, value: string): void {
  try {
    c.res.headers.set(name, value);
  } catch {
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set(name, value);
  }
}

/** `/?token=...&symbol=...` without its token: where a login redirects to. */
export function withoutToken(url: string): string {
  const { searchParams } = new URL(url);
  searchParams.delete("token");
  const rest = searchParams.toString();
  return rest === "" ? "/" : `/?${rest}`;
}

/** Throughput of each stage, records per second, from the workers' counter rates. */
export function throughput(
  workers: readonly WorkerView[],
): Record<string, { in: number; out: number }> {
  const out: Record<string, { in: number; out: number }> = {};
  for (const worker of workers) {
    if (!worker.up) continue;
    const entry = out[worker.role] ??= { in: 0, out: 0 };
    for (const [key, rate] of Object.entries(worker.rates)) {
      if (
        key.startsWith(METRIC.stageMessagesIn) ||
        key.startsWith(METRIC.producerTradesReceived)
      ) entry.in += rate;
      if (
        key.startsWith(METRIC.stageRowsWritten) ||
        key.startsWith(METRIC.producerTradesAcked)
      ) entry.out += rate;
    }
  }
  return out;
}

/** Builds the app. */
export function createStatusApp(options: StatusAppOptions): Hono {
  const { sources, token, expectedWorkers } = options;
  const now = options.now ?? Date.now;
  const allowed = new Set([...LOOPBACK_HOSTS, ...(options.allowedHosts ?? [])]);
  const metrics = options.metrics ?? new MetricsRegistry();
  const refused = metrics.counter(
    "pipeline_status_requests_refused_total",
    "Requests the status endpoint refused: host (a Host it does not answer to), token (missing or wrong).",
  );
  const app = new Hono();

  app.use("*", async (c, next) => {
    const started = now();
    await next();
    setHeader(c, "X-Content-Type-Options", "nosniff");
    options.accessLog?.info("request", {
      method: c.req.method,
      path: loggedPath(c.req.url),
      status: c.res.status,
      ms: now() - started,
      client: (c.env as Partial<ServeInfo> | undefined)?.remoteAddr?.hostname,
    });
  });

  // Not behind the host check: a liveness probe may name the container by its address, and
  // "ok" tells a rebinding page nothing.
  app.get("/healthz", (c) => c.text("ok\n"));

  // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 reaches this
  // server as its own origin, but its requests still say `Host: evil.example`.
  app.use("*", async (c, next) => {
    const header = c.req.header("host") ?? new URL(c.req.url).host;
    const name = hostNameOf(header);
    if (name !== undefined && allowed.has(name)) return await next();
    refused.inc({ reason: "host" });
    return c.json(
      {
        error: `this status endpoint does not answer to the host ${
          JSON.stringify(header.slice(0, 100))
        }: open it as 127.0.0.1 or localhost, or add the name to STATUS_ALLOWED_HOSTS`,
      },
      421,
    );
  });

  const sessions = token.isSet
    ? createSessions(token.reveal(), { ttlMs: options.sessionTtlMs ?? SESSION_TTL_MS })
    : undefined;
  app.use("*", async (c, next) => {
    if (!sessions) return await next();
    const secret = token.reveal();
    const bearer = bearerToken(c.req.header("authorization") ?? "");
    if (bearer !== undefined && safeEqual(bearer, secret)) return await next();
    const cookie = getCookie(c, SESSION_COOKIE);
    if (cookie !== undefined && await sessions.verify(cookie, now())) return await next();
    const query = c.req.method === "GET" && c.req.path === "/" ? c.req.query("token") : undefined;
    if (query !== undefined && safeEqual(query, secret)) {
      setCookie(c, SESSION_COOKIE, await sessions.issue(now()), {
        httpOnly: true,
        sameSite: "Lax",
        path: "/",
        maxAge: Math.floor(sessions.ttlMs / 1000),
      });
      c.header("Cache-Control", "no-store");
      c.header("Referrer-Policy", "no-referrer");
      return c.redirect(withoutToken(c.req.url), 303);
    }
    refused.inc({ reason: "token" });
    c.header("WWW-Authenticate", 'Bearer realm="market-pipeline"');
    return c.json(
      {
        error:
          "a bearer token is required (Authorization: Bearer <STATUS_TOKEN>; in a browser, open /?token=<STATUS_TOKEN> once)",
      },
      401,
    );
  });

  async function readiness() {
    const [kafka, cassandra] = await Promise.all([
      sources.kafkaUp().catch(() => false),
      sources.cassandraUp().catch(() => false),
    ]);
    const workers = sources.workers();
    const missing = expectedWorkers.filter((role) => !workers.some((w) => w.role === role && w.up));
    const reasons: string[] = [];
    if (!kafka) reasons.push("Kafka is not reachable");
    if (!cassandra) reasons.push("Cassandra is not reachable at LOCAL_QUORUM");
    for (const role of missing) reasons.push(`no ${role} worker is reporting`);
    return { ready: reasons.length === 0, kafka, cassandra, missing, reasons };
  }

  app.get("/readyz", async (c) => {
    const result = await readiness();
    return c.json(result, result.ready ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    const workers = sources.workers();
    const own = new MetricsRegistry();
    const up = own.gauge("pipeline_worker_up", "1 while a worker reports, 0 once it stopped.");
    const age = own.gauge(
      "pipeline_worker_last_report_age_seconds",
      "Seconds since a worker's last report.",
    );
    const at = now();
    for (const w of workers) {
      up.set(w.up ? 1 : 0, { worker: w.workerId, role: w.role });
      age.set((at - w.lastReport) / 1000, { worker: w.workerId, role: w.role });
    }
    const lagGauge = own.gauge(
      "pipeline_consumer_lag_records",
      "Log end offset minus the group's committed offset, per partition.",
    );
    const kafkaUp = own.gauge("pipeline_kafka_up", "1 when the status endpoint reaches Kafka.");
    const cassandraUp = own.gauge(
      "pipeline_cassandra_up",
      "1 when the status endpoint reads a pipeline table at LOCAL_QUORUM (the writes' consistency).",
    );
    const [lag, kafka, cassandra] = await Promise.all([
      sources.lag().catch(() => [] as PartitionLag[]),
      sources.kafkaUp().catch(() => false),
      sources.cassandraUp().catch(() => false),
    ]);
    for (const l of lag) {
      lagGauge.set(l.lag, { group: l.group, topic: l.topic, partition: String(l.partition) });
    }
    kafkaUp.set(kafka ? 1 : 0);
    cassandraUp.set(cassandra ? 1 : 0);
    const snapshots: { snapshot: ReturnType<MetricsRegistry["snapshot"]>; labels?: Labels }[] = [
      { snapshot: own.snapshot() },
    ];
    snapshots.push({ snapshot: metrics.snapshot() });
    for (const w of workers) {
      if (w.up) {
        snapshots.push({ snapshot: w.snapshot, labels: { worker: w.workerId, role: w.role } });
      }
    }
    return c.body(renderPrometheus(snapshots), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });

  app.get("/status", async (c) => {
    const workers = sources.workers();
    const [lag, ready] = await Promise.all([sources.lag().catch(() => []), readiness()]);
    const at = now();
    const lagByGroup: Record<string, number> = {};
    for (const l of lag) lagByGroup[l.group] = (lagByGroup[l.group] ?? 0) + l.lag;
    return c.json({
      time: new Date(at).toISOString(),
      ready: ready.ready,
      reasons: ready.reasons,
      kafka: ready.kafka,
      cassandra: ready.cassandra,
      throughput: throughput(workers),
      lag: { total: lagByGroup, partitions: lag },
      workers: workers.map((w) => ({
        workerId: w.workerId,
        role: w.role,
        host: w.host,
        pid: w.pid,
        up: w.up,
        state: w.state,
        startedAt: new Date(w.startedAt).toISOString(),
        lastReportAgeSeconds: (at - w.lastReport) / 1000,
        rates: w.rates,
      })),
    });
  });

  options.extend?.(app);
  return app;
}
