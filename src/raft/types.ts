/**
 * The Raft core's public types: entries, messages, the Ready batch and its I/O contract, the storage read
 * interface, configuration and errors. Pure: no runtime imports (see DESIGN.md "Layers").
 *
 * Log positions always satisfy (openraft docs/data/log_pointers.md, restated for edgekv):
 *   snapshot.index <= appliedIndex <= commitIndex <= lastIndex
 * and every index is a positive integer; index 0 / term 0 is the empty log's sentinel.
 */

/** A member's id. Stable for the member's life (on Fly.io, the Machine id). */
export type NodeId = string;

/** `normal` carries application data (empty `data` = the leader's no-op); `confChange` carries a membership change. */
export type EntryType = "normal" | "confChange";

/** One log entry. `index` and `term` are positive integers; `data` is opaque to the core. */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  /** Application payload (normal entries); empty for the no-op and for confChange entries. */
  data: Uint8Array;
  /** Present exactly when `type === "confChange"`. */
  confChange?: ConfChange;
  /**
   * On confChange entries: the membership in force once this entry is appended, computed by the leader with
   * `applyConfChange`. It lets a node that joined with an empty ConfState learn the full membership from
   * the entry alone (the bootstrap membership is not in the log). Encoders must carry it.
   */
  confState?: ConfState;
}

/** One step of a membership change (Raft thesis §4.3, joint consensus with learners as in etcd). */
export interface ConfChangeStep {
  /**
   * addLearner: join as non-voting member; promote: learner -> voter; remove: leave (voter or learner);
   * update: membership unchanged, only the member's `context` (its URLs) changes (etcd's member update).
   */
  type: "addLearner" | "promote" | "remove" | "update";
  nodeId: NodeId;
  /**
   * Opaque to the core, replicated with the entry (etcd's ConfChange.Context): the node puts the new
   * member's URLs here as JSON `{"peerUrl","clientUrl"}` on addLearner, and every replica's state machine
   * records them when it applies the entry, so member addresses travel with membership and snapshots.
   */
  context?: string;
}

/**
 * A membership change. `steps` empty means "leave the joint configuration" (proposed by the leader itself
 * once the joint configuration is committed). A change that alters the voter set goes through a joint
 * configuration (voters = new, votersOutgoing = old); a change that only adds learners applies directly.
 */
export interface ConfChange {
  steps: ConfChangeStep[];
}

/** The membership in force. In a joint configuration `votersOutgoing` is non-empty and decisions need both majorities. */
export interface ConfState {
  voters: NodeId[];
  votersOutgoing: NodeId[];
  learners: NodeId[];
}

/** What must be durable before certain messages are sent (Raft paper figure 2 "persistent state", plus commit). */
export interface HardState {
  term: number;
  /** The candidate voted for in `term`, or "" for none. */
  vote: NodeId;
  commit: number;
}

/** Metadata of a snapshot: the state after applying every entry up to `index` (whose term is `term`). */
export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

/**
 * A snapshot. `data` is opaque to the core: the simulator puts the whole state machine in it; the node
 * puts a small reference and streams the file itself on its own stream.
 */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/** Every message carries the sender, the receiver and the sender's term. */
interface MessageBase {
  from: NodeId;
  to: NodeId;
  term: number;
}

/** AppendEntries (Raft paper figure 2). An empty `entries` list is allowed (probe). */
export interface AppendEntriesMessage extends MessageBase {
  type: "appendEntries";
  prevLogIndex: number;
  prevLogTerm: number;
  entries: Entry[];
  /** Leader's commit index, capped by the leader to what it knows the follower has. */
  commit: number;
}

/**
 * Reply to AppendEntries / InstallSnapshot. On success `matchIndex` is the last index known to match the
 * leader. On rejection the follower gives a hint for fast backtracking (Raft paper §5.3, "conflict term"
 * optimisation as in etcd's findConflictByTerm): `rejectIndex` = the prevLogIndex rejected,
 * `conflictIndex`/`conflictTerm` = where the leader should probe next.
 */
