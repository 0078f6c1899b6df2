/**
 * writeRows() against the real Cassandra: rows of many partitions, each with its own write
 * timestamp, share one batch and still win or lose by their timestamps.
 */
import assert from "node:assert/strict";
import { type RowWrite, writeRows } from "../shared/cassandra_writer.ts";
import { withTestKeyspace } from "./helpers.ts";

Deno.test("writeRows() batches rows of many partitions, each under its own write timestamp", async () => {
  await withTestKeyspace({}, async (config, client) => {
    const ks = config.cassandra.keyspace;
    const insert = `INSERT INTO ${ks}.latest_prices (symbol, price) VALUES (?, ?)`;
    const update = `UPDATE ${ks}.latest_prices SET volume = ? WHERE symbol = ?`;
    const remove = `DELETE price FROM ${ks}.latest_prices WHERE symbol = ?`;
    const rows: RowWrite<string>[] = [];
    for (let i = 0; i < 20; i++) {
      const symbol = `S${i}`;
      // The newer price first: it must still win over the older one written after it.
      rows.push({
        query: insert,
        params: [symbol, 2],
        partition: symbol,
        timestamp: 2000n,
        ref: symbol,
      });
      rows.push({
        query: insert,
        params: [symbol, 1],
        partition: symbol,
        timestamp: 1000n,
        ref: symbol,
      });
      rows.push({
        query: update,
        params: [5, symbol],
        partition: symbol,
        timestamp: 1500n,
        ref: symbol,
      });
    }
    // An older delete loses; a newer one wins.
    rows.push({ query: remove, params: ["S0"], partition: "S0", timestamp: 1999n, ref: "S0" });
    rows.push({ query: remove, params: ["S1"], partition: "S1", timestamp: 2001n, ref: "S1" });
    let requests = 0;
    const failures = await writeRows(client, rows, { observe: () => requests++ });
    assert.deepEqual(failures, []);
    assert.ok(requests <= 3, `${rows.length} small rows took ${requests} requests`);

    const result = await client.execute(
      `SELECT symbol, price, WRITETIME(price) AS at, volume, WRITETIME(volume) AS vat
        FROM ${ks}.latest_prices`,
    );
    const bySymbol = new Map(result.rows.map((r) => [r.get("symbol") as string, r]));
    assert.equal(bySymbol.size, 20);
    for (const [symbol, row] of bySymbol) {
      assert.equal(row.get("volume"), 5, symbol);
      assert.equal(BigInt(row.get("vat")), 1500n, symbol);
      if (symbol === "S1") {
        assert.equal(row.get("price"), null);
        continue;
      }
      assert.equal(row.get("price"), 2, symbol);
      assert.equal(BigInt(row.get("at")), 2000n, symbol);
    }
  });
});
