/**
 * The arithmetic of the pipeline benchmark, pure: reading counters and histograms out of the
 * metrics snapshots the workers report, quantiles of a histogram (as Prometheus's
 * `histogram_quantile` computes them), quantiles of raw samples, and the verdict on whether a
 * consumer group's lag stayed bounded.
 *
 * @module
 */
import type { MetricsSnapshot } from "../shared/metrics.ts";

/** One histogram: cumulative counts per upper bound (`le`), plus the total (the `+Inf` bucket). */
export interface HistogramData {
  readonly buckets: readonly number[];
  /** `counts[i]` observations were at most `buckets[i]`. */
  readonly counts: readonly number[];
  readonly count: number;
  readonly sum: number;
}

/** Whether every label of `filter` has the same value in `labels`. */
function matches(
  labels: Readonly<Record<string, string>>,
  filter: Readonly<Record<string, string>>,
) {
  return Object.entries(filter).every(([k, v]) => labels[k] === v);
}

/** The sum of the series of counter or gauge `name` whose labels match `filter`; 0 if none. */
export function seriesSum(
  snapshot: MetricsSnapshot | undefined,
  name: string,
  filter: Readonly<Record<string, string>> = {},
): number {
  const family = snapshot?.families.find((f) => f.name === name);
  let total = 0;
  for (const series of family?.series ?? []) {
    if (matches(series.labels, filter)) total += series.value;
  }
  return total;
}

/**
 * The histogram `name` summed over the series whose labels match `filter`, or `undefined` when
 * the worker has observed nothing into it yet. Throws when the matching series disagree on
 * their buckets.
 */
export function histogramOf(
  snapshot: MetricsSnapshot | undefined,
  name: string,
  filter: Readonly<Record<string, string>> = {},
): HistogramData | undefined {
  const family = snapshot?.families.find((f) => f.name === name);
  let out: HistogramData | undefined;
  for (const series of family?.series ?? []) {
    if (!matches(series.labels, filter) || !series.buckets || !series.counts) continue;
    const here: HistogramData = {
      buckets: series.buckets,
      counts: series.counts,
      count: series.count ?? 0,
      sum: series.sum ?? 0,
    };
    out = out === undefined ? here : combine(out, here, 1);
  }
  return out;
}

function combine(a: HistogramData, b: HistogramData, sign: 1 | -1): HistogramData {
  if (a.buckets.length !== b.buckets.length || a.buckets.some((x, i) => x !== b.buckets[i])) {
    throw new RangeError(
      `Cannot combine histograms with different buckets: [${a.buckets}] and [${b.buckets}]`,
    );
  }
  return {
    buckets: a.buckets,
    counts: a.counts.map((c, i) => c + sign * b.counts[i]!),
    count: a.count + sign * b.count,
    sum: a.sum + sign * b.sum,
  };
}

/**
 * The observations made between snapshot `before` (`undefined`: nothing yet) and `after`: the
 * difference of the two cumulative histograms.
 */
export function histogramDelta(
  before: HistogramData | undefined,
  after: HistogramData | undefined,
): HistogramData | undefined {
  if (after === undefined) return undefined;
  return before === undefined ? after : combine(after, before, -1);
}

/** A quantile estimate; `above` is true when it lies past the largest finite bucket. */
export interface QuantileEstimate {
  readonly seconds: number;
  readonly above: boolean;
}

/**
 * The `q` quantile (0..1) of `h`, interpolated linearly inside the bucket it falls in (the first
 * bucket's lower edge is 0), as Prometheus's `histogram_quantile` does. When it lies in the
 * `+Inf` bucket the largest finite bound is returned with `above: true`. `null` when empty.
 */
export function histogramQuantile(
  h: HistogramData | undefined,
  q: number,
): QuantileEstimate | null {
  if (q < 0 || q > 1 || !Number.isFinite(q)) {
    throw new RangeError(`A quantile must be from 0 to 1, got ${q}`);
  }
  if (h === undefined || h.count <= 0) return null;
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const upper = h.buckets[i]!;
    const cumulative = h.counts[i]!;
    if (cumulative >= rank && cumulative > below) {
      return {
        seconds: lower + (upper - lower) * (rank - below) / (cumulative - below),
        above: false,
      };
    }
    if (cumulative >= rank) return { seconds: lower, above: false };
    lower = upper;
    below = cumulative;
  }
  return { seconds: h.buckets.at(-1) ?? 0, above: true };
}

/** The `q` quantile of raw samples (nearest rank on the sorted values); `null` when empty. */
export function sampleQuantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

