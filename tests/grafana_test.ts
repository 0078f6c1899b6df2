/**
 * The Grafana dashboards and alert rules against the real pipeline: every metric a PromQL
 * expression reads is a `# TYPE` family on the status endpoint's `/metrics` while the whole
 * pipeline runs (simulator, producer, three stages, status endpoint), with the labels the
 * expression groups by; every CQL query names a real table and columns, restricts the whole
 * partition key, and runs for real on Cassandra (macros filled in) without ALLOW FILTERING,
 * returning the rows the pipeline wrote, in column types the Cassandra plugin can read.
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import { loadConfig } from "../shared/config.ts";
import { GOLD_TABLE, INTERVALS } from "../shared/gold_table.ts";
import { session, waitFor } from "./helpers.ts";
import {
  familyOf,
  type GrafanaQuery,
  labelNames,
  loadGrafanaFiles,
  metricNames,
  parseCreateTables,
  parseSelect,
  queryProblems,
  substituteGrafana,
  type TableSchema,
} from "./grafana_queries.ts";
import {
  observedTestOptions,
  startObservedPipeline,
  troublesomeTrades,
} from "./observed_pipeline.ts";
import { type ExposedFamily, parseExposition } from "./prometheus_text.ts";

const PROMETHEUS = { type: "prometheus", uid: "prometheus" };
const CASSANDRA = { type: "hadesarchitect-cassandra-datasource", uid: "cassandra" };

/** Column types the Cassandra plugin turns into Grafana fields (pkg/cassandra/row.go). */
const PLUGIN_TYPES = new Set(
  [
    "ascii",
    "bigint",
    "blob",
    "boolean",
    "counter",
    "date",
    "double",
    "float",
    "inet",
    "int",
    "smallint",
    "text",
    "timestamp",
    "timeuuid",
    "tinyint",
    "uuid",
    "varchar",
  ].map((name) => cassandra.types.dataTypes[name as "int"]),
);

async function schemaTables(): Promise<Map<string, TableSchema>> {
  const tables = new Map<string, TableSchema>();
  const dir = new URL("../schemas/cassandra/", import.meta.url);
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cql")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    for (const [name, table] of parseCreateTables(text)) tables.set(name, table);
  }
  return tables;
}

/** `cql` without its `AND <column> IN (...)` condition. */
function dropInCondition(cql: string, column: string): string {
  const match = new RegExp(`\\s+AND\\s+${column}\\s+IN\\s*\\(`, "i").exec(cql);
  assert.ok(match, `no ${column} IN (...) in ${cql}`);
  let depth = 0;
  for (let i = match.index + match[0].length - 1; i < cql.length; i++) {
    if (cql[i] === "(") depth++;
    if (cql[i] === ")" && --depth === 0) return cql.slice(0, match.index) + cql.slice(i + 1);
  }
  throw new SyntaxError(`Unbalanced parentheses in ${cql}`);
}

function byDatasource(queries: readonly GrafanaQuery[], uid: string): GrafanaQuery[] {
  return queries.filter((q) => q.datasource.uid === uid);
}

Deno.test("metricNames() finds metric names, not functions, keywords, labels or durations", () => {
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.99, sum by (le, stage) (rate(a_seconds_bucket{stage="x"}[$__rate_interval])))',
    ),
    ["a_seconds_bucket"],
  );
  assert.deepEqual(
    metricNames(
      "(sum(rate(x_total[5m])) or vector(0)) == bool 0 and on() (day_of_week() >= 1) " +
        "and on(group) sum by (group) (deriv(lag[10m] offset 1d)) > 0 unless on() absent(up_g)",
    ),
    ["lag", "up_g", "x_total"],
  );
  assert.deepEqual(metricNames("min(pipeline_kafka_up)"), ["pipeline_kafka_up"]);
  assert.deepEqual(labelNames('sum by (le, stage) (a{quantile="0.99"}) and on(group) b'), [
    "group",
    "le",
    "quantile",
    "stage",
  ]);
  const types = new Map([["h", "histogram"], ["c", "counter"]]);
  assert.equal(familyOf("h_bucket", types), "h");
  assert.equal(familyOf("c_count", types), undefined);
  assert.equal(familyOf("c", types), "c");
});

