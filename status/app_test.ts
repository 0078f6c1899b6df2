import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { Secret } from "../shared/secret.ts";
import {
  allowedHostsOf,
  bearerToken,
  createStatusApp,
  hostNameOf,
  loggedPath,
  type StatusSources,
  withoutToken,
} from "./app.ts";
import type { WorkerView } from "../shared/report_collector.ts";
import { workerView } from "./test_doubles.ts";

const NOW = Date.parse("2026-11-24T15:00:00Z");

function worker(role: WorkerView["role"], overrides: Partial<WorkerView> = {}): WorkerView {
  const registry = new MetricsRegistry();
  registry.counter("pipeline_stage_messages_in_total", "in").inc({ stage: role }, 42);
  return workerView(role, NOW, {
    snapshot: registry.snapshot(),
    rates: { [`pipeline_stage_messages_in_total{stage="${role}"}`]: 100 },
    ...overrides,
  });
}

function sources(workers: WorkerView[], up = true): StatusSources {
  return {
    workers: () => workers,
    lag: () =>
      Promise.resolve([{
        group: "g.silver",
        topic: "raw",
        partition: 0,
        logEnd: 10,
        committed: 4,
        lag: 6,
      }]),
    kafkaUp: () => Promise.resolve(up),
    cassandraUp: () => Promise.resolve(up),
  };
}

const all = () =>
  ["producer", "bronze", "silver", "gold"].map((r) => worker(r as WorkerView["role"]));

Deno.test("/healthz answers without a token; every other route needs it when one is set", async () => {
  const app = createStatusApp({
    sources: sources(all()),
    token: new Secret("s3cret-token"),
    expectedWorkers: ["bronze"],
    now: () => NOW,
  });
  assert.equal((await app.request("/healthz")).status, 200);
  for (const path of ["/readyz", "/metrics", "/status"]) {
    const refused = await app.request(path);
    assert.equal(refused.status, 401, path);
    assert.ok(!(await refused.text()).includes("s3cret-token"));
    const wrong = await app.request(path, { headers: { Authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401, path);
    const ok = await app.request(path, { headers: { Authorization: "Bearer s3cret-token" } });
    assert.equal(ok.status, 200, path);
    assert.ok(!(await ok.text()).includes("s3cret-token"), `${path} leaks the token`);
  }
});

Deno.test("/readyz is 503 naming what is missing, 200 when all is there", async () => {
  const open = new Secret("");
  const down = createStatusApp({
    sources: sources([worker("bronze"), worker("silver", { up: false })], false),
    token: open,
    expectedWorkers: ["producer", "bronze", "silver", "gold"],
  });
  const response = await down.request("/readyz");
  assert.equal(response.status, 503);
  const body = await response.json();
  assert.deepEqual(body.reasons, [
    "Kafka is not reachable",
    "Cassandra is not reachable at LOCAL_QUORUM",
    "no producer worker is reporting",
    "no silver worker is reporting",
    "no gold worker is reporting",
  ]);
  const up = createStatusApp({
    sources: sources(all()),
    token: open,
    expectedWorkers: ["producer", "bronze", "silver", "gold"],
  });
  assert.equal((await up.request("/readyz")).status, 200);
});

Deno.test("/metrics has lag, worker liveness and each live worker's series labelled", async () => {
  const app = createStatusApp({
    sources: sources([worker("silver"), worker("gold", { up: false, state: "stopped" })]),
    token: new Secret(""),
    expectedWorkers: [],
    now: () => NOW,
  });
  const response = await app.request("/metrics");
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0.0.4/);
  const text = await response.text();
  assert.match(
    text,
    /^pipeline_consumer_lag_records\{group="g.silver",topic="raw",partition="0"\} 6$/m,
  );
  assert.match(text, /^pipeline_worker_up\{worker="silver-1",role="silver"\} 1$/m);
  assert.match(text, /^pipeline_worker_up\{worker="gold-1",role="gold"\} 0$/m);
  assert.match(
    text,
    /^pipeline_worker_last_report_age_seconds\{worker="silver-1",role="silver"\} 1$/m,
  );
  assert.match(
    text,
    /^pipeline_stage_messages_in_total\{stage="silver",worker="silver-1",role="silver"\} 42$/m,
  );
  assert.ok(!text.includes('stage="gold",worker="gold-1"'), "a down worker's series are left out");
  assert.match(text, /^pipeline_kafka_up 1$/m);
});

Deno.test("/status reports throughput per stage and lag per group", async () => {
  const app = createStatusApp({
    sources: sources(all()),
    token: new Secret(""),
    expectedWorkers: [],
  });
  const body = await (await app.request("/status")).json();
  assert.equal(body.throughput.silver.in, 100);
  assert.deepEqual(body.lag.total, { "g.silver": 6 });
  assert.equal(body.workers.length, 4);
});

Deno.test("/metrics shows the endpoint's own counters", async () => {
  const metrics = new MetricsRegistry();
  metrics.counter("pipeline_status_market_symbols_evicted_total", "evicted").inc({}, 3);
  const app = createStatusApp({
    sources: sources([]),
    token: new Secret(""),
    expectedWorkers: [],
    metrics,
  });
  const text = await (await app.request("/metrics")).text();
  assert.match(text, /^pipeline_status_market_symbols_evicted_total 3$/m);
});

Deno.test("a Host the endpoint does not answer to gets 421 on every route but /healthz (DNS rebinding)", async () => {
  const metrics = new MetricsRegistry();
  const app = createStatusApp({
    sources: sources(all()),
    token: new Secret(""),
    expectedWorkers: [],
    allowedHosts: allowedHostsOf({ host: "0.0.0.0", allowedHosts: ["status"] }),
    metrics,
  });
  const get = (path: string, host: string) => app.request(path, { headers: { Host: host } });
  for (
    const host of ["evil.example:8080", "evil.example", "127.0.0.1.evil.example", "status.evil"]
  ) {
    for (const path of ["/status", "/metrics", "/readyz", "/", "/api/symbols"]) {
      const response = await get(path, host);
      assert.equal(response.status, 421, `${host} ${path}`);
      assert.match(
        (await response.json()).error,
        /does not answer to the host "[^"]+": open it as 127.0.0.1 or localhost, or add the name to STATUS_ALLOWED_HOSTS/,
      );
    }
  }
  assert.equal((await get("/healthz", "evil.example")).status, 200, "/healthz answers any Host");
  for (
    const host of [
      "127.0.0.1:8080",
      "127.0.0.1",
      "localhost:8080",
      "LOCALHOST.",
      "[::1]:8080",
      "status:8080",
    ]
  ) {
    assert.equal((await get("/status", host)).status, 200, host);
  }
  const text = await (await get("/metrics", "localhost")).text();
  assert.match(text, /^pipeline_status_requests_refused_total\{reason="host"\} 20$/m);
});

