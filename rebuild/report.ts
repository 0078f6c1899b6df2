/**
 * What `deno task rebuild` prints, pure: the span and source used, then per layer what changed
 * (silver rows added, removed, changed; candles added, amended, removed per interval, and the
 * windows left to live gold), or "nothing changed"; with `--verbose` a few of them with before
 * and after. Progress lines for stderr.
 *
 * @module
 */
import { type Interval, INTERVAL_MS } from "../shared/gold_table.ts";
import type { SilverTrade } from "../shared/types.ts";
import type { RejectionCode } from "../processor/silver/validate.ts";
import { candleChanges, type GoldPlan, type GoldWindow, type SilverDiff } from "./plan.ts";
import { showSpan } from "./span.ts";

/** Everything a rebuild found and did. */
export interface RebuildOutcome {
  readonly asked: { readonly from: number; readonly to: number };
  readonly span: { readonly from: number; readonly to: number };
  /** One line: which source, and why. */
  readonly source: string;
  readonly recordsRead: number;
  readonly rejected: Partial<Record<RejectionCode, number>>;
  readonly silver: SilverDiff;
  /** Per interval. */
  readonly gold: ReadonlyMap<Interval, GoldPlan>;
  readonly written: { readonly silver: boolean; readonly gold: boolean };
  readonly dryRun: boolean;
}

/** How many examples `--verbose` lists per kind. */
export const EXAMPLES = 5;

/** The report, one line per entry. */
export function formatReport(outcome: RebuildOutcome, verbose: boolean): string[] {
  const { silver } = outcome;
  const lines = [
    `span (event time): ${showSpan(outcome.span)}` +
    (outcome.span.from !== outcome.asked.from || outcome.span.to !== outcome.asked.to
      ? ` (asked ${showSpan(outcome.asked)}, widened to whole windows)`
      : ""),
    `source: ${outcome.source}; ${outcome.recordsRead} records read`,
  ];
  const rejected = Object.entries(outcome.rejected);
  if (rejected.length > 0) {
    lines.push(
      `rejected by silver's rules: ${rejected.map(([code, n]) => `${code} ${n}`).join(", ")}`,
    );
  }
  const silverChanges = silver.added.length + silver.removed.length + silver.changed.length;
  lines.push(
    `silver${
      suffix(outcome, "silver")
    }: ${silver.added.length} added, ${silver.removed.length} removed, ` +
      `${silver.changed.length} changed, ${silver.unchanged} unchanged` +
      (silver.kept.length > 0
        ? `, ${silver.kept.length} kept as stored (raw record not in the source read)`
        : ""),
  );
  if (verbose) {
    for (const t of silver.added.slice(0, EXAMPLES)) lines.push(`  + ${showTrade(t)}`);
    for (const t of silver.removed.slice(0, EXAMPLES)) lines.push(`  - ${showTrade(t)}`);
    for (const c of silver.changed.slice(0, EXAMPLES)) {
      lines.push(`  ~ ${showTrade(c.before)} -> ${showTrade(c.after)}`);
    }
  }
  let goldChanges = 0;
  for (const [interval, plan] of outcome.gold) {
    const count = (kind: string) => plan.writes.filter((w) => w.kind === kind).length;
    goldChanges += plan.writes.length;
    lines.push(
      `gold ${interval}${suffix(outcome, "gold")}: ${count("add")} added, ${
        count("amend")
      } amended, ${count("remove")} removed, ${plan.unchanged} unchanged` +
        (plan.leftOpen.length > 0
          ? `, ${plan.leftOpen.length} left open to live gold (not final yet` +
            (plan.openDiffer.length > 0
              ? `; ${plan.openDiffer.length} differ from the rebuild)`
              : ")")
          : "") +
        (plan.liveAhead.length > 0
          ? `, ${plan.liveAhead.length} skipped (live gold folded trades received after the read)`
          : ""),
    );
    if (verbose) {
      for (const w of plan.writes.slice(0, EXAMPLES)) {
        const { symbol, start } = w.window;
        lines.push(
          `  ${w.kind} ${symbol} ${new Date(start).toISOString()}: ${
            candleChanges(w.before, w.after)
          }`,
        );
      }
    }
  }
  const differ = [...outcome.gold.values()].flatMap((p) => p.openDiffer);
  if (differ.length > 0) lines.push(openAdvice(differ));
  if (silverChanges + goldChanges === 0) {
    lines.push(differ.length === 0 ? "nothing changed" : "nothing written");
  }
  return lines;
}

/**
 * What to do about open windows that differ from the rebuild: live gold folds them in memory
 * (with the rules it runs) and writes them final itself, so the rebuild may not; once they are
 * final, a rerun makes them exact.
 */
function openAdvice(differ: readonly GoldWindow[]): string {
  const last = Math.max(...differ.map((w) => w.start + INTERVAL_MS[w.interval]));
  return `${differ.length} open windows differ from the rebuild (the last ends ${
    new Date(last).toISOString()
  }): live gold writes them final; run the rebuild again once they are final (a trade of every ` +
    `partition past their end plus GOLD_ALLOWED_LATENESS_MS) to make them exact`;
}

function suffix(outcome: RebuildOutcome, layer: "silver" | "gold"): string {
  if (outcome.dryRun) return " (dry run, not written)";
  return outcome.written[layer] ? "" : " (not written: --layers)";
}

function showTrade(t: SilverTrade): string {
  return `${t.symbol} ${new Date(t.eventTime).toISOString()} p=${t.price} v=${t.volume} ` +
    `@${t.rawPartition}:${t.rawOffset}`;
}

/** A progress line: records read, of the total when known, and the rate. */
export function progressLine(read: number, total: number | undefined, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? Math.round(read / (elapsedMs / 1000)) : 0;
  const of = total === undefined ? "" : `/${total} (${Math.floor((read / total) * 100)}%)`;
  return `rebuild: read ${read}${of} records, ${rate}/s`;
}
