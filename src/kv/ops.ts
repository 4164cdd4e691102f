/**
 * The write and read operations of one applied request (etcd v3 mvcc semantics). A `Writer` carries the
 * revision the request will get if it writes anything (store revision + 1) and a `sub` counter ordering
 * the events of that revision; the caller commits the revision only when `wrote` is true, so a txn bumps
 * the revision once and a request that changes nothing does not bump it at all.
 */
import { resolveRange, type KvStore } from "./store.ts";
import { validateRangeRequest } from "./validate.ts";
import {
  KvError,
  compareBytes,
  type Bytes,
  type Compare,
  type DeleteRangeRequest,
  type DeleteResult,
  type KeyValue,
  type KvLimits,
  type PutRequest,
  type PutResult,
  type RangeRequest,
  type RangeResult,
  type ResponseOp,
  type TxnRequest,
  type TxnResult,
  type WatchEvent,
} from "./types.ts";

/**
 * Reads a range. `storeRevision` is the committed store revision (undefined: read it from the store);
 * `liveIncludesPending` says whether the live table already holds uncommitted writes of a txn being
 * applied (then a read at revision 0 sees them, as etcd's txn reads do). Errors: `compacted` (revision
 * below the compact revision, with compactRevision), `future_revision` (above `storeRevision`),
 * `bad_request`/`key_too_large` (shape). `RangeResult.revision` is `storeRevision` (the caller of a txn
 * rewrites it to the txn's revision).
 *
 * A single key at the current revision (the common `GET /v1/kv/{key}`) takes a fast path: one statement
 * reads the key and the store revision together (KvStore.pointNow); the result is the same as the general
 * path's (count 0 or 1, `more` false, no compaction check at revision 0).
 */
export function readRange(store: KvStore, req: RangeRequest, limits: KvLimits, storeRevision?: number, liveIncludesPending = false): RangeResult {
  const range = validateRangeRequest(req, limits);
  const limit = req.limit ?? 0;
  const rev = req.revision ?? 0;
  const keysOnly = req.keysOnly === true;
  if (storeRevision === undefined) {
    if (rev === 0 && range.kind === "single") {
      const { revision, kv } = store.pointNow(range.key, keysOnly);
      return { op: "range", kvs: kv && !req.countOnly ? [kv] : [], count: kv ? 1 : 0, more: false, revision };
    }
    storeRevision = store.revision();
  }
  if (rev > storeRevision) throw new KvError("future_revision", `revision ${rev} is in the future (current ${storeRevision})`);
  if (rev > 0) {
    const compactRevision = store.compactRevision();
    if (rev < compactRevision) throw new KvError("compacted", `revision ${rev} is compacted; the earliest available is ${compactRevision}`, { compactRevision });
  }
  // A read at the current revision is the live table; only older reads need history.
  const live = rev === 0 || (rev === storeRevision && !liveIncludesPending);
  const { kvs, count } = live
    ? { kvs: req.countOnly ? [] : store.rangeCurrent(range, limit, keysOnly), count: store.countCurrent(range) }
    : store.rangeAt(range, rev, limit, keysOnly, req.countOnly === true);
  const more = !req.countOnly && count > kvs.length;
  return { op: "range", kvs, count, more, revision: storeRevision };
}

function holds(result: Compare["result"], cmp: number): boolean {
  switch (result) {
    case "=":
      return cmp === 0;
    case "!=":
      return cmp !== 0;
    case "<":
      return cmp < 0;
    case ">":
      return cmp > 0;
  }
}

/** Compares one KeyValue's field with the compare's value (negative/0/positive). */
function compareField(c: Compare, kv: KeyValue): number {
  if (c.target === "value") return compareBytes(kv.value, c.value);
  return kv[c.target] - c.value;
}

const ZERO_KV: KeyValue = { key: new Uint8Array(0), value: new Uint8Array(0), createRevision: 0, modRevision: 0, version: 0, lease: 0 };

/**
 * Evaluates one txn compare against the live table (etcd txn.go applyCompare): every key in the range must
 * satisfy it; no key at all compares as a zero KeyValue, except a value compare, which is then false.
 */
export function compareHolds(store: KvStore, c: Compare): boolean {
  const kvs = store.rangeCurrent(resolveRange(c.key, c.rangeEnd), 0, c.target !== "value");
  if (kvs.length === 0) return c.target === "value" ? false : holds(c.result, compareField(c, ZERO_KV));
  return kvs.every((kv) => holds(c.result, compareField(c, kv)));
}

