/**
 * Hostile input through the real pipeline: thousands of generated frames of bad shapes
 * (`simulator/hostile.ts`, seeded) plus the simulator's own malformed and hostile catalogues, most
 * mixed with good trades in the same frames. No worker crashes or stalls a partition, memory
 * stays bounded, every bad trade is in the dead-letter topic with its reason (counted by reason
 * against the frames' own labels), every good trade of the same frames is in bronze, silver and
 * gold. The whole run has distinctive secrets configured; none may appear in any log, status
 * response or dead letter. The status endpoint, with a token, refuses requests without it.
 */
import assert from "node:assert/strict";
import { hourBucket } from "../../shared/buckets.ts";
import { delay } from "../../shared/delay.ts";
import { hostileFrames, MALFORMED_FRAMES } from "../../simulator/faults.ts";
import {
  generateHostileFrames,
  HOSTILE_GOOD_SYMBOLS,
  hostileExpectations,
} from "../../simulator/hostile.ts";
import { freePort, waitFor } from "../helpers.ts";
import { computeReference } from "../reference.ts";
import {
  assertLagZero,
  assertNoSecrets,
  assertTables,
  FULL,
  metric,
  producerReports,
  readLetters,
  rssReport,
  SECRETS,
  seededScenario,
  startPipeline,
  startStatus,
  startWorkers,
  statusGet,
  testOptions,
  waitForSubscribed,
} from "./harness.ts";

const HOUR = 3_600_000;

