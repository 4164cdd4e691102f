/**
 * RaftNode: the synchronous Raft core (etcd raft's RawNode shape). The driver feeds it `tick()`, `step()`,
 * `propose()`, `readIndex()`, ... and takes `ready()` batches of work (persist, send, apply), then calls
 * `advance()`. No I/O, no clock, randomness only from the injected Rng (DESIGN.md "The Raft core").
 *
 * Rules and where they come from: elections, log matching and commit — Raft paper §5; PreVote — thesis
 * §9.6; CheckQuorum and ignoring votes while a leader is known — thesis §6.2 and §4.2.3; ReadIndex —
 * thesis §6.4; leadership transfer — thesis §3.10; joint consensus — thesis §4.3; flow control — etcd raft.
 */
import { applyConfChange, isJoint, isVoter } from "./confchange.ts";
import { admitTerm, handleAppendEntries, handleRequestVote, handleSnapshot } from "./follower.ts";
import { ConfTracker } from "./membership.ts";
import { RaftLog } from "./log.ts";
import { committedIndex, hasQuorum, voteResult } from "./quorum.ts";
import type { PendingRead } from "./read-only.ts";
import { Outbox } from "./ready.ts";
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
  type Ready,
  type Rng,
  type Role,
  type Snapshot,
} from "./types.ts";

/** Distributes `Omit<Message, "from" | "term">` shapes; `send` fills in the sender and term. */
export type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, "from" | "term"> & { term?: number } : never) : never;

/**
 * One Raft member's core. See `Ready` in types.ts for the I/O contract and docs/raft.md for the driver's
 * duties. Methods throw `NotLeaderError`/`ProposalDroppedError` for per-call refusals and
 * `RaftInvariantError` (fatal) when an invariant breaks.
 */
export class RaftNode {
  /** Why this node last stopped leading ("" when unknown or never): see `becomeFollower`. */
  stepDownReason = "";
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  /** @internal shared with LeaderState */
  readonly log: RaftLog;
  term = 0;
  vote: NodeId = "";
  role: Role = "follower";
  leaderId: NodeId = "";
  private membership = new ConfTracker();
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

  /** Output buffers and the Ready/advance bookkeeping. */
  readonly out: Outbox;

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
    // Fields left undefined take the defaults (a spread alone would let `undefined` override them).
    const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
    this.cfg = { ...DEFAULT_RAFT_CONFIG, ...given } as RaftConfig;
    this.id = this.cfg.id;
    if (!(this.cfg.heartbeatTicks > 0 && this.cfg.heartbeatTicks < this.cfg.electionTicks)) {
      throw new RaftError("invariant", "config: need 0 < heartbeatTicks < electionTicks");
    }
    if (this.cfg.readOnly === "lease" && !this.cfg.checkQuorum) {
      throw new RaftError("invariant", "config: lease reads need checkQuorum");
    }
    if (!(Number.isInteger(this.cfg.maxReadysInFlight) && this.cfg.maxReadysInFlight >= 1)) {
      throw new RaftError("invariant", "config: maxReadysInFlight must be an integer >= 1");
    }
    const init = storage.initialState();
    this.log = new RaftLog(storage, init.hardState.commit, this.cfg.applied);
    this.term = init.hardState.term;
    this.vote = init.hardState.vote;
    this.membership.reset(init.confState);
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    if (last >= first) this.membership.track(storage.entries(first, last + 1, Infinity));
    this.becomeFollower(this.term, "");
    this.out = new Outbox(this.hardState(), { role: this.role, leaderId: this.leaderId }, this.cfg.maxReadysInFlight);
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
        this.out.dropped.push(id);
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
    // Batch: every read asked before the next Ready rides in one message (the leader then handles one
    // message, not one per read; the reads share its next confirmation round either way).
    const pending = this.out.messages.find((m) => m.type === "readIndex" && m.to === this.leaderId && m.term === this.term);
    if (pending && pending.type === "readIndex") pending.requestIds.push(requestId);
    else this.send({ type: "readIndex", to: this.leaderId, requestIds: [requestId] });
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

  /** True when `ready()` has work and may be called (fewer than `maxReadysInFlight` Readys await `advance()`). */
  hasReady(): boolean {
    return this.out.hasReady(this);
  }

  /**
   * The next batch of work; handle it as described on `Ready` (types.ts), then call `advance()` (one call
   * per Ready, in the order they were handed out).
   * @throws RaftError("invariant") when `maxReadysInFlight` Readys already await `advance()`, or a snapshot does.
   */
  ready(): Ready {
    return this.out.ready(this);
  }

