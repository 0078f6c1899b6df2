import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import {
  batchUnits,
  createCoalescingWriter,
  crossPartitionBatchBytes,
  DEFAULT_BATCH_WARN_BYTES,
  estimatedBytes,
  MAX_CROSS_PARTITION_BATCH_BYTES,
  type RowWrite,
  storageBytes,
  timestampedQuery,
} from "./cassandra_writer.ts";
import { decimalBytes, encodedValues } from "./cassandra_values.ts";
import { parseDecimal } from "./decimal.ts";

Deno.test("timestampedQuery() binds the timestamp after an INSERT's values", () => {
  assert.deepEqual(timestampedQuery("INSERT INTO ks.t (a, b) VALUES (?, ?)\n  "), {
    query: "INSERT INTO ks.t (a, b) VALUES (?, ?) USING TIMESTAMP ?",
    timestampFirst: false,
  });
});

Deno.test("timestampedQuery() binds the timestamp before an UPDATE's SET and a DELETE's WHERE", () => {
  assert.deepEqual(timestampedQuery("UPDATE ks.t SET a = ? WHERE k = ?"), {
    query: "UPDATE ks.t USING TIMESTAMP ? SET a = ? WHERE k = ?",
    timestampFirst: true,
  });
  assert.deepEqual(timestampedQuery("DELETE a, b FROM ks.t\n  WHERE k = ?"), {
    query: "DELETE a, b FROM ks.t USING TIMESTAMP ?\n  WHERE k = ?",
    timestampFirst: true,
  });
  assert.deepEqual(timestampedQuery("delete from ks.t where k = ?"), {
    query: "delete from ks.t USING TIMESTAMP ? where k = ?",
    timestampFirst: true,
  });
});

Deno.test("timestampedQuery() refuses a query it cannot give a timestamp", () => {
  for (
    const query of [
      "INSERT INTO ks.t (a) VALUES (?) USING TTL 10",
      "INSERT INTO ks.t (a) VALUES (?) IF NOT EXISTS",
      "UPDATE ks.t SET a = ? WHERE k = ? IF a = 1",
      "SELECT * FROM ks.t",
    ]
  ) {
    assert.throws(() => timestampedQuery(query), /Cannot write a row with its own timestamp/);
  }
});

function row(partition: string, bytes = 100, query = "INSERT q"): RowWrite<string> {
  // One parameter of `bytes - 48` bytes: estimatedBytes() adds 16 for its cell and 32 for the row.
  return { query, partition, params: ["x".repeat(bytes - 48)], ref: partition };
}

Deno.test("batchUnits() against a cluster: one partition and statement per batch", () => {
  const rows = [row("a"), row("b"), row("a"), row("a", 100, "INSERT r"), row("a")];
  assert.deepEqual(estimatedBytes(rows[0]!), 100);
  const units = batchUnits(rows, { crossPartitionBytes: 0, batchSize: 2 });
  assert.deepEqual(units.map((u) => u.map((r) => `${r.query}/${r.partition}`)), [
    ["INSERT q/a", "INSERT q/a"],
    ["INSERT q/a"],
    ["INSERT q/b"],
    ["INSERT r/a"],
  ]);
});

Deno.test("batchUnits() against one node packs small partitions up to the byte bound", () => {
  for (const bound of [DEFAULT_BATCH_WARN_BYTES, MAX_CROSS_PARTITION_BATCH_BYTES]) {
    const third = Math.floor(bound / 3);
    const rows = [row("a", third), row("b", third), row("c", third), row("d", third)];
    const units = batchUnits(rows, { crossPartitionBytes: bound, batchSize: 500 });
    assert.deepEqual(units.map((u) => u.map((r) => r.partition)), [["a", "b", "c"], ["d"]]);
    for (const unit of units) {
      assert.ok(unit.reduce((n, r) => n + estimatedBytes(r), 0) <= bound);
    }
  }
});

Deno.test("batchUnits() against one node keeps a large partition's rows a batch of their own", () => {
  const half = Math.ceil(DEFAULT_BATCH_WARN_BYTES / 2);
  const rows = [row("small"), row("big", half), row("big", half), row("other")];
  const units = batchUnits(rows, { crossPartitionBytes: DEFAULT_BATCH_WARN_BYTES, batchSize: 500 });
  assert.deepEqual(units.map((u) => u.map((r) => r.partition)), [["big", "big"], [
    "small",
    "other",
  ]]);
});

Deno.test("batchUnits() keeps every row exactly once", () => {
  const rows = Array.from(
    { length: 1000 },
    (_, i) => row(`p${i % 37}`, 60 + (i * 7919) % 900, `INSERT q${i % 3}`),
  );
  for (
    const crossPartitionBytes of [0, DEFAULT_BATCH_WARN_BYTES, MAX_CROSS_PARTITION_BATCH_BYTES]
  ) {
    const units = batchUnits(rows, { crossPartitionBytes, batchSize: 5 });
    assert.deepEqual(units.flat().length, rows.length);
    assert.deepEqual(new Set(units.flat()).size, rows.length);
  }
});

