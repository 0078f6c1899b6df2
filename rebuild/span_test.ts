import assert from "node:assert/strict";
import {
  DEFAULT_LATE_MARGIN_MS,
  DEFAULT_MAX_TRADES,
  hoursBetween,
  ingestScan,
  kafkaCovers,
  largestInterval,
  parseRebuildArgs,
  parseTime,
  tooManyTrades,
  wholeWindowSpan,
} from "./span.ts";

const T = Date.parse("2026-12-07T10:20:00Z");

Deno.test("parseTime() takes ISO-8601 UTC, an explicit offset, a date, or epoch ms", () => {
  assert.equal(parseTime("2026-12-07T10:20:00Z", "--from"), T);
  assert.equal(parseTime("2026-12-07T10:20:00.000Z", "--from"), T);
  assert.equal(parseTime("2026-12-07T11:20:00+01:00", "--from"), T);
  assert.equal(parseTime("2026-12-07", "--from"), Date.parse("2026-12-07T00:00:00Z"));
  assert.equal(parseTime(String(T), "--from"), T);
  assert.equal(parseTime("0", "--from"), 0);
});

Deno.test("parseTime() refuses a local time, garbage and unsafe numbers, naming the flag", () => {
  for (const bad of ["2026-12-07T10:20:00", "yesterday", "", "1e3", "99999999999999999999"]) {
    assert.throws(() => parseTime(bad, "--to"), (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /^--to must be an ISO-8601 UTC time/);
      return true;
    }, bad);
  }
});

Deno.test("parseRebuildArgs() reads every flag, both forms, with defaults", () => {
  const args = parseRebuildArgs(["--from", "2026-12-07T10:20:00Z", `--to=${T + 1000}`]);
  assert.deepEqual(args, {
    from: T,
    to: T + 1000,
    symbols: undefined,
    layers: ["silver", "gold"],
    source: "auto",
    lateMarginMs: DEFAULT_LATE_MARGIN_MS,
    maxTrades: DEFAULT_MAX_TRADES,
    verbose: false,
    dryRun: false,
    help: false,
  });
  const all = parseRebuildArgs([
    "--from",
    String(T),
    "--to",
    String(T + 1),
    "--symbols",
    "AAPL, BINANCE:BTCUSDT,AAPL",
    "--layers",
    "gold,silver",
    "--source",
    "bronze",
    "--late-margin",
    "0",
    "--max-trades=5000",
    "--verbose",
    "--dry-run",
  ]);
  assert.deepEqual(all.symbols, ["AAPL", "BINANCE:BTCUSDT"]);
  assert.deepEqual(all.layers, ["silver", "gold"]);
  assert.equal(all.source, "bronze");
  assert.equal(all.lateMarginMs, 0);
  assert.equal(all.maxTrades, 5000);
  assert.ok(all.verbose && all.dryRun);
  assert.deepEqual(parseRebuildArgs(["--layers", "gold", "--from", "1", "--to", "2"]).layers, [
    "gold",
  ]);
});

Deno.test("parseRebuildArgs() --help needs no span", () => {
  assert.equal(parseRebuildArgs(["--help"]).help, true);
  assert.equal(parseRebuildArgs(["-h"]).help, true);
});

Deno.test("parseRebuildArgs() names what is wrong", () => {
  const cases: [string[], RegExp][] = [
    [[], /--from is required/],
    [["--from", "1"], /--to is required/],
    [["--from", "2", "--to", "2"], /--to must be after --from/],
    [["--from", "1", "--to", "2", "--layers", "bronze"], /--layers takes silver, gold/],
    [["--from", "1", "--to", "2", "--layers", ","], /--layers must name/],
    [["--from", "1", "--to", "2", "--source", "s3"], /--source takes auto, kafka or bronze/],
    [["--from", "1", "--to", "2", "--symbols", ","], /--symbols must name/],
    [["--from", "1", "--to", "2", "--symbols", "AAPL,aapl"], /--symbols: "aapl" is not a symbol/],
    [["--from", "1", "--to", "2", "--late-margin", "-1"], /--late-margin must be whole/],
    [["--from", "1", "--to", "2", "--max-trades", "0"], /--max-trades must be a whole number/],
    [["--from", "1", "--to", "2", "--max-trades", "1e6"], /--max-trades must be a whole number/],
    [["--from", "1", "--to", "2", "--frm", "3"], /Unknown argument "--frm"/],
    [["--from"], /--from needs a value/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseRebuildArgs(argv), message, argv.join(" "));
  }
});

Deno.test("wholeWindowSpan() widens to whole windows of the largest interval", () => {
  assert.equal(largestInterval(["5m", "1h"]), "1h");
  assert.equal(largestInterval(["5m"]), "5m");
  const hour = Date.parse("2026-12-07T10:00:00Z");
  assert.deepEqual(wholeWindowSpan(T, T + 60_000, ["5m", "1h"]), {
    from: hour,
    to: hour + 3_600_000,
  });
  // Already whole: unchanged; the end is exclusive.
  assert.deepEqual(wholeWindowSpan(hour, hour + 3_600_000, ["5m", "1h"]), {
    from: hour,
    to: hour + 3_600_000,
  });
  assert.deepEqual(wholeWindowSpan(hour, hour + 3_600_001, ["5m", "1h"]), {
    from: hour,
    to: hour + 7_200_000,
  });
  assert.deepEqual(wholeWindowSpan(T + 1, T + 2, ["5m"]), { from: T, to: T + 300_000 });
  // With every stored interval (1d the largest): whole UTC days.
  const day = Date.parse("2026-12-07T00:00:00Z");
  assert.deepEqual(wholeWindowSpan(T, T + 60_000), { from: day, to: day + 86_400_000 });
  assert.deepEqual(wholeWindowSpan(day - 1, day + 1), {
    from: day - 86_400_000,
    to: day + 86_400_000,
  });
});

Deno.test("ingestScan() starts SILVER_MAX_FUTURE_MS early, ends a margin late, never past now", () => {
  const span = { from: 1_000_000, to: 2_000_000 };
  assert.deepEqual(ingestScan(span, { maxFutureMs: 60_000, lateMarginMs: 5_000, now: 9e9 }), {
    from: 940_000,
    to: 2_005_000,
  });
  assert.deepEqual(
    ingestScan(span, { maxFutureMs: 0, lateMarginMs: 3_600_000, now: 2_500_000 }),
    { from: 1_000_000, to: 2_500_000 },
  );
});

Deno.test("kafkaCovers() is false only when records before the scan's start may be gone", () => {
  assert.equal(kafkaCovers(0, 0), true, "nothing ever deleted");
  assert.equal(kafkaCovers(0, 57), true);
  assert.equal(kafkaCovers(10, 11), true, "the record before the start is still there");
  assert.equal(kafkaCovers(10, 10), false, "deleted records may have been in the scan");
  assert.equal(kafkaCovers(10, 10), false);
});

Deno.test("hoursBetween() lists the UTC hours a span touches", () => {
  const h = Date.parse("2026-12-07T10:00:00Z");
  assert.deepEqual(hoursBetween(h, h + 1), [h]);
  assert.deepEqual(hoursBetween(h - 1, h + 3_600_000), [h - 3_600_000, h]);
  assert.deepEqual(hoursBetween(h, h), []);
});

Deno.test("tooManyTrades() names the bound, its memory and what to do", () => {
  assert.match(
    tooManyTrades(2_000_000).message,
    /more than 2000000 trades \(--max-trades; about 1440 MB of heap at ~720 B each\): nothing was written; rebuild fewer symbols \(--symbols\)/,
  );
});
