/**
 * Who of several producers for one API key holds the Finnhub connection: a lease on a Kafka
 * consumer group. Every producer for a key joins the group `<KAFKA_GROUP_PREFIX>.producer.<key
 * hash>` on the one-partition topic `<KAFKA_GROUP_PREFIX>.producer.lease` (nothing is ever
 * written to it); the member assigned partition 0 is the active one, the others stand by. When
 * the active one dies, the group's coordinator notices after `PRODUCER_LEASE_SESSION_MS`
 * without a heartbeat, rebalances, and a standby is given partition 0.
 *
 * Kafka rather than a Cassandra lightweight transaction: the producer already needs Kafka and
 * nothing else, and a producer that cannot reach Kafka cannot write anyway, so the lease adds no
 * dependency and no new way to stop. The lease only decides who connects to the feed; that no
 * trade is written by two producers rests on the transactional producer's epoch
 * ({@linkcode transactionalIdOf}: every producer for a key shares one `transactional.id`, so the
 * new active one's `initTransactions` fences the old one before it connects to the feed).
 *
 * The partition is sticky ({@linkcode chooseHolder}): each member says in its join metadata
 * since when it has been active, and the assignment keeps partition 0 with the member that
 * became active last, so a standby joining (a restarted producer) never moves the lease, and an
 * old leader that was paused and comes back cannot take it back.
 *
 * A holder that has had no heartbeat answered for three session timeouts gives the lease up by
 * itself ({@linkcode leaseExpired}) and rejoins as a standby: a leader cut off from Kafka stops
 * reading the feed on its own clock. Not after one session: the holder's membership outlives a
 * move of the group's coordinator (the new coordinator starts every member's session afresh when
 * it loads the group), and a move takes about a session on a cluster (the dead broker is fenced
 * after `broker.session.timeout.ms`, then the group loads), so a holder stepping down at the
 * session gave the feed up on every such move, for 14-17 s, with the trades it still held (the
 * cluster suite's rolling restart and broker kill). A holder the coordinator did expire meanwhile
 * (paused, or cut off while a standby was not) learns it sooner: its next heartbeat is refused and
 * it rejoins without the lease, and anything it writes is refused, since the new holder's
 * `initTransactions` fenced it before reading the feed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import "../shared/kafkajs_fixes.ts"; // before kafkajs: its producers must not drop nor give up a commit
import { AssignerProtocol, type Consumer, type Kafka, type PartitionAssigner } from "kafkajs";
import type { Config } from "../shared/config.ts";
import { describeError, type Logger } from "../shared/log.ts";

/** The names a key's producers share. */
export interface LeaseNames {
  /** The consumer group whose partition 0 is the lease. */
  readonly groupId: string;
  /** The one-partition topic the group subscribes to. */
  readonly topic: string;
  /** The `transactional.id` prefix of the key's producers (see {@linkcode transactionalIdOf}). */
  readonly transactionalId: string;
}

/**
 * The lease's names for `config`: by the SHA-256 of the API key (its first 16 hex digits; the key
 * itself never appears), or `nokey` for a feed without one.
 */
export function leaseNames(config: Pick<Config, "finnhub" | "kafka">): LeaseNames {
  const key = config.finnhub.apiKey;
  const hash = key.isSet
    ? createHash("sha256").update(key.reveal()).digest("hex").slice(0, 16)
    : "nokey";
  const prefix = config.kafka.groupPrefix;
  return {
    groupId: `${prefix}.producer.${hash}`,
    topic: `${prefix}.producer.lease`,
    transactionalId: `${prefix}.producer.${hash}`,
  };
}

/**
 * The `transactional.id` a key's producers send under. The `-0` dates from when a producer could
 * send from several Kafka worker threads, each `-<worker>`; it is kept so that a producer fences
 * one of an earlier version.
 */
export function transactionalIdOf(names: LeaseNames): string {
  return `${names.transactionalId}-0`;
}

/** What a member says of itself when it joins. */
export interface LeaseClaim {
  /** When it became active, epoch ms; `null` when it stands by. */
  readonly activeSince: number | null;
}

