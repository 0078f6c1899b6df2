/**
 * Feed-gap bookkeeping, pure: when the producer was connected and subscribed, for which symbols,
 * and the spans in between, as {@linkcode FeedGap} records. No clock and no I/O: the WebSocket
 * client tells {@linkcode CoverageTracker} what happened and when, the producer publishes what
 * it returns.
 *
 * A connection gap opens at the last moment the feed was known good for the symbols covered
 * then: the moment the socket closed or failed (`reconnect`), the last frame before the watchdog
 * gave up on a silent socket (`watchdog`), and ends when a new open connection has sent its
 * subscriptions. A handshake refused with 401 or 429 while the gap is open makes it an
 * `auth_backoff` gap (the refusals and their back-off are what kept it open). The producer's own
 * downtime is learned at its next start from the last {@linkcode CoverageMark} it wrote: a
 * `producer_down` gap from the mark's "covered until" to the first subscription of the new run
 * (a run killed inside a gap marked that gap's start, so the two merge into one). The first start
 * ever (no mark) has no gap. A gap is only for symbols covered before and subscribed again;
 * a symbol newly subscribed has no history to miss, one no longer subscribed no resumption.
 *
 * Trades the producer's bounded buffers drop are a gap too ({@linkcode OverflowGaps}): one
 * `buffer_overflow` gap per episode of drops, over the receive times of the dropped trades, for
 * the symbols dropped. It may overlap a connection gap; readers take the union.
 *
 * All times are the producer's receive clock, epoch ms. Gap ids are made of the feed's identity,
 * the cause and the start, so a gap published again (the same downtime seen by a run that
 * crashed before writing its next mark) keeps its id.
 *
 * @module
 */
import type { FeedGap, FeedGapCause } from "../shared/types.ts";

/** A gap as the bookkeeping knows it: everything but when it is published. */
export type FoundGap = Omit<FeedGap, "detectedAtMs">;

/**
 * What the producer persists now and then (and at shutdown) to learn its own downtime at the
 * next start: the feed was good for `symbols` until `coveredUntilMs`.
 */
export interface CoverageMark {
  readonly coveredUntilMs: number;
  readonly symbols: readonly string[];
}

/** The id of a gap: `<feed id>:<cause>:<from ms>`, the same whenever the same gap is found. */
export function gapId(feedId: string, cause: FeedGapCause, fromMs: number): string {
  return `${feedId}:${cause}:${fromMs}`;
}

/** How a connection ended, as far as coverage goes. */
export type LossCause = "reconnect" | "watchdog";

interface OpenGap {
  readonly fromMs: number;
  readonly symbols: readonly string[];
  cause: FeedGapCause;
}

/** Options of {@linkcode CoverageTracker}. */
export interface CoverageTrackerOptions {
  /** The feed's identity (one per API key and feed): the first part of every gap id. */
  readonly feedId: string;
  /** The mark the previous run left, if any: its downtime is a `producer_down` gap. */
  readonly previous?: CoverageMark | null;
}

/**
 * Coverage of one producer run's connections; see the module doc. Call {@linkcode subscribed}
 * when a connection has sent its subscriptions, {@linkcode lost} when a covering connection
 * ends, {@linkcode refused} for a refused handshake, {@linkcode stopped} at shutdown.
 */
export class CoverageTracker {
  readonly #feedId: string;
  /** Symbols covered now, while a connection is open and subscribed; `null` otherwise. */
  #covered: { readonly symbols: readonly string[]; readonly connectionId: string } | null = null;
  #gap: OpenGap | null = null;
  #stoppedAt: number | null = null;