Deno.test("allowedHostsOf() adds the bind address unless it is a wildcard; hostNameOf() strips the port", () => {
  assert.deepEqual(allowedHostsOf({ host: "0.0.0.0", allowedHosts: ["status"] }), ["status"]);
  assert.deepEqual(allowedHostsOf({ host: "::", allowedHosts: [] }), []);
  assert.deepEqual(allowedHostsOf({ host: "192.168.1.5", allowedHosts: [] }), ["192.168.1.5"]);
  assert.deepEqual(allowedHostsOf({ host: "fd00::1", allowedHosts: [] }), ["[fd00::1]"]);
  assert.equal(hostNameOf("Status:8080"), "status");
  assert.equal(hostNameOf("[::1]:8080"), "[::1]");
  assert.equal(hostNameOf("example.com."), "example.com");
  assert.equal(hostNameOf("a b"), undefined);
  assert.equal(hostNameOf(""), undefined);
});

Deno.test("the Bearer scheme is taken in any case (RFC 9110), the token exactly", async () => {
  const app = createStatusApp({
    sources: sources(all()),
    token: new Secret("s3cret-token"),
    expectedWorkers: [],
  });
  const status = async (authorization: string) =>
    (await app.request("/status", { headers: { Authorization: authorization } })).status;
  for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
    assert.equal(await status(`${scheme} s3cret-token`), 200, scheme);
  }
  assert.equal(await status("Bearer  s3cret-token"), 200, "more than one space");
  assert.equal(await status("bearer S3CRET-TOKEN"), 401, "the token's case matters");
  assert.equal(await status("Basic s3cret-token"), 401);
  assert.equal(await status("Bearer s3cret-token x"), 401);
});

