import assert from "node:assert/strict";
import { HELP, parseExportArgs } from "./cli.ts";

const ARGS = [
  "--symbol",
  "AAPL",
  "--interval",
  "1h",
  "--from",
  "2026-11-01",
  "--to",
  "2026-12-01T00:00:00Z",
  "--format",
  "parquet",
  "--out",
  "aapl.parquet",
];

Deno.test("parseExportArgs() reads every flag", () => {
  assert.deepEqual(parseExportArgs(ARGS), {
    request: {
      symbol: "AAPL",
      interval: "1h",
      from: Date.UTC(2026, 10, 1),
      to: Date.UTC(2026, 11, 1),
      format: "parquet",
    },
    out: "aapl.parquet",
  });
  assert.equal(parseExportArgs(["--help"]), HELP);
  const csv = parseExportArgs([...ARGS.slice(0, 8), "--format=csv", "--out", "-"]);
  assert.equal(csv !== HELP && csv.out, "-");
});

Deno.test("parseExportArgs() refuses misuse with a RangeError saying what is wrong", () => {
  const cases: [string[], RegExp][] = [
    [ARGS.slice(0, -2), /parameter 'out' is required/],
    [[...ARGS.slice(0, -1), "-"], /parameter 'out' must be a file for parquet/],
    [[...ARGS, "--limit", "5"], /Unknown option '--limit'/],
    [[...ARGS, "extra"], /Unexpected argument 'extra'/],
    [
      ARGS.map((a) => a === "1h" ? "2h" : a),
      /parameter 'interval' must be one of 1m, 5m, 15m, 1h, 4h, 1d/,
    ],
    [ARGS.map((a) => a === "2026-11-01" ? "2026-13-01" : a), /parameter 'from' must be epoch/],
    [["--symbol"], /argument missing/],
  ];
  for (const [args, want] of cases) {
    assert.throws(() => parseExportArgs(args), (e: unknown) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(e.message, want);
      return true;
    }, args.join(" "));
  }
});
