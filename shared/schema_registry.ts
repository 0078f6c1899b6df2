/**
 * A small typed client of the Confluent Schema Registry REST API, the subset that Confluent's
 * registry and Apicurio Registry (`/apis/ccompat/v7`) both serve: register a schema under a
 * subject (idempotent: the same schema gets the same id again), fetch a schema by id, test a
 * schema against a subject's compatibility rule, list a subject's versions, delete a subject.
 *
 * Every request has a deadline (default 10 s) and optional HTTP basic auth. Every failure is a
 * {@linkcode SchemaRegistryError} that names SCHEMA_REGISTRY_URL, what was asked, the HTTP status
 * and the registry's `error_code` and message, and says whether trying again may help
 * (`retriable`, as shared/errors.ts): a timeout, a refused connection, HTTP 5xx, 408 or 429 may
 * pass later; an incompatible schema (409), an invalid one (422), a missing subject or id (404)
 * or refused credentials (401, 403) will not. The password never appears in an error: the URL is
 * refused by shared/config.ts when it holds credentials, the Authorization header is never
 * printed, and the registry's own message is redacted too.
 *
 * Ids are immutable, so schemas fetched by id and ids returned by register are cached for the
 * client's life.
 *
 * Deviations between the two servers, avoided here: Apicurio answers `GET /config/{subject}`
 * with the global default where Confluent answers 404, ignores `subjectPrefix`, and its
 * `GET /schemas` items carry no ids.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { PipelineError } from "./errors.ts";
import { redact, type Secret } from "./secret.ts";

/** The kinds of schema both registries know. Confluent omits `schemaType` for Avro. */
export type SchemaType = "AVRO" | "JSON" | "PROTOBUF";

/** What went wrong, for callers that branch on it. */
export type SchemaRegistryErrorKind =
  /** 409: the schema breaks the subject's compatibility rule (BACKWARD by default). */
  | "incompatible"
  /** 422: the registry cannot parse the schema, or the version or level is invalid. */
  | "invalid"
  /** 404: no such subject, version or schema id. */
  | "not_found"
  /** 401 or 403: SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD refused. */
  | "unauthorized"
  /** Timeout, connection refused or reset, HTTP 5xx, 408 or 429: may pass later. */
  | "unavailable"
  /** Any other 4xx. */
  | "rejected"
  /** The client's signal aborted the request. */
  | "aborted"
  /** A 2xx answer that is not the Confluent API's (wrong URL?). */
  | "unexpected";

/** A failed registry request. `retriable` says whether the same request may succeed later. */
export class SchemaRegistryError extends PipelineError {
  readonly kind: SchemaRegistryErrorKind;
  /** The HTTP status, or null when no answer came. */
  readonly status: number | null;
  /** The registry's `error_code` (Confluent's: 40401, 40403, 409, 42201...), when it sent one. */
  readonly errorCode: number | null;

  constructor(
    message: string,
    options: {
      kind: SchemaRegistryErrorKind;
      status?: number | null;
      errorCode?: number | null;
      cause?: unknown;
    },
  ) {
    super(message, { retriable: options.kind === "unavailable", cause: options.cause });
    this.name = "SchemaRegistryError";
    this.kind = options.kind;
    this.status = options.status ?? null;
    this.errorCode = options.errorCode ?? null;
  }
}

/** A schema as the registry returns it by id. */
export interface RegisteredSchema {
  /** The schema text (for Avro: JSON). */
  schema: string;
  schemaType: SchemaType;
}

/** Options of {@linkcode createSchemaRegistryClient}. */
export interface SchemaRegistryClientOptions {
  /** Deadline of each request, ms. Default 10 000. */
  timeoutMs?: number;
  /** Aborts every request of this client (rejects with a non-retriable error). */
  signal?: AbortSignal;
  /** The fetch to use. Default: the global `fetch`. */
  fetch?: typeof fetch;
}

/** The registry operations the pipeline uses; see the module doc. */
export interface SchemaRegistryClient {
  /** The base URL (SCHEMA_REGISTRY_URL), for messages. */
  readonly url: string;
  /**
   * Registers `schema` (text, or an object that is serialised as JSON) under `subject` and
   * returns its id; the same schema again returns the same id and adds no version. A schema the
   * subject's compatibility rule refuses throws kind `incompatible` (HTTP 409) and registers
   * nothing.
   */
  register(subject: string, schema: string | object, options?: SchemaOptions): Promise<number>;
  /** The schema with this id. Throws kind `not_found` for an unknown id. */
  schemaById(id: number): Promise<RegisteredSchema>;
  /**
   * Whether `schema` may be registered under `subject` as its compatibility rule stands, tested
   * against `version` (default the latest). A subject with no versions accepts anything: true.
   */
  isCompatible(
    subject: string,
    schema: string | object,
    options?: SchemaOptions & { version?: number | "latest" },
  ): Promise<boolean>;
  /** The versions registered under `subject`, oldest first; `[]` for an unknown subject. */
  versions(subject: string): Promise<number[]>;
  /**
   * Deletes `subject` (soft, then with `permanent` for good); returns the versions deleted, `[]`
   * for an unknown subject. Ids of a permanently deleted subject may stop resolving.
   */
  deleteSubject(subject: string, options?: { permanent?: boolean }): Promise<number[]>;
}

