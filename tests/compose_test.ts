/**
 * Checks docker-compose.yml, docker/deno.Dockerfile and docker/prometheus/prometheus.yml without a
 * Docker engine: pinned images, restart policies, health checks and start order, the environment
 * our services get (only CONFIG_VARIABLES, secrets only as `${...}` from .env), Prometheus's scrape
 * of the status endpoint, and the two helpers the containers run (docker/run_producer.sh,
 * docker/healthcheck.ts). When the docker CLI has the compose plugin, `docker compose config -q`
 * validates the file too (it parses without a daemon); without it that test is ignored, saying why.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { CONFIG_VARIABLES, loadConfig } from "../shared/config.ts";
import { allowedHostsOf } from "../status/app.ts";
import { checkHealth } from "../docker/healthcheck.ts";
import { PRODUCER_V8_FLAGS, STAGE_V8_FLAGS } from "../shared/topology.ts";
import { runCommand } from "./helpers.ts";
import { CASSANDRA } from "../local_services/cassandra.ts";

const ROOT = new URL("../", import.meta.url);
const COMPOSE_FILE = "docker-compose.yml";
const DOCKERFILE = "docker/deno.Dockerfile";
const PROMETHEUS_CONFIG = "docker/prometheus/prometheus.yml";
const PRODUCER_SCRIPT = "docker/run_producer.sh";

/** The processor stages, one compose service each (`processor-<stage>`). */
const STAGES = ["bronze", "silver", "gold"] as const;

/** Pipeline variables compose sets itself instead of taking them from .env. */
const FIXED: Readonly<Record<string, string>> = {
  KAFKA_BROKERS: "kafka:9092",
  CASSANDRA_CONTACT_POINTS: "cassandra:9042",
  SCHEMA_REGISTRY_URL: "http://registry:8080/apis/ccompat/v7",
  STATUS_HOST: "0.0.0.0",
  STATUS_PORT: "8080",
  // Prometheus's scrape sends Host: status:8080; what .env adds comes after.
  STATUS_ALLOWED_HOSTS: "status,${STATUS_ALLOWED_HOSTS:-}",
  // One stage process a container, restarted in place: static membership named after it.
  KAFKA_GROUP_INSTANCE_ID: "host",
};

/** Which of our services may receive each secret (least privilege). */
const SECRET_USERS: Readonly<Record<string, readonly string[]>> = {
  FINNHUB_API_KEY: ["producer"],
  CASSANDRA_PASSWORD: ["schema", ...STAGES.map((s) => `processor-${s}`), "status"],
  // The services that read or write the Avro topics.
  SCHEMA_REGISTRY_PASSWORD: ["producer", ...STAGES.map((s) => `processor-${s}`), "status"],
  STATUS_TOKEN: ["status"],
};

/** `depends_on` every one of these services must declare, with its condition. */
const EXPECTED_DEPENDENCIES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  topics: { kafka: "service_healthy" },
  schema: { cassandra: "service_healthy" },
  producer: {
    kafka: "service_healthy",
    topics: "service_completed_successfully",
    simulator: "service_healthy",
  },
  ...Object.fromEntries(STAGES.map((stage) => [`processor-${stage}`, {
    kafka: "service_healthy",
    cassandra: "service_healthy",
    topics: "service_completed_successfully",
    schema: "service_completed_successfully",
  }])),
  status: {
    kafka: "service_healthy",
    cassandra: "service_healthy",
    topics: "service_completed_successfully",
    schema: "service_completed_successfully",
  },
  grafana: { cassandra: "service_healthy", schema: "service_completed_successfully" },
  registry: { kafka: "service_healthy" },
  "kafka-ui": { kafka: "service_healthy" },
};

/** Where each stateful service keeps its data (a named volume must be mounted there). */
const DATA_DIRS: Readonly<Record<string, string>> = {
  kafka: "/var/lib/kafka/data",
  cassandra: "/var/lib/cassandra",
  prometheus: "/prometheus",
  grafana: "/var/lib/grafana",
};

const SECRET_NAME = /(PASSWORD|TOKEN|SECRET|API_KEY)$/;
/** `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`. */
const INTERPOLATION = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*)|(:?\?)(.*))?\}$/s;
const LONG_RUNNING_RESTART = /^(always|unless-stopped|on-failure(:\d+)?)$/;

type Yaml = Record<string, unknown>;

interface Service {
  name: string;
  raw: Yaml;
}

function readText(path: string): string {
  return Deno.readTextFileSync(new URL(path, ROOT));
}