/** Count, p50, p99 and max of raw samples, in ms; sorts `samples` in place. */
export function sampleSummary(samples: number[]): {
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
} {
  samples.sort((x, y) => x - y);
  return {
    count: samples.length,
    p50Ms: sampleQuantile(samples, 0.5),
    p99Ms: sampleQuantile(samples, 0.99),
    maxMs: samples.at(-1) ?? null,
  };
}

/** The lag of every group at one moment, in records (summed over partitions). */
export interface LagSample {
  /** Wall time of the sample, ms. */
  readonly at: number;
  readonly byGroup: Readonly<Record<string, number>>;
}

/** When a group's lag counts as bounded. Defaults are {@linkcode DEFAULT_LAG_CRITERION}. */
export interface LagCriterion {
  /** Length of the two windows compared ("the last minute vs. the minute before"), s. */
  readonly windowS: number;
  /** The last window's mean may exceed the previous one's by this factor and still be flat. */
  readonly growthFactor: number;
  /** Both windows' means below this many seconds of input: bounded whatever the trend. */
  readonly smallS: number;
  /** The lag must never exceed this many seconds of input. */
  readonly maxS: number;
}

/** The criterion the benchmark applies and prints. */
export const DEFAULT_LAG_CRITERION: LagCriterion = {
  windowS: 60,
  growthFactor: 1.2,
  smallS: 2,
  maxS: 10,
};

/** The criterion in words, for the report. */
export function describeCriterion(c: LagCriterion): string {
  return `a group's lag is bounded when it never exceeds ${c.maxS} s of input (rate x ${c.maxS} ` +
    `records) after warm-up, and the mean lag of the last ${c.windowS} s is at most ` +
    `${c.growthFactor} x the mean of the ${c.windowS} s before, or both means are below ` +
    `${c.smallS} s of input (windows shrink to half the measured span when it is shorter ` +
    `than ${2 * c.windowS} s)`;
}

/** What {@linkcode judgeLag} concluded for one group. */
export interface LagVerdict {
  readonly group: string;
  readonly maxRecords: number;
  readonly previousMeanRecords: number;
  readonly lastMeanRecords: number;
  /** The same three, in seconds of input at `rate`. */
  readonly maxS: number;
  readonly previousMeanS: number;
  readonly lastMeanS: number;
  readonly bounded: boolean;
  readonly why: string;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * Judges each group's lag over `samples` (the measured span only, oldest first) at an input of
 * `rate` records per second. A group without samples in both windows is not bounded.
 */
export function judgeLag(
  samples: readonly LagSample[],
  groups: readonly string[],
  rate: number,
  criterion: LagCriterion = DEFAULT_LAG_CRITERION,
): LagVerdict[] {
  const end = samples.at(-1)?.at ?? 0;
  const start = samples[0]?.at ?? 0;
  const windowMs = Math.min(criterion.windowS * 1000, (end - start) / 2);
  const round = (x: number) => Math.round(x * 100) / 100;
  return groups.map((group) => {
    const lagOf = (s: LagSample) => s.byGroup[group] ?? NaN;
    const all = samples.map(lagOf);
    const last = samples.filter((s) => s.at > end - windowMs).map(lagOf);
    const previous = samples.filter((s) => s.at <= end - windowMs && s.at > end - 2 * windowMs)
      .map(lagOf);
    const maxRecords = all.length === 0 ? NaN : Math.max(...all);
    const previousMeanRecords = mean(previous);
    const lastMeanRecords = mean(last);
    const reasons: string[] = [];
    if (![maxRecords, previousMeanRecords, lastMeanRecords].every(Number.isFinite)) {
      reasons.push("not enough lag samples");
    } else {
      if (maxRecords > criterion.maxS * rate) {
        reasons.push(`lag reached ${round(maxRecords / rate)} s of input (> ${criterion.maxS} s)`);
      }
      const small = Math.max(previousMeanRecords, lastMeanRecords) < criterion.smallS * rate;
      if (!small && lastMeanRecords > criterion.growthFactor * previousMeanRecords) {
        reasons.push(
          `lag growing: mean ${round(previousMeanRecords / rate)} s -> ${
            round(lastMeanRecords / rate)
          } s of input`,
        );
      }
    }
    return {
      group,
      maxRecords,
      previousMeanRecords: Math.round(previousMeanRecords),
      lastMeanRecords: Math.round(lastMeanRecords),
      maxS: round(maxRecords / rate),
      previousMeanS: round(previousMeanRecords / rate),
      lastMeanS: round(lastMeanRecords / rate),
      bounded: reasons.length === 0,
      why: reasons.join("; ") || "ok",
    };
  });
}
