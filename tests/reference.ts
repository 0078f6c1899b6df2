/**
 * Runs the independent Python reference (`tests/reference.py`) over a ground-truth file.
 *
 * @module
 */

import type { ServedInterval } from "../shared/gold_table.ts";

/** One reference candle. */
export interface ReferenceCandle {
  readonly open: number;
  readonly close: number;
  readonly high: number;
  readonly low: number;
  readonly volume: string;
  readonly vwap: string | null;
  readonly count: number;
}

/** What the reference computed. */
export interface Reference {
  readonly valid: number;
  readonly invalid: number;
  readonly invalid_by_symbol: Record<string, number>;
  /**
   * interval (every served one, each folded directly from the trades) -> symbol -> window start
   * (ms, as text) -> candle
   */
  readonly candles: Record<ServedInterval, Record<string, Record<string, ReferenceCandle>>>;
}

/** Computes the reference for the trades in `groundTruthPath`. */
export async function computeReference(
  groundTruthPath: string,
  rules: {
    readonly minEventTime: number;
    readonly maxFutureMs: number;
    readonly minPrice: number;
    readonly maxPrice: number;
    readonly maxVolume: number;
  },
): Promise<Reference> {
  const script = new URL("./reference.py", import.meta.url).pathname;
  const output = await new Deno.Command("python3", {
    args: [
      script,
      groundTruthPath,
      ...[rules.minEventTime, rules.maxFutureMs, rules.minPrice, rules.maxPrice, rules.maxVolume]
        .map(String),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`reference.py failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(output.stdout));
}