function isMap(value: unknown): value is Yaml {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const parsed = new Map<string, Yaml>();

function loadYaml(path: string): Yaml {
  let document = parsed.get(path);
  if (!document) {
    // Compose resolves YAML merge keys (`<<: *anchor`); so must we.
    const value: unknown = parse(readText(path), { merge: true });
    assert.ok(isMap(value), `${path} is not a YAML mapping`);
    parsed.set(path, document = value);
  }
  return document;
}

function loadServices(): Service[] {
  const services = loadYaml(COMPOSE_FILE)["services"];
  assert.ok(isMap(services), `${COMPOSE_FILE} has no services`);
  return Object.entries(services).map(([name, raw]) => {
    assert.ok(isMap(raw), `service ${name} is not a mapping`);
    return { name, raw };
  });
}

function service(name: string): Service {
  const found = loadServices().find((s) => s.name === name);
  assert.ok(found, `${COMPOSE_FILE} has no service ${name}`);
  return found;
}

/** A service's environment as name -> value (compose's map and `NAME=value` list forms). */
function environmentOf(s: Service): Map<string, string> {
  const env = s.raw["environment"];
  const result = new Map<string, string>();
  if (env === undefined) return result;
  if (Array.isArray(env)) {
    for (const item of env) {
      const [name = "", ...value] = String(item).split("=");
      result.set(name, value.join("="));
    }
    return result;
  }
  assert.ok(isMap(env), `service ${s.name}: environment must be a map or a list`);
  for (const [name, value] of Object.entries(env)) {
    result.set(name, value === null ? "" : `${value}`);
  }
  return result;
}

function commandOf(s: Service): string[] {
  const command = s.raw["command"];
  if (command === undefined) return [];
  assert.ok(
    Array.isArray(command),
    `service ${s.name}: write command as a list, not a shell string`,
  );
  return command.map(String);
}

function dependenciesOf(s: Service): Map<string, string> {
  const deps = s.raw["depends_on"];
  const result = new Map<string, string>();
  if (deps === undefined) return result;
  if (Array.isArray(deps)) {
    for (const name of deps) result.set(String(name), "service_started");
    return result;
  }
  assert.ok(isMap(deps), `service ${s.name}: depends_on must be a map or a list`);
  for (const [name, spec] of Object.entries(deps)) {
    result.set(name, isMap(spec) ? String(spec["condition"] ?? "service_started") : "");
  }
  return result;
}

/** Services built from our Dockerfile (they run our code). */
function builtServices(): Service[] {
  return loadServices().filter((s) => s.raw["build"] !== undefined);
}

/** The script or module each built service runs: `*.ts` and `*.sh` arguments of its command. */
function entrypointsOf(s: Service): string[] {
  return commandOf(s).filter((arg) => /^[\w./-]+\.(ts|sh)$/.test(arg));
}

/** Built services that run `loadConfig` (everything but the simulator, which reads no config). */
function configReaders(): Service[] {
  return builtServices().filter((s) =>
    entrypointsOf(s).some((file) =>
      /^(admin|producer|processor|status)\/main\.ts$/.test(file) || file === PRODUCER_SCRIPT
    )
  );
}

/** A one-shot job: another service waits for it to complete successfully. */
function oneShotJobs(): Set<string> {
  const jobs = new Set<string>();
  for (const s of loadServices()) {
    for (const [name, condition] of dependenciesOf(s)) {
      if (condition === "service_completed_successfully") jobs.add(name);
    }
  }
  return jobs;
}

function publishedPorts(s: Service): unknown[] {
  const ports = s.raw["ports"];
  if (ports === undefined) return [];
  assert.ok(Array.isArray(ports), `service ${s.name}: ports must be a list`);
  return ports;
}

function mountsOf(s: Service): { source: string; target: string }[] {
  const volumes = s.raw["volumes"];
  if (volumes === undefined) return [];
  assert.ok(Array.isArray(volumes), `service ${s.name}: volumes must be a list`);
  return volumes.map((volume) => {
    if (isMap(volume)) {
      return { source: String(volume["source"]), target: String(volume["target"]) };
    }
    const [source = "", target = ""] = String(volume).split(":");
    return { source, target };
  });
}

/** Every string in a parsed YAML document, keys included (where compose interpolates). */
function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (isMap(value)) return Object.entries(value).flatMap(([k, v]) => [k, ...stringsIn(v)]);
  return [];
}

function ciDenoVersion(): string {
  const match = /^DENO_VERSION=([\d.]+)$/m.exec(readText(".ci/run"));
  assert.ok(match, ".ci/run sets no DENO_VERSION");
  return match[1]!;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerfileInstructions(): { keyword: string; args: string }[] {
  const joined = readText(DOCKERFILE).replace(/\\\r?\n/g, " ");
  return joined.split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [keyword = "", ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
    });
}