export interface AppendEntriesResponseMessage extends MessageBase {
  type: "appendEntriesResponse";
  success: boolean;
  matchIndex: number;
  rejectIndex: number;
  conflictIndex: number;
  conflictTerm: number;
}

/** RequestVote; with `preVote` it is the PreVote round (Raft thesis §9.6), which changes no state on the receiver. */
export interface RequestVoteMessage extends MessageBase {
  type: "requestVote";
  preVote: boolean;
  lastLogIndex: number;
  lastLogTerm: number;
  /** Set when campaigning on TimeoutNow: receivers ignore their leader lease (Raft thesis §3.10). */
  leadershipTransfer: boolean;
}

export interface RequestVoteResponseMessage extends MessageBase {
  type: "requestVoteResponse";
  preVote: boolean;
  granted: boolean;
}

/** Heartbeat from the leader; `readSeq` > 0 asks for a ReadIndex leadership confirmation round. */
export interface HeartbeatMessage extends MessageBase {
  type: "heartbeat";
  commit: number;
  readSeq: number;
  /**
   * The leader's own commit index, uncapped. Informational only: the core never commits from it (it may be
   * past what the follower holds); the server reads it to judge how far behind the leader this follower is
   * (`/readyz`, src/server/readiness.ts). Absent from older senders.
   */
  leaderCommit?: number;
  /**
   * Wall-clock ms at which the leader's node handed the heartbeat to its transport. Never set or read by the
   * core (it has no clock): the server stamps it when sending and uses it as the time `leaderCommit` was
   * current (src/server/staleness.ts), since a heartbeat that waited in a socket arrives late. Absent from
   * older senders.
   */
  sentAtMs?: number;
}

export interface HeartbeatResponseMessage extends MessageBase {
  type: "heartbeatResponse";
  readSeq: number;
}

/** InstallSnapshot (Raft paper figure 13), whole snapshot in one message; the transport may chunk it. */
export interface InstallSnapshotMessage extends MessageBase {
  type: "installSnapshot";
  snapshot: Snapshot;
}

/** TimeoutNow: the receiver campaigns at once (leadership transfer, Raft thesis §3.10). */
export interface TimeoutNowMessage extends MessageBase {
  type: "timeoutNow";
}

/** A follower's ReadIndex request forwarded to the leader (Raft thesis §6.4). */
export interface ReadIndexMessage extends MessageBase {
  type: "readIndex";
  requestIds: string[];
}

/** The leader's answer: reads with these ids may be served once applied >= `index`; `index` 0 = refused. */
export interface ReadIndexResponseMessage extends MessageBase {
  type: "readIndexResponse";
  requestIds: string[];
  index: number;
}

export type Message =
  | AppendEntriesMessage
  | AppendEntriesResponseMessage
  | RequestVoteMessage
  | RequestVoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | InstallSnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

export type MessageType = Message["type"];

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  requestId: string;
  index: number;
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state worth telling the driver about when it changes. */
export interface SoftState {
  role: Role;
  /** Known leader of the current term, or "" when none is known. */
  leaderId: NodeId;
  /**
   * Only when this Ready's change is a leader stepping down: why (e.g. "CheckQuorum: 1 of the members heard
   * from within the election timeout, no quorum", a message of a newer term, removal). For logs only.
   */
  stepDownReason?: string;
}

