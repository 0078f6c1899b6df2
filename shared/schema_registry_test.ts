import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";
import { isRetriable } from "./errors.ts";
import {
  basicAuthorization,
  classifyStatus,
  createSchemaRegistryClient,
  SchemaRegistryError,
} from "./schema_registry.ts";
import { Secret } from "./secret.ts";

const TRADE = {
  type: "record",
  name: "Trade",
  namespace: "market",
  fields: [{ name: "s", type: "string" }],
};

interface Seen {
  method: string;
  path: string;
  contentType: string | null;
  authorization: string | null;
  body: string;
}

/** A fake registry on a random port: `answer` decides each response; `seen` records requests. */
async function withFakeRegistry(
  answer: (request: Seen) => Response | Promise<Response>,
  test: (url: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const request = {
      method: req.method,
      path: url.pathname + url.search,
      contentType: req.headers.get("content-type"),
      authorization: req.headers.get("authorization"),
      body: await req.text(),
    };
    seen.push(request);
    return await answer(request);
  });
  try {
    await test(`http://127.0.0.1:${server.addr.port}/apis/ccompat/v7`, seen);
  } finally {
    await server.shutdown();
  }
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/vnd.schemaregistry.v1+json" },
  });
}

function client(url: string, env: Record<string, string> = {}, timeoutMs = 5_000) {
  return createSchemaRegistryClient(loadConfig({ SCHEMA_REGISTRY_URL: url, ...env }).registry, {
    timeoutMs,
  });
}

async function failure(promise: Promise<unknown>): Promise<SchemaRegistryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SchemaRegistryError, `expected a SchemaRegistryError: ${error}`);
    return error;
  }
  assert.fail("the request succeeded");
}

Deno.test("register() posts the schema under the encoded subject and caches the id", async () => {
  await withFakeRegistry(() => json({ id: 7 }), async (url, seen) => {
    const registry = client(url);
    assert.equal(await registry.register("market.trades.raw-value", TRADE), 7);
    assert.equal(await registry.register("market.trades.raw-value", JSON.stringify(TRADE)), 7);
    assert.equal(seen.length, 1, "the second register of the same schema asks nothing");
    assert.equal(seen[0]!.method, "POST");
    assert.equal(seen[0]!.path, "/apis/ccompat/v7/subjects/market.trades.raw-value/versions");
    assert.equal(seen[0]!.contentType, "application/vnd.schemaregistry.v1+json");
    assert.equal(seen[0]!.authorization, null, "no auth without SCHEMA_REGISTRY_USERNAME");
    // Avro is the default type: Confluent's body has no schemaType for it.
    assert.deepEqual(JSON.parse(seen[0]!.body), { schema: JSON.stringify(TRADE) });
    await registry.register("a/b c", "{}", { schemaType: "JSON" });
    assert.equal(seen[1]!.path, "/apis/ccompat/v7/subjects/a%2Fb%20c/versions");
    assert.deepEqual(JSON.parse(seen[1]!.body), { schema: "{}", schemaType: "JSON" });
  });
});

Deno.test("requests carry HTTP basic auth when SCHEMA_REGISTRY_USERNAME is set", async () => {
  await withFakeRegistry(() => json({ id: 1 }), async (url, seen) => {
    const registry = client(url, {
      SCHEMA_REGISTRY_USERNAME: "SR-KEY",
      SCHEMA_REGISTRY_PASSWORD: "s3cr3t/ü",
    });
    await registry.register("s", TRADE);
    const [scheme, encoded] = seen[0]!.authorization!.split(" ");
    assert.equal(scheme, "Basic");
    const decoded = new TextDecoder().decode(
      Uint8Array.from(atob(encoded!), (c) => c.charCodeAt(0)),
    );
    assert.equal(decoded, "SR-KEY:s3cr3t/ü");
  });
  assert.equal(basicAuthorization("", new Secret("x")), null);
  assert.equal(basicAuthorization("user", new Secret("pass")), "Basic dXNlcjpwYXNz");
});

