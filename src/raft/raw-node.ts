/**
 * RaftNode: the synchronous Raft core (etcd raft's RawNode shape). The driver feeds it `tick()`, `step()`,
 * `propose()`, `readIndex()`, ... and takes `ready()` batches of work (persist, send, apply), then calls
 * `advance()`. No I/O, no clock, randomness only from the injected Rng (DESIGN.md "The Raft core").
 *
 * Rules and where they come from: elections, log matching and commit — Raft paper §5; PreVote — thesis
 * §9.6; CheckQuorum and ignoring votes while a leader is known — thesis §6.2 and §4.2.3; ReadIndex —
 * thesis §6.4; leadership transfer — thesis §3.10; joint consensus — thesis §4.3; flow control — etcd raft.
 */
import { applyConfChange, emptyConfState, isJoint, isVoter } from "./confchange.ts";
import { RaftLog, invariant } from "./log.ts";
import { committedIndex, hasQuorum, voteResult } from "./quorum.ts";
import { ReadOnlyQueue, type PendingRead } from "./read-only.ts";
import { LeaderState } from "./leader.ts";
import {
  DEFAULT_RAFT_CONFIG,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftStatus,
  type RaftStorage,
  type ReadState,
  type Ready,
  type RequestVoteMessage,
  type Rng,
  type Role,
  type Snapshot,
} from "./types.ts";

/** What the last Ready handed out, so `advance()` knows what became durable and applied. */
interface Handed {
  hardState: HardState | undefined;
  lastEntry: { index: number; term: number } | undefined;
  snapshotIndex: number;
  appliedTo: number;
}

/** Distributes `Omit<Message, "from" | "term">` shapes; `send` fills in the sender and term. */
export type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, "from" | "term"> & { term?: number } : never) : never;

/**
 * One Raft member's core. See `Ready` in types.ts for the I/O contract and docs/raft.md for the driver's
 * duties. Methods throw `NotLeaderError`/`ProposalDroppedError` for per-call refusals and
 * `RaftInvariantError` (fatal) when an invariant breaks.
 */
export class RaftNode {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  /** @internal shared with LeaderState */
  readonly log: RaftLog;
  term = 0;
  vote: NodeId = "";
  role: Role = "follower";
  leaderId: NodeId = "";
  /** Membership in force: the latest conf entry appended (thesis §4.1), else the base. */
  conf: ConfState = emptyConfState();
  private confBase: ConfState = emptyConfState();
  /** Conf entries in the log after the base, oldest first, with the membership each one installs. */
  private confEntries: Array<{ index: number; cs: ConfState }> = [];
  electionElapsed = 0;
  heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  /** Present while leader. */
  leader: LeaderState | undefined;
  /**
   * Follower side: reads forwarded to the leader and not answered yet, with the ticks left before they
   * are given up (the request or the answer may be lost; a late answer is then ignored).
   */
  private forwardedReads = new Map<string, number>();

  // Output buffers, drained by ready().
  sendNowBuf: Message[] = [];
  messagesBuf: Message[] = [];
  readStatesBuf: ReadState[] = [];
  droppedBuf: string[] = [];
  private prevHard: HardState;
  private prevSoft: { role: Role; leaderId: NodeId };
  private handed: Handed | undefined;

  /**
   * @param config see `RaftConfig` (missing fields take `DEFAULT_RAFT_CONFIG`); throws RaftError("invariant")
   *   on an inconsistent config (heartbeatTicks >= electionTicks, lease reads without checkQuorum).
   * @param storage the durable state; membership comes from `initialState().confState` plus the conf entries
   *   stored after it.
   * @param rng the only source of randomness (election timeouts).
   */
  constructor(
    config: RaftConfig,
    storage: RaftStorage,
    private readonly rng: Rng,
  ) {
    this.cfg = { ...DEFAULT_RAFT_CONFIG, ...config };
    this.id = this.cfg.id;
    if (!(this.cfg.heartbeatTicks > 0 && this.cfg.heartbeatTicks < this.cfg.electionTicks)) {
      throw new RaftError("invariant", "config: need 0 < heartbeatTicks < electionTicks");
    }
    if (this.cfg.readOnly === "lease" && !this.cfg.checkQuorum) {
      throw new RaftError("invariant", "config: lease reads need checkQuorum");
    }
    const init = storage.initialState();
    this.log = new RaftLog(storage, init.hardState.commit, this.cfg.applied);
    this.term = init.hardState.term;
    this.vote = init.hardState.vote;
    this.confBase = init.confState;
    this.conf = init.confState;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    if (last >= first) this.trackConfEntries(storage.entries(first, last + 1, Infinity));
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.becomeFollower(this.term, "");
    this.prevSoft = { role: this.role, leaderId: this.leaderId };
  }