  constructor(options: CoverageTrackerOptions) {
    this.#feedId = options.feedId;
    const previous = options.previous;
    if (previous && previous.symbols.length > 0) {
      this.#gap = {
        fromMs: previous.coveredUntilMs,
        symbols: [...previous.symbols],
        cause: "producer_down",
      };
    }
  }

  /** Whether a connection is open and subscribed now. */
  get covering(): boolean {
    return this.#covered !== null;
  }

  /**
   * Connection `connectionId` has subscribed `symbols` at `atMs`: coverage resumes. Returns the
   * gap this ends (for the symbols covered before and subscribed again), or `null`.
   */
  subscribed(connectionId: string, symbols: readonly string[], atMs: number): FoundGap | null {
    const gap = this.#gap;
    this.#gap = null;
    this.#covered = { symbols: [...symbols], connectionId };
    if (gap === null) return null;
    const again = new Set(symbols);
    const resumed = gap.symbols.filter((s) => again.has(s));
    if (resumed.length === 0) return null;
    const fromMs = Math.min(gap.fromMs, atMs);
    return {
      gapId: gapId(this.#feedId, gap.cause, fromMs),
      fromMs,
      toMs: atMs,
      symbols: resumed,
      cause: gap.cause,
      connectionId,
    };
  }

  /**
   * The covering connection ended; the feed was last known good at `lastGoodMs`. Opens a gap
   * for the symbols it covered. Nothing when no connection was covering (a gap is open already,
   * or none ever covered).
   */
  lost(cause: LossCause, lastGoodMs: number): void {
    const covered = this.#covered;
    if (covered === null) return;
    this.#covered = null;
    this.#gap = { fromMs: lastGoodMs, symbols: covered.symbols, cause };
  }

  /**
   * A handshake was refused (401 or 429): a reconnect or watchdog gap open now is kept open by
   * the auth back-off and becomes `auth_backoff`. A `producer_down` gap keeps its cause.
   */
  refused(): void {
    const gap = this.#gap;
    if (gap && (gap.cause === "reconnect" || gap.cause === "watchdog")) gap.cause = "auth_backoff";
  }

  /** The producer stopped reading at `atMs` (shutdown): what it covered ends there. */
  stopped(atMs: number): void {
    if (this.#covered !== null) this.lost("reconnect", atMs);
    this.#stoppedAt = atMs;
  }

  /**
   * The mark to persist at `nowMs`: covered until now while covering; until the open gap's start
   * inside a gap (a run killed there, or one that never connected, merges its downtime into that
   * gap); `null` before anything was ever covered.
   */
  mark(nowMs: number): CoverageMark | null {
    if (this.#covered !== null) {
      return { coveredUntilMs: nowMs, symbols: this.#covered.symbols };
    }
    if (this.#gap !== null) return { coveredUntilMs: this.#gap.fromMs, symbols: this.#gap.symbols };
    return null;
  }

  /** When {@linkcode stopped} was called, or `null`. */
  get stoppedAt(): number | null {
    return this.#stoppedAt;
  }
}

/** Default of {@linkcode OverflowGaps}' `maxSymbols`. */
export const OVERFLOW_MAX_SYMBOLS = 10_000;

/**
 * Episodes of trades dropped by a full buffer, as `buffer_overflow` gaps: one per episode, from
 * the first dropped trade's receive time to the last's plus 1 ms (a span holding every dropped
 * trade), for the symbols dropped (at most `maxSymbols`, default
 * {@linkcode OVERFLOW_MAX_SYMBOLS}; past that the gap is for the first ones, and says so in the
 * count the caller logs). An episode ends at the first trade accepted again, or when flushed.
 */
export class OverflowGaps {
  readonly #feedId: string;
  readonly #maxSymbols: number;
  #episode: { fromMs: number; toMs: number; symbols: Set<string>; dropped: number } | null = null;

  constructor(feedId: string, options: { maxSymbols?: number } = {}) {
    this.#feedId = feedId;
    this.#maxSymbols = options.maxSymbols ?? OVERFLOW_MAX_SYMBOLS;
  }

  /** Trades dropped in the open episode (0 when none is open). */
  get droppedInEpisode(): number {
    return this.#episode?.dropped ?? 0;
  }

  /** A trade of `symbol` received at `atMs` was dropped. */
  recordDrop(symbol: string, atMs: number): void {
    const episode = this.#episode;
    if (episode === null) {
      this.#episode = { fromMs: atMs, toMs: atMs + 1, symbols: new Set([symbol]), dropped: 1 };
      return;
    }
    episode.dropped++;
    episode.fromMs = Math.min(episode.fromMs, atMs);
    episode.toMs = Math.max(episode.toMs, atMs + 1);
    if (episode.symbols.size < this.#maxSymbols) episode.symbols.add(symbol);
  }

  /** A trade was accepted: ends the open episode, returning its gap; `null` when none was open. */
  accepted(connectionId: string): FoundGap | null {
    return this.#episode === null ? null : this.flush(connectionId);
  }

  /** Ends the open episode now (at shutdown, or on a timer), returning its gap, or `null`. */
  flush(connectionId: string): FoundGap | null {
    const episode = this.#episode;
    if (episode === null) return null;
    this.#episode = null;
    return {
      gapId: gapId(this.#feedId, "buffer_overflow", episode.fromMs),
      fromMs: episode.fromMs,
      toMs: episode.toMs,
      symbols: [...episode.symbols].sort(),
      cause: "buffer_overflow",
      connectionId,
    };
  }
}
