/**
 * What the Grafana files ask of the pipeline, read the way Grafana reads them: every PromQL
 * expression and every CQL query of the dashboards (`grafana/dashboards/*.json`) and alert rules
 * (`grafana/provisioning/alerting/*.yml`), the metric and label names a PromQL expression uses,
 * the tables of `schemas/cassandra/*.cql`, and the shape of a dashboard's CQL query (table,
 * columns, how its WHERE restricts the partition key). Pure functions over the files' text; the
 * tests check the results against a running pipeline, Prometheus and Cassandra.
 *
 * @module
 */
import { parse as parseYaml } from "npm:yaml@2.9.1";

const ROOT = new URL("../", import.meta.url);

/** A data source reference: `{ type, uid }`. */
export interface DatasourceRef {
  readonly type?: string;
  readonly uid?: string;
}

/** One query of a dashboard panel, template variable or alert rule. */
export interface GrafanaQuery {
  /** Where it is, for messages: `pipeline.json: "Consumer lag by group" A`. */
  readonly where: string;
  readonly datasource: DatasourceRef;
  /** The PromQL expression (`expr`) or CQL text (`target`). */
  readonly text: string;
  /** The query object as written. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Every query of the Grafana files, and the data sources provisioned. */
export interface GrafanaFiles {
  readonly dashboards: ReadonlyMap<string, Record<string, unknown>>;
  readonly rules: readonly Record<string, unknown>[];
  readonly datasources: readonly {
    uid: string;
    type: string;
    jsonData?: Record<string, unknown>;
  }[];
  readonly queries: readonly GrafanaQuery[];
}

type Json = Record<string, unknown>;

async function filesIn(dir: URL, extensions: readonly string[]): Promise<URL[]> {
  const out: URL[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && extensions.some((e) => entry.name.endsWith(e))) {
      out.push(new URL(entry.name, dir));
    }
  }
  return out.sort((a, b) => a.href.localeCompare(b.href));
}

function panelsOf(dashboard: Json): Json[] {
  const out: Json[] = [];
  for (const panel of (dashboard["panels"] ?? []) as Json[]) {
    out.push(panel);
    for (const inner of (panel["panels"] ?? []) as Json[]) out.push(inner);
  }
  return out;
}

function queryText(target: Json): string | undefined {
  if (typeof target["expr"] === "string") return target["expr"];
  if (typeof target["target"] === "string") return target["target"];
  if (typeof target["query"] === "string") return target["query"];
  return undefined;
}