  // ---------------------------------------------------------------------------------------------------
  // Public API

  /** Advances logical time by one tick: election timeout on followers/candidates, heartbeats on the leader. */
  tick(): void {
    for (const [id, left] of this.forwardedReads) {
      if (left > 1) {
        this.forwardedReads.set(id, left - 1);
      } else {
        this.forwardedReads.delete(id);
        this.droppedBuf.push(id);
      }
    }
    if (this.leader) {
      this.leader.tick();
      return;
    }
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  /** Starts an election now (with PreVote if configured). No effect on the leader or on a non-voter. */
  campaign(): void {
    this.hup(false);
  }

  /**
   * Appends `data` as a normal entry. Returns its position; it is committed once it shows up in
   * `committedEntries` at that index with that term.
   * @throws NotLeaderError off the leader; ProposalDroppedError during a leadership transfer.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    const l = this.requireLeader();
    const e = l.appendEntry({ type: "normal", data });
    return { index: e.index, term: e.term };
  }

  /**
   * Proposes a membership change (thesis §4.3). At most one change may be in flight; a change of voters
   * goes through a joint configuration that the leader leaves on its own once committed.
   * @throws NotLeaderError; ProposalDroppedError while a change or a transfer is in flight;
   *   RaftError("invariant") when the change is invalid for the current membership.
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    const l = this.requireLeader();
    if (l.pendingConfIndex > this.log.committed) throw new ProposalDroppedError("a membership change is in flight");
    if (isJoint(this.conf)) throw new ProposalDroppedError("the joint configuration is being left");
    const cs = applyConfChange(this.conf, cc);
    const e = l.appendEntry({ type: "confChange", data: new Uint8Array(0), confChange: cc, confState: cs });
    return { index: e.index, term: e.term };
  }

  /**
   * Asks for a linearizable read (thesis §6.4). The answer arrives in a later Ready: `readStates` (serve
   * once applied >= index) or `droppedReadIds` (definitely not served; retry). A read forwarded by a
   * follower is dropped when the leader changes or no answer came within 2 * electionTicks ticks.
   * @throws NotLeaderError when no leader is known.
   */
  readIndex(requestId: string): void {
    if (this.leader) {
      this.leader.read([{ requestId, from: "" }]);
      return;
    }
    if (!this.leaderId) throw new NotLeaderError("");
    // Two election timeouts: ample for one round trip plus a confirmation round on a healthy leader.
    this.forwardedReads.set(requestId, 2 * this.cfg.electionTicks);
    this.send({ type: "readIndex", to: this.leaderId, requestIds: [requestId] });
  }

  /**
   * Hands leadership to voter `to` (thesis §3.10): catch it up, then TimeoutNow. Proposals are refused
   * until it completes or is aborted after an election timeout.
   * @throws NotLeaderError off the leader; ProposalDroppedError when `to` is not a voter.
   */
  transferLeader(to: NodeId): void {
    if (!this.leader) throw new NotLeaderError(this.leaderId);
    this.leader.transfer(to);
  }

  /** The transport could not reach `id`: the leader goes back to probing it. */
  reportUnreachable(id: NodeId): void {
    const pr = this.leader?.prs.get(id);
    if (pr && pr.state === "replicate") pr.becomeProbe();
  }

  /** The transport finished sending a snapshot to `id` (`ok` false: it failed and will be retried). */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.leader?.prs.get(id);
    if (!pr || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the next heartbeat answer before probing, as etcd does, so a failed send is not retried hot.
    pr.probeSent = true;
  }

  /** True when `ready()` has work (and no earlier Ready is awaiting `advance()`). */
  hasReady(): boolean {
    if (this.handed) return false;
    if (this.role !== this.prevSoft.role || this.leaderId !== this.prevSoft.leaderId) return true;
    if (!sameHardState(this.hardState(), this.prevHard)) return true;
    if (this.log.unstable.length > 0 || this.log.unstableSnapshot) return true;
    if (this.sendNowBuf.length > 0 || this.messagesBuf.length > 0) return true;
    if (this.readStatesBuf.length > 0 || this.droppedBuf.length > 0) return true;
    return this.log.committed > this.applyFrom() - 1;
  }

  /**
   * The next batch of work; handle it as described on `Ready` (types.ts), then call `advance()`.
   * @throws RaftError("invariant") when called again before `advance()`.
   */
  ready(): Ready {
    if (this.handed) throw new RaftError("invariant", "ready() called again before advance()");
    const rd: Ready = {
      entries: this.log.unstable.slice(),
      sendNow: this.sendNowBuf,
      messages: this.messagesBuf,
      committedEntries: [],
      readStates: this.readStatesBuf,
      droppedReadIds: this.droppedBuf,
    };
    this.sendNowBuf = [];
    this.messagesBuf = [];
    this.readStatesBuf = [];
    this.droppedBuf = [];
    if (this.role !== this.prevSoft.role || this.leaderId !== this.prevSoft.leaderId) {
      rd.softState = { role: this.role, leaderId: this.leaderId };
      this.prevSoft = { ...rd.softState };
    }
    const hs = this.hardState();
    let handedHard: HardState | undefined;
    if (!sameHardState(hs, this.prevHard)) {
      handedHard = hs;
      // forget-vote (test-only): the persisted hard state loses the vote, so a restart may vote twice.
      rd.hardState = this.cfg.bugs.has("forget-vote") ? { ...hs, vote: "" } : hs;
    }
    if (this.log.unstableSnapshot) rd.snapshot = this.log.unstableSnapshot;
    const from = this.applyFrom();
    if (this.log.committed >= from) rd.committedEntries = this.log.entries(from, this.log.committed + 1, Infinity);
    const last = rd.entries[rd.entries.length - 1];
    this.handed = {
      hardState: handedHard,
      lastEntry: last ? { index: last.index, term: last.term } : undefined,
      snapshotIndex: rd.snapshot ? rd.snapshot.meta.index : 0,
      appliedTo: Math.max(from - 1, rd.committedEntries.length > 0 ? rd.committedEntries[rd.committedEntries.length - 1]!.index : 0),
    };
    return rd;
  }

  /**
   * The last Ready was fully handled: its entries, snapshot and hard state are durable and its committed
   * entries applied. The leader now counts its own log toward the quorum (thesis §10.2.1).
   */
  advance(): void {
    const h = this.handed;
    if (!h) return;
    this.handed = undefined;
    if (h.hardState) this.prevHard = h.hardState;
    if (h.snapshotIndex > 0) this.log.stableSnapshotTo(h.snapshotIndex);
    if (h.lastEntry) this.log.stableTo(h.lastEntry.index, h.lastEntry.term);
    this.log.appliedTo(h.appliedTo);
    this.checkLogInvariants();
    if (this.leader) this.leader.onSelfDurable();
  }

  /** A plain snapshot of the core's state. */
  status(): RaftStatus {
    const st: RaftStatus = {
      id: this.id,
      role: this.role,
      leaderId: this.leaderId,
      term: this.term,
      vote: this.vote,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      confState: { voters: [...this.conf.voters], votersOutgoing: [...this.conf.votersOutgoing], learners: [...this.conf.learners] },
    };
    if (this.leader) {
      st.progress = this.leader.progressStatus();
      if (this.leader.transferee) st.transferee = this.leader.transferee;
    }
    return st;
  }

  // ---------------------------------------------------------------------------------------------------
  // Step: message handling (Raft paper figure 2 "Rules for servers")

  /** Feeds one received message. Messages of older terms are ignored or answered so the sender catches up. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === "requestVote") {
        // Thesis §4.2.3: while a leader is known and was heard within the minimum election timeout, votes
        // are ignored, so a removed or partitioned node cannot depose a healthy leader.
        const inLease = this.leaderId !== "" && this.electionElapsed < this.cfg.electionTicks;
        if (inLease && !m.leadershipTransfer) return;
      }
      if (m.type === "requestVote" && m.preVote) {
        // A PreVote never changes the receiver's term (thesis §9.6).
      } else if (m.type === "requestVoteResponse" && m.preVote && m.granted) {
        // A granted PreVote carries the term the candidate will campaign in; not a newer leader.
      } else if (m.type === "appendEntries" || m.type === "heartbeat" || m.type === "installSnapshot") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, "");
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === "appendEntries" || m.type === "heartbeat")) {
        // A stale leader cut off by a partition learns the newer term from this answer and steps down.
        this.send({ type: "appendEntriesResponse", to: m.from, success: false, matchIndex: 0, rejectIndex: 0, conflictIndex: 0, conflictTerm: 0 });
      } else if (m.type === "requestVote" && m.preVote) {
        this.send({ type: "requestVoteResponse", to: m.from, preVote: true, granted: false });
      }
      return;
    }

    switch (m.type) {
      case "requestVote":
        this.handleRequestVote(m);
        return;
      case "readIndexResponse":
        this.handleReadIndexResponse(m.requestIds, m.index);
        return;
      default:
        break;
    }
    if (this.leader) {
      this.leader.step(m);
      return;
    }
    switch (m.type) {
      case "appendEntries":
        this.becomeFollowerOf(m.from);
        this.handleAppendEntries(m);
        return;
      case "heartbeat":
        this.becomeFollowerOf(m.from);
        this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
        this.send({ type: "heartbeatResponse", to: m.from, readSeq: m.readSeq });
        return;
      case "installSnapshot":
        this.becomeFollowerOf(m.from);
        this.handleSnapshot(m.from, m.snapshot);
        return;
      case "requestVoteResponse":
        this.handleVoteResponse(m.from, m.preVote, m.granted);
        return;
      case "timeoutNow":
        if (this.promotable()) this.hup(true);
        return;
      case "readIndex":
        // Not the leader (any more): refuse so the follower fails the reads fast instead of timing out.
        this.send({ type: "readIndexResponse", to: m.from, requestIds: m.requestIds, index: 0 });
        return;
      default:
        return;
    }
  }

  private handleRequestVote(m: RequestVoteMessage): void {
    const canVote =
      this.vote === m.from || (this.vote === "" && this.leaderId === "") || (m.preVote && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      // A granted answer carries the candidate's term, so a pre-candidate counts it for its next term.
      this.send({ type: "requestVoteResponse", to: m.from, term: m.term, preVote: m.preVote, granted: true });
      if (!m.preVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: "requestVoteResponse", to: m.from, preVote: m.preVote, granted: false });
    }
  }

  private handleVoteResponse(from: NodeId, preVote: boolean, granted: boolean): void {
    if ((this.role === "preCandidate") !== preVote) return;
    if (this.role !== "preCandidate" && this.role !== "candidate") return;
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const result = voteResult(this.conf, this.votes);
    if (result === "won") {
      if (this.role === "preCandidate") this.startElection(false, false);
      else this.becomeLeader();
    } else if (result === "lost") {
      this.becomeFollower(this.term, "");
    }
  }

  /** Follower side of AppendEntries (Raft paper figure 2, receiver steps 1-5). */
  private handleAppendEntries(m: Extract<Message, { type: "appendEntries" }>): void {
    const reply = (success: boolean, matchIndex: number, conflictIndex = 0, conflictTerm = 0) =>
      this.send({ type: "appendEntriesResponse", to: m.from, success, matchIndex, rejectIndex: success ? 0 : m.prevLogIndex, conflictIndex, conflictTerm });
    if (m.prevLogIndex < this.log.committed) {
      reply(true, this.log.committed);
      return;
    }
    if (this.log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
      const lastNew = m.prevLogIndex + m.entries.length;
      let conflictAt = -1;
      for (let i = 0; i < m.entries.length; i++) {
        if (!this.log.matchTerm(m.entries[i]!.index, m.entries[i]!.term)) {
          conflictAt = i;
          break;
        }
      }
      if (conflictAt >= 0) this.appendToLog(m.entries.slice(conflictAt));
      this.log.commitTo(Math.min(m.commit, lastNew));
      reply(true, lastNew);
      return;
    }
    // Rejection hint (etcd findConflictByTerm): the last index whose term is <= the leader's prevLogTerm,
    // so the leader can skip a whole term of mismatching entries per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm);
    reply(false, 0, hint, Math.max(0, this.log.termOrNone(hint)));
  }

  /** Follower side of InstallSnapshot (Raft paper figure 13). */
  private handleSnapshot(from: NodeId, s: Snapshot): void {
    const reply = (matchIndex: number) =>
      this.send({ type: "appendEntriesResponse", to: from, success: true, matchIndex, rejectIndex: 0, conflictIndex: 0, conflictTerm: 0 });
    if (s.meta.index <= this.log.committed) {
      reply(this.log.committed);
      return;
    }
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // Our log already holds the snapshot's last entry: just commit up to it and keep the tail.
      this.log.commitTo(s.meta.index);
      reply(s.meta.index);
      return;
    }
    this.log.restore(s);
    this.confBase = s.meta.confState;
    this.confEntries = [];
    this.setConf(s.meta.confState);
    reply(s.meta.index);
  }

