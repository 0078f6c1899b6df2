/**
 * Reads the Prometheus text exposition format (what the status endpoint's `/metrics` serves)
 * into families with their type and series, for tests that check what a scrape would see.
 *
 * @module
 */

/** One sample line: `name{labels} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One `# TYPE` family and the samples that belong to it (`_bucket`, `_sum`, `_count` too). */
export interface ExposedFamily {
  readonly name: string;
  readonly type: string;
  readonly samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

/** Parses an exposition; throws on a line it cannot read. */
export function parseExposition(text: string): Map<string, ExposedFamily> {
  const families = new Map<string, ExposedFamily>();
  let current: ExposedFamily | undefined;
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      if (!name || !type) throw new SyntaxError(`Bad TYPE line: ${line}`);
      current = { name, type, samples: [] };
      families.set(name, current);
      continue;
    }
    if (line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new SyntaxError(`Bad sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(LABEL)) labels[key!] = unescape(value!);
    const sample = { name: match[1]!, labels, value: Number(match[3]) };
    const owner = current && sample.name.startsWith(current.name)
      ? current
      : families.get(sample.name);
    if (!owner) throw new SyntaxError(`Sample before its TYPE line: ${line}`);
    owner.samples.push(sample);
  }
  return families;
}

/** The roles that have a `pipeline_worker_up` series at 1. */
export function rolesUp(families: ReadonlyMap<string, ExposedFamily>): Set<string> {
  const up = families.get("pipeline_worker_up")?.samples ?? [];
  return new Set(up.filter((s) => s.value === 1).map((s) => s.labels["role"] ?? ""));
}
