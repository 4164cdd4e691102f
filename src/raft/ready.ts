/**
 * Builds `Ready` batches and applies `advance()`: the core's side of the I/O ordering contract (see
 * `Ready` in types.ts and docs/raft.md). Holds the output buffers the core fills between batches and
 * remembers what each batch handed out, so `advance()` knows what became durable and applied.
 *
 * Up to `RaftConfig.maxReadysInFlight` batches may be handed out before the first is advanced (a driver
 * that writes the next batch while the previous one's fsync runs; etcd raft's asynchronous storage
 * writes). Each batch carries only what the earlier ones did not: entries above `RaftLog.handedTo`,
 * committed entries above `RaftLog.applying`, a hard state that differs from the last one handed out.
 * `advance()` retires the oldest batch; the driver advances them in the order it got them.
 */
import { invariant } from "./log.ts";
import type { RaftNode } from "./raw-node.ts";
import { RaftError, type HardState, type Message, type NodeId, type ReadState, type Ready, type Role } from "./types.ts";

/** What one Ready handed out. */
interface Handed {
  lastEntry: { index: number; term: number } | undefined;
  snapshotIndex: number;
  appliedTo: number;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Output buffers plus the Ready/advance bookkeeping of one RaftNode. */
export class Outbox {
  /** Leader AppendEntries/heartbeats: may leave before the batch is persisted. */
  sendNow: Message[] = [];
  /** Everything else: leaves only after the batch is persisted. */
  messages: Message[] = [];
  readStates: ReadState[] = [];
  dropped: string[] = [];
  private prevSoft: { role: Role; leaderId: NodeId };
  /** Readys handed out and not yet advanced, oldest first (at most `maxInFlight`). */
  private handed: Handed[] = [];

  /**
   * @param prevHard the hard state already durable at start; @param prevSoft the initial role and leader;
   * @param maxInFlight Readys that may be handed out before the oldest is advanced (RaftConfig.maxReadysInFlight, >= 1).
   */
  constructor(
    private prevHard: HardState,
    prevSoft: { role: Role; leaderId: NodeId },
    private readonly maxInFlight = 1,
  ) {
    this.prevSoft = { ...prevSoft };
  }

  /**
   * Whether another Ready may be handed out now: fewer than `maxInFlight` are out, and no snapshot is
   * among them or waiting (a snapshot replaces the log and the state machine: it goes alone).
   */
  private mayHand(n: RaftNode): boolean {
    const k = this.handed.length;
    if (k === 0) return true;
    if (k >= this.maxInFlight || n.log.unstableSnapshot) return false;
    return this.handed[k - 1]!.snapshotIndex === 0;
  }

  private softChanged(n: RaftNode): boolean {
    return n.role !== this.prevSoft.role || n.leaderId !== this.prevSoft.leaderId;
  }

  /** Empties and returns the `sendNow` buffer (RaftNode.takeSendNow). */
  takeSendNow(): Message[] {
    const out = this.sendNow;
    this.sendNow = [];
    return out;
  }

  /** True when a Ready has work and may be handed out (see mayHand). */
  hasReady(n: RaftNode): boolean {
    if (!this.mayHand(n)) return false;
    if (n.leader?.readOnly.shouldStartRound() || n.leader?.appendsPending) return true;
    if (this.softChanged(n) || !sameHardState(n.hardState(), this.prevHard)) return true;
    if (n.log.hasUnhanded() || n.log.unstableSnapshot) return true;
    if (this.sendNow.length > 0 || this.messages.length > 0) return true;
    if (this.readStates.length > 0 || this.dropped.length > 0) return true;
    return n.log.committed >= n.applyFrom();
  }

  /**
   * Drains the buffers into a Ready. Throws RaftError("invariant") when `maxInFlight` Readys await
   * `advance()` (with the default of 1: called again before advance()), or one of them carries a snapshot.
   */
  ready(n: RaftNode): Ready {
    if (!this.mayHand(n)) {
      throw new RaftError("invariant", this.maxInFlight === 1 ? "ready() called again before advance()" : `ready() called with ${this.handed.length} Readys awaiting advance() (at most ${this.maxInFlight}, a snapshot goes alone)`);
    }
    n.leader?.flushAppends();
    n.leader?.startReadRound();
    const rd: Ready = {
      entries: n.log.unhanded(),
      sendNow: this.sendNow,
      messages: this.messages,
      committedEntries: [],
      readStates: this.readStates,
      droppedReadIds: this.dropped,
    };
    this.sendNow = [];
    this.messages = [];
    this.readStates = [];
    this.dropped = [];
    if (this.softChanged(n)) {
      const steppedDown = this.prevSoft.role === "leader" && n.role !== "leader";
      rd.softState = { role: n.role, leaderId: n.leaderId, ...(steppedDown && n.stepDownReason ? { stepDownReason: n.stepDownReason } : {}) };
      this.prevSoft = { role: n.role, leaderId: n.leaderId };
    }
    const hs = n.hardState();
    if (!sameHardState(hs, this.prevHard)) {
      // forget-vote (test-only): the persisted hard state loses the vote, so a restart may vote twice.
      rd.hardState = n.cfg.bugs.has("forget-vote") ? { ...hs, vote: "" } : hs;
      this.prevHard = hs;
    }
    if (n.log.unstableSnapshot) rd.snapshot = n.log.unstableSnapshot;
    const from = n.applyFrom();
    if (n.log.committed >= from) rd.committedEntries = n.log.entries(from, n.log.committed + 1, Infinity);
    const last = rd.entries[rd.entries.length - 1];
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (last) n.log.handedTo = last.index;
    const appliedTo = Math.max(from - 1, lastApplied ? lastApplied.index : 0);
    if (appliedTo > n.log.applying) n.log.applying = appliedTo;
    this.handed.push({
      lastEntry: last ? { index: last.index, term: last.term } : undefined,
      snapshotIndex: rd.snapshot ? rd.snapshot.meta.index : 0,
      appliedTo,
    });
    return rd;
  }

  /**
   * The oldest Ready handed out is durable and applied: drop its entries from the unstable tail (unless
   * a later append replaced them: stableTo checks the term), move the applied index, and check snapshot
   * <= applied <= commit <= last (throws RaftInvariantError). Returns false when there was nothing to advance.
   */
  advance(n: RaftNode): boolean {
    const h = this.handed.shift();
    if (!h) return false;
    if (h.snapshotIndex > 0) n.log.stableSnapshotTo(h.snapshotIndex);
    if (h.lastEntry) n.log.stableTo(h.lastEntry.index, h.lastEntry.term);
    n.log.appliedTo(h.appliedTo);
    const l = n.log;
    // A snapshot stepped in after this Ready was handed out (a driver may step messages while the Ready's
    // fsync runs, docs/raft.md) is still unstable and not applied: the order holds for the stored one.
    const snap = l.unstableSnapshot ? l.storage.firstIndex() - 1 : l.snapshotIndex();
    invariant(snap <= l.applied, `snapshot ${snap} > applied ${l.applied}`);
    invariant(l.applied <= l.committed, `applied ${l.applied} > commit ${l.committed}`);
    invariant(l.committed <= l.lastIndex(), `commit ${l.committed} > last ${l.lastIndex()}`);
    return true;
  }
}
