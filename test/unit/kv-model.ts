/**
 * A plain in-memory model of the KV state machine's semantics (etcd v3 rules as documented in docs/kv.md),
 * for property tests. It keeps the whole history (it never deletes on compaction, only refuses reads
 * below the compact revision), so it checks that the SQL compaction keeps everything a legal read needs.
 * Request shape/limit validation is shared with the real code (validateRequest) — it is tested on its own.
 */
import { validateRequest } from "../../src/kv/validate.ts";
import {
  DEFAULT_KV_LIMITS,
  KvError,
  compareBytes,
  type Bytes,
  type Compare,
  type KeyValue,
  type KvRequest,
  type KvResult,
  type RangeRequest,
  type RangeResult,
  type RequestOp,
  type ResponseOp,
  type WatchEvent,
} from "../../src/kv/types.ts";

const EMPTY = new Uint8Array(0);

function inRange(key: Bytes, k: Bytes, end: Bytes | undefined): boolean {
  if (end === undefined || end.length === 0) return compareBytes(key, k) === 0;
  if (compareBytes(key, k) < 0) return false;
  return (end.length === 1 && end[0] === 0) || compareBytes(key, end) < 0;
}

function checkRange(k: Bytes, end: Bytes | undefined): void {
  if (end === undefined || end.length === 0) {
    if (k.length === 0) throw new KvError("bad_request", "empty key");
  } else if (!(end.length === 1 && end[0] === 0) && compareBytes(end, k) <= 0) {
    throw new KvError("bad_request", "inverted");
  }
}

interface ModelEvent extends WatchEvent {
  revision: number;
}

/** The model. Every method mirrors KvStateMachine's. */
export class KvModel {
  revision = 0;
  compactRevision = 0;
  private live = new Map<string, KeyValue>();
  private history: ModelEvent[] = [];
  private leases = new Map<number, number>();