/** Reads the dashboards, alert rules and data sources under `grafana/`. */
export async function loadGrafanaFiles(root: URL = ROOT): Promise<GrafanaFiles> {
  const dashboards = new Map<string, Json>();
  const queries: GrafanaQuery[] = [];
  for (const file of await filesIn(new URL("grafana/dashboards/", root), [".json"])) {
    const name = file.pathname.split("/").at(-1)!;
    const dashboard = JSON.parse(await Deno.readTextFile(file)) as Json;
    dashboards.set(name, dashboard);
    const variables = ((dashboard["templating"] as Json | undefined)?.["list"] ?? []) as Json[];
    const choices = customChoices(variables);
    for (const panel of panelsOf(dashboard)) {
      for (const target of (panel["targets"] ?? []) as Json[]) {
        const text = queryText(target);
        if (text === undefined) continue;
        for (const [choice, expanded] of expandCustom(text, choices)) {
          queries.push({
            where: `${name}: ${JSON.stringify(panel["title"])} ${String(target["refId"])}${choice}`,
            datasource: (target["datasource"] ?? panel["datasource"] ?? {}) as DatasourceRef,
            text: expanded,
            raw: target,
          });
        }
      }
    }
    for (const variable of variables) {
      if (variable["type"] !== "query") continue;
      const query = variable["query"];
      const text = typeof query === "string" ? query : queryText((query ?? {}) as Json);
      if (text === undefined) continue;
      queries.push({
        where: `${name}: variable ${String(variable["name"])}`,
        datasource: (variable["datasource"] ?? {}) as DatasourceRef,
        text,
        raw: variable,
      });
    }
  }
  const rules: Json[] = [];
  const alerting = new URL("grafana/provisioning/alerting/", root);
  for (const file of await filesIn(alerting, [".yml", ".yaml", ".json"])) {
    const doc = parseYaml(await Deno.readTextFile(file)) as Json;
    for (const group of (doc["groups"] ?? []) as Json[]) {
      for (const rule of (group["rules"] ?? []) as Json[]) {
        rules.push(rule);
        for (const data of (rule["data"] ?? []) as Json[]) {
          const uid = String(data["datasourceUid"]);
          if (uid === "__expr__") continue;
          const model = (data["model"] ?? {}) as Json;
          const text = queryText(model);
          if (text === undefined) continue;
          queries.push({
            where: `alert ${JSON.stringify(rule["title"])} ${String(data["refId"])}`,
            datasource: { uid },
            text,
            raw: model,
          });
        }
      }
    }
  }
  const datasources = [];
  const dsDir = new URL("grafana/provisioning/datasources/", root);
  for (const file of await filesIn(dsDir, [".yml", ".yaml"])) {
    const doc = parseYaml(await Deno.readTextFile(file)) as Json;
    datasources.push(...(doc["datasources"] ?? []) as GrafanaFiles["datasources"]);
  }
  return { dashboards, rules, datasources, queries };
}

// ---------------------------------------------------------------------------------- PromQL

/** Aggregations, keywords and functions: words of PromQL that are never metric names. */
const PROMQL_WORDS = new Set([
  // aggregation operators
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
  "limitk",
  "limit_ratio",
  // keywords and set operators
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
  "atan2",
  "inf",
  "nan",
  // functions (also caught by the `(` that follows them; listed for `f (x)` spellings)
  ...`abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
  clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
  days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg
  histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
  histogram_sum holt_winters hour idelta increase irate label_join label_replace last_over_time
  ln log10 log2 mad_over_time max_over_time min_over_time minute month pi predict_linear
  present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort
  sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time stdvar_over_time
  sum_over_time tan tanh time timestamp vector year`.split(/\s+/),
]);

/** Removes strings, comments and Grafana variables, keeping offsets meaningful. */
function stripPromql(expr: string): string {
  return expr
    .replace(/#[^\n]*/g, " ")
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, " ");
}

/**
 * The metric names an expression reads: identifiers followed by `{`, `[`, `)`, a space or the
 * end, that are not PromQL words, label names (inside `{}` or a `by`/`on`/... list) or
 * durations. Histogram series keep their `_bucket`/`_sum`/`_count` suffix; see
 * {@linkcode familyOf}.
 */
