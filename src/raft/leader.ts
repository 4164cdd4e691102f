/**
 * The leader's half of the core: per-follower progress and flow control, replication and commit,
 * heartbeats with CheckQuorum, ReadIndex rounds, leadership transfer and leaving a joint configuration.
 * Created on election, dropped on stepping down; it reads and writes the owning RaftNode's state.
 */
import { allMembers, applyConfChange, isJoint, isVoter } from "./confchange.ts";
import { Progress } from "./progress.ts";
import { ReadOnlyQueue, type PendingRead } from "./read-only.ts";
import type { RaftNode } from "./raw-node.ts";
import {
  CompactedError,
  ProposalDroppedError,
  SnapshotUnavailableError,
  type Entry,
  type Message,
  type NodeId,
  type ProgressStatus,
} from "./types.ts";

/** State that exists only while this node leads. */
export class LeaderState {
  /** Progress of every other member (voters, outgoing voters, learners). */
  readonly prs = new Map<NodeId, Progress>();
  /** Index of the latest conf entry in the log; a new change waits until it is committed. */
  pendingConfIndex = 0;
  /** Target of a leadership transfer in progress, or "". */
  transferee: NodeId = "";
  readonly readOnly = new ReadOnlyQueue();
  /** Reads accepted before an entry of this term was committed (thesis §6.4 step 1 waits for the no-op). */
  waitingReads: PendingRead[] = [];

  constructor(private readonly n: RaftNode) {}

  /** Election won: track every member, append the no-op of the new term (Raft paper §8), replicate. */
  start(): void {
    this.onConfChange();
    for (const pr of this.prs.values()) pr.recentActive = true;
    // A conf entry from an earlier term may be uncommitted: no new change until the no-op commits.
    this.pendingConfIndex = this.n.log.lastIndex();
    this.appendEntry({ type: "normal", data: new Uint8Array(0) });
  }

  /**
   * Appends one entry of the current term to the leader's log. It goes out when the next Ready is built
   * (`flushAppends`), so every proposal made until then shares one AppendEntries per follower.
   */
  appendEntry(e: Omit<Entry, "index" | "term">): Entry {
    const entry: Entry = { ...e, index: this.n.log.lastIndex() + 1, term: this.n.term };
    this.n.appendToLog([entry]);
    if (entry.type === "confChange") this.pendingConfIndex = entry.index;
    this.appendsPending = true;
    // A smaller voter set may already be satisfied (e.g. a lagging voter was removed).
    if (this.n.leader === this && this.n.maybeCommit()) this.afterCommit();
    return entry;
  }

  /** True when appended entries have not been offered to the followers yet. */
  appendsPending = false;