Deno.test("parseSelect() and queryProblems() catch an unrestricted partition key and unknown columns", async () => {
  const tables = await schemaTables();
  const bad = parseSelect(
    "SELECT symbol, CAST(nope AS double) AS v FROM market.trades_gold_5m WHERE symbol = 'A' AND window_start > 0",
  );
  assert.deepEqual(queryProblems(bad, tables), [
    "trades_gold_5m has no column nope",
    "partition key column bucket is not restricted with = or IN",
  ]);
  const good = parseSelect(
    "SELECT symbol, price FROM market.latest_prices WHERE symbol IN ('AAPL', 'MSFT')",
  );
  assert.deepEqual(queryProblems(good, tables), []);
  assert.deepEqual(tables.get("trades_silver")?.partitionKey, ["symbol", "bucket"]);
  assert.deepEqual(tables.get("latest_prices")?.partitionKey, ["symbol"]);
});

Deno.test("the Grafana files use only the provisioned data sources, real tables and the default symbols", async () => {
  const files = await loadGrafanaFiles();
  const tables = await schemaTables();
  const provisioned = new Map(files.datasources.map((d) => [d.uid, d]));
  assert.equal(provisioned.get("prometheus")?.type, PROMETHEUS.type);
  assert.equal(provisioned.get("cassandra")?.type, CASSANDRA.type);
  assert.equal(provisioned.get("cassandra")?.jsonData?.["keyspace"], "market");
  assert.equal(provisioned.get("cassandra")?.jsonData?.["consistency"], "ONE");
  assert.deepEqual([...files.dashboards.keys()].sort(), ["market.json", "pipeline.json"]);
  assert.ok(files.rules.length >= 7, "alert rules are provisioned");

  for (const query of files.queries) {
    const ds = provisioned.get(query.datasource.uid ?? "");
    assert.ok(ds, `${query.where}: data source ${JSON.stringify(query.datasource)} is provisioned`);
    if (query.datasource.type !== undefined) {
      assert.equal(query.datasource.type, ds.type, `${query.where}: data source type`);
    }
  }
  const prom = byDatasource(files.queries, "prometheus");
  const cql = byDatasource(files.queries, "cassandra");
  assert.ok(prom.length >= 20 && cql.length >= 6, `${prom.length} PromQL, ${cql.length} CQL`);

  for (const query of cql) {
    assert.equal(query.raw["rawQuery"], true, `${query.where}: a CQL (query editor) query`);
    const shape = parseSelect(query.text);
    assert.equal(shape.keyspace, "market", `${query.where}: names the market keyspace`);
    assert.deepEqual(queryProblems(shape, tables), [], query.where);
    // The plugin groups rows into series by the first column.
    assert.equal(shape.firstColumn, "symbol", `${query.where}: symbol comes first`);
  }
  const tablesRead = new Set(cql.map((q) => parseSelect(q.text).table));
  assert.deepEqual(
    [...tablesRead].sort(),
    [
      "latest_prices",
      ...INTERVALS.map((i) => GOLD_TABLE[i]),
    ].sort(),
  );

  const market = files.dashboards.get("market.json")!;
  const variables = (market["templating"] as { list: Record<string, unknown>[] }).list;
  const interval = variables.find((v) => v["name"] === "interval");
  assert.ok(interval, "market.json has an interval variable");
  assert.deepEqual(
    String(interval["query"]).split(","),
    [...INTERVALS],
    "it offers the stored intervals",
  );
  const symbol = variables.find((v) => v["name"] === "symbol");
  assert.ok(symbol, "market.json has a symbol variable");
  assert.deepEqual(
    String(symbol["query"]).split(","),
    [...loadConfig({}).finnhub.symbols],
    "the symbol variable lists FINNHUB_SYMBOLS' default",
  );

  const roles = loadConfig({}).status.expectedWorkers;
  const workerDown = files.rules.find((r) => r["uid"] === "pipeline-worker-down");
  const expr = JSON.stringify(workerDown?.["data"]);
  for (const role of roles) {
    assert.ok(expr.includes(`role=\\"${role}\\"`), `worker-down rule covers ${role}`);
  }
  for (const rule of files.rules) {
    const data = rule["data"] as { refId: string }[];
    assert.ok(
      data.some((d) => d.refId === rule["condition"]),
      `rule ${String(rule["uid"])}: condition ${String(rule["condition"])} is one of its queries`,
    );
  }
  assert.equal(new Set(files.rules.map((r) => r["uid"])).size, files.rules.length, "unique uids");
});