export function metricNames(expr: string): string[] {
  const s = stripPromql(expr)
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\[[^\]]*\]/g, "[]")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1()");
  const out = new Set<string>();
  for (const match of s.matchAll(/(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0];
    const rest = s.slice(match.index! + name.length);
    if (/^\s*\(/.test(rest)) continue; // a function call
    if (PROMQL_WORDS.has(name)) continue;
    if (!/^(\s|\{|\[|\)|,|$)/.test(rest)) continue;
    out.add(name);
  }
  return [...out].sort();
}

/** The label names an expression groups, joins or matches on. */
export function labelNames(expr: string): string[] {
  const s = stripPromql(expr.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
  const out = new Set<string>();
  const groupings = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
  for (const [, list] of s.matchAll(groupings)) {
    for (const label of list!.split(",").map((l) => l.trim()).filter(Boolean)) out.add(label);
  }
  for (const [, body] of s.matchAll(/\{([^}]*)\}/g)) {
    for (const [, label] of body!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      out.add(label!);
    }
  }
  return [...out].sort();
}

/**
 * The `# TYPE` family a series name belongs to, given the families exposed: the name itself, or
 * for `x_bucket`/`x_sum`/`x_count` the histogram (or summary) `x`.
 */
export function familyOf(
  name: string,
  types: ReadonlyMap<string, string>,
): string | undefined {
  if (types.has(name)) return name;
  const match = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!match) return undefined;
  const base = match[1]!;
  const type = types.get(base);
  if (type === "histogram" || (type === "summary" && match[2] !== "bucket")) return base;
  return undefined;
}

// ---------------------------------------------------------------------------------- CQL

/** A table of `schemas/cassandra`. */
export interface TableSchema {
  readonly name: string;
  /** Column name to CQL type. */
  readonly columns: ReadonlyMap<string, string>;
  readonly partitionKey: readonly string[];
  readonly clustering: readonly string[];
}

/**
 * `text` with everything nested inside brackets (and `<...>` when `angles`) or quotes masked to
 * `\u0000`, same length: separators found in the result are top level in `text`.
 */
function maskNested(text: string, angles: boolean): string {
  const open = angles ? "(<" : "(";
  const close = angles ? ")>" : ")";
  let depth = 0;
  let quote: string | undefined;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!; // UTF-16 units, so the mask has the same length as `text`
    if (quote) {
      out += "\u0000";
      if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      out += depth > 0 ? "\u0000" : c;
      continue;
    }
    if (open.includes(c)) {
      out += depth > 0 ? "\u0000" : c;
      depth++;
      continue;
    }
    if (close.includes(c)) {
      depth--;
      out += depth > 0 ? "\u0000" : c;
      continue;
    }
    out += depth > 0 ? "\u0000" : c;
  }
  return out;
}

function splitTopLevel(text: string, separator: RegExp, angles = false): string[] {
  const masked = maskNested(text, angles);
  const out: string[] = [];
  let start = 0;
  const global = new RegExp(
    separator.source,
    separator.flags.includes("g") ? separator.flags : separator.flags + "g",
  );
  for (const match of masked.matchAll(global)) {
    out.push(text.slice(start, match.index));
    start = match.index! + match[0].length;
  }
  out.push(text.slice(start));
  return out.map((part) => part.trim()).filter((part) => part !== "");
}

/** The index just past the `)` that closes the `(` at `open`. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "(") depth++;
    if (text[i] === ")" && --depth === 0) return i + 1;
  }
  throw new SyntaxError(`Unbalanced parentheses from offset ${open}`);
}

function names(list: string): string[] {
  return list.replace(/[()]/g, "").split(",").map((n) => n.trim()).filter(Boolean);
}

/** The tables created by a schema file (comments allowed, `{{keyspace}}.` prefixes allowed). */
export function parseCreateTables(cql: string): Map<string, TableSchema> {
  const text = cql.replace(/--[^\n]*/g, "");
  const tables = new Map<string, TableSchema>();
  const create = /CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:[\w{}]+\.)?(\w+)\s*\(/gi;
  for (const match of text.matchAll(create)) {
    const open = match.index! + match[0].length - 1;
    const body = text.slice(open + 1, closingParen(text, open) - 1);
    const columns = new Map<string, string>();
    let partitionKey: string[] = [];
    let clustering: string[] = [];
    for (const item of splitTopLevel(body, /,/, true)) {
      const key = /^PRIMARY\s+KEY\s*\(([\s\S]*)\)$/i.exec(item);
      if (key) {
        const parts = splitTopLevel(key[1]!, /,/);
        partitionKey = names(parts[0]!);
        clustering = parts.slice(1).flatMap(names);
        continue;
      }
      const column = /^(\w+)\s+([\s\S]+?)(\s+PRIMARY\s+KEY)?$/i.exec(item);
      if (!column) throw new SyntaxError(`Cannot read column definition: ${item}`);
      columns.set(column[1]!, column[2]!.trim());
      if (column[3]) partitionKey = [column[1]!];
    }
    tables.set(match[1]!, { name: match[1]!, columns, partitionKey, clustering });
  }
  return tables;
}