/**
 * One batch of work from the core. The driver MUST handle it in this order (the I/O ordering contract,
 * docs/raft.md; Raft paper figure 2 "respond to RPCs only after updating stable storage"):
 *
 * 1. `sendNow` may be sent at once, before or in parallel with step 2. These are only the leader's
 *    AppendEntries/heartbeats: the leader counts its own log toward a quorum only after `advance()`
 *    confirms the entries durable (Raft thesis §10.2.1).
 * 2. Persist, as one atomic durable write: `snapshot` (if any, replacing the log up to its index), then
 *    `entries` (first deleting any stored entries with index >= entries[0].index), then `hardState`.
 * 3. Only then send `messages` (votes, responses, everything else depends on step 2 being durable).
 * 4. Apply `snapshot` to the state machine (if any), then apply `committedEntries` in order. Serve each
 *    `readStates` request once the applied index >= its index. Fail each `droppedReadIds` request
 *    (definite failure: it was never served).
 * 5. Call `advance()`.
 *
 * With `RaftConfig.maxReadysInFlight` > 1 the driver may take the next Ready before advancing this one
 * (its step 2 written, its durability still pending). Then the Readys' writes must reach storage in the
 * order handed out, and step 3 and 5 of a Ready may run only once it AND every earlier Ready are durable:
 * a later Ready's messages (an AppendEntries reply with its match index, a vote) may speak for entries
 * or a vote an earlier one wrote. Committed entries may be applied at step 4 at once (they are durable on
 * a quorum, and a write-ahead log keeps the applies behind the writes they follow).
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
  sendNow: Message[];
  messages: Message[];
  committedEntries: Entry[];
  readStates: ReadState[];
  droppedReadIds: string[];
}

/**
 * The core's read-only view of durable storage (shape of etcd raft's Storage). The driver writes; the
 * core only reads what the driver has persisted. Duties, to be correct:
 * - no holes: every index in [firstIndex(), lastIndex()] is readable;
 * - `term(firstIndex() - 1)` returns the snapshot's term (0 for an empty log);
 * - reads below firstIndex throw `CompactedError`; above lastIndex throw `UnavailableError`;
 * - any other failure (I/O, checksum) is fatal: throw, and the node must stop.
 */
export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at least one if lo < hi, then stopping before the total data size passes `maxBytes`. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  term(index: number): number;
  /** Index of the first entry still stored (snapshot.index + 1 when compacted). */
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot; throws `SnapshotUnavailableError` when it is being made (the core retries later). */
  snapshot(): Snapshot;
}

/** A seeded source of randomness; the core draws its election timeouts from it, nothing else. */
export interface Rng {
  /** An integer uniformly drawn from [0, maxExclusive). */
  nextInt(maxExclusive: number): number;
}

/** Deliberately wrong rules, reachable only by passing them in (simulator `--bug NAME`), to prove checkers can fail. */
export type RaftBug = "commit-prior-term" | "forget-vote" | "stale-read";

/** Configuration of one core. Times are in ticks; the driver picks the tick length (node default 50 ms). */
export interface RaftConfig {
  id: NodeId;
  /** Minimum election timeout in ticks; each timeout is drawn from [electionTicks, 2 * electionTicks). Default 6. */
  electionTicks: number;
  /** Heartbeat interval in ticks; must be < electionTicks. Default 3 (150 ms at 50 ms ticks). */
  heartbeatTicks: number;
  /** At most this many entries per AppendEntries. Default 1000. */
  maxPayloadEntries: number;
  /** Soft cap on the total data bytes per AppendEntries (at least one entry is always sent). Default 1 MiB. */
  maxPayloadBytes: number;
  /** At most this many AppendEntries in flight per follower in replicate mode. Default 256. */
  maxInflight: number;
  /**
   * Entry data bytes in flight per follower (replicate mode) past which the leader sends that follower
   * nothing more until answers free some; 0 = no byte bound. It bounds the leader's memory for a follower
   * that stops answering (etcd raft v3.6 Config.MaxInflightBytes). At least one message always goes, so
   * the bound may be passed by one message (<= maxPayloadBytes, or one larger entry). 0: no byte bound.
   * Default 8 MiB.
   */
  maxInflightBytes: number;
  /**
   * Readys the driver may hold before advancing the oldest (>= 1). With 1 (the default) `ready()` is
   * called again only after `advance()`. With more, a driver whose fsync runs off its loop writes the
   * next Ready while the previous one's fsync is in flight (etcd raft's AsyncStorageWrites): each Ready
   * then holds only what earlier ones did not hand out, and the driver must finish them in order (see
   * `Ready`). A Ready with a snapshot is always alone in flight.
   */
  maxReadysInFlight: number;
  /** Run a PreVote round before a real election (Raft thesis §9.6). Default true. */
  preVote: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. Default true. */
  checkQuorum: boolean;
  /** "safe": ReadIndex with a quorum round; "lease": serve from the leader lease (requires checkQuorum). Default "safe". */
  readOnly: "safe" | "lease";
  /** Applied index the state machine restarted with (the driver's durable applied index). Default 0. */
  applied: number;
  /** Test-only wrong rules; empty in production. */
  bugs: ReadonlySet<RaftBug>;
}

