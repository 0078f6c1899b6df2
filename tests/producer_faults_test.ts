/**
 * The producer against a misbehaving feed, with real Kafka: dropped sockets, silence, pings,
 * too many symbols, a refused key, malformed and hostile frames. The simulator injects each
 * fault; the producer must recover (or report) and lose nothing it accepted.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hostileFrames, MALFORMED_FRAMES, TRADE_EXPECTATIONS } from "../simulator/faults.ts";
import { readGroundTruth, tradeEntries } from "../simulator/ground_truth.ts";
import { testLogger, waitFor } from "./helpers.ts";
import {
  deadLetters,
  kafkaTestOptions,
  rawTrades,
  readTopic,
  withProducer,
} from "./producer_support.ts";

const SYMBOLS = ["AAPL", "MSFT", "TSLA", "BINANCE:BTCUSDT", "OANDA:EUR_USD"];

Deno.test({
  name:
    "after the feed drops the socket the producer reconnects, resubscribes every symbol and loses no trade",
  ...kafkaTestOptions,
  fn: () =>
    withProducer({
      simulator: { rate: 2_000 },
      env: { FINNHUB_SYMBOLS: SYMBOLS.join(",") },
    }, async ({ sim, config, running, truthPath }) => {
      const metrics = running.producer.metrics;
      await waitFor("trades before the drop", () => metrics.tradesProduced > 1_000);
      sim.inject({ type: "drop" });
      await waitFor("a second connection", () => metrics.connectionsOpened === 2);
      await waitFor(
        "every symbol resubscribed",
        () => sim.stats().connections[0]?.subscriptions === SYMBOLS.length,
      );
      const afterReconnect = metrics.tradesProduced;
      await waitFor(
        "trades after the reconnect",
        () => metrics.tradesProduced > afterReconnect + 1_000,
      );
      sim.inject({ type: "pause" });
      await waitFor(
        "every trade sent acknowledged",
        () => metrics.tradesProduced === sim.stats().tradesSent && metrics.framesReceived > 0,
      );
      const report = await running.stop();
      await sim.close();
      assert.equal(report.metrics.reconnects, 1);
      assert.equal(sim.stats().peakConnectionsPerToken, 1, "never two connections for one key");

      const sent = tradeEntries(await readGroundTruth(truthPath));
      const second = sent.filter((e) => e.connection === 2);
      assert.ok(second.length > 1_000, "trades were sent on the new connection");
      const trades = rawTrades(await readTopic(config, config.kafka.topics.raw, sent.length));
      const key = (connection: string | number, frame: number, index: number) =>
        `${connection}/${frame}/${index}`;
      const arrived = new Set(
        trades.map((t) => key(t.connectionId.split("-")[1]!, t.frameSeq, t.tradeIndex)),
      );
      for (const entry of sent) {
        assert.ok(
          arrived.has(key(entry.connection, entry.frame, entry.index)),
          JSON.stringify(entry),
        );
      }
    }),
});

Deno.test({
  name:
    "pings keep a quiet connection alive, and silence trips the watchdog, which replaces the socket",
  ...kafkaTestOptions,
  fn: () =>
    withProducer({
      simulator: { rate: 0, pingIntervalMs: 50 },
      env: { FINNHUB_SYMBOLS: SYMBOLS.join(","), FINNHUB_WATCHDOG_MS: "400" },
    }, async ({ sim, running }) => {
      const metrics = running.producer.metrics;
      await waitFor("25 pings (over 3 watchdog periods)", () => metrics.pings >= 25);
      assert.equal(metrics.watchdogTimeouts, 0, "pings count as frames");
      assert.equal(metrics.connectionsOpened, 1);
      assert.equal(metrics.framesReceived, metrics.pings);
      sim.inject({ type: "silence", ms: 1_500 });
      await waitFor("the watchdog", () => metrics.watchdogTimeouts >= 1);
      sim.setRate(500);
      await waitFor(
        "a new connection with trades",
        () => metrics.connectionsOpened >= 2 && metrics.tradesProduced > 100,
      );
      assert.equal(
        sim.stats().peakConnectionsPerToken,
        1,
        "the old socket closed before the new one opened",
      );
      assert.equal(metrics.connectionState, "open");
    }),
});

Deno.test({
  name:
    "Finnhub's 'too many symbols' error is counted and surfaced loudly, and the subscribed symbols still flow",
  ...kafkaTestOptions,
  async fn() {
    const symbols = Array.from({ length: 51 }, (_, i) => `T${i}`);
    const lines: string[] = [];
    await withProducer({
      simulator: { rate: 1_000, symbolLimit: 50 },
      env: { FINNHUB_SYMBOLS: symbols.join(","), FINNHUB_SYMBOL_LIMIT: "60" },
      log: testLogger("producer", lines),
    }, async ({ config, running }) => {
      const metrics = running.producer.metrics;
      await waitFor("the error frame", () => metrics.tooManySymbolsErrors === 1);
      await waitFor("trades", () => metrics.tradesProduced > 200);
      assert.equal(metrics.errorFrames, 1);
      assert.equal(metrics.lastError, "feed: Subscribing to too many symbols");
      const loud = lines.filter((l) => l.includes("FINNHUB REFUSED SUBSCRIPTIONS"));
      assert.equal(loud.length, 1);
      assert.match(loud[0]!, /ERROR/);
      assert.match(loud[0]!, /symbols=51 symbolLimit=60/);
      assert.ok(lines.every((l) => !l.includes(config.finnhub.apiKey.reveal())));
    });
  },
});

Deno.test({
  name: "a key refused with 401 at the handshake backs off hard, says why, and never logs the key",
  ...kafkaTestOptions,
  async fn() {
    const lines: string[] = [];
    await withProducer({
      simulator: { rate: 100, tokens: ["the-right-key"] },
      env: {
        FINNHUB_SYMBOLS: "AAPL",
        FINNHUB_API_KEY: "the-wrong-key-0451",
        FINNHUB_AUTH_BACKOFF_MS: "300",
      },
      log: testLogger("producer", lines),
    }, async ({ running }) => {
      const metrics = running.producer.metrics;
      await waitFor("two refusals", () => metrics.handshakeRefusals >= 2);
      assert.equal(metrics.connectionsOpened, 0);
      assert.match(metrics.lastError ?? "", /API key was refused \(HTTP 401\)/);
      const refusals = lines.filter((l) => l.includes("refused the handshake"));
      assert.ok(refusals.length >= 2);
      assert.match(refusals[0]!, /retryInMs=3\d\d\b/);
      assert.match(refusals[1]!, /retryInMs=6\d\d\b/, "twice as long the second time");
      assert.ok(lines.every((l) => !l.includes("the-wrong-key-0451")), lines.join("\n"));
    });
  },
});

Deno.test({
  name:
    "malformed and hostile frames go to the dead-letter topic with their reason, and the producer keeps running",
  ...kafkaTestOptions,
  async fn() {
    const catalogue = [...MALFORMED_FRAMES, ...hostileFrames()];
    const lettered = catalogue.filter((f) => f.expect !== "unknown_type");
    await withProducer({
      simulator: { rate: 500 },
      env: { FINNHUB_SYMBOLS: SYMBOLS.join(",") },
    }, async ({ sim, config, running }) => {
      const metrics = running.producer.metrics;
      await waitFor("trades", () => metrics.tradesProduced > 100);
      sim.inject({ type: "malformed" });
      sim.inject({ type: "hostile" });
      await waitFor(
        "every dead letter acknowledged",
        () => metrics.deadLettersProduced === lettered.length,
      );
      const before = metrics.tradesProduced;
      await waitFor("trades after the faults", () => metrics.tradesProduced > before + 200);
      assert.equal(metrics.connectionsOpened, 1, "no reconnect, no crash");
      assert.equal(metrics.unknownFrames, 1);
      const report = await running.stop();
      assert.equal(report.metrics.deadLettersDropped, 0);

      const letters = deadLetters(
        await readTopic(config, config.kafka.topics.deadLetter, lettered.length),
      );
      assert.deepEqual(
        letters.map((l) => l.reasonCode).sort(),
        lettered.map((f) => f.expect).sort(),
      );
      assert.ok(letters.every((l) => l.source === "producer" && l.reason.length > 0));
      for (const fault of lettered) {
        if (fault.expect === "frame_too_large") continue;
        let bytes = typeof fault.frame === "string"
          ? new TextEncoder().encode(fault.frame)
          : fault.frame;
        if (TRADE_EXPECTATIONS.includes(fault.expect)) {
          // The catalogue's trade faults hold one trade: its text between "data":[ and ]}.
          const text = fault.frame as string;
          bytes = new TextEncoder().encode(
            text.slice(text.indexOf('"data":[') + 8, text.lastIndexOf("]")),
          );
        }
        assert.ok(
          letters.some((l) =>
            l.reasonCode === fault.expect && l.payload.length === bytes.length &&
            l.payload.every((b, i) => b === bytes[i])
          ),
          `${fault.name}: the frame, or its trade, is kept exactly as received`,
        );
      }
      const priceAsString = letters.find((l) => l.reason.includes("field 'p' must be a number"));
      assert.equal(priceAsString?.key, "AAPL");
      assert.deepEqual(JSON.parse(new TextDecoder().decode(priceAsString!.payload)).p, "129.5");
      const tooLarge = letters.find((l) => l.reasonCode === "frame_too_large")!;
      const oversized = hostileFrames().find((f) => f.name === "oversized")!.frame as string;
      assert.equal(tooLarge.payload.length, 512 * 1024);
      assert.equal(tooLarge.originalSize, oversized.length);
      assert.equal(tooLarge.originalSha256, createHash("sha256").update(oversized).digest("hex"));
      assert.match(tooLarge.reason, /frame is \d+ bytes, more than the 4194304-byte limit/);
      assert.equal(report.metrics.deadLettersTruncated, 1);
      const unsubscribed = letters.find((l) => l.reasonCode === "unsubscribed_symbol")!;
      assert.equal(unsubscribed.key, "ZZZZ");
      assert.equal(report.metrics.tradesUnsubscribed, 1);
    });
  },
});
