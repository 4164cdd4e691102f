/**
 * The service port: what the HTTP API (`app.ts`) needs from a node. `src/server/node.ts` implements
 * `KvService` (forwarding writes to the leader, ReadIndex for linearizable reads, ...); tests implement it
 * over the KV state machine directly. Semantics follow etcd's KV/lease/watch API (revisions, versions,
 * leases, compaction) as summarised in DESIGN.md "The state machine".
 *
 * Shapes: keys and values are bytes (`Uint8Array`); revisions, versions and indexes are non-negative
 * integers (`number`, below 2^53); lease ids are positive integers (`number`, 1..2^53-1, 0 = no lease);
 * durations carry their unit in the name. Every method rejects with `ApiError` (errors.ts) only; the
 * codes each method may use are listed on it, and any method may also reject with `timeout` (deadline or
 * `signal` aborted before the request was proposed), `outcome_unknown` (aborted after proposing: it may
 * or may not have applied), `not_leader` / `no_leader` / `not_member` / `unavailable` (with
 * `Retry-After`), `too_many_requests` (queue full) and `internal`.
 */

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

/** A stored key with its metadata (etcd mvccpb.KeyValue). */
export interface KeyValue {
  key: Uint8Array;
  /** Empty when the read was `keysOnly`. */
  value: Uint8Array;
  /** Revision of the put that created the key (since its last delete). */
  createRevision: number;
  /** Revision of the last put to the key. */
  modRevision: number;
  /** Number of puts since creation (1 after the first put). */
  version: number;
  /** Lease id the key is attached to, 0 for none. */
  lease: number;
}

/** Put `value` at `key`, optionally attached to `lease` (which must exist: else `lease_not_found`). */
export interface PutRequest {
  key: Uint8Array;
  value: Uint8Array;
  /** Lease id; 0 or absent = no lease. */
  lease?: number;
  /** Return the previous key-value in `prevKv`. */
  prevKv?: boolean;
}

/** Delete `key`, or the range [key, rangeEnd) when `rangeEnd` is given (empty `rangeEnd` = open end: every key >= key). */
export interface DeleteRangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  prevKv?: boolean;
}

/**
 * Read `key`, or [key, rangeEnd) when `rangeEnd` is given (empty `rangeEnd` = every key >= key), at
 * `revision` (0/absent = latest). Keys come back in ascending byte order.
 */
export interface RangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** At most this many kvs (0/absent = no limit); `more` tells whether some were left out. */
  limit?: number;
  revision?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
}

/** A compare of a txn (etcd Compare): `target` of `key` compared with `result` against the given value. */
export interface Compare {
  key: Uint8Array;
  target: "value" | "version" | "createRevision" | "modRevision" | "lease";
  result: "equal" | "notEqual" | "greater" | "less";
  /** Bytes for target "value"; a number for the others (0 = absent key / no lease). */
  value: Uint8Array | number;
}

/** One operation inside a txn. */
export type TxnOp =
  | ({ op: "put" } & PutRequest)
  | ({ op: "delete" } & DeleteRangeRequest)
  | ({ op: "range" } & RangeRequest);

/** etcd txn semantics: if every compare holds, run `success` in order, else `failure`; all at one revision. */
export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure: TxnOp[];
}

/** Header of every result: the store revision after (writes) or at (reads) the operation. */
export interface ResultHeader {
  revision: number;
}

/** Result of a put. */
export interface PutResult extends ResultHeader {
  prevKv?: KeyValue;
}

/** Result of a delete: how many keys were removed. */
export interface DeleteRangeResult extends ResultHeader {
  deleted: number;
  prevKvs?: KeyValue[];
}

/** What a stale (local) read adds: how far behind it may be. */
export interface StaleInfo {
  /** The node's applied Raft index when the read was served. */
  appliedIndex: number;
  /** Ms since this node last heard from a leader; null if never. */
  stalenessMs: number | null;
}

/** Result of a range read. */
export interface RangeResult extends ResultHeader {
  kvs: KeyValue[];
  /** Number of keys in the range (ignores `limit`). */
  count: number;
  /** True when `limit` left keys out. */
  more: boolean;
  /** Present on `stale` reads. */
  stale?: StaleInfo;
}

/** One txn op's result, in the order of the ops run. */
export type TxnOpResult =
  | ({ op: "put" } & PutResult)
  | ({ op: "delete" } & DeleteRangeResult)
  | ({ op: "range" } & RangeResult);

/** Result of a txn. */
export interface TxnResult extends ResultHeader {
  succeeded: boolean;
  responses: TxnOpResult[];
}

