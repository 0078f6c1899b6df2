/**
 * A small metrics registry: counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format and as a JSON snapshot that workers report to the status
 * endpoint. Names follow Prometheus conventions (`_total` for counters, base units).
 *
 * @module
 */

/** Label values of one series. */
export type Labels = Readonly<Record<string, string>>;

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly kind: Kind;
  readonly buckets?: readonly number[];
  readonly series: Map<string, Series>;
}

interface Series {
  readonly labels: Labels;
  value: number;
  counts?: number[];
  sum?: number;
  count?: number;
}

/** A counter: only goes up. */
export interface Counter {
  inc(labels?: Labels, by?: number): void;
  get(labels?: Labels): number;
}

/** A gauge: set to the current value. */
export interface Gauge {
  set(value: number, labels?: Labels): void;
  inc(labels?: Labels, by?: number): void;
  get(labels?: Labels): number;
}

/** A histogram of observations, in base units (seconds, bytes). */
export interface Histogram {
  observe(value: number, labels?: Labels): void;
}

/** One series in a {@linkcode MetricsSnapshot}. */
export interface SeriesSnapshot {
  readonly labels: Labels;
  readonly value: number;
  readonly buckets?: readonly number[];
  readonly counts?: readonly number[];
  readonly sum?: number;
  readonly count?: number;
}

/** Every family of a registry, as plain data. */
export interface MetricsSnapshot {
  readonly families: readonly {
    readonly name: string;
    readonly help: string;
    readonly kind: Kind;
    readonly series: readonly SeriesSnapshot[];
  }[];
}

/** Default latency buckets, in seconds. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/**
 * Finer buckets for the end-to-end latencies that have targets (ingest to silver row under
 * 250 ms, watermark to final gold row under 1 s): around 10-300 ms a bucket is 10-50 ms wide, so
 * a p99 near a target is decided by the data, not by the width of the bucket it falls in.
 */
export const END_TO_END_LATENCY_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.02,
  0.03,
  0.04,
  0.05,
  0.075,
  0.1,
  0.125,
  0.15,
  0.2,
  0.25,
  0.3,
  0.4,
  0.5,
  0.75,
  1,
  2.5,
  5,
  10,
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function keyOf(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(",");
}

/** A set of metric families. */
export class MetricsRegistry {
  readonly #families = new Map<string, Family>();

  #family(name: string, help: string, kind: Kind, buckets?: readonly number[]): Family {
    if (!NAME.test(name)) throw new RangeError(`Invalid metric name ${JSON.stringify(name)}`);
    const existing = this.#families.get(name);
    if (existing) {
      if (existing.kind !== kind) throw new RangeError(`Metric ${name} is a ${existing.kind}`);
      return existing;
    }
    const family: Family = { name, help, kind, series: new Map(), ...(buckets ? { buckets } : {}) };
    this.#families.set(name, family);
    return family;
  }

  #series(family: Family, labels: Labels): Series {
    const key = keyOf(labels);
    let series = family.series.get(key);
    if (!series) {
      series = { labels: { ...labels }, value: 0 };
      if (family.kind === "histogram") {
        series.counts = new Array(family.buckets!.length).fill(0);
        series.sum = 0;
        series.count = 0;
      }
      family.series.set(key, series);
    }
    return series;
  }

  /** A counter named `name` (should end in `_total`). */
  counter(name: string, help: string): Counter {
    const family = this.#family(name, help, "counter");
    return {
      inc: (labels = {}, by = 1) => {
        if (by < 0) throw new RangeError(`Counter ${name} cannot decrease`);
        this.#series(family, labels).value += by;
      },
      get: (labels = {}) => family.series.get(keyOf(labels))?.value ?? 0,
    };
  }

  /** A gauge named `name`. */
  gauge(name: string, help: string): Gauge {
    const family = this.#family(name, help, "gauge");
    return {
      set: (value, labels = {}) => {
        this.#series(family, labels).value = value;
      },
      inc: (labels = {}, by = 1) => {
        this.#series(family, labels).value += by;
      },
      get: (labels = {}) => family.series.get(keyOf(labels))?.value ?? 0,
    };
  }

  /** A histogram named `name` with upper bounds `buckets` (ascending). */
  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS): Histogram {
    const family = this.#family(name, help, "histogram", buckets);
    return {
      observe: (value, labels = {}) => {
        const series = this.#series(family, labels);
        const bounds = family.buckets!;
        for (let i = 0; i < bounds.length; i++) if (value <= bounds[i]!) series.counts![i]!++;
        series.sum! += value;
        series.count!++;
      },
    };
  }

  /** All series as plain data. */
  snapshot(): MetricsSnapshot {
    return {
      families: [...this.#families.values()].map((f) => ({
        name: f.name,
        help: f.help,
        kind: f.kind,
        series: [...f.series.values()].map((s) => ({
          labels: s.labels,
          value: s.value,
          ...(f.kind === "histogram"
            ? { buckets: f.buckets!, counts: [...s.counts!], sum: s.sum!, count: s.count! }
            : {}),
        })),
      })),
    };
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function renderLabels(labels: Labels, extra: Labels = {}): string {
  const all = { ...labels, ...extra };
  const keys = Object.keys(all);
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeLabel(all[k]!)}"`).join(",")}}`;
}

/**
 * Renders snapshots in the Prometheus text format (version 0.0.4). `extraLabels` are added to
 * every series of the matching snapshot (e.g. the worker's name).
 */
export function renderPrometheus(
  snapshots: readonly { readonly snapshot: MetricsSnapshot; readonly labels?: Labels }[],
): string {
  const byName = new Map<string, { help: string; kind: Kind; lines: string[] }>();
  for (const { snapshot, labels = {} } of snapshots) {
    for (const family of snapshot.families) {
      let entry = byName.get(family.name);
      if (!entry) {
        entry = { help: family.help, kind: family.kind, lines: [] };
        byName.set(family.name, entry);
      }
      for (const s of family.series) {
        if (family.kind !== "histogram") {
          entry.lines.push(`${family.name}${renderLabels(s.labels, labels)} ${s.value}`);
          continue;
        }
        s.buckets!.forEach((bound, i) => {
          entry!.lines.push(
            `${family.name}_bucket${renderLabels(s.labels, { ...labels, le: String(bound) })} ${
              s.counts![i]
            }`,
          );
        });
        entry.lines.push(
          `${family.name}_bucket${renderLabels(s.labels, { ...labels, le: "+Inf" })} ${s.count}`,
        );
        entry.lines.push(`${family.name}_sum${renderLabels(s.labels, labels)} ${s.sum}`);
        entry.lines.push(`${family.name}_count${renderLabels(s.labels, labels)} ${s.count}`);
      }
    }
  }
  let out = "";
  for (const [name, { help, kind, lines }] of byName) {
    out += `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n`;
    out += `# TYPE ${name} ${kind}\n`;
    for (const line of lines) out += line + "\n";
  }
  return out;
}
