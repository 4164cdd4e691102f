/**
 * The Lessor: tracks lease deadlines on a monotonic clock the node passes in (`nowMs`, milliseconds; never
 * the wall clock, scenario C09 / etcd-io/etcd#6700). Every node keeps one, fed with the leases its state
 * machine applies (`grant`, `revoke`), so a follower that becomes leader knows every live lease. Only the
 * primary (leader) decides expiry: `expired()` lists ids whose deadline passed, and the node proposes a
 * `leaseExpire` for them through the log (apply is deterministic; followers never expire on their own).
 *
 * Rules (etcd lessor.go, restated):
 * - on promotion every lease gets a fresh deadline of now + TTL + `extendMs` (one election timeout), so a
 *   leaderless gap never expires a lease its client kept alive (scenario C06, etcd-io/etcd#2660);
 * - keepAlive works on the primary only and resets the deadline to now + TTL;
 * - remaining TTL is always within [0, TTL] even if the clock source misbehaves (C09);
 * - an id handed out by `expired()` is not handed out again for `retryMs`, so a proposal in flight is not
 *   duplicated every tick, but a lost proposal is retried.
 */
import { KvError } from "./types.ts";

interface Tracked {
  ttlMs: number;
  /** Monotonic ms after which the lease is expired (meaningful on the primary only). */
  deadlineMs: number;
  /** When `expired()` last returned it (ms), or -Infinity. */
  proposedAtMs: number;
}

/** Options of a Lessor. */
export interface LessorOptions {
  /** Minimum ms between two `expired()` reports of the same lease. Default 3000. */
  retryMs?: number;
  /** At most this many ids per `expired()` call (bounds one leaseExpire proposal). Default 1000. */
  maxExpirePerCall?: number;
}

/** Leader-side lease clock. Pure: time is passed in. */
export class Lessor {
  private readonly leases = new Map<number, Tracked>();
  private primary = false;
  private readonly retryMs: number;
  private readonly maxExpirePerCall: number;

  constructor(options: LessorOptions = {}) {
    this.retryMs = options.retryMs ?? 3000;
    this.maxExpirePerCall = options.maxExpirePerCall ?? 1000;
  }

  /** True while this node is the primary (leader). */
  isPrimary(): boolean {
    return this.primary;
  }

  /** Tracks an applied lease grant (every node). Deadline = now + TTL. Re-granting an id resets it. */
  grant(id: number, ttlSeconds: number, nowMs: number): void {
    const ttlMs = ttlSeconds * 1000;
    this.leases.set(id, { ttlMs, deadlineMs: nowMs + ttlMs, proposedAtMs: -Infinity });
  }

  /** Forgets an applied revoke/expiry (every node). Unknown ids are ignored. */
  revoke(id: number): void {
    this.leases.delete(id);
  }

  /** Replaces every tracked lease (after a snapshot install or restart), deadlines now + TTL (+ extendMs on the primary). */
  restore(leases: Array<{ id: number; ttlSeconds: number }>, nowMs: number, extendMs = 0): void {
    this.leases.clear();
    for (const l of leases) this.grant(l.id, l.ttlSeconds, nowMs + (this.primary ? extendMs : 0));
  }

  /**
   * Becoming leader: every lease's deadline becomes now + TTL + extendMs (extendMs >= 0, typically one
   * election timeout), so none expires before its clients had a full TTL to reach the new leader (C06).
   */
  promote(nowMs: number, extendMs: number): void {
    this.primary = true;
    for (const l of this.leases.values()) {
      l.deadlineMs = nowMs + l.ttlMs + Math.max(0, extendMs);
      l.proposedAtMs = -Infinity;
    }
  }

  /** Stepping down: stop deciding expiry (deadlines are reset on the next promote). */
  demote(): void {
    this.primary = false;
  }

  /**
   * Client keepalive on the leader: deadline = now + TTL; returns the granted TTL in seconds. Throws KvError
   * `lease_not_found` for an unknown id, and `bad_request` when not primary (the API forwards keepalives
   * to the leader; a non-leader must not accept them because its deadlines are not authoritative).
   */
  keepAlive(id: number, nowMs: number): number {
    const l = this.leases.get(id);
    if (l === undefined) throw new KvError("lease_not_found", `lease ${id} not found`);
    if (!this.primary) throw new KvError("bad_request", "keepalive must be sent to the leader");
    l.deadlineMs = nowMs + l.ttlMs;
    l.proposedAtMs = -Infinity;
    return l.ttlMs / 1000;
  }

  /**
   * Remaining ms of a lease, clamped to [0, TTL] (C09). On a non-primary node it is the TTL as an upper
   * bound estimate (followers do not run the clock). Throws KvError `lease_not_found`.
   */
  remainingMs(id: number, nowMs: number): number {
    const l = this.leases.get(id);
    if (l === undefined) throw new KvError("lease_not_found", `lease ${id} not found`);
    if (!this.primary) return l.ttlMs;
    return Math.min(l.ttlMs, Math.max(0, l.deadlineMs - nowMs));
  }

  /**
   * On the primary: ids (ascending) whose deadline is <= nowMs and that were not reported in the last
   * `retryMs`, at most `maxExpirePerCall`. The node proposes `leaseExpire` with them. Empty when not primary.
   */
  expired(nowMs: number): number[] {
    if (!this.primary) return [];
    const out: number[] = [];
    for (const [id, l] of this.leases) {
      if (l.deadlineMs <= nowMs && nowMs - l.proposedAtMs >= this.retryMs) out.push(id);
    }
    out.sort((a, b) => a - b);
    const picked = out.slice(0, this.maxExpirePerCall);
    for (const id of picked) this.leases.get(id)!.proposedAtMs = nowMs;
    return picked;
  }

  /** Number of tracked leases. */
  size(): number {
    return this.leases.size;
  }
}