/** A lease with its TTL. */
export interface LeaseInfo {
  id: number;
  /** TTL granted, seconds. */
  grantedTtlSec: number;
  /** Seconds left before expiry (as seen by the leader); -1 when expired/unknown. */
  ttlSec: number;
  /** Keys attached (only from `leaseTimeToLive` with `keys: true`). */
  keys?: Uint8Array[];
}

/** One change seen by a watch (etcd mvccpb.Event). */
export interface WatchEvent {
  type: "put" | "delete";
  /** For deletes: key with modRevision = the delete's revision and empty value. */
  kv: KeyValue;
  prevKv?: KeyValue;
}

/**
 * A watch message: a batch of events of one or more revisions (ascending), or a progress notification
 * saying every event up to `revision` has been delivered.
 */
export type WatchMessage = { type: "events"; revision: number; events: WatchEvent[] } | { type: "progress"; revision: number };

/** What to watch: `key`, or [key, rangeEnd) (empty `rangeEnd` = every key >= key). */
export interface WatchRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** First revision to deliver; absent = changes after the current revision. */
  fromRevision?: number;
  prevKv?: boolean;
  /** Send a progress message after this many ms without events (default: implementation's). */
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
  /** Why not ok/ready (e.g. "no leader", "catching up"). */
  reason?: string;
  /** Free-form details shown in the JSON (e.g. leaderId, appliedIndex). */
  details?: Record<string, string | number | boolean>;
}

/**
 * The node as the client API sees it. All methods are async and reject with `ApiError` only (see file
 * header for codes any method may use; method docs list the others).
 */
export interface KvService {
  /** Put a key. Errors: `lease_not_found`, `payload_too_large`, `bad_request` (empty key). */
  put(req: PutRequest, opts?: WriteOptions): Promise<PutResult>;
  /** Delete a key or range. Errors: `bad_request` (empty key, start >= end). */
  deleteRange(req: DeleteRangeRequest, opts?: WriteOptions): Promise<DeleteRangeResult>;
  /** Run a txn; a false compare is NOT an error (`succeeded: false`). Errors: `bad_request`, `lease_not_found`, `compacted`. */
  txn(req: TxnRequest, opts?: WriteOptions): Promise<TxnResult>;
  /** Read. Errors: `bad_request`, `compacted` (revision below the compact revision), `future_revision`. */
  range(req: RangeRequest, opts?: ReadOptions): Promise<RangeResult>;
  /** Grant a lease of `ttlSec` seconds (id 0/absent = server-chosen). Errors: `bad_request` (ttl < 1), `conflict` (id exists). */
  leaseGrant(req: { ttlSec: number; id?: number }, opts?: WriteOptions): Promise<LeaseInfo>;
  /** Renew a lease to its full TTL. Errors: `lease_not_found`. */
  leaseKeepAlive(id: number, opts?: CallOptions): Promise<LeaseInfo>;
  /** Revoke a lease, deleting its keys atomically. Errors: `lease_not_found`. */
  leaseRevoke(id: number, opts?: WriteOptions): Promise<ResultHeader>;
  /** Remaining TTL of a lease, optionally with its keys. Errors: `lease_not_found`. */
  leaseTimeToLive(id: number, opts?: ReadOptions & { keys?: boolean }): Promise<LeaseInfo>;
  /**
   * Watch a key or range. Resolves once the watch is registered; the iterable yields messages in revision
   * order and ends when `opts.signal` aborts. Errors (on the call or thrown by the iterator): `compacted`
   * with `details.compactRevision` when `fromRevision` <= the compact revision (never a silent gap,
   * SCENARIOS.md C05), `bad_request`, `unavailable` (watcher fell too far behind; resume from the last
   * revision seen + 1).
   */
  watch(req: WatchRequest, opts?: CallOptions): Promise<AsyncIterable<WatchMessage>>;
  /** Compact history up to and including `revision`. Errors: `compacted` (already), `future_revision`. */
  compact(revision: number, opts?: WriteOptions): Promise<ResultHeader>;
  /** The cluster view of this node (never needs a leader). */
  cluster(opts?: CallOptions): Promise<ClusterView>;
  /** Add a learner (joint consensus, Raft thesis §4.2.1). Errors: `conflict` (id or URL exists), `bad_request`. */
  addLearner(id: string, peerUrl: string, clientUrl: string, opts?: CallOptions): Promise<ClusterView>;
  /** Promote a caught-up learner to voter. Errors: `not_found`, `bad_request` (not a learner), `unavailable` (not caught up). */
  promote(id: string, opts?: CallOptions): Promise<ClusterView>;
  /** Remove a member (the leader may remove itself: it hands off first, SCENARIOS.md C10). Errors: `not_found`. */
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