Deno.test("an incompatible schema is a non-retriable error naming the URL, subject and rule", async () => {
  await withFakeRegistry(
    () =>
      json({
        error_code: 409,
        message: "Incompatible artifact: s [AVRO], reader type: INT not compatible",
      }, 409),
    async (url) => {
      const error = await failure(client(url).register("market.trades.raw-value", TRADE));
      assert.equal(error.kind, "incompatible");
      assert.equal(error.retriable, false);
      assert.equal(isRetriable(error), false);
      assert.equal(error.status, 409);
      assert.equal(error.errorCode, 409);
      assert.match(
        error.message,
        /^schema registry at http:\/\/127\.0\.0\.1:\d+\/apis\/ccompat\/v7/,
      );
      assert.match(error.message, /\(SCHEMA_REGISTRY_URL\)/);
      assert.match(error.message, /subject "market\.trades\.raw-value"/);
      assert.match(error.message, /HTTP 409 error_code 409: Incompatible artifact/);
      assert.match(error.message, /nothing was registered/);
    },
  );
});

Deno.test("refused credentials say which variables to check and never show the password", async () => {
  await withFakeRegistry(
    // A registry that echoes what it got must not carry the password into the error.
    (request) =>
      json({
        error_code: 40101,
        message: `Unauthorized: ${atob(request.authorization!.split(" ")[1]!)}`,
      }, 401),
    async (url) => {
      const registry = client(url, {
        SCHEMA_REGISTRY_USERNAME: "SR-KEY",
        SCHEMA_REGISTRY_PASSWORD: "pa55-word",
      });
      const error = await failure(registry.schemaById(1));
      assert.equal(error.kind, "unauthorized");
      assert.equal(error.retriable, false);
      assert.match(error.message, /check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD/);
      const shown = [error.message, String(error), Deno.inspect(error), JSON.stringify(error)];
      for (const text of shown) assert.doesNotMatch(text, /pa55-word/);
      assert.doesNotMatch(
        error.message,
        new RegExp(btoa("SR-KEY:pa55-word")),
        "no Authorization header either",
      );
    },
  );
});

Deno.test("a registry that is down, overloaded or silent gives a retriable error", async () => {
  await withFakeRegistry(
    () => json({ error_code: 50001, message: "Error in the backend data store" }, 503),
    async (url) => {
      const error = await failure(client(url).schemaById(3));
      assert.equal(error.kind, "unavailable");
      assert.equal(error.retriable, true);
      assert.equal(isRetriable(error), true);
      assert.match(error.message, /fetch schema id 3: HTTP 503 error_code 50001/);
    },
  );
  // Nothing listens: connection refused.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  const refused = await failure(client(closed).register("s", TRADE));
  assert.equal(refused.kind, "unavailable");
  assert.equal(refused.status, null);
  assert.match(refused.message, /cannot connect .*leave SCHEMA_REGISTRY_URL unset/);
  // Accepts the connection and never answers: the deadline.
  let release = () => {};
  const hung = new Promise<void>((resolve) => release = resolve);
  await withFakeRegistry(async () => {
    await hung;
    return json({ id: 1 });
  }, async (url) => {
    try {
      const error = await failure(client(url, {}, 200).register("s", TRADE));
      assert.equal(error.kind, "unavailable");
      assert.match(error.message, /no answer within 0\.2 s/);
    } finally {
      release();
    }
  });
});

Deno.test("a URL that is not a Confluent-compatible API is named as the likely cause", async () => {
  await withFakeRegistry(
    (request) =>
      request.path.includes("/ids/")
        ? new Response("<html>Not Found</html>", { status: 404 })
        : new Response("<html>welcome</html>", { status: 200 }),
    async (url) => {
      const notFound = await failure(client(url).schemaById(1));
      assert.equal(notFound.kind, "not_found");
      assert.match(notFound.message, /For Apicurio it ends in \/apis\/ccompat\/v7/);
      const unexpected = await failure(client(url).register("s", TRADE));
      assert.equal(unexpected.kind, "unexpected");
      assert.equal(unexpected.retriable, false);
      assert.match(unexpected.message, /holds no id .*compatible API\? For Apicurio/);
    },
  );
});