/**
 * The member to hold partition 0: of those claiming to be active, the one active since the
 * latest time (a paused old leader that comes back still claims, and must lose); with no claim,
 * the first by member id. Ties go to the first by member id. `undefined` for no members.
 */
export function chooseHolder(
  members: readonly { readonly memberId: string; readonly claim: LeaseClaim | null }[],
): string | undefined {
  let best: { memberId: string; since: number } | undefined;
  for (const { memberId, claim } of members) {
    const since = claim?.activeSince ?? -Infinity;
    if (
      best === undefined || since > best.since || (since === best.since && memberId < best.memberId)
    ) {
      best = { memberId, since };
    }
  }
  return best?.memberId;
}

/** A member's claim from its join metadata; `null` when it is not one (another client's). */
export function decodeClaim(userData: Uint8Array | null | undefined): LeaseClaim | null {
  if (!userData || userData.length === 0) return null;
  try {
    const value = JSON.parse(new TextDecoder().decode(userData));
    const since = value?.activeSince;
    if (since === null) return { activeSince: null };
    return typeof since === "number" && Number.isFinite(since) ? { activeSince: since } : null;
  } catch {
    return null;
  }
}

/** The claim as join metadata. */
export function encodeClaim(claim: LeaseClaim): Buffer {
  return Buffer.from(JSON.stringify(claim));
}

/** How long a holder goes without an answered heartbeat before it gives the lease up itself. */
export function stepDownAfterMs(sessionMs: number): number {
  return 3 * sessionMs;
}

/**
 * Whether a holder must consider its lease gone: no heartbeat answered for longer than
 * {@linkcode stepDownAfterMs} (see the module doc for why not the session timeout).
 */
export function leaseExpired(now: number, lastHeartbeat: number, sessionMs: number): boolean {
  return now - lastHeartbeat > stepDownAfterMs(sessionMs);
}

/** The heartbeat interval for a session timeout: a sixth of it, at most one second. */
export function heartbeatIntervalFor(sessionMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(sessionMs / 6)));
}

/** The assigner of the lease group: partition 0 to {@linkcode chooseHolder}'s member. */
export function leaseAssigner(claim: () => LeaseClaim): PartitionAssigner {
  return () => ({
    name: "ProducerLease",
    version: 1,
    assign({ members, topics }) {
      const holder = chooseHolder(members.map(({ memberId, memberMetadata }) => ({
        memberId,
        claim: decodeClaim(AssignerProtocol.MemberMetadata.decode(memberMetadata)?.userData),
      })));
      return Promise.resolve(members.map(({ memberId }) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: memberId === holder ? Object.fromEntries(topics.map((t) => [t, [0]])) : {},
          userData: Buffer.alloc(0),
        }),
      })));
    },
    protocol({ topics }) {
      return {
        name: "ProducerLease",
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: encodeClaim(claim()),
        }),
      };
    },
  });
}

/** Options of {@linkcode KafkaLease}. */
export interface KafkaLeaseOptions {
  readonly kafka: Pick<Kafka, "consumer">;
  readonly names: LeaseNames;
  /** The group's session timeout, ms (the broker allows 6 000 and up by default). */
  readonly sessionMs: number;
  readonly log: Logger;
}

/** Why a term as the active producer ended. */
export type LeaseLoss = "lease-expired" | "lease-moved" | "lease-failed" | "stopped";

/**
 * A producer's membership of its key's lease group. `whenActive()` resolves once this member
 * holds the lease, with a signal that aborts when it loses it (its reason a {@linkcode LeaseLoss}
 * message); `stepDown()` gives it up and rejoins as a standby (after being fenced).
 */
export class KafkaLease {
  readonly #options: KafkaLeaseOptions;
  readonly #heartbeatMs: number;
  #consumer: Consumer | undefined;
  #activeSince: number | null = null;
  #lastHeartbeat = 0;
  #lost: AbortController | undefined;
  #waiters: (() => void)[] = [];
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  #rejoining: Promise<void> | undefined;

  constructor(options: KafkaLeaseOptions) {
    this.#options = options;
    this.#heartbeatMs = heartbeatIntervalFor(options.sessionMs);
  }

  /** `"active"` while this member holds the lease, else `"standby"`. */
  get state(): "active" | "standby" {
    return this.#lost !== undefined && !this.#lost.signal.aborted ? "active" : "standby";
  }