/** The schema's type; default AVRO. */
export interface SchemaOptions {
  schemaType?: SchemaType;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
const SCHEMA_TYPES: readonly SchemaType[] = ["AVRO", "JSON", "PROTOBUF"];

/** A client of the registry named by `config` (`Config["registry"]`). Connects to nothing yet. */
export function createSchemaRegistryClient(
  config: Config["registry"],
  options: SchemaRegistryClientOptions = {},
): SchemaRegistryClient {
  const base = config.url.replace(/\/+$/, "");
  const call = requester(base, config.username, config.password, options);
  const ids = new Map<string, number>();
  const schemas = new Map<number, RegisteredSchema>();

  return {
    url: base,

    async register(subject, schema, schemaOptions = {}) {
      const body = schemaBody(schema, schemaOptions);
      const key = `${subject}\u0000${body}`;
      const known = ids.get(key);
      if (known !== undefined) return known;
      const what = `register a schema under subject ${JSON.stringify(subject)}`;
      const answer = await call(what, "POST", `/subjects/${path(subject)}/versions`, body);
      const id = (answer as { id?: unknown } | null)?.id;
      if (!isSchemaId(id)) throw unexpected(base, what, answer, "id");
      ids.set(key, id);
      return id;
    },

    async schemaById(id) {
      if (!isSchemaId(id)) {
        throw new RangeError(`Schema id must be a whole number from 0 to 2^31-1, got ${id}`);
      }
      const known = schemas.get(id);
      if (known) return known;
      const what = `fetch schema id ${id}`;
      const answer = await call(what, "GET", `/schemas/ids/${id}`);
      const found = parseRegisteredSchema(answer);
      if (!found) throw unexpected(base, what, answer, "schema");
      schemas.set(id, found);
      return found;
    },

    async isCompatible(subject, schema, { version = "latest", ...schemaOptions } = {}) {
      const what = `check a schema against subject ${JSON.stringify(subject)} version ${version}`;
      try {
        const answer = await call(
          what,
          "POST",
          `/compatibility/subjects/${path(subject)}/versions/${version}`,
          schemaBody(schema, schemaOptions),
        );
        const compatible = (answer as { is_compatible?: unknown } | null)?.is_compatible;
        if (typeof compatible !== "boolean") throw unexpected(base, what, answer, "is_compatible");
        return compatible;
      } catch (error) {
        // No such subject (40401) or, for "latest", no versions (40402): nothing to break.
        if (
          error instanceof SchemaRegistryError && error.kind === "not_found" &&
          (error.errorCode === 40401 || (error.errorCode === 40402 && version === "latest"))
        ) {
          return true;
        }
        throw error;
      }
    },

    async versions(subject) {
      const what = `list the versions of subject ${JSON.stringify(subject)}`;
      try {
        const answer = await call(what, "GET", `/subjects/${path(subject)}/versions`);
        if (!isIntegerArray(answer)) throw unexpected(base, what, answer, "list of versions");
        return answer;
      } catch (error) {
        if (error instanceof SchemaRegistryError && error.errorCode === 40401) return [];
        throw error;
      }
    },

    async deleteSubject(subject, { permanent = false } = {}) {
      const what = `delete subject ${JSON.stringify(subject)}`;
      const remove = async (suffix: string) => {
        const answer = await call(what, "DELETE", `/subjects/${path(subject)}${suffix}`);
        if (!isIntegerArray(answer)) throw unexpected(base, what, answer, "list of versions");
        return answer;
      };
      try {
        const soft = await remove("");
        return permanent ? await remove("?permanent=true") : soft;
      } catch (error) {
        if (error instanceof SchemaRegistryError && error.errorCode === 40401) return [];
        throw error;
      }
    },
  };
}

/**
 * What a registry's HTTP answer means: the kind of failure of `status`, and whether it is worth
 * retrying. Pure: unit-tested for every status the two registries send.
 */
export function classifyStatus(status: number): SchemaRegistryErrorKind {
  if (status === 409) return "incompatible";
  if (status === 422) return "invalid";
  if (status === 404) return "not_found";
  if (status === 401 || status === 403) return "unauthorized";
  if (status === 408 || status === 429 || status >= 500) return "unavailable";
  return "rejected";
}

/** The `Authorization` header value of HTTP basic auth; null without a username. */
export function basicAuthorization(username: string, password: Secret): string | null {
  if (username === "") return null;
  const bytes = new TextEncoder().encode(`${username}:${password.reveal()}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

type Method = "GET" | "POST" | "DELETE";

/** One request: JSON in and out, a deadline, auth, and every failure as a SchemaRegistryError. */
function requester(
  base: string,
  username: string,
  password: Secret,
  options: SchemaRegistryClientOptions,
): (what: string, method: Method, route: string, body?: string) => Promise<unknown> {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const authorization = basicAuthorization(username, password);
  const where = `schema registry at ${base} (SCHEMA_REGISTRY_URL)`;
  const clean = (text: string) => redact(text, [password]);

  return async (what, method, route, body) => {
    const headers: Record<string, string> = { Accept: `${CONTENT_TYPE}, application/json` };
    if (body !== undefined) headers["Content-Type"] = CONTENT_TYPE;
    if (authorization) headers["Authorization"] = authorization;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${base}${route}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal,
      });
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) {
        throw new SchemaRegistryError(`${where}: cannot ${what}: aborted`, {
          kind: "aborted",
          cause: error,
        });
      }
      const reason = timeout.aborted
        ? `no answer within ${timeoutMs / 1000} s`
        : `cannot connect (${clean(error instanceof Error ? error.message : String(error))})`;
      throw new SchemaRegistryError(
        `${where}: cannot ${what}: ${reason}. Check that the registry runs there, or leave ` +
          "SCHEMA_REGISTRY_URL unset to use (and start) the local one",
        { kind: "unavailable", cause: error },
      );
    }
    const json = parseJson(text);
    if (response.ok) return json;
    const kind = classifyStatus(response.status);
    const { errorCode, message } = confluentError(json, text);
    const hint = kind === "unauthorized"
      ? " (check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD)"
      : kind === "incompatible"
      ? " (the subject's compatibility rule refuses this schema; nothing was registered)"
      : response.status === 404 && errorCode === null
      ? " (no Confluent-compatible API at this URL? For Apicurio it ends in /apis/ccompat/v7)"
      : "";
    throw new SchemaRegistryError(
      `${where}: cannot ${what}: HTTP ${response.status}` +
        `${errorCode === null ? "" : ` error_code ${errorCode}`}: ${clean(message)}${hint}`,
      { kind, status: response.status, errorCode },
    );
  };
}

function schemaBody(schema: string | object, { schemaType = "AVRO" }: SchemaOptions): string {
  const text = typeof schema === "string" ? schema : JSON.stringify(schema);
  // Confluent's default type is Avro; older registries refuse an explicit "AVRO".
  return JSON.stringify(schemaType === "AVRO" ? { schema: text } : { schema: text, schemaType });
}

function path(subject: string): string {
  if (subject === "") throw new RangeError("Schema registry subject must not be empty");
  return encodeURIComponent(subject);
}

function isSchemaId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 &&
    value <= 0x7fff_ffff;
}

function isIntegerArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => Number.isInteger(v));
}

function parseRegisteredSchema(value: unknown): RegisteredSchema | null {
  const { schema, schemaType = "AVRO" } = (value ?? {}) as {
    schema?: unknown;
    schemaType?: unknown;
  };
  if (typeof schema !== "string") return null;
  if (!(SCHEMA_TYPES as readonly unknown[]).includes(schemaType)) return null;
  return { schema, schemaType: schemaType as SchemaType };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `error_code` and `message` of a Confluent error body, else the text's start. */
function confluentError(
  json: unknown,
  text: string,
): { errorCode: number | null; message: string } {
  const { error_code: code, message } = (json ?? {}) as { error_code?: unknown; message?: unknown };
  return {
    errorCode: Number.isInteger(code) ? code as number : null,
    message: typeof message === "string" ? message : excerpt(text) || "(empty answer)",
  };
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat;
}

function unexpected(base: string, what: string, answer: unknown, wanted: string) {
  return new SchemaRegistryError(
    `schema registry at ${base} (SCHEMA_REGISTRY_URL): cannot ${what}: the answer holds no ` +
      `${wanted} (${excerpt(JSON.stringify(answer) ?? "no JSON")}): is this a Confluent-` +
      "compatible API? For Apicurio the URL ends in /apis/ccompat/v7",
    { kind: "unexpected" },
  );
}