  /** Sends the entries appended since the last Ready (called when building a Ready). */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    // A follower still in probe (e.g. a member just added) gets a probe even with nothing new for it.
    for (const [id, pr] of this.prs) this.sendAppend(id, pr.state === "probe");
  }

  /** Keeps `prs` in line with the membership in force. */
  onConfChange(): void {
    const members = new Set(allMembers(this.n.conf));
    members.delete(this.n.id);
    for (const id of [...this.prs.keys()]) if (!members.has(id)) this.prs.delete(id);
    for (const id of members) {
      const learner = !isVoter(this.n.conf, id);
      const pr = this.prs.get(id);
      if (pr) pr.isLearner = learner;
      else this.prs.set(id, new Progress(this.n.log.lastIndex() + 1, learner, this.n.cfg.maxInflight, this.n.cfg.maxInflightBytes));
    }
  }

  /** The leader's own entries became durable: they now count toward the quorum. */
  onSelfDurable(): void {
    if (this.n.maybeCommit()) {
      this.afterCommit();
      if (this.n.leader === this) this.broadcastAppend();
    }
  }

  /** Work that follows a commit index move: pending reads, leaving joint, a removed leader stepping down. */
  afterCommit(): void {
    const n = this.n;
    if (n.log.termOrNone(n.log.committed) === n.term && this.waitingReads.length > 0) {
      const reads = this.waitingReads;
      this.waitingReads = [];
      this.read(reads);
    }
    if (n.log.committed < this.pendingConfIndex) return;
    if (isJoint(n.conf)) {
      // Thesis §4.3: once C_old,new is committed the leader moves on to C_new by itself.
      const cs = applyConfChange(n.conf, { steps: [] });
      this.appendEntry({ type: "confChange", data: new Uint8Array(0), confChange: { steps: [] }, confState: cs });
      return;
    }
    if (!isVoter(n.conf, n.id)) {
      // A removed leader leads until C_new commits (thesis §4.2.2), tells the others, then steps down.
      this.broadcastAppend();
      n.becomeFollower(n.term, "", "removed from the configuration");
    }
  }

  tick(): void {
    const n = this.n;
    n.heartbeatElapsed++;
    n.electionElapsed++;
    if (n.electionElapsed >= n.cfg.electionTicks) {
      n.electionElapsed = 0;
      if (n.cfg.checkQuorum) {
        const active = new Set<NodeId>([n.id]);
        for (const [id, pr] of this.prs) {
          if (pr.recentActive) active.add(id);
          pr.recentActive = false;
        }
        if (!n.hasQuorum(active)) {
          // CheckQuorum (thesis §6.2): a leader cut off from a quorum stops accepting work.
          n.becomeFollower(n.term, "", `CheckQuorum: ${active.size} of the members heard from within the election timeout, no quorum`);
          return;
        }
      }
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      this.transferee = "";
    }
    if (n.heartbeatElapsed >= n.cfg.heartbeatTicks) {
      n.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  step(m: Message): void {
    switch (m.type) {
      case "appendEntriesResponse":
        this.handleAppendResponse(m);
        return;
      case "heartbeatResponse": {
        const pr = this.prs.get(m.from);
        if (!pr) return;
        pr.recentActive = true;
        pr.probeSent = false;
        // A lost AppendEntries would hold its in-flight slot forever: when the window is full, free the
        // oldest slot so one more goes out; if entries were lost it is rejected and we fall back to
        // probing from the match index (as etcd does; found by the simulator, test/sim/FINDINGS.md #1).
        if (pr.state === "replicate" && pr.isPaused()) pr.freeOldest(1);
        if (pr.matchIndex < this.n.log.lastIndex()) this.sendAppend(m.from);
        if (m.readSeq > 0) this.ackRead(m.from, m.readSeq);
        return;
      }
      case "readIndex":
        this.read(m.requestIds.map((requestId) => ({ requestId, from: m.from })));
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Extract<Message, { type: "appendEntriesResponse" }>): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (!m.success) {
      // Fast backtracking: with the follower's (conflictIndex, conflictTerm), skip to the last index where
      // our log has a term <= conflictTerm. Example: leader terms [1 1 1 4 4 5 5 6 6 6], follower
      // [1 1 1 2 2 2 3 3 3 3 3] rejects prev=10 with (10, 3) -> probe at 5 (term 4 <= 3? no) -> 3.
      let hint = m.conflictIndex;
      if (m.conflictTerm > 0) hint = this.n.log.findConflictByTerm(m.conflictIndex, m.conflictTerm);
      if (pr.maybeDecrTo(m.rejectIndex, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!(pr.maybeUpdate(m.matchIndex) || (pr.matchIndex === m.matchIndex && pr.state === "probe"))) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.matchIndex >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.freeInflightsTo(pr.matchIndex);
    if (this.n.maybeCommit()) {
      this.afterCommit();
      if (this.n.leader !== this) return;
      this.broadcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Keep the pipeline full; bounded because each send either advances nextIndex or pauses the peer.
    for (let i = 0; i < this.n.cfg.maxInflight && this.sendAppend(m.from, false); i++);
    if (m.from === this.transferee && pr.matchIndex === this.n.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  /**
   * Sends `to` the entries from its next index (or a snapshot when they are compacted). Returns true when
   * a message went out. With `sendIfEmpty` false nothing is sent when there is nothing new.
   */
  sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const n = this.n;
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const last = n.log.lastIndex();
    if (pr.nextIndex > last + 1) pr.nextIndex = last + 1;
    const prevLogIndex = pr.nextIndex - 1;
    const prevLogTerm = n.log.termOrNone(prevLogIndex);
    let entries: Entry[] = [];
    if (prevLogTerm < 0) return this.sendSnapshot(to, pr);
    try {
      const hi = Math.min(last + 1, pr.nextIndex + n.cfg.maxPayloadEntries);
      entries = n.log.entries(pr.nextIndex, hi, n.cfg.maxPayloadBytes);
    } catch (e) {
      if (e instanceof CompactedError) return this.sendSnapshot(to, pr);
      throw e;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    const commit = Math.min(n.log.committed, prevLogIndex + entries.length);
    n.send({ type: "appendEntries", to, prevLogIndex, prevLogTerm, entries, commit });
    let dataBytes = 0;
    for (const e of entries) dataBytes += e.data.byteLength;
    pr.sentEntries(prevLogIndex + entries.length, entries.length, dataBytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    let snapshot;
    try {
      snapshot = this.n.log.storage.snapshot();
    } catch (e) {
      if (e instanceof SnapshotUnavailableError) return false;
      throw e;
    }
    if (snapshot.meta.index === 0) return false;
    this.n.send({ type: "installSnapshot", to, snapshot });
    pr.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  broadcastAppend(): void {
    for (const id of this.prs.keys()) this.sendAppend(id);
  }

  broadcastHeartbeat(): void {
    const readSeq = this.readOnly.latestSeq();
    for (const [to, pr] of this.prs) {
      // Never tell a follower to commit past what it is known to hold (it may have a divergent tail).
      this.n.send({ type: "heartbeat", to, commit: Math.min(pr.matchIndex, this.n.log.committed), readSeq, leaderCommit: this.n.log.committed });
    }
  }

  /**
   * Accepts reads (local: from ""; forwarded: from the follower). Safe mode: wait for an entry of this term
   * to commit, then confirm leadership with a quorum heartbeat round (thesis §6.4). Lease mode (with
   * CheckQuorum): answer at once. stale-read (test-only): answer at once with the current commit index.
   */
  read(reads: PendingRead[]): void {
    const n = this.n;
    if (reads.length === 0) return;
    if (n.cfg.bugs.has("stale-read")) {
      this.release(n.log.committed, reads);
      return;
    }
    if (n.log.termOrNone(n.log.committed) !== n.term) {
      this.waitingReads.push(...reads);
      return;
    }
    if ((n.cfg.readOnly === "lease" && n.cfg.checkQuorum) || n.hasQuorum(new Set([n.id]))) {
      this.release(n.log.committed, reads);
      return;
    }
    // The round starts when the next Ready is built (`startReadRound`), so every read asked until then
    // shares one heartbeat round.
    this.readOnly.enqueue(reads);
  }

  /** Starts a confirmation round for the queued reads if none is in flight (called when building a Ready). */
  startReadRound(): void {
    if (!this.readOnly.shouldStartRound()) return;
    this.readOnly.startRound(this.n.log.committed, this.n.id);
    this.broadcastHeartbeat();
  }

  private ackRead(from: NodeId, seq: number): void {
    for (const round of this.readOnly.ack(from, seq, (acks) => this.n.hasQuorum(acks))) this.release(round.index, round.reads);
  }

  private release(index: number, reads: PendingRead[]): void {
    const byFollower = new Map<NodeId, string[]>();
    for (const r of reads) {
      if (r.from === "") this.n.out.readStates.push({ requestId: r.requestId, index });
      else {
        const ids = byFollower.get(r.from);
        if (ids) ids.push(r.requestId);
        else byFollower.set(r.from, [r.requestId]);
      }
    }
    for (const [to, requestIds] of byFollower) this.n.send({ type: "readIndexResponse", to, requestIds, index });
  }

  /** Starts a leadership transfer to voter `to` (thesis §3.10). */
  transfer(to: NodeId): void {
    if (to === this.n.id) return;
    if (!isVoter(this.n.conf, to) || !this.prs.has(to)) throw new ProposalDroppedError(`${to} is not a voter`);
    if (this.transferee === to) return;
    this.transferee = to;
    this.n.electionElapsed = 0;
    const pr = this.prs.get(to)!;
    if (pr.matchIndex === this.n.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.n.send({ type: "timeoutNow", to });
  }

  progressStatus(): Record<NodeId, ProgressStatus> {
    const out: Record<NodeId, ProgressStatus> = {};
    for (const [id, pr] of this.prs) out[id] = pr.status();
    const self = this.n.durableLastIndex();
    out[this.n.id] = {
      matchIndex: self,
      nextIndex: this.n.log.lastIndex() + 1,
      state: "replicate",
      inflight: 0,
      inflightBytes: 0,
      recentActive: true,
      isLearner: !isVoter(this.n.conf, this.n.id),
    };
    return out;
  }
}