Deno.test("compose: every pulled image is pinned to an exact version tag or a digest", () => {
  for (const s of loadServices()) {
    const image = s.raw["image"];
    if (s.raw["build"] !== undefined) {
      // Our own image: a local name, but never the floating `latest`.
      if (image !== undefined) {
        assert.match(String(image), /^[\w./-]+:[\w.-]+$/, `service ${s.name}: tag its image`);
        assert.doesNotMatch(String(image), /:latest$/, `service ${s.name}: image tagged latest`);
      }
      continue;
    }
    assert.equal(typeof image, "string", `service ${s.name} has neither image nor build`);
    const match = /^([\w./-]+?)(?::([\w.-]+))?(@sha256:[0-9a-f]{64})?$/.exec(String(image));
    assert.ok(match, `service ${s.name}: cannot read image ${image}`);
    const [, , tag, digest] = match;
    assert.ok(tag || digest, `service ${s.name}: image ${image} has no tag (means latest)`);
    if (tag && !digest) {
      assert.match(
        tag,
        /^v?\d+\.\d+\.\d+([.-][\w.-]+)?$/,
        `service ${s.name}: ${image} is not pinned to an exact x.y.z version`,
      );
    }
  }
});

Deno.test("compose: the Deno services build docker/deno.Dockerfile, from Deno as in CI, not as root", () => {
  for (const s of builtServices()) {
    const build = s.raw["build"];
    assert.ok(isMap(build), `service ${s.name}: build must be a mapping`);
    assert.equal(build["context"], ".", `service ${s.name}: build context must be the repo root`);
    assert.equal(build["dockerfile"], DOCKERFILE, `service ${s.name}: build ${DOCKERFILE}`);
  }
  const instructions = dockerfileInstructions();
  const froms = instructions.filter((i) => i.keyword === "FROM");
  assert.ok(froms.length > 0, `${DOCKERFILE} has no FROM`);
  const version = ciDenoVersion().replaceAll(".", "\\.");
  const pinned = new RegExp(`^denoland/deno:([a-z]+-)?${version}(@sha256:[0-9a-f]{64})?(\\s|$)`);
  for (const from of froms) {
    assert.match(
      from.args,
      pinned,
      `${DOCKERFILE}: FROM must be denoland/deno at ${ciDenoVersion()}`,
    );
  }
  const users = instructions.filter((i) => i.keyword === "USER");
  assert.ok(users.length > 0, `${DOCKERFILE} sets no USER: the services would run as root`);
  assert.doesNotMatch(users.at(-1)!.args, /^(root|0)(:|$)/, `${DOCKERFILE}: last USER is root`);
  const installs = instructions.filter((i) =>
    i.keyword === "RUN" && /\bdeno (install|cache)\b/.test(i.args)
  );
  assert.ok(installs.length > 0, `${DOCKERFILE} caches no dependencies at build time`);
  for (const install of installs) {
    assert.match(install.args, /--frozen\b/, `${DOCKERFILE}: "${install.args}" needs --frozen`);
  }
  const dockerignore = readText(".dockerignore").split("\n").map((line) => line.trim());
  for (const path of [".env", ".local/"]) {
    assert.ok(dockerignore.includes(path), `.dockerignore must keep ${path} out of the image`);
  }
});

Deno.test("compose: every entrypoint a service runs exists and is cached by the image build", () => {
  const cached = new Set(
    dockerfileInstructions()
      .filter((i) => i.keyword === "RUN" && /--entrypoint\b/.test(i.args))
      .flatMap((i) => i.args.split(/\s+/).filter((arg) => arg.endsWith(".ts"))),
  );
  const producerScript = readText(PRODUCER_SCRIPT);
  for (const s of builtServices()) {
    const files = entrypointsOf(s);
    assert.ok(files.length > 0, `service ${s.name} runs no script of this repository`);
    for (const file of files) {
      assert.ok(
        Deno.statSync(new URL(file, ROOT)).isFile,
        `service ${s.name} runs ${file}, which is missing`,
      );
      const modules = file === PRODUCER_SCRIPT
        ? [...producerScript.matchAll(/^exec deno run .*?(\S+\.ts)\b/gm)].map((m) => m[1]!)
        : [file];
      assert.ok(modules.length > 0, `${file} runs no module`);
      for (const module of modules) {
        assert.ok(cached.has(module), `${DOCKERFILE} must cache ${module} (--entrypoint)`);
      }
    }
    const healthcheck = s.raw["healthcheck"];
    if (isMap(healthcheck) && Array.isArray(healthcheck["test"])) {
      for (const arg of healthcheck["test"].map(String).filter((a) => a.endsWith(".ts"))) {
        assert.ok(cached.has(arg), `${DOCKERFILE} must cache ${arg} (${s.name}'s health check)`);
      }
    }
  }
});

