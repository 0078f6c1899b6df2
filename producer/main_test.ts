import assert from "node:assert/strict";
import { PRODUCER_V8_FLAGS } from "../shared/topology.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

async function start(
  env: Record<string, string>,
  v8Flags: string[] = [],
): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...v8Flags, MAIN],
    env: { KAFKA_BROKERS: "127.0.0.1:1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("the producer refuses to start with 51 symbols, saying how many and the limit", async () => {
  const symbols = Array.from({ length: 51 }, (_, i) => `S${i}`).join(",");
  const { code, stderr } = await start({
    FINNHUB_SYMBOLS: symbols,
    FINNHUB_API_KEY: "dont-print-me",
  });
  assert.equal(code, 1);
  assert.match(stderr, /FINNHUB_SYMBOLS lists 51 symbols, more than FINNHUB_SYMBOL_LIMIT=50/);
  assert.ok(!stderr.includes("dont-print-me"));
});

Deno.test("the producer refuses to start with a malformed symbol, naming it", async () => {
  const { code, stderr } = await start({ FINNHUB_SYMBOLS: "AAPL,BINANCE:BTC USDT" });
  assert.equal(code, 1);
  assert.match(stderr, /malformed symbol "BINANCE:BTC USDT"/);
});

Deno.test("the producer refuses a buffer its heap bound cannot hold, saying what fits", async () => {
  const { code, stderr } = await start(
    { PRODUCER_BUFFER_MAX_TRADES: "1000000", FINNHUB_API_KEY: "dont-print-me" },
    [`--v8-flags=${PRODUCER_V8_FLAGS}`],
  );
  assert.equal(code, 1);
  assert.match(stderr, /PRODUCER_BUFFER_MAX_TRADES=1000000 needs about 245 MiB/);
  assert.match(stderr, /set it to at most 311296/);
  assert.ok(!stderr.includes("dont-print-me"));
});