Deno.test("estimatedBytes() is at least what Cassandra counts against its batch thresholds", () => {
  // Cassandra's own count ("Batch for [...] is of size ...") of 20 rows like these, per row.
  const at = new Date(1_764_547_200_000);
  const decimal = (s: string) => cassandra.types.BigDecimal.fromString(s);
  const measured: [number, unknown[]][] = [
    [473, [
      "BINANCE:SYM1USDT",
      at,
      3,
      123456n,
      "bench.ac7d57713f.raw",
      123.45,
      1764547200000n,
      0.5,
      ["1", "12"],
      "list",
      at,
      "c0b6f1d2-7a4e-4f7e-9a57-3b1c2d3e4f50",
      123456n,
      2,
      at,
    ]],
    [369, [
      "BINANCE:SYM1USDT",
      at,
      at,
      3,
      123456n,
      "bench.ac7d57713f.raw",
      123.45,
      0.5,
      false,
      ["1", "12"],
      "regular",
      at,
      at,
    ]],
    [798, [
      "BINANCE:SYM1USDT",
      cassandra.types.LocalDate.fromString("2026-12-01"),
      at,
      at,
      1.5,
      2.5,
      1.25,
      2,
      decimal("123.456789"),
      decimal("24567.1234567891"),
      decimal("199.0001234567890123"),
      120n,
      3n,
      at,
      2,
      1234n,
      at,
      4,
      5678n,
      new Map([[0, 10n], [1, 20n], [2, 30n], [3, 40n], [4, 50n], [5, 60n]]),
      false,
      0n,
      at,
    ]],
  ];
  // Gold sends its decimals and day bucket serialised ahead (`candle_rows.ts`).
  const gold = measured[2]![1].map((param) =>
    param instanceof cassandra.types.BigDecimal
      ? decimalBytes(parseDecimal(param.toString()))
      : param instanceof cassandra.types.LocalDate
      ? encodedValues("date")(param.toString())
      : param
  );
  for (const [bytes, params] of [...measured, [798, gold] as [number, unknown[]]]) {
    const estimate = estimatedBytes({ query: "", partition: "", params, ref: 0 });
    assert.ok(estimate >= bytes && estimate < bytes * 1.2, `${estimate} for ${bytes}`);
  }
});

Deno.test("estimatedBytes() counts a list serialised ahead as the list itself", () => {
  const list = encodedValues("list<text>");
  for (const conditions of [["1"], ["1", "12"], ["T", "I", "Z", "12"], ["x".repeat(32)]]) {
    const asArray = estimatedBytes({ query: "", partition: "", params: [conditions], ref: 0 });
    const asBytes = estimatedBytes({
      query: "",
      partition: "",
      params: [list(conditions)],
      ref: 0,
    });
    assert.equal(asBytes, asArray, conditions.join(","));
  }
  // An empty list is sent as null, as the driver sends it.
  assert.equal(list([]), null);
});

Deno.test("storageBytes() reads Cassandra's data storage settings", () => {
  assert.equal(storageBytes("5KiB"), 5 * 1024);
  assert.equal(storageBytes("640KiB"), 640 * 1024);
  assert.equal(storageBytes("1MiB"), 1024 * 1024);
  assert.equal(storageBytes("512B"), 512);
  assert.equal(storageBytes("2GiB"), 2 * 1024 ** 3);
  for (const text of ["", "5", "5 kb", "-1KiB", "1.5KiB", "1TiB"]) {
    assert.equal(storageBytes(text), null, text);
  }
});

/** A client whose settings query answers `rows` (or fails with `error`), counting the reads. */
function settingsClient(rows: Record<string, string>[] | Error) {
  const reads = { count: 0 };
  const client = {
    execute: (query: string) => {
      assert.match(query, /system_views\.settings/);
      reads.count++;
      return rows instanceof Error ? Promise.reject(rows) : Promise.resolve({ rows });
    },
  } as unknown as cassandra.Client;
  return { client, reads };
}