Deno.test({
  name:
    "every metric and label the dashboards and alerts use is on /metrics of a running pipeline, and every CQL query runs on Cassandra",
  ...observedTestOptions,
  async fn() {
    const files = await loadGrafanaFiles();
    const tables = await schemaTables();
    const pipeline = await startObservedPipeline();
    const client = session(pipeline.config);
    try {
      const symbols = pipeline.config.finnhub.symbols;
      // Gold has AAPL's current windows: AAPL's watermark is past ten minutes ago, so the
      // old trade among these is late; the others are rejected by silver (dead letters).
      await waitFor("AAPL in latest_prices", async () => {
        const result = await client.execute(
          "SELECT price FROM latest_prices WHERE symbol = 'AAPL'",
        );
        return result.rowLength > 0;
      }, { timeoutMs: 60_000, intervalMs: 250 });
      await pipeline.produceRaw(troublesomeTrades("AAPL", Date.now()));

      // PromQL: every metric a family on /metrics; every label on one of its series.
      const prom = byDatasource(files.queries, "prometheus");
      const used = new Set(prom.flatMap((q) => metricNames(q.text)));
      let families = new Map<string, ExposedFamily>();
      await waitFor("dead letters by reason and late trades on /metrics", async () => {
        families = parseExposition(await pipeline.metrics());
        const dead = families.get("pipeline_dead_letters_total")?.samples ?? [];
        const late = families.get("pipeline_gold_late_trades_total")?.samples ?? [];
        return dead.some((s) => s.labels["reason"]) && late.some((s) => s.labels["interval"]);
      }, { timeoutMs: 60_000, intervalMs: 500 });
      const types = new Map([...families.values()].map((f) => [f.name, f.type]));
      const missing = [...used].filter((name) => familyOf(name, types) === undefined);
      assert.deepEqual(missing, [], "metrics the Grafana files use but /metrics does not have");

      for (const query of prom) {
        const read = metricNames(query.text).map((n) => families.get(familyOf(n, types)!)!);
        const withSeries = read.filter((f) => f.samples.length > 0);
        if (withSeries.length < read.length) continue; // no series yet: no labels to compare
        const seen = new Set(
          withSeries.flatMap((f) => f.samples.flatMap((s) => Object.keys(s.labels))),
        );
        for (const label of labelNames(query.text)) {
          assert.ok(
            seen.has(label),
            `${query.where}: no series of ${read.map((f) => f.name)} has label ${label}`,
          );
        }
      }
      for (const role of pipeline.config.status.expectedWorkers) {
        const up = families.get("pipeline_worker_up")!.samples;
        assert.ok(up.some((s) => s.labels["role"] === role && s.value === 1), `${role} up`);
      }

      // CQL: each query, macros filled in, runs and returns what the pipeline wrote.
      const now = Date.now();
      const values = {
        symbols,
        // Two days: a 1d candle starts at UTC midnight, so a 6-hour range holds none after 06:00.
        from: now - 2 * 86_400_000,
        to: now + 60_000,
        keyspace: pipeline.config.cassandra.keyspace,
      };
      for (const query of byDatasource(files.queries, "cassandra")) {
        const cql = substituteGrafana(query.text, values);
        assert.doesNotMatch(cql, /ALLOW\s+FILTERING/i);
        const result = await waitFor(`${query.where} to return rows`, async () => {
          const result = await client.execute(cql);
          return result.rowLength > 0 ? result : undefined;
        }, { timeoutMs: 60_000, intervalMs: 500 });
        const shape = parseSelect(query.text);
        assert.equal(result.columns[0]?.name, "symbol", query.where);
        for (const column of result.columns) {
          assert.ok(
            PLUGIN_TYPES.has(column.type.code),
            `${query.where}: column ${column.name} has type code ${column.type.code}, which the Cassandra plugin cannot read (CAST it)`,
          );
        }
        const rowSymbols = new Set(result.rows.map((row) => row["symbol"] as string));
        assert.ok(rowSymbols.has("AAPL"), `${query.where}: AAPL rows (got ${[...rowSymbols]})`);
        for (const s of rowSymbols) assert.ok(symbols.includes(s), `${query.where}: ${s} selected`);
        assert.deepEqual(queryProblems(shape, tables), [], query.where);
      }

      // The check has teeth: without the bucket, Cassandra refuses the same query.
      const gold5m = byDatasource(files.queries, "cassandra").find((q) =>
        parseSelect(q.text).table === "trades_gold_5m"
      )!;
      const withoutBucket = dropInCondition(substituteGrafana(gold5m.text, values), "bucket");
      assert.doesNotMatch(withoutBucket, /bucket/);
      await assert.rejects(client.execute(withoutBucket), /ALLOW FILTERING/);
    } finally {
      await client.shutdown();
      await pipeline.stop();
    }
  },
});
