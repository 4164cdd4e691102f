/**
 * The service port: what the HTTP API (`app.ts`) needs from a node. `src/server/node.ts` implements
 * `KvService` (forwarding writes to the leader, ReadIndex for linearizable reads, ...); tests implement it
 * over the KV state machine directly. Semantics follow etcd's KV/lease/watch API (revisions, versions,
 * leases, compaction) as summarised in DESIGN.md "The state machine".
 *
 * Shapes: requests and results of KV operations are the state machine's own (src/kv/types.ts: keys and
 * values `Uint8Array`, etcd range conventions, revisions and lease ids safe integers, lease 0 = none), so
 * the node proposes them as they are; durations carry their unit in the name. Every method rejects with `ApiError` (errors.ts) only; the
 * codes each method may use are listed on it, and any method may also reject with `timeout` (deadline or
 * `signal` aborted before the request was proposed), `outcome_unknown` (aborted after proposing: it may
 * or may not have applied), `not_leader` / `no_leader` / `not_member` / `unavailable` (with
 * `Retry-After`), `too_many_requests` (queue full) and `internal`.
 */

import type {
  CompactResult,
  DeleteRangeRequest,
  DeleteResult,
  LeaseGrantResult,
  LeaseRevokeResult,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  TxnRequest,
  TxnResult,
  WatchEvent,
} from "../kv/types.ts";

/** Read consistency (DESIGN.md "Client API"): ReadIndex (default), leader lease, or local/stale. */
export type Consistency = "linearizable" | "lease" | "stale";

/** Client session of an exactly-once write: a retried (clientId, sequence) applies once (etcd-style dedup, Raft thesis §6.3). */
export interface ClientSession {
  /** Opaque client id, 1..128 chars. */
  clientId: string;
  /** Per-client request sequence number, a positive integer increasing per new write. */
  sequence: number;
}

/** Options every call takes. `signal` aborts the call (it then rejects with `timeout` or `outcome_unknown`). */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of a write: the session makes a retry apply exactly once. */
export interface WriteOptions extends CallOptions {
  session?: ClientSession;
}

/** Options of a read. */
export interface ReadOptions extends CallOptions {
  /** Default "linearizable". */
  consistency?: Consistency;
}

/** What a stale (local) read adds: how far behind it may be. */
export interface StaleInfo {
  /** The node's applied Raft index when the read was served. */
  appliedIndex: number;
  /**
   * Ms since this node last heard from a leader; after it stepped down as leader itself, since a quorum of
   * voters was last heard while it led (EdgeNode.noteLeadershipEnded). null if never (or this node is the leader).
   */
  stalenessMs: number | null;
}

/** Result of a range read through the service: the KV result, plus staleness on `stale` reads. */
export type ServiceRangeResult = RangeResult & { stale?: StaleInfo };

/** A lease as `leaseKeepAlive` / `leaseTimeToLive` report it (etcd LeaseKeepAliveResponse / LeaseTimeToLiveResponse). */
export interface LeaseStatus {
  id: number;
  /** Seconds left before expiry as the leader's lessor sees it (full TTL right after a keepalive). */
  ttlSeconds: number;
  /** TTL granted, seconds. */
  grantedTtlSeconds: number;
  /** Attached keys, sorted (only from `leaseTimeToLive` with `keys: true`). */
  keys?: Uint8Array[];
}

/**
 * A watch message: a batch of events (ascending revisions; `revision` = the last one), or a progress
 * notification saying every event up to `revision` has been delivered.
 */
export type WatchMessage = { type: "events"; revision: number; events: WatchEvent[] } | { type: "progress"; revision: number };

/** What to watch: `key`, or [key, rangeEnd) with the range conventions of src/kv/types.ts (`[0]` = every key >= key). */
export interface WatchRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** First revision to deliver; absent = only changes after the current revision. */
  fromRevision?: number;
  /** Send a progress message after this many ms without events (default: the implementation's). */
  progressIntervalMs?: number;
}

/** Member role in the Raft configuration. */
export type MemberRole = "voter" | "learner";

/** Liveness as seen from this node (3 missed heartbeats = suspect, DESIGN.md "Peers"). */
export type MemberStatus = "connected" | "suspect" | "failed";

/** One cluster member. */
export interface MemberInfo {
  id: string;
  role: MemberRole;
  clientUrl: string;
  peerUrl: string;
  status: MemberStatus;
  isLeader: boolean;
}

/** The cluster as this node sees it. */
export interface ClusterView {
  clusterId: string;
  /** The node answering. */
  selfId: string;
  /** "" when no leader is known. */
  leaderId: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  /** The store revision on this node. */
  revision: number;
  members: MemberInfo[];
}

