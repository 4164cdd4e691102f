/**
 * The leader's queue of linearizable reads (Raft thesis §6.4, ReadIndex). A read is recorded with the
 * commit index at the time it is accepted; it may be served once a quorum has answered a heartbeat sent
 * after that moment, which proves no newer leader existed then. Reads are batched: all reads that arrive
 * while a confirmation round is in flight share the next round (one heartbeat `readSeq`).
 */
import type { NodeId } from "./types.ts";

/** One read waiting for confirmation: `from` is "" for a local read, else the follower that forwarded it. */
export interface PendingRead {
  requestId: string;
  from: NodeId;
}

/** A confirmation round: reads at commit index `index`, released when a quorum acked `seq`. */
interface Round {
  seq: number;
  index: number;
  reads: PendingRead[];
  acks: Set<NodeId>;
}

/** FIFO of read rounds; rounds complete in order, so a later ack also confirms every earlier round. */
export class ReadOnlyQueue {
  private seq = 0;
  private rounds: Round[] = [];
  /** Reads accepted while a round is in flight; they go out together in the next round. */
  private queued: PendingRead[] = [];

  /** True when no round is waiting for acks. */
  idle(): boolean {
    return this.rounds.length === 0;
  }

  /** Number of reads not yet released (for tests and status). */
  pendingCount(): number {
    return this.queued.length + this.rounds.reduce((n, r) => n + r.reads.length, 0);
  }

  /** Queues reads for the next round. */
  enqueue(reads: PendingRead[]): void {
    this.queued.push(...reads);
  }

  /** True when reads are queued and no round is in flight: the caller should start a round now. */
  shouldStartRound(): boolean {
    return this.queued.length > 0 && this.rounds.length === 0;
  }

  /** Starts a round for every queued read at commit index `index`, acked by `self`; returns its seq. */
  startRound(index: number, self: NodeId): number {
    this.seq += 1;
    this.rounds.push({ seq: this.seq, index, reads: this.queued, acks: new Set([self]) });
    this.queued = [];
    return this.seq;
  }

  /** The seq of the newest round in flight (0 when none): heartbeats carry it to ask for confirmation. */
  latestSeq(): number {
    return this.rounds.length > 0 ? this.rounds[this.rounds.length - 1]!.seq : 0;
  }

  /**
   * Records that `from` answered a heartbeat carrying `seq`; returns the rounds (oldest first) now
   * confirmed according to `isQuorum`, removing them from the queue.
   */
  ack(from: NodeId, seq: number, isQuorum: (acks: ReadonlySet<NodeId>) => boolean): Array<{ index: number; reads: PendingRead[] }> {
    for (const r of this.rounds) if (r.seq <= seq) r.acks.add(from);
    let last = -1;
    for (let i = 0; i < this.rounds.length; i++) if (isQuorum(this.rounds[i]!.acks)) last = i;
    if (last < 0) return [];
    const done = this.rounds.slice(0, last + 1);
    this.rounds = this.rounds.slice(last + 1);
    return done.map((r) => ({ index: r.index, reads: r.reads }));
  }

  /** Removes and returns every pending read (leadership lost: they must fail, never be served). */
  drain(): PendingRead[] {
    const all = [...this.rounds.flatMap((r) => r.reads), ...this.queued];
    this.rounds = [];
    this.queued = [];
    return all;
  }
}
