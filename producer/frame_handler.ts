/**
 * What a frame means to the producer: every frame the Finnhub client hands on becomes sink
 * offers, dead letters and counters here. Trades are encoded (Avro `Trade` in the Confluent wire
 * format, keyed by symbol, with the ingest time and where the frame came from) and offered to the
 * sink; pings, error frames and frames of an unknown type are counted; anything that cannot be
 * parsed goes to the dead-letter topic with the reason. Nothing is dropped silently: every loss
 * has a counter, and a frame the code cannot handle is dead-lettered, never a crash.
 *
 * Only trades of the subscribed symbols go on; any other is dead-lettered
 * (`unsubscribed_symbol`). The handler keeps no state keyed by anything the feed chooses: its log
 * throttle is keyed by its own reason codes ({@linkcode ThrottleKey}), and of the frames it
 * keeps only the previous one (to count byte-identical repeats).
 *
 * A dead letter holds its input whole: the frame, or the trade's text as it was in the frame.
 * An input over 512 KiB (a frame over the 4 MiB parse limit, or an unparseable one over 512 KiB)
 * keeps its first 512 KiB with its size and SHA-256 (`originalSize`, `originalSha256`; counted in
 * `deadLettersTruncated`). A frame the WebSocket layer refuses (a text frame that is not UTF-8,
 * one over 64 MiB) never reaches the producer's code: its dead letter has an empty payload and
 * `framesUnreadable` counts it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Clock } from "../shared/clock.ts";
import type { Config } from "../shared/config.ts";
import { describeError, type Logger } from "../shared/log.ts";
import type { DeadLetter, RawTrade } from "../shared/types.ts";
import type { WireCodec } from "../shared/wire.ts";
import type { FrameMeta } from "./finnhub_client.ts";
import { type ParsedFrame, parseFrame, type SymbolSet } from "./frame_parser.ts";
import type { TradeSink } from "./kafka_sink.ts";
import { letterPayload } from "./letter_payload.ts";
import type { ProducerMetrics } from "./metrics.ts";

/** What a throttled warning is about: the producer's own codes, never a string from the feed. */
export type ThrottleKey =
  | "invalid_json"
  | "bad_frame_shape"
  | "frame_too_large"
  | "bad_trade_shape"
  | "unsubscribed_symbol"
  | "inexact_integer"
  | "frame_unreadable"
  | "producer_error"
  | "unknown_type";

/** Says whether a warning about `key` may be logged now. */
export type Throttle = (key: ThrottleKey) => boolean;

/** Options of {@linkcode FrameHandler}. */
export interface FrameHandlerOptions {
  /** Where trades and dead letters are offered. */
  readonly sink: Pick<TradeSink, "offerTrade" | "offerDeadLetter">;
  /** Encodes `Trade` and `DeadLetter` records. */
  readonly wire: WireCodec;
  /** The symbols whose trades go on; any other trade is dead-lettered. */
  readonly subscribed: SymbolSet;
  /** Largest frame parsed, bytes; a larger one is dead-lettered (`frame_too_large`). */
  readonly maxFrameBytes: number;
  /** Named in the log line of a dead letter. */
  readonly deadLetterTopic: string;
  /** Named in the log line of a "too many symbols" error frame. */
  readonly finnhub: Pick<Config["finnhub"], "symbols" | "symbolLimit">;
  /** Limits the warnings about dead letters and unknown frame types. */
  readonly throttle: Throttle;
  readonly metrics: ProducerMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** Told of every trade the sink dropped (buffer full) or took, for feed gaps. Default: none. */
  readonly drops?: DropListener;
}

/** Hears of trades dropped and taken by the sink (`feed_gaps.ts`'s `OverflowGaps`). */
export interface DropListener {
  dropped(symbol: string, receivedAt: number): void;
  accepted(connectionId: string): void;
}

const encoder = new TextEncoder();

/**
 * Turns the frames of one producer run into sink offers, dead letters and counters. Its two
 * entry points never throw.
 */
