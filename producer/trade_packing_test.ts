import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { TradePacker, unpackTrades } from "./trade_packing.ts";

function unpacked(buffer: ArrayBuffer) {
  const out: [string, number, string, number][] = [];
  unpackTrades(buffer, (symbol, time, value, partition) => {
    out.push([symbol, time, value.toString("hex"), partition]);
  });
  return out;
}

Deno.test("TradePacker and unpackTrades() round-trip trades in order, values byte for byte", () => {
  const packer = new TradePacker();
  const trades: [string, number, Uint8Array, number][] = [
    ["AAPL", 1_700_000_000_123, new Uint8Array([0xc3, 0x01, 1, 2, 3]), 4],
    ["AAPL", 1_700_000_000_123, new Uint8Array([]), 4],
    ["BINANCE:BTCUSDT", 1_700_000_000_124, new Uint8Array(300).fill(7), 0],
    ["ÄPPL", 0, new Uint8Array([255]), 65_535],
  ];
  for (const [s, t, v, p] of trades) packer.add(s, t, v, p);
  assert.equal(packer.count, 4);
  const { buffer, count } = packer.take();
  assert.equal(count, 4);
  assert.equal(packer.count, 0, "take() starts over");
  assert.deepEqual(
    unpacked(buffer),
    trades.map(([s, t, v, p]) => [s, t, Buffer.from(v).toString("hex"), p]),
  );
});

Deno.test("TradePacker grows past its first buffer and hands over a fresh one each time", () => {
  const packer = new TradePacker();
  const value = new Uint8Array(1_000).fill(1);
  for (let i = 0; i < 500; i++) packer.add(`S${i % 7}`, i, value, i % 6);
  const first = packer.take();
  packer.add("X", 1, value, 0);
  const second = packer.take();
  assert.equal(unpacked(first.buffer).length, 500);
  assert.deepEqual(unpacked(first.buffer).map(([s, t]) => [s, t]).slice(0, 2), [["S0", 0], [
    "S1",
    1,
  ]]);
  assert.deepEqual(unpacked(second.buffer).map(([s]) => s), ["X"]);
});

Deno.test("unpackTrades() gives zero-copy Buffer views", () => {
  const packer = new TradePacker();
  packer.add("A", 1, new Uint8Array([9, 9]), 0);
  const { buffer } = packer.take();
  unpackTrades(buffer, (_s, _t, value) => {
    assert.ok(Buffer.isBuffer(value));
    assert.equal(value.buffer, buffer);
  });
});

Deno.test("TradePacker refuses a symbol longer than 255 UTF-8 bytes", () => {
  assert.throws(() => new TradePacker().add("é".repeat(128), 1, new Uint8Array(), 0), /256 bytes/);
});