Deno.test({
  name:
    "hostile frames: no crash, no stalled partition, bounded memory, every bad trade dead-lettered with its reason, every good one kept, no secret anywhere",
  ...testOptions,
  async fn() {
    const { log, seed } = seededScenario("hostile", 4711);
    const count = FULL ? 12_000 : 3_000;
    const startedAt = Date.now();
    const frames = generateHostileFrames({ seed, count, start: startedAt - 15 * 60_000 });
    const expected = hostileExpectations(frames);
    const catalogue = [...MALFORMED_FRAMES, ...hostileFrames()];
    log(
      `${count} frames, ${
        (expected.bytes / 1e6).toFixed(1)
      } MB: ${expected.good.length} good trades, ${expected.badTrades} bad trades, ${expected.goodInRefusedFrames} good trades inside frames refused whole; plus ${catalogue.length} catalogue frames; kinds ${
        JSON.stringify(expected.kinds)
      }`,
    );
    const port = freePort();
    // The producer subscribes the good trades' symbols (tickers that are CQL keywords, pairs):
    // every other symbol in the frames is one it must refuse as unsubscribed.
    const p = await startPipeline({
      name: "hostile",
      log,
      simulator: { rate: 0, seed },
      env: { FINNHUB_SYMBOLS: HOSTILE_GOOD_SYMBOLS.join(",") },
    });
    let passed = false;
    try {
      await startWorkers(p);
      await startStatus(p, port);
      await waitForSubscribed(p, { count: HOSTILE_GOOD_SYMBOLS.length });

      // The status endpoint refuses every route but /healthz without the token.
      for (const path of ["/", "/readyz", "/metrics", "/status"]) {
        assert.equal((await statusGet(port, path)).status, 401, `${path} without a token`);
        assert.equal((await statusGet(port, path, "wrong")).status, 401, `${path}, wrong token`);
      }
      assert.equal((await statusGet(port, "/healthz")).status, 200);
      assert.equal((await statusGet(port, "/metrics", SECRETS.STATUS_TOKEN)).status, 200);
      log("status: 401 on /, /readyz, /metrics, /status without the token or with a wrong one");

      // Send, about 500 frames a second, and note when each was sent (its ingest bound).
      const sentAt: number[] = [];
      const sendStarted = Date.now();
      for (let i = 0; i < frames.length; i++) {
        const delivered = p.sim.sendFrame(frames[i]!.text);
        assert.equal(delivered, 1, `frame ${i} reached the producer's connection`);
        sentAt.push(Date.now());
        if (i % 50 === 49) {
          await p.guarded(delay(Math.max(0, sendStarted + (i + 1) * 2 - Date.now())));
        }
      }
      p.sim.inject({ type: "malformed" });
      p.sim.inject({ type: "hostile" });
      log(`sent in ${((Date.now() - sendStarted) / 1000).toFixed(1)} s`);

      const producerLetters = { ...expected.producerLetters } as Record<string, number>;
      for (const f of catalogue) {
        if (f.expect !== "unknown_type") {
          producerLetters[f.expect] = (producerLetters[f.expect] ?? 0) + 1;
        }
      }
      const producerTotal = Object.values(producerLetters).reduce((a, b) => a + b, 0);
      const silverTotal = Object.values(expected.silverLetters).reduce((a, b) => a + b, 0);
      await p.guarded(waitFor("every dead letter", async () => {
        const ends = await p.admin.fetchTopicOffsets(p.config.kafka.topics.deadLetter);
        return ends.reduce((n, x) => n + Number(x.high), 0) >= producerTotal + silverTotal;
      }, { timeoutMs: 180_000, intervalMs: 1_000 }));
      const letters = await readLetters(p.config);
      const byCode = (source: string) => {
        const out: Record<string, number> = {};
        const seen = new Set<string>();
        for (const l of letters) {
          if (l.source !== source) continue;
          const id = l.sourceOffset === null ? undefined : `${l.sourcePartition}/${l.sourceOffset}`;
          if (id !== undefined) {
            if (seen.has(id)) continue;
            seen.add(id);
          }
          assert.ok(l.reason.length > 0, `a ${source} letter without a reason`);
          out[l.reasonCode] = (out[l.reasonCode] ?? 0) + 1;
        }
        return out;
      };
      const sortKeys = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort());
      log(`producer letters by reason: ${JSON.stringify(sortKeys(byCode("producer")))}`);
      log(`silver letters by reason: ${JSON.stringify(sortKeys(byCode("silver")))}`);
      assert.deepEqual(sortKeys(byCode("producer")), sortKeys(producerLetters), "producer letters");
      assert.deepEqual(
        sortKeys(byCode("silver")),
        sortKeys({ ...expected.silverLetters }),
        "silver letters",
      );
      assert.deepEqual(byCode("bronze"), {}, "bronze letters");
      assert.deepEqual(byCode("gold"), {}, "gold letters");

      // Every good trade (and every forwarded bad one, in bronze) is kept.
      const lines: string[] = [];
      let seq = 0;
      const forwarded = new Map<string, number>();
      frames.forEach((frame, i) => {
        if (frame.frameFate !== undefined) return;
        for (const t of frame.trades) {
          if (t.fate !== "good" && t.fate.startsWith("producer:")) continue;
          const trade = t.trade as Record<string, unknown>;
          forwarded.set(String(trade["s"]), (forwarded.get(String(trade["s"])) ?? 0) + 1);
          const { s, p: price, t: time, v } = trade;
          lines.push(JSON.stringify({ s, p: price, t: time, v, seq: seq++, ingest: sentAt[i] }));
        }
      });
      const input = `${p.dir}/reference_input.ndjson`;
      await Deno.writeTextFile(input, lines.join("\n") + "\n");
      const reference = await computeReference(input, p.config.silver);
      assert.equal(
        reference.valid,
        expected.good.length,
        "the reference agrees on the good trades",
      );
      assert.equal(reference.invalid, silverTotal, "the reference agrees on silver's rejections");
      const hours: number[] = [];
      for (let h = hourBucket(startedAt); h <= hourBucket(Date.now()); h += HOUR) hours.push(h);
      const silverHours = Object.values(reference.candles["1h"]).flatMap((w) =>
        Object.keys(w).map(Number)
      );
      const figures = await assertTables(p, {
        bronze: forwarded,
        bronzeHours: hours,
        reference,
        silverHours: [...new Set(silverHours)],
      });
      await assertLagZero(p);
      for (const child of p.children) {
        assert.equal(child.status, undefined, `${child.label} is still running`);
      }
      const producer = producerReports(p).at(-1)!.metrics;
      const unknown = metric(producer, "pipeline_producer_unknown_frames_total");
      assert.equal(unknown, expected.unknownFrames + 1, "unknown frame types counted");
      assert.equal(
        metric(producer, "pipeline_producer_connections_opened_total"),
        1,
        "no reconnect",
      );
      log(
        `kept: bronze ${figures.bronze}, silver ${figures.silver} (= ${expected.good.length} good), gold 5m ${figures.gold5m} in ${figures.candles5m} candles; dead letters ${letters.length}; lag 0; unknown frames ${unknown}`,
      );
      const rss = rssReport(p);
      for (const line of rss) log(line);
      for (const series of p.rss.values()) {
        const peak = Math.max(...series.samples.map((s) => s.kib)) / 1024;
        assert.ok(peak < 1024, `${series.label} peaked at ${peak.toFixed(0)} MiB`);
      }

      // No secret in any output: logs, status responses, dead letters.
      const texts = [
        { where: "/metrics", text: (await statusGet(port, "/metrics", SECRETS.STATUS_TOKEN)).text },
        { where: "/status", text: (await statusGet(port, "/status", SECRETS.STATUS_TOKEN)).text },
        { where: "/readyz", text: (await statusGet(port, "/readyz", SECRETS.STATUS_TOKEN)).text },
        { where: "/", text: (await statusGet(port, "/", SECRETS.STATUS_TOKEN)).text },
        { where: "/status (401)", text: (await statusGet(port, "/status")).text },
        {
          where: "dead letters",
          text: letters.map((l) => `${l.reason}\n${new TextDecoder("latin1").decode(l.payload)}\n`)
            .join(""),
        },
      ];
      const scanned = await assertNoSecrets(p, texts);
      log(`${(scanned / 1e6).toFixed(1)} MB of logs, responses and dead letters: no secret`);
      passed = true;
    } finally {
      await p.stop(passed);
    }
  },
});