Deno.test("compose: long-running services restart; one-shot jobs do not", () => {
  const jobs = oneShotJobs();
  assert.deepEqual([...jobs].sort(), ["schema", "topics"]);
  for (const s of loadServices()) {
    const restart = s.raw["restart"];
    if (jobs.has(s.name)) {
      assert.ok(
        restart === undefined || restart === "no",
        `job ${s.name} must not restart (restart: "no"), or it never completes`,
      );
    } else {
      assert.match(
        String(restart),
        LONG_RUNNING_RESTART,
        `service ${s.name} needs a restart policy`,
      );
    }
  }
});

Deno.test("compose: Kafka, Cassandra, the registry and the status endpoint have real health checks", () => {
  const testOf = (name: string): string => {
    const healthcheck = service(name).raw["healthcheck"];
    assert.ok(isMap(healthcheck), `service ${name} has no healthcheck`);
    assert.notEqual(healthcheck["disable"], true, `service ${name}: healthcheck disabled`);
    const test = healthcheck["test"];
    assert.ok(Array.isArray(test) && test.length > 1, `service ${name}: healthcheck needs a test`);
    assert.match(String(test[0]), /^CMD(-SHELL)?$/, `service ${name}: test must start with CMD`);
    return test.slice(1).join(" ");
  };
  assert.match(testOf("kafka"), /kafka-broker-api-versions\.sh.*--bootstrap-server \S+:9092/);
  assert.match(testOf("cassandra"), /^cqlsh\b/);
  assert.match(testOf("registry"), /\/dev\/tcp\/127\.0\.0\.1\/9000 .*GET \/health\/ready .* 200 /s);
  const statusPort = environmentOf(service("status")).get("STATUS_PORT");
  assert.ok(
    testOf("status").includes(`http://127.0.0.1:${statusPort}/healthz`),
    "status's health check must ask /healthz on STATUS_PORT",
  );
});

Deno.test("compose: services start in order (depends_on with health and completion conditions)", () => {
  const names = new Set(loadServices().map((s) => s.name));
  const conditions = ["service_started", "service_healthy", "service_completed_successfully"];
  for (const s of loadServices()) {
    for (const [target, condition] of dependenciesOf(s)) {
      assert.ok(names.has(target), `service ${s.name} depends on unknown service ${target}`);
      assert.ok(conditions.includes(condition), `${s.name} -> ${target}: bad condition`);
      if (condition === "service_healthy") {
        assert.ok(
          isMap(service(target).raw["healthcheck"]),
          `${s.name} waits for ${target} to be healthy, but ${target} has no healthcheck`,
        );
      }
    }
  }
  for (const [name, expected] of Object.entries(EXPECTED_DEPENDENCIES)) {
    const actual = dependenciesOf(service(name));
    for (const [target, condition] of Object.entries(expected)) {
      assert.equal(actual.get(target), condition, `${name} must wait for ${target}: ${condition}`);
    }
  }
});

Deno.test("compose: each processor stage is its own scalable service", () => {
  for (const stage of STAGES) {
    const s = service(`processor-${stage}`);
    const command = commandOf(s).join(" ");
    assert.match(command, new RegExp(`processor/main\\.ts --stage ${stage}$`));
    assert.ok(
      command.includes(`--v8-flags=${STAGE_V8_FLAGS} processor/main.ts`),
      `${s.name}: runs with the heap bounds deno task processor gives its stages (${STAGE_V8_FLAGS})`,
    );
    assert.equal(s.raw["container_name"], undefined, `${s.name}: a container_name blocks --scale`);
    assert.deepEqual(publishedPorts(s), [], `${s.name}: a host port blocks --scale`);
  }
});

Deno.test("compose: host ports are published on 127.0.0.1 only, the status endpoint on 8080", () => {
  for (const s of loadServices()) {
    for (const port of publishedPorts(s)) {
      const hostIp = isMap(port) ? String(port["host_ip"]) : String(port).split(":")[0];
      assert.equal(hostIp, "127.0.0.1", `service ${s.name} publishes ${JSON.stringify(port)}`);
    }
  }
  const status = service("status");
  assert.deepEqual(publishedPorts(status), ["127.0.0.1:8080:8080"]);
  const env = environmentOf(status);
  assert.equal(env.get("STATUS_HOST"), "0.0.0.0", "status must listen on all container addresses");
  assert.equal(env.get("STATUS_PORT"), "8080");
});