export class FrameHandler {
  readonly #options: FrameHandlerOptions;
  /** The last frame read, to count a trade frame that repeats it on the same connection. */
  #previous: { connectionId: string; data: string | ArrayBuffer } | undefined;

  constructor(options: FrameHandlerOptions) {
    this.#options = options;
  }

  /** One frame as the WebSocket delivered it. Never throws: a failure is dead-lettered. */
  onFrame(data: string | ArrayBuffer, meta: FrameMeta): void {
    const { metrics, log } = this.#options;
    metrics.framesReceived++;
    try {
      this.#handle(data, meta);
    } catch (error) {
      metrics.invalidFrames++;
      log.error("could not handle a frame; sending it to the dead-letter topic", { error });
      this.#deadLetter(
        typeof data === "string" ? encoder.encode(data) : new Uint8Array(data),
        `the producer failed on this frame: ${
          describeError(error)
        } (connection ${meta.connectionId}, frame ${meta.frameSeq})`,
        "producer_error",
        null,
      );
    }
  }

  /** A frame the WebSocket layer refused: nothing of it to keep but the fact. */
  onUnreadableFrame(error: string, meta: FrameMeta): void {
    const { metrics } = this.#options;
    metrics.framesReceived++;
    metrics.framesUnreadable++;
    this.#deadLetter(
      new Uint8Array(),
      `the WebSocket layer refused this frame before the producer could read it (${error}: a text frame that is not UTF-8, or one over 64 MiB); its bytes are lost and the connection closes (connection ${meta.connectionId}, frame ${meta.frameSeq})`,
      "frame_unreadable",
      null,
    );
  }

  /** Parses the frame and hands it to the step for its kind. */
  #handle(data: string | ArrayBuffer, meta: FrameMeta): void {
    const { metrics, maxFrameBytes, subscribed } = this.#options;
    const frame = parseFrame(data, { maxFrameBytes, subscribed });
    const previous = this.#previous;
    const repeated = previous !== undefined && previous.connectionId === meta.connectionId &&
      sameFrame(previous.data, data);
    this.#previous = { connectionId: meta.connectionId, data };
    switch (frame.kind) {
      case "trades":
        if (repeated) metrics.feedDuplicateFramesSuspected++;
        this.#trades(frame, meta);
        return;
      case "ping":
        metrics.pings++;
        return;
      case "error":
        this.#feedError(frame, meta);
        return;
      case "unknown":
        this.#unknown(frame);
        return;
      case "invalid":
        metrics.invalidFrames++;
        this.#deadLetter(
          frame.payload,
          `${frame.reason} (connection ${meta.connectionId}, frame ${meta.frameSeq})`,
          frame.reasonCode,
          null,
        );
        return;
    }
  }

  /** Offers each trade to the sink (encoded only if there is room); dead-letters the rejected. */
  #trades(frame: Extract<ParsedFrame, { kind: "trades" }>, meta: FrameMeta): void {
    const { metrics, sink, wire, drops } = this.#options;
    for (const trade of frame.trades) {
      metrics.tradesReceived++;
      const taken = sink.offerTrade(trade.s, meta.receivedAt, () => {
        const raw: RawTrade = {
          s: trade.s,
          p: trade.p,
          t: trade.t,
          v: trade.v,
          c: trade.c,
          ingestTime: meta.receivedAt,
          connectionId: meta.connectionId,
          frameSeq: meta.frameSeq,
          tradeIndex: trade.index,
        };
        return wire.encode("Trade", raw);
      });
      if (drops === undefined) continue;
      if (taken) drops.accepted(meta.connectionId);
      else drops.dropped(trade.s, meta.receivedAt);
    }
    for (const rejected of frame.rejected) {
      metrics.tradesRejected++;
      if (rejected.reasonCode === "unsubscribed_symbol") metrics.tradesUnsubscribed++;
      this.#deadLetter(
        rejected.payload,
        `${rejected.reason} (connection ${meta.connectionId}, frame ${meta.frameSeq})`,
        rejected.reasonCode,
        rejected.symbol,
      );
    }
  }

  /** Counts an error frame and logs it; "too many symbols" is logged loudly, with the limit. */
  #feedError(frame: Extract<ParsedFrame, { kind: "error" }>, meta: FrameMeta): void {
    const { metrics, log, finnhub } = this.#options;
    metrics.errorFrames++;
    metrics.lastError = `feed: ${frame.message}`;
    if (frame.tooManySymbols) {
      metrics.tooManySymbolsErrors++;
      log.error(
        "FINNHUB REFUSED SUBSCRIPTIONS: too many symbols for this key's plan; trades of the symbols past the limit will not arrive. Lower FINNHUB_SYMBOLS or FINNHUB_SYMBOL_LIMIT.",
        {
          feedMessage: frame.message,
          symbols: finnhub.symbols.length,
          symbolLimit: finnhub.symbolLimit,
          connectionId: meta.connectionId,
        },
      );
    } else {
      log.error("the feed sent an error", {
        feedMessage: frame.message,
        connectionId: meta.connectionId,
      });
    }
  }

  /** Counts a frame of a type the producer does not know, and says so now and then. */
  #unknown(frame: Extract<ParsedFrame, { kind: "unknown" }>): void {
    const { metrics, log, throttle } = this.#options;
    metrics.unknownFrames++;
    // One line per 10 s, whatever the type: a set of types seen would grow with the feed.
    if (throttle("unknown_type")) {
      log.warn("the feed sent a frame of an unknown type; counting and ignoring it", {
        type: frame.frameType,
        unknownFrames: metrics.unknownFrames,
      });
    }
  }

  /** Offers a dead letter of `input`, keyed by `key`, and warns (throttled by `reasonCode`). */
  #deadLetter(input: Uint8Array, reason: string, reasonCode: ThrottleKey, key: string | null) {
    const { metrics, sink, wire, log, throttle, clock } = this.#options;
    const letter = producerDeadLetter(input, reason, { reasonCode, time: clock.now() });
    if (letter.originalSize !== null) metrics.deadLettersTruncated++;
    sink.offerDeadLetter(key, wire.encode("DeadLetter", letter));
    if (throttle(reasonCode)) {
      log.warn("sent input to the dead-letter topic", {
        reasonCode,
        reason: letter.reason,
        topic: this.#options.deadLetterTopic,
      });
    }
  }
}