Deno.test("schemaById() returns the schema and its type, once per id", async () => {
  await withFakeRegistry(
    (request) =>
      request.path.endsWith("/ids/5")
        ? json({ schema: JSON.stringify(TRADE) })
        : request.path.endsWith("/ids/6")
        ? json({ schema: "{}", schemaType: "JSON" })
        : json({ error_code: 40403, message: "Schema 9 not found." }, 404),
    async (url, seen) => {
      const registry = client(url);
      assert.deepEqual(await registry.schemaById(5), {
        schema: JSON.stringify(TRADE),
        schemaType: "AVRO",
      });
      await registry.schemaById(5);
      assert.equal(seen.length, 1, "a schema id is fetched once");
      assert.deepEqual(await registry.schemaById(6), { schema: "{}", schemaType: "JSON" });
      const missing = await failure(registry.schemaById(9));
      assert.equal(missing.kind, "not_found");
      assert.equal(missing.errorCode, 40403);
      await assert.rejects(registry.schemaById(-1), RangeError);
      await assert.rejects(registry.schemaById(1.5), RangeError);
    },
  );
});

Deno.test("isCompatible() reads is_compatible, and a subject without versions accepts anything", async () => {
  await withFakeRegistry(
    (request) =>
      request.path.includes("/subjects/new/")
        ? json({ error_code: 40401, message: "Subject 'new' not found." }, 404)
        : json({ is_compatible: request.body.includes("int") === false }),
    async (url, seen) => {
      const registry = client(url);
      assert.equal(await registry.isCompatible("s", TRADE), true);
      assert.equal(seen[0]!.path, "/apis/ccompat/v7/compatibility/subjects/s/versions/latest");
      assert.equal(
        await registry.isCompatible("s", { ...TRADE, fields: [{ name: "s", type: "int" }] }),
        false,
      );
      assert.equal(await registry.isCompatible("s", TRADE, { version: 2 }), true);
      assert.equal(seen[2]!.path, "/apis/ccompat/v7/compatibility/subjects/s/versions/2");
      assert.equal(await registry.isCompatible("new", TRADE), true);
    },
  );
});

Deno.test("versions() and deleteSubject() treat an unknown subject as empty", async () => {
  await withFakeRegistry(
    (request) =>
      request.path.includes("/subjects/gone")
        ? json({ error_code: 40401, message: "Subject 'gone' not found." }, 404)
        : json([1, 2]),
    async (url, seen) => {
      const registry = client(url);
      assert.deepEqual(await registry.versions("s"), [1, 2]);
      assert.deepEqual(await registry.versions("gone"), []);
      assert.deepEqual(await registry.deleteSubject("gone", { permanent: true }), []);
      assert.deepEqual(await registry.deleteSubject("s", { permanent: true }), [1, 2]);
      assert.deepEqual(seen.slice(-2).map((r) => `${r.method} ${r.path}`), [
        "DELETE /apis/ccompat/v7/subjects/s",
        "DELETE /apis/ccompat/v7/subjects/s?permanent=true",
      ]);
    },
  );
});

Deno.test("classifyStatus() retries only what may pass later", () => {
  const cases: [number, string][] = [
    [409, "incompatible"],
    [422, "invalid"],
    [404, "not_found"],
    [401, "unauthorized"],
    [403, "unauthorized"],
    [408, "unavailable"],
    [429, "unavailable"],
    [500, "unavailable"],
    [502, "unavailable"],
    [503, "unavailable"],
    [400, "rejected"],
    [405, "rejected"],
  ];
  for (const [status, kind] of cases) assert.equal(classifyStatus(status), kind, `HTTP ${status}`);
});