/** Liveness / readiness answer (`/healthz`, `/readyz`). `ok=false` is served with 503. */
export interface HealthStatus {
  ok: boolean;
  /** Why not ok/ready; for `/readyz` a stable code (src/server/readiness.ts NotReadyReason, e.g. "no_leader"). */
  reason?: string;
  /** Free-form details shown in the JSON (e.g. leaderId, appliedIndex). */
  details?: Record<string, string | number | boolean>;
}

/**
 * The node as the client API sees it. All methods are async and reject with `ApiError` only (see file
 * header for codes any method may use; method docs list the others).
 */
export interface KvService {
  /** Put a key. Errors: `lease_not_found` (C08), `payload_too_large` (key/value limits), `bad_request` (empty key), `session_expired`. */
  put(req: PutRequest, opts?: WriteOptions): Promise<PutResult>;
  /** Delete a key or range. Errors: `bad_request` (empty key, inverted range C21), `session_expired`. */
  deleteRange(req: DeleteRangeRequest, opts?: WriteOptions): Promise<DeleteResult>;
  /** Run a txn; a false compare is NOT an error (`succeeded: false`). Errors: `bad_request` (incl. duplicate key), `lease_not_found`, `compacted`, `session_expired`. */
  txn(req: TxnRequest, opts?: WriteOptions): Promise<TxnResult>;
  /** Read. Errors: `bad_request`, `compacted` (revision at or below the compact revision), `future_revision`. */
  range(req: RangeRequest, opts?: ReadOptions): Promise<ServiceRangeResult>;
  /** Grant a lease of `ttlSeconds` (id absent = the node picks one). Errors: `bad_request` (ttl < 1 or too large), `conflict` (id exists). */
  leaseGrant(req: { ttlSeconds: number; id?: number }, opts?: WriteOptions): Promise<LeaseGrantResult>;
  /** Renew a lease to its full TTL. Errors: `lease_not_found`. */
  leaseKeepAlive(id: number, opts?: CallOptions): Promise<LeaseStatus>;
  /** Revoke a lease, deleting its keys in one revision. Errors: `lease_not_found`. */
  leaseRevoke(id: number, opts?: WriteOptions): Promise<LeaseRevokeResult>;
  /** Remaining TTL of a lease, optionally with its keys. Errors: `lease_not_found`. */
  leaseTimeToLive(id: number, opts?: ReadOptions & { keys?: boolean }): Promise<LeaseStatus>;
  /**
   * Watch a key or range. Resolves once the watch is registered; the iterable yields messages in revision
   * order and ends when `opts.signal` aborts. Errors (on the call or thrown by the iterator): `compacted`
   * with `details.compactRevision` when `fromRevision` <= the compact revision (never a silent gap,
   * docs/scenarios.md C05), `bad_request`, `unavailable` (watcher fell too far behind; resume from the last
   * revision seen + 1).
   */
  watch(req: WatchRequest, opts?: CallOptions): Promise<AsyncIterable<WatchMessage>>;
  /** Compact history up to and including `revision`. Errors: `compacted` (already), `future_revision`. */
  compact(revision: number, opts?: WriteOptions): Promise<CompactResult>;
  /** The cluster view of this node (never needs a leader). */
  cluster(opts?: CallOptions): Promise<ClusterView>;
  /** Add a learner (joint consensus, Raft thesis §4.2.1). Errors: `conflict` (id or URL exists), `bad_request`. */
  addLearner(id: string, peerUrl: string, clientUrl: string, opts?: CallOptions): Promise<ClusterView>;
  /**
   * Change a member's URLs without changing membership (etcd `member update`; a conf change entry with an
   * `update` step, so every replica records them). Members announce their own client URL this way after
   * joining. Errors: `not_found` (not a member), `bad_request`.
   */
  updateMember(id: string, peerUrl: string, clientUrl: string, opts?: CallOptions): Promise<ClusterView>;
  /** Promote a caught-up learner to voter. Errors: `not_found`, `bad_request` (not a learner), `unavailable` (not caught up). */
  promote(id: string, opts?: CallOptions): Promise<ClusterView>;
  /** Remove a member (the leader may remove itself: it hands off first, docs/scenarios.md C10). Errors: `not_found`. */
  remove(id: string, opts?: CallOptions): Promise<ClusterView>;
  /** Transfer leadership to `id` (TimeoutNow, Raft thesis §3.10). Errors: `not_found`, `bad_request` (learner). */
  transferLeader(id: string, opts?: CallOptions): Promise<ClusterView>;
  /** Liveness: the process serves requests. */
  health(): Promise<HealthStatus>;
  /** Readiness: member of a cluster with a known leader and applied up to its commit index. */
  readiness(): Promise<HealthStatus>;
  /** Prometheus text exposition (0.0.4) lines of the node's own metrics; appended to the API's. */
  metricsText(): Promise<string>;
}