/**
 * The producer's dead letter of `input`: the input whole, or its first bytes with its size and
 * SHA-256 and the reason saying so (see {@linkcode letterPayload}). It has no source record.
 */
export function producerDeadLetter(
  input: Uint8Array,
  reason: string,
  options: { reasonCode: string; time: number },
): DeadLetter {
  const { payload, originalSize, originalSha256 } = letterPayload(input);
  if (originalSize !== null) {
    reason += ` [payload: the first ${payload.length} of ${originalSize} bytes]`;
  }
  return {
    payload: Buffer.from(payload.buffer, payload.byteOffset, payload.length),
    reason,
    reasonCode: options.reasonCode,
    source: "producer",
    time: options.time,
    sourceTopic: null,
    sourcePartition: null,
    sourceOffset: null,
    originalSize,
    originalSha256,
  };
}

/**
 * `true` the first time a key is seen and then at most once per `intervalMs` per key. Keys are
 * {@linkcode ThrottleKey}s, a closed set, so the map is bounded by the type.
 */
export function createThrottle(clock: Clock, intervalMs: number): Throttle {
  const last = new Map<ThrottleKey, number>();
  return (key) => {
    const now = clock.now();
    const previous = last.get(key);
    if (previous !== undefined && now - previous < intervalMs) return false;
    last.set(key, now);
    return true;
  };
}

/** Whether two frames are the same text or the same bytes. */
export function sameFrame(a: string | ArrayBuffer, b: string | ArrayBuffer): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