/** A single-table SELECT, as far as the checks need it. */
export interface SelectShape {
  readonly keyspace: string | undefined;
  readonly table: string;
  /** Columns read (inside functions and casts too), in order. */
  readonly columns: readonly string[];
  /** The column of the first selected expression (the plugin's series id). */
  readonly firstColumn: string | undefined;
  readonly restrictions: readonly { readonly column: string; readonly operator: string }[];
  readonly allowFiltering: boolean;
}

const CQL_WORDS = new Set([
  "AS",
  "CAST",
  "DISTINCT",
  "ascii",
  "bigint",
  "blob",
  "boolean",
  "counter",
  "date",
  "decimal",
  "double",
  "duration",
  "float",
  "inet",
  "int",
  "smallint",
  "text",
  "time",
  "timestamp",
  "timeuuid",
  "tinyint",
  "uuid",
  "varchar",
  "varint",
]);

function columnsIn(expression: string): string[] {
  const s = expression.replace(/'(?:[^']|'')*'/g, "''").replace(/\s+AS\s+\w+\s*$/i, "");
  const out: string[] = [];
  for (const match of s.matchAll(/(?<![\w.])[A-Za-z_]\w*/g)) {
    const word = match[0];
    if (/^\s*\(/.test(s.slice(match.index! + word.length))) continue; // a function
    if (CQL_WORDS.has(word) || CQL_WORDS.has(word.toUpperCase())) continue;
    out.push(word);
  }
  return out;
}

/** Reads a `SELECT ... FROM [ks.]table [WHERE ...] [PER PARTITION LIMIT n | LIMIT n]`. */
export function parseSelect(cql: string): SelectShape {
  const text = cql.trim().replace(/;$/, "");
  const masked = maskNested(text, false);
  const select = /^SELECT\s+/i.exec(masked);
  const from = /\s+FROM\s+/i.exec(masked);
  if (!select || !from) throw new SyntaxError(`Not a SELECT ... FROM: ${cql}`);
  const selectList = text.slice(select[0].length, from.index);
  const afterFrom = text.slice(from.index + from[0].length);
  const target = /^(?:(\w+)\.)?(\w+)/.exec(afterFrom);
  if (!target) throw new SyntaxError(`No table after FROM: ${cql}`);
  let rest = afterFrom.slice(target[0].length).trim();
  const allowFiltering = /\bALLOW\s+FILTERING\b/i.test(rest);
  rest = rest.replace(/\bALLOW\s+FILTERING\b/i, "");
  const maskedRest = maskNested(rest, false);
  const tail = /\s+(?:PER\s+PARTITION\s+LIMIT|LIMIT|ORDER\s+BY|GROUP\s+BY)\b/i.exec(maskedRest);
  const where = tail ? rest.slice(0, tail.index) : rest;
  const restrictions: { column: string; operator: string }[] = [];
  if (where.trim() !== "") {
    const clause = /^WHERE\s+([\s\S]*)$/i.exec(where.trim());
    if (!clause) throw new SyntaxError(`Cannot read WHERE clause: ${where}`);
    for (const condition of splitTopLevel(clause[1]!, /\s+AND\s+/i)) {
      const match = /^(\w+)\s*(=|IN\b|>=|<=|>|<|CONTAINS\s+KEY|CONTAINS)\s*([\s\S]+)$/i.exec(
        condition,
      );
      if (!match) throw new SyntaxError(`Cannot read condition: ${condition}`);
      restrictions.push({ column: match[1]!, operator: match[2]!.toUpperCase() });
    }
  }
  const items = splitTopLevel(selectList, /,/);
  const columns = items.flatMap(columnsIn);
  return {
    keyspace: target[1],
    table: target[2]!,
    columns,
    firstColumn: items[0] === undefined ? undefined : columnsIn(items[0])[0],
    restrictions,
    allowFiltering,
  };
}