  /**
   * The leader's messages that may leave before anything is persisted (what the next Ready's `sendNow`
   * would carry: AppendEntries for entries proposed since the last Ready, heartbeats, a ReadIndex round's
   * heartbeat), taken now. A driver whose fsync runs on another thread calls this while a Ready awaits
   * `advance()`, so replication, heartbeats and read rounds do not wait for the disk (etcd raft's
   * asynchronous storage writes send MsgApp before the local append completes). Safe for the same reason
   * as `sendNow` (thesis §10.2.1): the leader counts its own entries only after the `advance()` of the
   * Ready that persisted them; the entries stay unstable and go to storage with the next Ready.
   * Returns [] on a follower or when there is nothing to send.
   */
  takeSendNow(): Message[] {
    if (this.leader) {
      this.leader.flushAppends();
      this.leader.startReadRound();
    }
    return this.out.takeSendNow();
  }

  /**
   * The oldest Ready not yet advanced was fully handled: its entries, snapshot and hard state are durable
   * and its committed entries applied. The leader now counts its own log toward the quorum (thesis §10.2.1).
   * @throws RaftInvariantError when the log positions broke snapshot <= applied <= commit <= last.
   */
  advance(): void {
    if (this.out.advance(this) && this.leader) this.leader.onSelfDurable();
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
    if (m.to !== this.id || !admitTerm(this, m)) return;
    switch (m.type) {
      case "requestVote":
        handleRequestVote(this, m);
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
        handleAppendEntries(this, m);
        return;
      case "heartbeat":
        this.becomeFollowerOf(m.from);
        // The leader never sends a commit index past what it knows this follower holds.
        this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
        this.send({ type: "heartbeatResponse", to: m.from, readSeq: m.readSeq });
        return;
      case "installSnapshot":
        this.becomeFollowerOf(m.from);
        handleSnapshot(this, m.from, m.snapshot);
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

  /** Replaces the log with an InstallSnapshot's snapshot; its membership becomes the base. */
  restoreSnapshot(s: Snapshot): void {
    this.log.restore(s);
    this.membership.reset(s.meta.confState);
    this.onConfChanged();
  }

  private handleReadIndexResponse(ids: string[], index: number): void {
    for (const id of ids) {
      if (!this.forwardedReads.delete(id)) continue;
      if (index > 0) this.out.readStates.push({ requestId: id, index });
      else this.out.dropped.push(id);
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

  /**
   * Steps down (or stays) as follower in `term` with known leader `leaderId` ("" = unknown). `reason` says
   * why a leader stops leading; it is kept in `stepDownReason` and handed out with the Ready's soft state.
   */
  becomeFollower(term: number, leaderId: NodeId, reason = ""): void {
    if (this.role === "leader") this.stepDownReason = reason;
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
    for (const id of this.forwardedReads.keys()) this.out.dropped.push(id);
    this.forwardedReads.clear();
  }

  private dropReads(reads: PendingRead[]): void {
    for (const r of reads) {
      if (r.from === "") this.out.dropped.push(r.requestId);
      else this.send({ type: "readIndexResponse", to: r.from, requestIds: [r.requestId], index: 0 });
    }
  }

  private randomizeTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.rng.nextInt(this.cfg.electionTicks);
  }

  // ---------------------------------------------------------------------------------------------------
  // Log and membership

  /** Membership in force: the latest conf entry appended (thesis §4.1), else the snapshot's or bootstrap one. */
  get conf(): ConfState {
    return this.membership.current;
  }

  /** Appends to the log; conf entries take effect now and are undone if truncated (thesis §4.1). */
  appendToLog(entries: Entry[]): void {
    if (entries.length === 0) return;
    const truncated = entries[0]!.index <= this.log.lastIndex() && this.membership.truncateFrom(entries[0]!.index);
    this.log.append(entries);
    if (this.membership.track(entries) || truncated) this.onConfChanged();
    this.membership.fold(this.log.committed);
  }

  private onConfChanged(): void {
    if (this.leader) this.leader.onConfChange();
  }

  /** Index of the first committed entry not yet handed out for applying. */
  applyFrom(): number {
    const snap = this.log.unstableSnapshot ? this.log.unstableSnapshot.meta.index : 0;
    return Math.max(this.log.applying, snap) + 1;
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
    if (this.leader && (full.type === "appendEntries" || full.type === "heartbeat")) this.out.sendNow.push(full);
    else this.out.messages.push(full);
  }

  /** The current hard state (what the next Ready persists if it changed). */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private requireLeader() {
    if (!this.leader) throw new NotLeaderError(this.leaderId);
    if (this.leader.transferee) throw new ProposalDroppedError(`leadership transfer to ${this.leader.transferee} in progress`);
    return this.leader;
  }
}
