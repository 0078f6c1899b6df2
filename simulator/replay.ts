/**
 * Replaying recorded frames. A replay file is NDJSON, one frame a line, sent verbatim (so
 * broken lines reach the producer broken, as recorded). A line may also be a wrapper
 * `{"receivedAt": <epoch ms>, "frame": <frame text or object>}` recording when it arrived.
 *
 * At recorded pace, the gap before each frame is the difference of arrival times: the wrapper's
 * `receivedAt`, or else the largest trade time `t` in the frame; frames with neither follow the
 * previous one at once. Gaps are capped (`maxGapMs`), so captures from different days do not
 * stall a replay for hours.
 *
 * @module
 */

/** One frame to replay. */
export interface ReplayFrame {
  /** Exactly what is sent. */
  readonly text: string;
  /** Arrival time, epoch ms, when the recording says; `null` otherwise. */
  readonly at: number | null;
}

/** Reads a replay file's text into frames; blank lines are skipped. */
export function parseReplay(text: string): ReplayFrame[] {
  const frames: ReplayFrame[] = [];
  for (const line of text.split("\n")) {
    const trimmed = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (trimmed.trim() === "") continue;
    frames.push(readLine(trimmed));
  }
  return frames;
}

function readLine(line: string): ReplayFrame {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { text: line, at: null };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { text: line, at: null };
  }
  const record = value as Record<string, unknown>;
  if ("frame" in record && !("type" in record)) {
    const text = typeof record.frame === "string" ? record.frame : JSON.stringify(record.frame);
    const at = typeof record.receivedAt === "number" ? record.receivedAt : null;
    return { text, at };
  }
  return { text: line, at: latestTradeTime(record) };
}

function latestTradeTime(frame: Record<string, unknown>): number | null {
  if (frame.type !== "trade" || !Array.isArray(frame.data)) return null;
  let latest: number | null = null;
  for (const trade of frame.data) {
    const t = (trade as { t?: unknown } | null)?.t;
    if (typeof t === "number" && Number.isFinite(t) && (latest === null || t > latest)) latest = t;
  }
  return latest;
}

/**
 * The wait before each frame at recorded pace, ms: 0 for the first, then the gap between
 * arrival times, never negative and at most `maxGapMs`.
 */
export function recordedDelays(frames: readonly ReplayFrame[], maxGapMs: number): number[] {
  const delays: number[] = [];
  let previous: number | null = null;
  for (const frame of frames) {
    if (frame.at === null || previous === null) {
      delays.push(0);
    } else {
      delays.push(Math.min(maxGapMs, Math.max(0, frame.at - previous)));
    }
    if (frame.at !== null) previous = frame.at;
  }
  return delays;
}

/** The trades of a replayed frame, for the ground-truth log; `[]` when it is no trade frame. */
export function replayedTrades(text: string): unknown[] {
  try {
    const value = JSON.parse(text);
    return value?.type === "trade" && Array.isArray(value.data) ? value.data : [];
  } catch {
    return [];
  }
}