  private handleReadIndexResponse(ids: string[], index: number): void {
    for (const id of ids) {
      if (!this.forwardedReads.delete(id)) continue;
      if (index > 0) this.readStatesBuf.push({ requestId: id, index });
      else this.droppedBuf.push(id);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Roles

  /** A voter of the membership in force may campaign; learners, removed and joining nodes never do. */
  promotable(): boolean {
    return isVoter(this.conf, this.id);
  }

  private hup(transfer: boolean): void {
    if (this.leader || !this.promotable()) return;
    this.startElection(this.cfg.preVote && !transfer, transfer);
  }

  private startElection(pre: boolean, transfer: boolean): void {
    if (pre) {
      this.role = "preCandidate";
      this.leaderId = "";
      this.votes = new Map();
      this.randomizeTimeout();
    } else {
      this.reset(this.term + 1);
      this.role = "candidate";
      this.vote = this.id;
    }
    const voteTerm = pre ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    const result = voteResult(this.conf, this.votes);
    if (result === "won") {
      if (pre) this.startElection(false, transfer);
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of new Set([...this.conf.voters, ...this.conf.votersOutgoing])) {
      if (id === this.id) continue;
      this.send({ type: "requestVote", to: id, term: voteTerm, preVote: pre, lastLogIndex, lastLogTerm, leadershipTransfer: transfer });
    }
  }

  /** Steps down (or stays) as follower in `term` with known leader `leaderId` ("" = unknown). */
  becomeFollower(term: number, leaderId: NodeId): void {
    this.reset(term);
    this.role = "follower";
    this.leaderId = leaderId;
  }

  /** Same-term AppendEntries/heartbeat/snapshot: a candidate concedes; everyone notes the leader is alive. */
  private becomeFollowerOf(from: NodeId): void {
    if (this.role !== "follower") this.becomeFollower(this.term, from);
    this.leaderId = from;
    this.electionElapsed = 0;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = "leader";
    this.leaderId = this.id;
    this.leader = new LeaderState(this);
    this.leader.start();
  }

  /** Clears per-term state; a leader that steps down fails its pending reads (never serves them later). */
  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = "";
    }
    this.leaderId = "";
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizeTimeout();
    this.votes = new Map();
    if (this.leader) {
      const l = this.leader;
      this.leader = undefined;
      this.dropReads(l.readOnly.drain().concat(l.waitingReads));
    }
    for (const id of this.forwardedReads.keys()) this.droppedBuf.push(id);
    this.forwardedReads.clear();
  }