Deno.test("compose: our services get only CONFIG_VARIABLES, each from .env or fixed by compose", () => {
  const known = new Map(CONFIG_VARIABLES.map((v) => [v.name, v]));
  for (const s of builtServices()) {
    for (const [name, value] of environmentOf(s)) {
      if (name.startsWith("DENO_")) continue;
      assert.ok(
        known.has(name),
        `service ${s.name} gets ${name}, which shared/config.ts never reads`,
      );
      if (name in FIXED) {
        assert.equal(value, FIXED[name], `service ${s.name}: ${name}`);
        continue;
      }
      const match = INTERPOLATION.exec(value);
      assert.ok(
        match?.[1] === name,
        `service ${s.name}: ${name} must be \${${name}:-}, got ${value}`,
      );
      assert.ok(!match[3], `service ${s.name}: ${name} must not have a default of its own`);
    }
  }
  for (const s of configReaders()) {
    const env = environmentOf(s);
    for (const variable of CONFIG_VARIABLES) {
      if (variable.secret) continue;
      assert.ok(env.has(variable.name), `service ${s.name} misses ${variable.name} (add it)`);
    }
  }
});

Deno.test("compose: no local addresses, so the containers start no local servers", () => {
  for (const s of configReaders()) {
    const env = environmentOf(s);
    for (const name of ["KAFKA_BROKERS", "CASSANDRA_CONTACT_POINTS", "SCHEMA_REGISTRY_URL"]) {
      const value = env.get(name) ?? "";
      assert.ok(value !== "", `service ${s.name}: ${name} unset means the local default`);
      assert.doesNotMatch(value, /127\.0\.0\.1|localhost/, `service ${s.name}: ${name}=${value}`);
    }
  }
});

Deno.test("compose: secrets come from .env as ${...}, never literal, and only where used", () => {
  const secrets = new Set(CONFIG_VARIABLES.filter((v) => v.secret).map((v) => v.name));
  for (const s of loadServices()) {
    for (const [name, value] of environmentOf(s)) {
      if (!secrets.has(name) && !SECRET_NAME.test(name)) continue;
      const match = INTERPOLATION.exec(value);
      assert.ok(match, `service ${s.name}: ${name} must be a \${...} interpolation, not a value`);
      assert.ok(!match[3], `service ${s.name}: ${name} must not have a default value`);
      if (secrets.has(name)) {
        assert.ok(
          SECRET_USERS[name]?.includes(s.name),
          `service ${s.name} does not need ${name}; give it only to ${SECRET_USERS[name]}`,
        );
      }
    }
  }
  const grafanaPassword = environmentOf(service("grafana")).get("GF_SECURITY_ADMIN_PASSWORD");
  const match = INTERPOLATION.exec(grafanaPassword ?? "");
  assert.ok(match?.[4] === ":?", "GF_SECURITY_ADMIN_PASSWORD must be ${VAR:?message}, no default");
  const configs = loadYaml(COMPOSE_FILE)["configs"];
  for (const [name, config] of Object.entries(isMap(configs) ? configs : {})) {
    if (!isMap(config) || config["content"] === undefined) continue;
    const content = String(config["content"]).trim();
    assert.match(content, INTERPOLATION, `config ${name}: content must be a \${...} interpolation`);
  }
});

Deno.test("compose: every variable compose interpolates is documented in .env.example", () => {
  const example = readText(".env.example");
  const tail = example.indexOf("# docker compose only");
  assert.ok(tail >= 0, '.env.example has no "# docker compose only" section');
  const composeOnly = new Set(
    [...example.slice(tail).matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!),
  );
  const pipeline = new Set(CONFIG_VARIABLES.map((v) => v.name));
  const used = new Set(
    stringsIn(loadYaml(COMPOSE_FILE))
      .flatMap((text) => [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!)),
  );
  for (const name of used) {
    assert.ok(
      pipeline.has(name) || composeOnly.has(name),
      `${COMPOSE_FILE} reads ${name}: list it in .env.example under "# docker compose only"`,
    );
  }
  assert.ok(composeOnly.has("GRAFANA_ADMIN_PASSWORD"));
});