  /** Joins the group; resolves once the consumer runs (not once it holds the lease). */
  async start(): Promise<void> {
    this.#watchdog = setInterval(() => this.#checkHeartbeat(), Math.max(50, this.#heartbeatMs / 4));
    await this.#rejoin();
  }

  /** Resolves with a signal that aborts when the lease is lost, once this member holds it. */
  async whenActive(signal: AbortSignal): Promise<AbortSignal | undefined> {
    while (!signal.aborted) {
      if (this.#lost && !this.#lost.signal.aborted) return this.#lost.signal;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.#waiters.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    return undefined;
  }

  /** Gives the lease up (this member was fenced) and rejoins the group as a standby. */
  stepDown(reason: string): Promise<void> {
    this.#lose("lease-moved", reason);
    return this.#rejoin();
  }

  /** Leaves the group (the lease passes on at once). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#watchdog);
    this.#lose("stopped", "the producer is stopping");
    await this.#rejoining?.catch(() => {});
    await this.#consumer?.disconnect().catch(() => {});
    this.#consumer = undefined;
  }

  async #join(): Promise<void> {
    const { kafka, names, sessionMs, log } = this.#options;
    const consumer = kafka.consumer({
      groupId: names.groupId,
      sessionTimeout: sessionMs,
      heartbeatInterval: this.#heartbeatMs,
      rebalanceTimeout: Math.max(10_000, 2 * sessionMs),
      maxWaitTimeInMs: this.#heartbeatMs,
      partitionAssigners: [leaseAssigner(() => ({ activeSince: this.#activeSince }))],
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 2_000 },
    });
    this.#consumer = consumer;
    consumer.on(consumer.events.HEARTBEAT, () => {
      if (this.#consumer === consumer) this.#lastHeartbeat = Date.now();
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (this.#consumer !== consumer) return;
      this.#lastHeartbeat = Date.now();
      const holds = (payload.memberAssignment[names.topic] ?? []).includes(0);
      if (holds) this.#gain();
      else if (this.state === "active") {
        this.#lose("lease-moved", "the group gave the lease to another producer");
      } else log.info("standing by: another producer holds the lease", { group: names.groupId });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (this.#consumer !== consumer) return;
      this.#lose("lease-failed", `the lease consumer crashed: ${describeError(payload.error)}`);
      this.#rejoin();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: names.topic, fromBeginning: false });
    await consumer.run({ eachBatch: () => Promise.resolve() });
  }

  /** Leaves with the current consumer and joins with a new one (unless stopped). */
  #rejoin(): Promise<void> {
    this.#rejoining ??= (async () => {
      const old = this.#consumer;
      this.#consumer = undefined;
      await old?.disconnect().catch(() => {});
      while (!this.#stopped) {
        try {
          await this.#join();
          return;
        } catch (error) {
          this.#options.log.warn("cannot join the lease group; retrying", { error });
          await (this.#consumer as Consumer | undefined)?.disconnect().catch(() => {});
          this.#consumer = undefined;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    })().finally(() => this.#rejoining = undefined);
    return this.#rejoining;
  }

  #gain(): void {
    if (this.state === "active") return;
    this.#activeSince = Date.now();
    this.#lost = new AbortController();
    this.#options.log.info("active: this producer holds the lease", {
      group: this.#options.names.groupId,
    });
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #lose(kind: LeaseLoss, reason: string): void {
    this.#activeSince = null;
    const lost = this.#lost;
    if (!lost || lost.signal.aborted) return;
    if (kind !== "stopped") {
      this.#options.log.warn("standing by: this producer lost the lease", { kind, reason });
    }
    lost.abort(new Error(`${kind}: ${reason}`));
  }

  #checkHeartbeat(): void {
    if (this.state !== "active") return;
    const now = Date.now();
    if (!leaseExpired(now, this.#lastHeartbeat, this.#options.sessionMs)) {
      return;
    }
    this.#lose(
      "lease-expired",
      `no heartbeat answered for ${
        now - this.#lastHeartbeat
      } ms (three sessions of ${this.#options.sessionMs} ms): another producer may hold the lease`,
    );
    this.#rejoin();
  }
}