Deno.test("a browser session lasts 12 hours, is refused after, and ends when the token changes", async () => {
  let now = NOW;
  const app = (token: string) =>
    createStatusApp({
      sources: sources(all()),
      token: new Secret(token),
      expectedWorkers: [],
      now: () => now,
    });
  const first = app("s3cret-token");
  const login = await first.request("/?symbol=AAPL&token=s3cret-token&interval=1h");
  assert.equal(login.status, 303);
  assert.equal(login.headers.get("location"), "/?symbol=AAPL&interval=1h", "other parameters kept");
  assert.equal(login.headers.get("cache-control"), "no-store");
  const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
  const get = (a: ReturnType<typeof app>) => a.request("/status", { headers: { Cookie: cookie } });
  assert.equal((await get(first)).status, 200);
  assert.equal((await get(app("s3cret-token"))).status, 200, "a restart keeps sessions");
  assert.equal((await get(app("other-token"))).status, 401, "a new token ends them");
  now = NOW + 12 * 3_600_000 - 1;
  assert.equal((await get(first)).status, 200);
  now = NOW + 12 * 3_600_000;
  assert.equal((await get(first)).status, 401, "expired");
  // Its expiry moved on by hand: the signature no longer matches.
  const [name, value] = cookie.split("=") as [string, string];
  const [, expiry, mac] = value.split(".");
  const extended = `${name}=v1.${Number(expiry) + 3_600_000}.${mac}`;
  assert.equal(
    (await first.request("/status", { headers: { Cookie: extended } })).status,
    401,
  );
});

Deno.test("withoutToken() keeps the other parameters of a login link", () => {
  assert.equal(withoutToken("http://h/?token=x"), "/");
  assert.equal(
    withoutToken("http://h/?token=x&symbol=BINANCE%3ABTCUSDT"),
    "/?symbol=BINANCE%3ABTCUSDT",
  );
  assert.equal(bearerToken("Bearer abc.def"), "abc.def");
  assert.equal(bearerToken("Bearerabc"), undefined);
});

Deno.test("bearerToken() takes a token with = + / and ! anywhere, in any case of the scheme", () => {
  assert.equal(bearerToken("Bearer stt-J5+pN/v2=Token-1618"), "stt-J5+pN/v2=Token-1618");
  assert.equal(bearerToken("bearer pa!ss=word"), "pa!ss=word");
  assert.equal(bearerToken("BEARER x"), "x");
  assert.equal(bearerToken("Bearer two words"), undefined);
  assert.equal(bearerToken("Basic dXNlcjpwYXNz"), undefined);
});

Deno.test("the access log, when on, has method, path, status and time, and never a token", async () => {
  const lines: string[] = [];
  const log = createLogger("status", { write: (line) => lines.push(line) });
  const app = createStatusApp({
    sources: sources(all()),
    token: new Secret("s3cret-token"),
    expectedWorkers: [],
    accessLog: log.child("access"),
  });
  await app.request("/status?x=1", { headers: { Authorization: "Bearer s3cret-token" } });
  await app.request("/?token=s3cret-token&symbol=AAPL");
  await app.request("/?token=wrong-guess");
  await app.request("/status", { headers: { Cookie: "market_status_session=v1.1.abc" } });
  assert.equal(lines.length, 4);
  assert.match(
    lines[0]!,
    /INFO {2}status\.access: request method=GET path="\/status\?x=1" status=200 ms=\d+/,
  );
  assert.match(lines[1]!, /path="\/\?symbol=AAPL" status=303/);
  assert.match(lines[2]!, /path=\/ status=401/);
  assert.match(lines[3]!, /path=\/status status=401/);
  for (const line of lines) {
    assert.doesNotMatch(line, /s3cret|wrong-guess|token=|Bearer|v1\.1\.abc/i, line);
  }
  const quiet = createStatusApp({
    sources: sources(all()),
    token: new Secret(""),
    expectedWorkers: [],
  });
  assert.equal((await quiet.request("/status")).status, 200, "off by default");
});

Deno.test("loggedPath() drops token parameters and cuts long paths", () => {
  assert.equal(loggedPath("http://h/?token=a&token=b&symbol=X"), "/?symbol=X");
  assert.equal(loggedPath(`http://h/${"a".repeat(400)}`), `/${"a".repeat(299)}...`);
});