Deno.test("compose: Prometheus scrapes the status endpoint's /metrics every 5 s with the token", () => {
  const prometheus = service("prometheus");
  const mounts = mountsOf(prometheus);
  assert.ok(
    mounts.some((m) =>
      m.source === `./${PROMETHEUS_CONFIG}` && m.target === "/etc/prometheus/prometheus.yml"
    ),
    `prometheus must mount ./${PROMETHEUS_CONFIG} as /etc/prometheus/prometheus.yml`,
  );
  const statusPort = environmentOf(service("status")).get("STATUS_PORT");
  const scrapeConfigs = loadYaml(PROMETHEUS_CONFIG)["scrape_configs"];
  assert.ok(Array.isArray(scrapeConfigs), `${PROMETHEUS_CONFIG} has no scrape_configs`);
  const job = scrapeConfigs.filter(isMap).find((c) =>
    Array.isArray(c["static_configs"]) &&
    c["static_configs"].some((sc: unknown) =>
      isMap(sc) && Array.isArray(sc["targets"]) && sc["targets"].includes(`status:${statusPort}`)
    )
  );
  assert.ok(job, `${PROMETHEUS_CONFIG} scrapes no target status:${statusPort}`);
  assert.equal(job["metrics_path"] ?? "/metrics", "/metrics");
  assert.equal(job["scrape_interval"], "5s");
  assert.equal(job["scheme"] ?? "http", "http");
  // The scrape says `Host: status:8080`: the status endpoint must answer to that name.
  const allowed = loadConfig({
    STATUS_HOST: environmentOf(service("status")).get("STATUS_HOST") ?? "",
    STATUS_ALLOWED_HOSTS: (environmentOf(service("status")).get("STATUS_ALLOWED_HOSTS") ?? "")
      .replace(/\$\{[^}]*\}/g, ""),
  }).status;
  assert.ok(
    allowedHostsOf(allowed).includes("status"),
    "STATUS_ALLOWED_HOSTS of the status service must name status (Prometheus's scrape target)",
  );

  // The bearer token: a file compose writes from STATUS_TOKEN into the Prometheus container.
  const authorization = job["authorization"];
  assert.ok(isMap(authorization), "the status job must send the bearer token (authorization)");
  const tokenFile = authorization["credentials_file"];
  const mounted = prometheus.raw["configs"];
  assert.ok(Array.isArray(mounted), "prometheus mounts no config with the token");
  const reference = mounted.find((c: unknown) => isMap(c) && c["target"] === tokenFile);
  assert.ok(isMap(reference), `no config of the prometheus service is mounted at ${tokenFile}`);
  const configs = loadYaml(COMPOSE_FILE)["configs"];
  const source = isMap(configs) ? configs[String(reference["source"])] : undefined;
  assert.ok(isMap(source), `top-level config ${reference["source"]} is missing`);
  assert.equal(INTERPOLATION.exec(String(source["content"]).trim())?.[1], "STATUS_TOKEN");
  // Compose skips a config whose content is empty; a newline keeps the file there.
  assert.notEqual(String(source["content"]).replace(/\$\{[^}]*\}/g, ""), "");
});

Deno.test("compose: Grafana has the Cassandra plugin and the project's provisioning", () => {
  const grafana = service("grafana");
  const env = environmentOf(grafana);
  const plugins = ["GF_PLUGINS_PREINSTALL_SYNC", "GF_PLUGINS_PREINSTALL", "GF_INSTALL_PLUGINS"]
    .map((name) => env.get(name) ?? "").join(",");
  assert.match(plugins, /(^|,)hadesarchitect-cassandra-datasource(@[\d.]+)?(,|$)/);
  const mounts = mountsOf(grafana);
  for (
    const [source, target] of [
      ["./grafana/provisioning", "/etc/grafana/provisioning"],
      ["./grafana/dashboards", "/var/lib/grafana/dashboards"],
    ]
  ) {
    assert.ok(
      mounts.some((m) => m.source === source && m.target === target),
      `grafana must mount ${source} at ${target}`,
    );
  }
});