export const DEFAULT_RAFT_CONFIG: Omit<RaftConfig, "id"> = {
  electionTicks: 6,
  heartbeatTicks: 3,
  maxPayloadEntries: 1000,
  maxPayloadBytes: 1024 * 1024,
  maxInflight: 256,
  maxInflightBytes: 8 * 1024 * 1024,
  maxReadysInFlight: 1,
  preVote: true,
  checkQuorum: true,
  readOnly: "safe",
  applied: 0,
  bugs: new Set(),
};

/** Replication mode of one follower as seen by the leader (etcd tracker/progress.go). */
export type ProgressState = "probe" | "replicate" | "snapshot";

export interface ProgressStatus {
  matchIndex: number;
  nextIndex: number;
  state: ProgressState;
  /** AppendEntries in flight (replicate mode). */
  inflight: number;
  /** Entry data bytes in those AppendEntries (bounded by RaftConfig.maxInflightBytes), bytes. */
  inflightBytes: number;
  recentActive: boolean;
  isLearner: boolean;
}

/** A snapshot of the core's state for status pages and tests. */
export interface RaftStatus {
  id: NodeId;
  role: Role;
  leaderId: NodeId;
  term: number;
  vote: NodeId;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  firstIndex: number;
  confState: ConfState;
  /** Present on the leader only. */
  progress?: Record<NodeId, ProgressStatus>;
  /** Set while a leadership transfer is under way. */
  transferee?: NodeId;
}

/** Base of the core's per-call errors; `code` is stable. */
export class RaftError extends Error {
  constructor(
    readonly code: "not_leader" | "proposal_dropped" | "compacted" | "unavailable" | "snapshot_unavailable" | "invariant",
    message: string,
  ) {
    super(message);
    this.name = "RaftError";
  }
}

/** This node is not the leader; `leaderId` is the known leader or "" (retry elsewhere). */
export class NotLeaderError extends RaftError {
  constructor(readonly leaderId: NodeId) {
    super("not_leader", leaderId ? `not the leader; leader is ${leaderId}` : "not the leader; no leader known");
  }
}

/** The leader refused a proposal for now (leadership transfer or membership change in flight). Safe to retry. */
export class ProposalDroppedError extends RaftError {
  constructor(reason: string) {
    super("proposal_dropped", reason);
  }
}

/** Storage: the requested index was compacted into a snapshot. */
export class CompactedError extends RaftError {
  constructor(index: number) {
    super("compacted", `log index ${index} is compacted`);
  }
}

/** Storage: the requested index is past the last stored entry. */
export class UnavailableError extends RaftError {
  constructor(index: number) {
    super("unavailable", `log index ${index} is not stored yet`);
  }
}

/** Storage: a snapshot is being made; ask again later. */
export class SnapshotUnavailableError extends RaftError {
  constructor() {
    super("snapshot_unavailable", "snapshot is temporarily unavailable");
  }
}

/** A broken invariant: a bug or corrupted storage. Fatal: the node must stop. */
export class RaftInvariantError extends RaftError {
  constructor(message: string) {
    super("invariant", message);
  }
}
