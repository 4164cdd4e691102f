/**
 * Builds `Ready` batches and applies `advance()`: the core's side of the I/O ordering contract (see
 * `Ready` in types.ts and docs/raft.md). Holds the output buffers the core fills between batches and
 * remembers what the last batch handed out, so `advance()` knows what became durable and applied.
 */
import { invariant } from "./log.ts";
import type { RaftNode } from "./raw-node.ts";
import { RaftError, type HardState, type Message, type NodeId, type ReadState, type Ready, type Role } from "./types.ts";

/** What the last Ready handed out. */
interface Handed {
  hardState: HardState | undefined;
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
  private handed: Handed | undefined;

  /** @param prevHard the hard state already durable at start; @param prevSoft the initial role and leader. */
  constructor(
    private prevHard: HardState,
    prevSoft: { role: Role; leaderId: NodeId },
  ) {
    this.prevSoft = { ...prevSoft };
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

  /** True when a Ready has work, and none is awaiting `advance()`. */
  hasReady(n: RaftNode): boolean {
    if (this.handed) return false;
    if (n.leader?.readOnly.shouldStartRound() || n.leader?.appendsPending) return true;
    if (this.softChanged(n) || !sameHardState(n.hardState(), this.prevHard)) return true;
    if (n.log.unstable.length > 0 || n.log.unstableSnapshot) return true;
    if (this.sendNow.length > 0 || this.messages.length > 0) return true;
    if (this.readStates.length > 0 || this.dropped.length > 0) return true;
    return n.log.committed >= n.applyFrom();
  }

  /** Drains the buffers into a Ready. Throws RaftError("invariant") when the last one was not advanced. */
  ready(n: RaftNode): Ready {
    if (this.handed) throw new RaftError("invariant", "ready() called again before advance()");
    n.leader?.flushAppends();
    n.leader?.startReadRound();
    const rd: Ready = {
      entries: n.log.unstable.slice(),
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
    let handedHard: HardState | undefined;
    if (!sameHardState(hs, this.prevHard)) {
      handedHard = hs;
      // forget-vote (test-only): the persisted hard state loses the vote, so a restart may vote twice.
      rd.hardState = n.cfg.bugs.has("forget-vote") ? { ...hs, vote: "" } : hs;
    }
    if (n.log.unstableSnapshot) rd.snapshot = n.log.unstableSnapshot;
    const from = n.applyFrom();
    if (n.log.committed >= from) rd.committedEntries = n.log.entries(from, n.log.committed + 1, Infinity);
    const last = rd.entries[rd.entries.length - 1];
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    this.handed = {
      hardState: handedHard,
      lastEntry: last ? { index: last.index, term: last.term } : undefined,
      snapshotIndex: rd.snapshot ? rd.snapshot.meta.index : 0,
      appliedTo: Math.max(from - 1, lastApplied ? lastApplied.index : 0),
    };
    return rd;
  }

  /**
   * The last Ready is durable and applied: drop its entries from the unstable tail, move the applied
   * index, and check snapshot <= applied <= commit <= last (throws RaftInvariantError). Returns false
   * when there was nothing to advance.
   */
  advance(n: RaftNode): boolean {
    const h = this.handed;
    if (!h) return false;
    this.handed = undefined;
    if (h.hardState) this.prevHard = h.hardState;
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