/**
 * Sees each read of a request just before it runs (answer-size.ts AnswerBudget implements it): a txn's
 * range ops with the committed `storeRevision`, a `prevKv` delete as the range it deletes and a `prevKv`
 * put as its one key (revision 0, the live table: what the previous KeyValues are read from). It throws a KvError to fail the request before the read loads anything.
 */
export interface AnswerMeter {
  beforeRead(req: RangeRequest, storeRevision: number): void;
}

/** Applies writes at revision `rev` (= store revision + 1); see the file comment. */
export class Writer {
  /** Next sub-revision; > 0 once anything was written. */
  sub = 0;
  readonly events: WatchEvent[] = [];

  constructor(
    private readonly store: KvStore,
    readonly rev: number,
    private readonly limits: KvLimits,
    private readonly leaseExists: (id: number) => boolean,
    /** Apply-time answer cap of the request (Command.maxAnswerBytes); absent = no cap (older entries). */
    private readonly meter?: AnswerMeter,
  ) {}

  get wrote(): boolean {
    return this.sub > 0;
  }

  /** etcd put: version 1 on create else +1, createRevision kept; unknown lease -> `lease_not_found` (C08). */
  put(req: PutRequest): PutResult {
    const lease = req.lease ?? 0;
    if (lease !== 0 && !this.leaseExists(lease)) throw new KvError("lease_not_found", `lease ${lease} not found`);
    if (req.prevKv) this.meter?.beforeRead({ key: req.key }, this.rev - 1);
    // The previous key is read only when the answer carries it; the write itself knows the version rule.
    const prev = req.prevKv ? this.store.getKey(req.key) : undefined;
    const kv = this.store.putKey(req.key, req.value, this.rev, lease, this.sub++);
    this.events.push({ type: "put", kv });
    const result: PutResult = { op: "put", revision: this.rev };
    if (req.prevKv && prev) result.prevKv = prev;
    return result;
  }

  /** Deletes one live key whose mod revision is `modRevision` (caller read it), recording its delete event. */
  deleteKey(key: Bytes, modRevision: number): void {
    this.store.removeKey(key, modRevision, this.rev, this.sub++);
    this.events.push({ type: "delete", kv: { key, value: new Uint8Array(0), createRevision: 0, modRevision: this.rev, version: 0, lease: 0 } });
  }

  /** etcd deleteRange: removes every live key in the range (sorted order of events). */
  deleteRange(req: DeleteRangeRequest): DeleteResult {
    if (req.prevKv) this.meter?.beforeRead({ key: req.key, rangeEnd: req.rangeEnd }, this.rev - 1);
    const victims = this.store.rangeCurrent(resolveRange(req.key, req.rangeEnd), 0, !req.prevKv);
    for (const kv of victims) this.deleteKey(kv.key, kv.modRevision);
    const result: DeleteResult = { op: "deleteRange", revision: this.rev, deleted: victims.length };
    if (req.prevKv) result.prevKvs = victims;
    return result;
  }

  /**
   * etcd txn: compares on the live table (including writes of earlier ops of an enclosing txn), then the
   * chosen branch in order; a range op sees the writes of earlier ops. Revisions in results are fixed by
   * the caller (`stampRevision`).
   */
  txn(req: TxnRequest, storeRevision: number): TxnResult {
    const succeeded = req.compare.every((c) => compareHolds(this.store, c));
    const responses: ResponseOp[] = [];
    for (const op of succeeded ? req.success : req.failure) {
      if (op.op === "put") responses.push(this.put(op));
      else if (op.op === "deleteRange") responses.push(this.deleteRange(op));
      else if (op.op === "txn") responses.push(this.txn(op, storeRevision));
      else {
        this.meter?.beforeRead(op, storeRevision);
        responses.push(readRange(this.store, op, this.limits, storeRevision, true));
      }
    }
    return { op: "txn", succeeded, responses, revision: this.rev };
  }
}

/**
 * Sets `revision` of a result and of every nested response to the request's final revision (etcd reports
 * the store revision after the request; all ops of a txn share it).
 */
export function stampRevision(r: ResponseOp, revision: number): void {
  r.revision = revision;
  if (r.op === "txn") for (const x of r.responses) stampRevision(x, revision);
}
