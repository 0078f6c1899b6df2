import assert from "node:assert/strict";
import { delay } from "../shared/delay.ts";
import { sseEvent } from "../status/market/hub.ts";
import { serveStatus } from "../status/server.ts";
import {
  firstShown,
  inFoldOrder,
  type ShownCandle,
  type SilverRow,
  watchLivePage,
} from "./live_page_latency.ts";

/** A row of raw partition 0 at `offset`, stamped `eventTime`. */
function row(offset: number, price: number, ingest: number, eventTime = ingest): SilverRow {
  return { price, ingest, eventTime, rawPartition: 0, rawOffset: offset };
}

const rows = [row(0, 10, 1_000), row(1, 11, 1_100), row(2, 12, 1_200), row(3, 13, 1_300)];

function shown(at: number, trades: number, close: number): ShownCandle {
  return { at, symbol: "AAPL", time: 0, close, trades };
}

Deno.test("firstShown() times each trade to the first event whose count reaches it", () => {
  // Events arrive out of order in the list; the repeat at 1_600 shows nothing new.
  const result = firstShown(
    rows,
    [shown(1_700, 4, 13), shown(1_500, 2, 11), shown(1_600, 2, 11)],
    0,
    10_000,
  );
  assert.deepEqual(result, { delays: [500, 400, 500, 400], notShown: 0, unmatched: 0 });
});

Deno.test("firstShown() counts trades no event reached, within the span only", () => {
  const result = firstShown(rows, [shown(1_500, 1, 10)], 1_100, 1_250);
  assert.deepEqual(result, { delays: [], notShown: 2, unmatched: 0 });
});

Deno.test("firstShown() skips an event whose close is not the close of its first n rows", () => {
  const result = firstShown(rows, [shown(1_500, 2, 99), shown(1_800, 3, 12)], 0, 10_000);
  assert.deepEqual(result, { delays: [800, 700, 600], notShown: 1, unmatched: 1 });
});

Deno.test("firstShown() times the trades before a late print to the state that counted them", () => {
  // Offset 2 is a late print: stamped before offset 1, ingested after it. Gold folds in offset
  // order, so the state at 1_150 counts offsets 0 and 1 and closes at 11.
  const late = inFoldOrder([
    row(2, 12, 1_200, 1_050),
    row(0, 10, 1_000),
    row(1, 11, 1_100),
    row(3, 13, 1_300),
  ]);
  const result = firstShown(
    late,
    // With offset 2 folded the close is still offset 1's price: it is the latest by event time.
    [shown(1_150, 2, 11), shown(1_250, 3, 11), shown(1_350, 4, 13)],
    0,
    10_000,
  );
  assert.deepEqual(result, { delays: [150, 50, 50, 50], notShown: 0, unmatched: 0 });
});

/** An SSE server for the watcher: each connection gets `events(n)` for its n-th connection. */
async function sseServer(
  respond: (connection: number) => ReadableStream<Uint8Array>,
): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = await serveStatus({
    hostname: "127.0.0.1",
    port: 0,
    handler: () =>
      new Response(respond(++connections), { headers: { "Content-Type": "text/event-stream" } }),
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    connections: () => connections,
    close: () => server.shutdown(),
  };
}

const encoder = new TextEncoder();

function updateEvent(trades: number): Uint8Array {
  return sseEvent("update", {
    candles: [{ symbol: "AAPL", interval: "1m", time: 0, close: 10, trades }],
  });
}

Deno.test("watchLivePage() outlives a stream the server cuts: it reconnects, as the page does", async () => {
  const server = await sseServer((connection) =>
    new ReadableStream({
      start(controller) {
        controller.enqueue(encoder.encode("retry: 2000\n\n"));
        controller.enqueue(updateEvent(connection));
        // The first connection is cut mid-stream (the server destroys the socket).
        if (connection === 1) setTimeout(() => controller.error(new Error("cut")), 50);
      },
    })
  );
  const watcher = watchLivePage(server.url, { retryMs: 100 });
  try {
    const deadline = Date.now() + 10_000;
    while (watcher.shown.length < 2 && Date.now() < deadline) await delay(20);
    assert.deepEqual(watcher.shown.map((c) => c.trades), [1, 2]);
    assert.equal(watcher.reconnects(), 1);
  } finally {
    await watcher.stop();
    await server.close();
  }
});

Deno.test("watchLivePage() stop() returns while the server holds the stream open and silent", async () => {
  const server = await sseServer(() =>
    new ReadableStream({
      start(controller) {
        controller.enqueue(encoder.encode("retry: 2000\n\n"));
      },
    })
  );
  const watcher = watchLivePage(server.url);
  try {
    const deadline = Date.now() + 10_000;
    while (server.connections() === 0 && Date.now() < deadline) await delay(20);
    await delay(100);
  } finally {
    const started = Date.now();
    await watcher.stop();
    assert.ok(Date.now() - started < 2_000, "stop() took too long");
    await server.close();
  }
});