Deno.test("crossPartitionBatchBytes() is the node's warn threshold, read once, at most 64 KiB", async () => {
  const cases: [Record<string, string>[], number][] = [
    [[{ name: "batch_size_warn_threshold", value: "5KiB" }], 5 * 1024],
    [[
      { name: "batch_size_warn_threshold", value: "32KiB" },
      { name: "batch_size_warn_threshold_in_kb", value: "32" },
    ], 32 * 1024],
    // Cassandra 4.0 names it only with its unit.
    [[{ name: "batch_size_warn_threshold_in_kb", value: "16" }], 16 * 1024],
    [[{ name: "batch_size_warn_threshold", value: "1MiB" }], MAX_CROSS_PARTITION_BATCH_BYTES],
    [[{ name: "batch_size_warn_threshold", value: "soon" }], DEFAULT_BATCH_WARN_BYTES],
    [[], DEFAULT_BATCH_WARN_BYTES],
  ];
  for (const [rows, bytes] of cases) {
    const { client, reads } = settingsClient(rows);
    assert.equal(await crossPartitionBatchBytes(client), bytes, JSON.stringify(rows));
    assert.equal(await crossPartitionBatchBytes(client), bytes);
    assert.equal(reads.count, 1);
  }
});

Deno.test("crossPartitionBatchBytes() without system_views is Cassandra's default", async () => {
  const { client, reads } = settingsClient(
    new cassandra.errors.ResponseError(0x2200, "unconfigured table settings"),
  );
  assert.equal(await crossPartitionBatchBytes(client), DEFAULT_BATCH_WARN_BYTES);
  assert.equal(await crossPartitionBatchBytes(client), DEFAULT_BATCH_WARN_BYTES);
  assert.equal(reads.count, 1);
});

Deno.test("crossPartitionBatchBytes() throws a retriable failure and reads again next time", async () => {
  const { client, reads } = settingsClient(new cassandra.errors.NoHostAvailableError({}));
  await assert.rejects(crossPartitionBatchBytes(client), cassandra.errors.NoHostAvailableError);
  await assert.rejects(crossPartitionBatchBytes(client), cassandra.errors.NoHostAvailableError);
  assert.equal(reads.count, 2);
});

/**
 * A client of one node that records each request's rows (by their first parameter) and fails
 * a request holding a row `refuse` names (non-retriable) or `unreachable` names (retriable).
 */
function fakeClient(
  fail: { refuse?: ReadonlySet<unknown>; unreachable?: ReadonlySet<unknown> } = {},
): { client: cassandra.Client; requests: unknown[][] } {
  const requests: unknown[][] = [];
  const run = (firsts: unknown[]) => {
    requests.push(firsts);
    if (firsts.some((first) => fail.unreachable?.has(first))) {
      return Promise.reject(new cassandra.errors.NoHostAvailableError({}));
    }
    if (firsts.some((first) => fail.refuse?.has(first))) {
      return Promise.reject(new cassandra.errors.ResponseError(0x2200, "Invalid row"));
    }
    return Promise.resolve();
  };
  const client = {
    hosts: { length: 1 },
    options: { encoding: { useBigIntAsLong: true } },
    execute: (query: string, params: unknown[]) =>
      query.includes("system_views.settings")
        ? Promise.resolve({ rows: [{ name: "batch_size_warn_threshold", value: "5KiB" }] })
        : run([params[0]]),
    batch: (statements: { params: unknown[] }[]) => run(statements.map((s) => s.params[0])),
  };
  return { client: client as unknown as cassandra.Client, requests };
}

function smallRow(value: string, ref: number): RowWrite<number> {
  return { query: "INSERT q", partition: value, params: [value], ref };
}

Deno.test("createCoalescingWriter() writes the calls of one turn in one writeRows", async () => {
  const { client, requests } = fakeClient();
  const write = createCoalescingWriter<number>(client);
  const done = await Promise.all([
    write([smallRow("a1", 0), smallRow("a2", 1)]),
    write([smallRow("b1", 0)]),
    write([]),
  ]);
  assert.deepEqual(done, [[], [], []]);
  assert.deepEqual(requests, [["a1", "a2", "b1"]]);
  // A call after the write started goes in the next one.
  await write([smallRow("c1", 0)]);
  assert.deepEqual(requests, [["a1", "a2", "b1"], ["c1"]]);
});

Deno.test("createCoalescingWriter() gives each call the failures of its own rows", async () => {
  const { client } = fakeClient({ refuse: new Set(["b2"]) });
  const write = createCoalescingWriter<number>(client);
  const [a, b] = await Promise.all([
    write([smallRow("a1", 0), smallRow("a2", 1)]),
    write([smallRow("b1", 0), smallRow("b2", 1)]),
  ]);
  assert.deepEqual(a, []);
  assert.deepEqual(b!.map((failure) => failure.ref), [1]);
  assert.match(b![0]!.error.message, /Invalid row/);
});

Deno.test("createCoalescingWriter() rejects every call of a write that failed retriably", async () => {
  const { client } = fakeClient({ unreachable: new Set(["b1"]) });
  const write = createCoalescingWriter<number>(client);
  const calls = [write([smallRow("a1", 0)]), write([smallRow("b1", 0)])];
  for (const call of calls) {
    await assert.rejects(call, cassandra.errors.NoHostAvailableError);
  }
});
