/**
 * The market page's health strip, from what the status endpoint already knows: the workers'
 * reports (`collector.ts`) and consumer lag from Kafka (`lag.ts`). Pure.
 *
 * @module
 */
import type { WorkerView } from "../../shared/report_collector.ts";
import { throughput } from "../app.ts";
import type { PartitionLag } from "../../shared/lag.ts";
import { METRIC } from "../../shared/metric_names.ts";

/** One worker role's line of the strip. */
export interface RoleHealth {
  /** Workers of the role reporting now. */
  readonly up: number;
  /** Records per second in (trades received for the producer, consumed for a stage). */
  readonly inPerSecond: number;
  /** Records per second out (trades acknowledged by Kafka, rows written). */
  readonly outPerSecond: number;
  /** Records of the stage's input topic not yet committed by its group; null for the producer. */
  readonly lag: number | null;
}

/** What the strip shows. */
export interface MarketHealth {
  /** When it was computed, epoch ms. */
  readonly time: number;
  readonly roles: Readonly<Record<string, RoleHealth>>;
  /** Dead letters counted by the workers reporting now (since each started). */
  readonly deadLetters: number;
  readonly deadLettersPerSecond: number;
  /** False when Kafka's lag could not be read. */
  readonly lagKnown: boolean;
}

/** The roles in pipeline order. */
export const HEALTH_ROLES = ["producer", "bronze", "silver", "gold"] as const;

const DEAD_LETTER_COUNTERS: readonly string[] = [METRIC.deadLetters, METRIC.producerDeadLetters];

function isDeadLetterSeries(key: string): boolean {
  return DEAD_LETTER_COUNTERS.some((name) => key === name || key.startsWith(`${name}{`));
}

/**
 * The strip from the workers and lag. `groups` maps each stage's consumer group to the stage
 * (`lag` may list other groups; they are ignored). `lag` undefined: Kafka did not answer.
 */
export function healthOf(
  workers: readonly WorkerView[],
  lag: readonly PartitionLag[] | undefined,
  options: { readonly groups: Readonly<Record<string, string>>; readonly now: number },
): MarketHealth {
  const rates = throughput(workers);
  const lagByRole: Record<string, number> = {};
  for (const l of lag ?? []) {
    const role = options.groups[l.group];
    if (role !== undefined) lagByRole[role] = (lagByRole[role] ?? 0) + l.lag;
  }
  const roles: Record<string, RoleHealth> = {};
  for (const role of HEALTH_ROLES) {
    roles[role] = {
      up: workers.filter((w) => w.role === role && w.up).length,
      inPerSecond: round(rates[role]?.in ?? 0),
      outPerSecond: round(rates[role]?.out ?? 0),
      lag: role === "producer" || lag === undefined ? null : lagByRole[role] ?? 0,
    };
  }
  let deadLetters = 0;
  let deadLettersPerSecond = 0;
  for (const worker of workers) {
    if (!worker.up) continue;
    for (const family of worker.snapshot.families) {
      if (!DEAD_LETTER_COUNTERS.includes(family.name)) continue;
      for (const series of family.series) deadLetters += series.value;
    }
    for (const [key, rate] of Object.entries(worker.rates)) {
      if (isDeadLetterSeries(key)) deadLettersPerSecond += rate;
    }
  }
  return {
    time: options.now,
    roles,
    deadLetters,
    deadLettersPerSecond: round(deadLettersPerSecond),
    lagKnown: lag !== undefined,
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
