/**
 * Request and result types of the replicated KV state machine (etcd v3 semantics; deviations in
 * docs/kv.md). Pure: no runtime imports.
 *
 * Keys and values are `Uint8Array`; keys sort by unsigned byte order (SQLite BLOB memcmp order, the same
 * order etcd uses). Range conventions (etcd v3 `RangeRequest`):
 * - `rangeEnd` absent (or empty) = the single key `key`;
 * - `rangeEnd` = `[0]` ("\0") = every key >= `key` (with an empty `key`: every key);
 * - otherwise the half-open interval [key, rangeEnd); `rangeEnd <= key` is a `bad_request` (scenario C21:
 *   an inverted or empty range is an error, not an empty success);
 * - a prefix p is the range [p, prefixEnd(p)).
 *
 * Revisions, versions and lease ids are non-negative safe integers (below 2^53; etcd uses int64, we stay in
 * what a JS number holds exactly). Lease id 0 means "no lease".
 */

/** Byte string: a key or a value. */
export type Bytes = Uint8Array;

/** Write `value` at `key` (etcd PutRequest). `lease` 0/absent = detach from any lease. */
export interface PutRequest {
  op: "put";
  key: Bytes;
  value: Bytes;
  /** Lease to attach the key to; must exist at apply time, else `lease_not_found` (scenario C08). */
  lease?: number;
  /** Return the key's previous KeyValue, if any, in `PutResult.prevKv`. */
  prevKv?: boolean;
}

/** Delete every key in the range (etcd DeleteRangeRequest). Deleting nothing does not bump the revision. */
export interface DeleteRangeRequest {
  op: "deleteRange";
  key: Bytes;
  rangeEnd?: Bytes;
  /** Return the deleted KeyValues in `DeleteResult.prevKvs`. */
  prevKv?: boolean;
}

/**
 * Read a range (etcd RangeRequest). Not proposed through Raft: served from applied state. Results are
 * sorted by key ascending.
 */
export interface RangeRequest {
  key: Bytes;
  rangeEnd?: Bytes;
  /** At most this many kvs; 0/absent = no limit. `RangeResult.more` tells whether more keys matched. */
  limit?: number;
  /** Read the state as of this revision; 0/absent = current. Below the compact revision -> `compacted`. */
  revision?: number;
  /** Return only `count` (kvs empty). */
  countOnly?: boolean;
  /** Return kvs with empty values. */
  keysOnly?: boolean;
}

/** A range read used inside a txn. */
export interface RangeOp extends RangeRequest {
  op: "range";
}

/** What a compare looks at (etcd Compare.CompareTarget). */
export type CompareTarget = "value" | "version" | "createRevision" | "modRevision" | "lease";

/** How a compare compares (etcd Compare.CompareResult): the key's field `result` the given value. */
export type CompareResult = "=" | "!=" | "<" | ">";

/**
 * One txn condition (etcd Compare). With a range (`rangeEnd`), every key in it must satisfy the condition.
 * A missing key compares as a zero KeyValue (version, revisions and lease 0), except that a `value` compare
 * on a missing key is always false (etcd txn.go applyCompare). Values compare by unsigned bytes.
 */
export type Compare =
  | { key: Bytes; rangeEnd?: Bytes; target: "value"; result: CompareResult; value: Bytes }
  | { key: Bytes; rangeEnd?: Bytes; target: "version" | "createRevision" | "modRevision" | "lease"; result: CompareResult; value: number };

/** An operation inside a txn branch. Nested txns are allowed (etcd v3.3+). */
export type RequestOp = PutRequest | DeleteRangeRequest | RangeOp | TxnRequest;

/**
 * Atomic conditional multi-op (etcd TxnRequest): if every compare holds, run `success`, else `failure`.
 * The whole txn bumps the revision at most once (not at all if it writes nothing). Limits: each of
 * `compare`, `success`, `failure` at most `maxTxnOps` entries (`too_many_ops`); within a txn a key may be
 * written at most once (`duplicate_key_in_txn`, see docs/kv.md for the exact rule, scenario C21).
 */