/**
 * What is wrong with a query against the schema: an unknown table or column, a partition key
 * column not restricted with `=` or `IN`, ALLOW FILTERING. Empty when it is fine.
 */
export function queryProblems(
  shape: SelectShape,
  tables: ReadonlyMap<string, TableSchema>,
): string[] {
  const table = tables.get(shape.table);
  if (!table) return [`no table ${shape.table} in schemas/cassandra`];
  const problems: string[] = [];
  for (const column of shape.columns) {
    if (!table.columns.has(column)) problems.push(`${shape.table} has no column ${column}`);
  }
  for (const { column } of shape.restrictions) {
    if (!table.columns.has(column)) problems.push(`WHERE names unknown column ${column}`);
  }
  for (const column of table.partitionKey) {
    const ok = shape.restrictions.some((r) =>
      r.column === column && (r.operator === "=" || r.operator === "IN")
    );
    if (!ok) problems.push(`partition key column ${column} is not restricted with = or IN`);
  }
  if (shape.allowFiltering) problems.push("uses ALLOW FILTERING");
  return problems;
}

/** Concrete values for Grafana's variables and the Cassandra plugin's macros. */
export interface GrafanaValues {
  readonly symbols: readonly string[];
  /** Dashboard time range, epoch ms. */
  readonly from: number;
  readonly to: number;
  /** The keyspace to read instead of the one the query names. */
  readonly keyspace: string;
}

/**
 * The single-value custom variables of a dashboard (an interval, say), by name, with every value
 * they offer. Multi-value ones (`symbol`) are left to {@linkcode substituteGrafana}.
 */
export function customChoices(variables: readonly Json[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const v of variables) {
    if (v["type"] !== "custom" || v["multi"] === true) continue;
    out.set(String(v["name"]), String(v["query"]).split(",").map((x) => x.trim()));
  }
  return out;
}

/**
 * The query once for each value of each single-value custom variable it uses (`$interval` or
 * `${interval}`), with a ` [interval=5m]` note for messages; the query alone when it uses none.
 */
export function expandCustom(
  text: string,
  choices: ReadonlyMap<string, readonly string[]>,
): [string, string][] {
  let out: [string, string][] = [["", text]];
  for (const [name, values] of choices) {
    const pattern = new RegExp(`\\$\\{${name}\\}|\\$${name}\\b`, "g");
    if (!pattern.test(text)) continue;
    out = out.flatMap(([note, t]) =>
      values.map((value) =>
        [`${note} [${name}=${value}]`, t.replace(pattern, value)] as [string, string]
      )
    );
  }
  return out;
}

/**
 * The query as the plugin would send it: `${symbol:singlequote}`, `$symbol`, `$__timeFrom`,
 * `$__timeTo` (epoch ms), `$__unixEpochFrom`/`To` (seconds) replaced, and the keyspace swapped.
 * Throws when a `$` variable is left that this function does not know.
 */
export function substituteGrafana(cql: string, values: GrafanaValues): string {
  const quoted = values.symbols.map((s) => `'${s.replaceAll("'", "''")}'`).join(",");
  const out = cql
    .replaceAll("${symbol:singlequote}", quoted)
    .replace(/\$\{symbol\}|\$symbol\b/g, values.symbols[0] ?? "")
    .replace(/\$__timeFrom\b/g, String(values.from))
    .replace(/\$__timeTo\b/g, String(values.to))
    .replace(/\$__unixEpochFrom\b/g, String(Math.floor(values.from / 1000)))
    .replace(/\$__unixEpochTo\b/g, String(Math.floor(values.to / 1000)))
    .replace(/\bFROM\s+\w+\./i, `FROM ${values.keyspace}.`);
  const left = /\$\{?[\w:]+\}?/.exec(out);
  if (left) throw new Error(`Unknown Grafana variable ${left[0]} in: ${cql}`);
  return out;
}