Deno.test("compose: Cassandra takes the local node's batch thresholds and timer slack", async () => {
  const local = parse(readText("local_services/cassandra/cassandra.yaml")) as Record<
    string,
    unknown
  >;
  const names = [
    "batch_size_warn_threshold",
    "batch_size_fail_threshold",
    "unlogged_batch_across_partitions_warn_threshold",
  ];
  const command = service("cassandra").raw["command"];
  assert.ok(Array.isArray(command) && command[0] === "bash" && command[1] === "-c");
  const script = String(command[2]).replaceAll("$$", "$");
  assert.match(script, /\nexec docker-entrypoint\.sh cassandra -f\n$/);
  // The script on a copy of the image's settings (run twice: a restarted container runs it again),
  // with what it starts in place of the entrypoint at its end showing its timer slack.
  const dir = await Deno.makeTempDir({ prefix: "compose_test_" });
  try {
    const conf = `${dir}/cassandra.yaml`;
    await Deno.writeTextFile(
      conf,
      "cluster_name: 'Test Cluster'\nbatch_size_warn_threshold: 5KiB\n" +
        "batch_size_fail_threshold: 50KiB\nunlogged_batch_across_partitions_warn_threshold: 10\n",
    );
    const body = script.replace("/etc/cassandra/cassandra.yaml", conf)
      .replace(/exec docker-entrypoint\.sh cassandra -f\n$/, "exec cat /proc/self/timerslack_ns\n");
    for (let run = 0; run < 2; run++) {
      const out = await new Deno.Command("bash", { args: ["-c", body], stderr: "piped" }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      assert.equal(Number(new TextDecoder().decode(out.stdout)), CASSANDRA.timerSlackNs);
    }
    const text = await Deno.readTextFile(conf);
    const result = parse(text, { uniqueKeys: true }) as Record<string, unknown>;
    assert.equal(result["cluster_name"], "Test Cluster");
    for (const name of names) {
      assert.ok(local[name] !== undefined, `local_services sets no ${name}`);
      assert.equal(result[name], local[name], name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compose: Kafka, Cassandra, Prometheus and Grafana keep their data in named volumes", () => {
  const volumes = loadYaml(COMPOSE_FILE)["volumes"];
  const declared = new Set(Object.keys(isMap(volumes) ? volumes : {}));
  for (const [name, dir] of Object.entries(DATA_DIRS)) {
    const mount = mountsOf(service(name)).find((m) => m.target === dir);
    assert.ok(mount, `service ${name} mounts nothing at ${dir}`);
    assert.ok(declared.has(mount.source), `${name}: ${mount.source} is not a named volume`);
  }
});

Deno.test("compose: the registry is the local one's Apicurio, durable, BACKWARD, and unpublished", () => {
  const registry = service("registry");
  const pom = readText("local_services/registry/pom.xml");
  const version = /<apicurio\.version>([^<]+)<\/apicurio\.version>/.exec(pom)?.[1];
  assert.ok(version, "local_services/registry/pom.xml names no apicurio.version");
  assert.equal(registry.raw["image"], `apicurio/apicurio-registry:${version}`);
  const env = environmentOf(registry);
  // Apicurio keeps schemas in memory by default: ids already in Kafka would become unresolvable.
  const storage = env.get("APICURIO_STORAGE_KIND");
  if (storage === "kafkasql") {
    assert.equal(env.get("APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"), "kafka:9092");
  } else {
    assert.equal(storage, "sql", "registry storage must be kafkasql or sql (not in memory)");
    assert.match(env.get("APICURIO_DATASOURCE_URL") ?? "", /^jdbc:h2:file:|^jdbc:postgresql:/);
  }
  assert.equal(env.get("APICURIO_RULES_GLOBAL_COMPATIBILITY"), "BACKWARD");
  // The local registry owns 127.0.0.1:8081; the services reach this one inside the network.
  assert.deepEqual(publishedPorts(registry), []);
  const url = new URL(FIXED["SCHEMA_REGISTRY_URL"]!);
  assert.equal(url.hostname, "registry");
  assert.equal(url.port, "8080", "Apicurio's container listens on 8080");
  assert.equal(url.pathname, "/apis/ccompat/v7");
});

Deno.test("compose: Kafka runs in KRaft mode without ZooKeeper", () => {
  const env = environmentOf(service("kafka"));
  assert.equal(env.get("KAFKA_PROCESS_ROLES"), "broker,controller");
  assert.match(env.get("KAFKA_ADVERTISED_LISTENERS") ?? "", /PLAINTEXT:\/\/kafka:9092/);
  assert.match(env.get("CLUSTER_ID") ?? "", /^[A-Za-z0-9_-]{22}$/);
  assert.ok(![...env.keys()].some((name) => name.includes("ZOOKEEPER")));
  assert.ok(!loadServices().some((s) => /zookeeper/i.test(`${s.name} ${s.raw["image"] ?? ""}`)));
});

/** Runs docker/run_producer.sh with a stub `deno` that prints what it would have run. */
async function runProducerScript(env: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "compose_test_" });
  try {
    await Deno.writeTextFile(
      `${dir}/deno`,
      '#!/bin/sh\nprintf "FINNHUB_WS_URL=%s\\n" "${FINNHUB_WS_URL-<unset>}"\nprintf "ARGS=%s\\n" "$*"\n',
      { mode: 0o755 },
    );
    return await runCommand(
      new Deno.Command("sh", {
        args: [PRODUCER_SCRIPT, "ws://simulator:8765"],
        cwd: new URL(".", ROOT),
        env: { PATH: `${dir}:/usr/local/bin:/usr/bin:/bin`, ...env },
        clearEnv: true,
      }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("run_producer.sh reads the simulator without a key, Finnhub with one", async () => {
  const cases: [Record<string, string>, string][] = [
    [{}, "FINNHUB_WS_URL=ws://simulator:8765"],
    [{ FINNHUB_API_KEY: "", FINNHUB_WS_URL: "" }, "FINNHUB_WS_URL=ws://simulator:8765"],
    [{ FINNHUB_API_KEY: "  " }, "FINNHUB_WS_URL=ws://simulator:8765"],
    // With a key and no URL the variable stays empty: the config's default, Finnhub.
    [{ FINNHUB_API_KEY: "k3y-sekrit", FINNHUB_WS_URL: "" }, "FINNHUB_WS_URL="],
    [{ FINNHUB_API_KEY: "k3y-sekrit" }, "FINNHUB_WS_URL=<unset>"],
    [{ FINNHUB_WS_URL: "ws://feed:1234" }, "FINNHUB_WS_URL=ws://feed:1234"],
  ];
  for (const [env, expected] of cases) {
    const result = await runProducerScript(env);
    assert.equal(result.code, 0, `${JSON.stringify(env)}: ${result.stderr}`);
    assert.equal(result.stdout.split("\n")[0], expected, `with ${JSON.stringify(env)}`);
    assert.equal(
      result.stdout.split("\n")[1],
      `ARGS=run --frozen --cached-only -A --v8-flags=${PRODUCER_V8_FLAGS} producer/main.ts`,
      "the producer runs with its heap bound (PRODUCER_V8_FLAGS)",
    );
    assert.doesNotMatch(result.stderr, /sekrit/, "the key must never be printed");
  }
  assert.deepEqual(commandOf(service("producer")), ["sh", PRODUCER_SCRIPT, "ws://simulator:8765"]);
  assert.ok(
    commandOf(service("simulator")).join(" ").includes("--host 0.0.0.0 --port 8765"),
    "the simulator must listen where run_producer.sh points the producer",
  );
});

Deno.test("healthcheck.ts: healthy on 2xx, unhealthy on an error status or no listener", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/healthz"
        ? new Response("ok\n")
        : new Response("down\n", { status: 503 }),
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    assert.equal(await checkHealth(`${base}/healthz`, 2000), null);
    assert.match(await checkHealth(`${base}/readyz`, 2000) ?? "", /answered HTTP 503/);
  } finally {
    await server.shutdown();
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = listener.addr.port;
  listener.close();
  assert.ok(await checkHealth(`http://127.0.0.1:${closedPort}/healthz`, 2000));
});

/** Why `docker compose` cannot be used here, or null when it can (no daemon needed). */
async function composeUnavailable(): Promise<string | null> {
  try {
    const output = await new Deno.Command("docker", {
      args: ["compose", "version"],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (output.success) return null;
    return `\`docker compose version\` failed: ${
      new TextDecoder().decode(output.stderr).trim().split("\n")[0]
    }`;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "no docker CLI on PATH";
    throw error;
  }
}

const composeMissing = await composeUnavailable();
if (composeMissing) {
  console.log(`compose_test: skipping \`docker compose config\`: ${composeMissing}`);
}

Deno.test({
  name: "docker compose config accepts the file, and refuses it without GRAFANA_ADMIN_PASSWORD",
  ignore: composeMissing !== null,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "compose_test_" });
    try {
      // An empty env file: a developer's .env plays no part.
      const envFile = `${dir}/empty.env`;
      await Deno.writeTextFile(envFile, "");
      const run = (password: string) =>
        new Deno.Command("docker", {
          args: ["compose", "--env-file", envFile, "-f", COMPOSE_FILE, "config", "--quiet"],
          cwd: new URL(".", ROOT),
          env: { GRAFANA_ADMIN_PASSWORD: password },
          stdout: "piped",
          stderr: "piped",
        }).output();
      const ok = await run("compose-test-only");
      assert.ok(ok.success, new TextDecoder().decode(ok.stderr));
      const refused = await run("");
      assert.equal(refused.success, false, "compose must refuse to start without the password");
      assert.match(new TextDecoder().decode(refused.stderr), /GRAFANA_ADMIN_PASSWORD/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