export interface TxnRequest {
  op: "txn";
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

/** Create a lease. The proposer picks `id` (> 0) so that apply is deterministic on every replica. */
export interface LeaseGrantRequest {
  op: "leaseGrant";
  id: number;
  /** Granted TTL in seconds, integer >= 1. */
  ttlSeconds: number;
}

/** Delete a lease and every key attached to it (one revision, delete events). Unknown id -> `lease_not_found`. */
export interface LeaseRevokeRequest {
  op: "leaseRevoke";
  id: number;
}

/**
 * Expire leases (proposed by the leader's Lessor, never decided by a follower's clock). Same effect as a
 * revoke of each id, all in ONE revision; ids no longer present are ignored (a retried proposal is harmless).
 */
export interface LeaseExpireRequest {
  op: "leaseExpire";
  ids: number[];
}

/** Compact the history up to `revision` (etcd Compaction): reads and watches below it get `compacted`. */
export interface CompactRequest {
  op: "compact";
  revision: number;
}

/** Every request that goes through the Raft log. */
export type KvRequest =
  | PutRequest
  | DeleteRangeRequest
  | TxnRequest
  | LeaseGrantRequest
  | LeaseRevokeRequest
  | LeaseExpireRequest
  | CompactRequest;

/**
 * Client session of a command (Raft thesis §6.3): a `(clientId, sequence)` pair already applied returns its
 * stored result instead of applying again. Sequences are positive integers, increasing per client; a new
 * client starts at 1. A client whose session was evicted gets `session_expired` and must pick a new clientId.
 */
export interface Session {
  clientId: string;
  sequence: number;
}

/** The envelope carried in a normal Raft entry's `data` (encoded by src/codec; decoded by KvOptions.decode). */
export interface Command {
  request: KvRequest;
  session?: Session;
  /**
   * Answer cap of a txn or `prevKv` delete, bytes (key + value + 64 per key, src/kv/answer-size.ts): the
   * proposing node's maxResponseBytes, set only when the answer could exceed it. Apply fails the request
   * with `response_too_large` and applies nothing when its reads, measured on the state it applies to,
   * pass it. Carried in the entry so every replica answers the same; absent (older entries) = no cap.
   */
  maxAnswerBytes?: number;
}

/** A key's state (etcd mvccpb.KeyValue). A deleted key's KeyValue in a delete event has only key and modRevision. */
export interface KeyValue {
  key: Bytes;
  value: Bytes;
  /** Revision of the put that created the key (since its last delete). */
  createRevision: number;
  /** Revision of the last write of the key. */
  modRevision: number;
  /** 1 on create, +1 per put; 0 for a deleted key. */
  version: number;
  /** Attached lease id, 0 = none. */
  lease: number;
}

/** Result of a put. `revision` = the store revision after the write. */
export interface PutResult {
  op: "put";
  revision: number;
  prevKv?: KeyValue;
}

/** Result of a deleteRange. `deleted` = number of keys removed. */
export interface DeleteResult {
  op: "deleteRange";
  revision: number;
  deleted: number;
  prevKvs?: KeyValue[];
}

/** Result of a range read. `revision` = the store's current revision (as etcd's header), `count` ignores `limit`. */
export interface RangeResult {
  op: "range";
  kvs: KeyValue[];
  count: number;
  more: boolean;
  revision: number;
}

/** Result of one txn op, in the order of the executed branch. */
export type ResponseOp = PutResult | DeleteResult | RangeResult | TxnResult;

/** Result of a txn. `revision` = store revision after the txn (unchanged when it wrote nothing). */
export interface TxnResult {
  op: "txn";
  succeeded: boolean;
  responses: ResponseOp[];
  revision: number;
}

/** Result of a lease grant. */
export interface LeaseGrantResult {
  op: "leaseGrant";
  id: number;
  ttlSeconds: number;
  revision: number;
}

/** Result of a lease revoke: keys deleted with it. */
export interface LeaseRevokeResult {
  op: "leaseRevoke";
  id: number;
  deleted: number;
  revision: number;
}

/** Result of a lease expiry: the ids that still existed and were expired, and keys deleted. */
export interface LeaseExpireResult {
  op: "leaseExpire";
  expired: number[];
  deleted: number;
  revision: number;
}

/** Result of a compaction. */
export interface CompactResult {
  op: "compact";
  compactRevision: number;
  revision: number;
}

/** Result of any proposed request. */
export type KvResult = PutResult | DeleteResult | TxnResult | LeaseGrantResult | LeaseRevokeResult | LeaseExpireResult | CompactResult;

/** Read-only lease info from applied state (the remaining TTL comes from the leader's Lessor). */
export interface LeaseInfo {
  id: number;
  /** Granted TTL in seconds. */
  ttlSeconds: number;
  /** Attached keys, sorted (only when asked for). */
  keys?: Bytes[];
}

/** A watch event: one key changed at `kv.modRevision`. For a delete, `kv` has the key, modRevision = the delete's revision, and zero elsewhere (etcd). */
export interface WatchEvent {
  type: "put" | "delete";
  kv: KeyValue;
}

/** Stable error codes of the state machine (mapped to HTTP errors by src/api). */
export type KvErrorCode =
  | "lease_not_found"
  | "lease_exists"
  | "compacted"
  | "future_revision"
  | "key_too_large"
  | "value_too_large"
  | "too_many_ops"
  | "bad_request"
  | "duplicate_key_in_txn"
  | "session_expired"
  /**
   * A read's answer is above the node's maxResponseBytes (answer-size.ts): raised before a range reads or a
   * txn / prevKv delete is proposed, and at apply against the command's maxAnswerBytes (nothing applied).
   */
  | "response_too_large";

/**
 * A deterministic request error: every replica reaches the same one, so apply reports it as the entry's
 * result (never throws it out of applyEntries). `compactRevision` is set with code `compacted` (the oldest
 * revision still readable/watchable, scenario C05).
 */
export class KvError extends Error {
  readonly compactRevision?: number;
  constructor(
    readonly code: KvErrorCode,
    message: string,
    details?: { compactRevision?: number },
  ) {
    super(message);
    this.name = "KvError";
    if (details?.compactRevision !== undefined) this.compactRevision = details.compactRevision;
  }
}

/** Size and count limits, checked by the API before proposing and again at apply (deterministic). */
export interface KvLimits {
  /** Max key length in bytes. Default 4096. */
  maxKeyBytes: number;
  /** Max value length in bytes. Default 1 MiB. */
  maxValueBytes: number;
  /** Max entries in each of a txn's compare/success/failure lists (etcd --max-txn-ops). Default 128. */
  maxTxnOps: number;
  /** Max lease TTL in seconds (etcd MaxLeaseTTL). Default 9_000_000_000. */
  maxLeaseTtlSeconds: number;
  /** Max live client sessions; past it the least recently used (by applied index) is evicted. Default 10000. */
  maxSessions: number;
  /** A session unused for this many applied entries expires (deterministic, not wall clock). Default 1_000_000. */
  sessionTtlEntries: number;
}

/** Default limits (etcd defaults where etcd has one). */
export const DEFAULT_KV_LIMITS: KvLimits = {
  maxKeyBytes: 4096,
  maxValueBytes: 1024 * 1024,
  maxTxnOps: 128,
  maxLeaseTtlSeconds: 9_000_000_000,
  maxSessions: 10_000,
  sessionTtlEntries: 1_000_000,
};

/** Options of KvStateMachine: limits plus the command decoder the node injects (encoding lives in src/codec). */
export interface KvOptions {
  limits?: Partial<KvLimits>;
  /** Decodes a normal entry's data into a Command; a throw is reported as that entry's `bad_request`. */
  decode(data: Uint8Array): Command;
}

/** The one-past-the-end of the prefix `key` (etcd clientv3.GetPrefixRangeEnd): [0] ("every key") when no byte can be incremented. */
export function prefixEnd(key: Bytes): Bytes {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i] < 0xff) {
      const end = key.slice(0, i + 1);
      end[i] = key[i] + 1;
      return end;
    }
  }
  return new Uint8Array([0]);
}

/** Unsigned lexicographic byte comparison (memcmp order): negative, 0 or positive. */
export function compareBytes(a: Bytes, b: Bytes): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