  private dropReads(reads: PendingRead[]): void {
    for (const r of reads) {
      if (r.from === "") this.droppedBuf.push(r.requestId);
      else this.send({ type: "readIndexResponse", to: r.from, requestIds: [r.requestId], index: 0 });
    }
  }

  private randomizeTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.rng.nextInt(this.cfg.electionTicks);
  }

  // ---------------------------------------------------------------------------------------------------
  // Log and membership

  /** Appends to the log and tracks conf entries; conf changes take effect when appended (thesis §4.1). */
  appendToLog(entries: Entry[]): void {
    if (entries.length === 0) return;
    const after = entries[0]!.index;
    if (after <= this.log.lastIndex() && this.confEntries.some((c) => c.index >= after)) {
      // Truncation: revert to the latest conf entry that survives, else the base membership.
      this.confEntries = this.confEntries.filter((c) => c.index < after);
      const latest = this.confEntries[this.confEntries.length - 1];
      this.setConf(latest ? latest.cs : this.confBase);
    }
    this.log.append(entries);
    this.trackConfEntries(entries);
    // Committed conf entries can never be truncated: fold all but the newest into the base.
    while (this.confEntries.length > 1 && this.confEntries[1]!.index <= this.log.committed) this.confEntries.shift();
    if (this.confEntries.length > 0 && this.confEntries[0]!.index <= this.log.committed) {
      this.confBase = this.confEntries.shift()!.cs;
    }
  }

  private trackConfEntries(entries: Entry[]): void {
    for (const e of entries) {
      if (e.type !== "confChange") continue;
      const cs = e.confState ?? applyConfChange(this.conf, e.confChange ?? { steps: [] });
      this.confEntries.push({ index: e.index, cs });
      this.setConf(cs);
    }
  }

  private setConf(cs: ConfState): void {
    this.conf = cs;
    if (this.leader) this.leader.onConfChange();
  }

  /** Index of the first committed entry not yet handed out for applying. */
  private applyFrom(): number {
    const snap = this.log.unstableSnapshot ? this.log.unstableSnapshot.meta.index : 0;
    return Math.max(this.log.applied, snap) + 1;
  }

  /** The leader's own durable last index: what it may count for itself (entries below the unstable offset). */
  durableLastIndex(): number {
    return this.log.unstableSnapshot ? 0 : this.log.offset - 1;
  }

  /** Match index of `id` for quorum counting (own log: only what `advance()` confirmed durable). */
  matchOf(id: NodeId): number {
    if (id === this.id) return this.durableLastIndex();
    return this.leader?.prs.get(id)?.matchIndex ?? 0;
  }

  /** Commit by quorum, counting only an entry of the current term (Raft paper §5.4.2, figure 8). */
  maybeCommit(): boolean {
    const mci = committedIndex(this.conf, (id) => this.matchOf(id));
    if (mci <= this.log.committed) return false;
    // commit-prior-term (test-only) skips the current-term check: the figure-8 bug.
    if (!this.cfg.bugs.has("commit-prior-term") && this.log.termOrNone(mci) !== this.term) return false;
    return this.log.commitTo(mci);
  }

  hasQuorum(acks: ReadonlySet<NodeId>): boolean {
    return hasQuorum(this.conf, acks);
  }

  /** Queues `m` from this node at the current term: the leader's AppendEntries/heartbeats may go before persisting. */
  send(m: Outgoing): void {
    const full = { ...m, from: this.id, term: m.term ?? this.term } as Message;
    if (this.leader && (full.type === "appendEntries" || full.type === "heartbeat")) this.sendNowBuf.push(full);
    else this.messagesBuf.push(full);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private checkLogInvariants(): void {
    const l = this.log;
    invariant(l.snapshotIndex() <= l.applied, `snapshot ${l.snapshotIndex()} > applied ${l.applied}`);
    invariant(l.applied <= l.committed, `applied ${l.applied} > commit ${l.committed}`);
    invariant(l.committed <= l.lastIndex(), `commit ${l.committed} > last ${l.lastIndex()}`);
  }

  private requireLeader() {
    if (!this.leader) throw new NotLeaderError(this.leaderId);
    if (this.leader.transferee) throw new ProposalDroppedError(`leadership transfer to ${this.leader.transferee} in progress`);
    return this.leader;
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