  private hex(k: Bytes): string {
    return Array.from(k, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  private sortedLive(): KeyValue[] {
    return [...this.live.values()].sort((a, b) => compareBytes(a.key, b.key));
  }

  /** State as of `rev` from the full history. */
  private stateAt(rev: number): KeyValue[] {
    const last = new Map<string, ModelEvent>();
    for (const e of this.history) if (e.revision <= rev) last.set(this.hex(e.kv.key), e);
    return [...last.values()].filter((e) => e.type === "put").map((e) => e.kv).sort((a, b) => compareBytes(a.key, b.key));
  }

  /** Applies one request: result or KvError (thrown), plus events. Rolls back on error. */
  apply(req: KvRequest): { result?: KvResult; error?: KvError; events: WatchEvent[] } {
    const saved = { revision: this.revision, live: new Map(this.live), history: [...this.history], leases: new Map(this.leases), c: this.compactRevision };
    const events: WatchEvent[] = [];
    try {
      validateRequest(req, DEFAULT_KV_LIMITS);
      const result = this.exec(req, events);
      return { result, events };
    } catch (e) {
      if (!(e instanceof KvError)) throw e;
      this.revision = saved.revision;
      this.live = saved.live;
      this.history = saved.history;
      this.leases = saved.leases;
      this.compactRevision = saved.c;
      return { error: e, events: [] };
    }
  }

  private exec(req: KvRequest, events: WatchEvent[]): KvResult {
    const rev = this.revision + 1;
    const before = this.revision;
    const write = (e: WatchEvent) => {
      events.push(e);
      this.history.push({ ...e, revision: rev });
    };
    const put = (op: Extract<RequestOp, { op: "put" }>) => {
      const lease = op.lease ?? 0;
      if (lease !== 0 && !this.leases.has(lease)) throw new KvError("lease_not_found", "");
      const prev = this.live.get(this.hex(op.key));
      const kv: KeyValue = { key: op.key, value: op.value, createRevision: prev ? prev.createRevision : rev, modRevision: rev, version: prev ? prev.version + 1 : 1, lease };
      this.live.set(this.hex(op.key), kv);
      write({ type: "put", kv });
      return { op: "put" as const, revision: rev, ...(op.prevKv && prev ? { prevKv: prev } : {}) };
    };
    const delKey = (key: Bytes) => {
      this.live.delete(this.hex(key));
      write({ type: "delete", kv: { key, value: EMPTY, createRevision: 0, modRevision: rev, version: 0, lease: 0 } });
    };
    const del = (op: Extract<RequestOp, { op: "deleteRange" }>) => {
      const victims = this.sortedLive().filter((kv) => inRange(kv.key, op.key, op.rangeEnd));
      for (const kv of victims) delKey(kv.key);
      return { op: "deleteRange" as const, revision: rev, deleted: victims.length, ...(op.prevKv ? { prevKvs: victims } : {}) };
    };
    const holds = (c: Compare) => {
      const kvs = this.sortedLive().filter((kv) => inRange(kv.key, c.key, c.rangeEnd));
      const cmp = (kv: KeyValue) => (c.target === "value" ? compareBytes(kv.value, c.value) : kv[c.target] - c.value);
      const ok = (n: number) => (c.result === "=" ? n === 0 : c.result === "!=" ? n !== 0 : c.result === "<" ? n < 0 : n > 0);
      if (kvs.length === 0) return c.target !== "value" && ok(cmp({ key: EMPTY, value: EMPTY, createRevision: 0, modRevision: 0, version: 0, lease: 0 }));
      return kvs.every((kv) => ok(cmp(kv)));
    };
    const txn = (op: Extract<RequestOp, { op: "txn" }>): ResponseOp => {
      const succeeded = op.compare.every(holds);
      const responses: ResponseOp[] = [];
      for (const o of succeeded ? op.success : op.failure) {
        if (o.op === "put") responses.push(put(o));
        else if (o.op === "deleteRange") responses.push(del(o));
        else if (o.op === "txn") responses.push(txn(o));
        else responses.push(this.read(o, before, true));
      }
      return { op: "txn", succeeded, responses, revision: rev };
    };
    let result: KvResult;
    const dropLease = (id: number) => {
      const keys = this.sortedLive().filter((kv) => kv.lease === id);
      for (const kv of keys) delKey(kv.key);
      this.leases.delete(id);
      return keys.length;
    };
    switch (req.op) {
      case "put":
        result = put(req);
        break;
      case "deleteRange":
        result = del(req);
        break;
      case "txn":
        result = txn(req) as KvResult;
        break;
      case "leaseGrant":
        if (this.leases.has(req.id)) throw new KvError("lease_exists", "");
        this.leases.set(req.id, req.ttlSeconds);
        result = { op: "leaseGrant", id: req.id, ttlSeconds: req.ttlSeconds, revision: 0 };
        break;
      case "leaseRevoke":
        if (!this.leases.has(req.id)) throw new KvError("lease_not_found", "");
        result = { op: "leaseRevoke", id: req.id, deleted: dropLease(req.id), revision: 0 };
        break;
      case "leaseExpire": {
        const expired = [...new Set(req.ids)].sort((a, b) => a - b).filter((id) => this.leases.has(id));
        let deleted = 0;
        for (const id of expired) deleted += dropLease(id);
        result = { op: "leaseExpire", expired, deleted, revision: 0 };
        break;
      }
      case "compact":
        if (req.revision <= this.compactRevision) throw new KvError("compacted", "", { compactRevision: this.compactRevision });
        if (req.revision > this.revision) throw new KvError("future_revision", "");
        this.compactRevision = req.revision;
        return { op: "compact", compactRevision: req.revision, revision: this.revision };
    }
    if (events.length > 0) this.revision = rev;
    stamp(result, this.revision);
    return result;
  }

  /** A range read (see KvStateMachine.range); `pending` = inside a txn whose writes are in the live map. */
  read(req: RangeRequest, storeRevision = this.revision, pending = false): RangeResult {
    checkRange(req.key, req.rangeEnd);
    const rev = req.revision ?? 0;
    if (rev > storeRevision) throw new KvError("future_revision", "");
    if (rev > 0 && rev < this.compactRevision) throw new KvError("compacted", "", { compactRevision: this.compactRevision });
    const all = (rev === 0 || (rev === storeRevision && !pending) ? this.sortedLive() : this.stateAt(rev)).filter((kv) => inRange(kv.key, req.key, req.rangeEnd));
    const limit = req.limit ?? 0;
    const page = req.countOnly ? [] : limit > 0 ? all.slice(0, limit) : all;
    const kvs = req.keysOnly ? page.map((kv) => ({ ...kv, value: EMPTY })) : page;
    return { op: "range", kvs, count: all.length, more: !req.countOnly && all.length > kvs.length, revision: storeRevision };
  }

  /** All events with revision >= from in the range (no paging), or KvError compacted. */
  eventsSince(from: number, key: Bytes, rangeEnd: Bytes | undefined): WatchEvent[] {
    checkRange(key, rangeEnd);
    const f = Math.max(1, from);
    if (f < this.compactRevision) throw new KvError("compacted", "", { compactRevision: this.compactRevision });
    return this.history.filter((e) => e.revision >= f && inRange(e.kv.key, key, rangeEnd)).map((e) => ({ type: e.type, kv: e.kv }));
  }
}

function stamp(r: KvResult | ResponseOp, revision: number): void {
  r.revision = revision;
  if (r.op === "txn") for (const x of r.responses) stamp(x, revision);
}
