/**
 * STUB `KvService` for the API, SDK and CLI tests: an in-memory, single-node imitation of etcd KV semantics
 * (revisions, versions, leases, txn, watch history, compaction, sessions). It is NOT the real state machine;
 * it exists so the HTTP layer can be tested without Raft. Limitations: reads at an old revision return the
 * current state; lease TTLs never run down; watch progress is sent once when the history replay is done.
 * Hooks: `failNext` makes the next call reject with the given error (to test error mapping, retries).
 */
import { ApiError } from "../../src/api/errors.ts";
import type { CallOptions, ClusterView, HealthStatus, KvService, LeaseStatus, ServiceRangeResult, WatchMessage, WatchRequest, WriteOptions, ReadOptions } from "../../src/api/service.ts";
import { compareBytes, type Compare, type DeleteRangeRequest, type DeleteResult, type KeyValue, type PutRequest, type PutResult, type RangeRequest, type ResponseOp, type TxnRequest, type TxnResult, type WatchEvent } from "../../src/kv/types.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** In-memory stand-in for a node (see file header). */
export class StubKvService implements KvService {
  revNow = 0;
  /** The store revision (tests read it). */
  get rev(): number {
    return this.revNow;
  }
  compactRev = 0;
  private readonly kvs = new Map<string, KeyValue>();
  private readonly history: Array<{ revision: number; event: WatchEvent }> = [];
  private readonly leases = new Map<number, number>();
  private readonly sessions = new Map<string, { sequence: number; result: unknown }>();
  private readonly listeners = new Set<() => void>();
  private nextLeaseId = 7000;
  /** Calls seen, by method name, with their options (tests assert sessions and consistency). */
  readonly calls: Array<{ method: string; opts?: unknown }> = [];
  /** When set, the next call rejects with it (then it is cleared). */
  failNext: Error | undefined;
  /** Readiness answer. */
  ready = true;

  private enter(method: string, opts?: unknown): void {
    this.calls.push({ method, opts });
    const f = this.failNext;
    if (f) {
      this.failNext = undefined;
      throw f;
    }
  }

  private inRange(key: Uint8Array, start: Uint8Array, end: Uint8Array | undefined): boolean {
    if (!end || end.length === 0) return compareBytes(key, start) === 0;
    if (end.length === 1 && end[0] === 0) return compareBytes(key, start) >= 0;
    return compareBytes(key, start) >= 0 && compareBytes(key, end) < 0;
  }

  private checkRange(key: Uint8Array, end: Uint8Array | undefined): void {
    if (end && end.length > 0 && !(end.length === 1 && end[0] === 0) && compareBytes(key, end) >= 0) throw new ApiError("bad_request", "inverted range");
    if (key.length === 0 && !(end && end.length === 1 && end[0] === 0)) throw new ApiError("bad_request", "key must not be empty");
  }

  private sorted(key: Uint8Array, end: Uint8Array | undefined): KeyValue[] {
    return [...this.kvs.values()].filter((kv) => this.inRange(kv.key, key, end)).sort((a, b) => compareBytes(a.key, b.key));
  }

  private dedup<T>(opts: WriteOptions | undefined, run: () => T): T {
    const s = opts?.session;
    if (!s) return run();
    const prev = this.sessions.get(s.clientId);
    if (prev && prev.sequence === s.sequence) return prev.result as T;
    // The state machine's rules (src/kv/sessions.ts): an older sequence, or an unknown client past 1.
    if ((prev && s.sequence < prev.sequence) || (!prev && s.sequence > 1)) throw new ApiError("session_expired", "session expired; use a new client id");
    const result = run();
    this.sessions.set(s.clientId, { sequence: s.sequence, result });
    return result;
  }

  private emit(events: WatchEvent[]): void {
    for (const e of events) this.history.push({ revision: e.kv.modRevision, event: e });
    for (const l of this.listeners) l();
  }

  private doPut(r: PutRequest, rev: number, events: WatchEvent[]): PutResult {
    if (r.key.length === 0) throw new ApiError("bad_request", "key must not be empty");
    if (r.lease && !this.leases.has(r.lease)) throw new ApiError("lease_not_found", `lease ${r.lease} not found`);
    const k = hex(r.key);
    const prev = this.kvs.get(k);
    const kv: KeyValue = { key: r.key.slice(), value: r.value.slice(), createRevision: prev ? prev.createRevision : rev, modRevision: rev, version: (prev?.version ?? 0) + 1, lease: r.lease ?? 0 };
    this.kvs.set(k, kv);
    events.push({ type: "put", kv });
    return { op: "put", revision: rev, ...(r.prevKv && prev ? { prevKv: prev } : {}) };
  }

  private doDelete(r: DeleteRangeRequest, rev: number, events: WatchEvent[]): DeleteResult {
    this.checkRange(r.key, r.rangeEnd);
    const gone = this.sorted(r.key, r.rangeEnd);
    for (const kv of gone) {
      this.kvs.delete(hex(kv.key));
      events.push({ type: "delete", kv: { key: kv.key, value: new Uint8Array(0), createRevision: 0, modRevision: rev, version: 0, lease: 0 } });
    }
    return { op: "deleteRange", revision: gone.length ? rev : this.revNow, deleted: gone.length, ...(r.prevKv ? { prevKvs: gone } : {}) };
  }

  private doRange(r: RangeRequest): ServiceRangeResult {
    this.checkRange(r.key, r.rangeEnd);
    if (r.revision && r.revision > this.revNow) throw new ApiError("future_revision", `revision ${r.revision} is in the future`);
    if (r.revision && r.revision < this.compactRev) throw new ApiError("compacted", "compacted", { compactRevision: this.compactRev });
    const all = this.sorted(r.key, r.rangeEnd);
    const limited = r.limit ? all.slice(0, r.limit) : all;
    const kvs = r.countOnly ? [] : limited.map((kv) => (r.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv));
    return { op: "range", kvs, count: all.length, more: limited.length < all.length, revision: this.revNow };
  }

  private compareHolds(c: Compare): boolean {
    const kv = this.kvs.get(hex(c.key));
    if (c.target === "value") {
      if (!kv) return false;
      const d = compareBytes(kv.value, c.value);
      return c.result === "=" ? d === 0 : c.result === "!=" ? d !== 0 : c.result === "<" ? d < 0 : d > 0;
    }
    const field = kv ? kv[c.target] : 0;
    const v = c.value;
    return c.result === "=" ? field === v : c.result === "!=" ? field !== v : c.result === "<" ? field < v : field > v;
  }

  async put(req: PutRequest, opts?: WriteOptions): Promise<PutResult> {
    this.enter("put", opts);
    return this.dedup(opts, () => {
      const events: WatchEvent[] = [];
      const r = this.doPut(req, this.revNow + 1, events);
      this.revNow++;
      this.emit(events);
      return r;
    });
  }

  async deleteRange(req: DeleteRangeRequest, opts?: WriteOptions): Promise<DeleteResult> {
    this.enter("deleteRange", opts);
    return this.dedup(opts, () => {
      const events: WatchEvent[] = [];
      const r = this.doDelete(req, this.revNow + 1, events);
      if (events.length) this.revNow++;
      this.emit(events);
      return r;
    });
  }

  async txn(req: TxnRequest, opts?: WriteOptions): Promise<TxnResult> {
    this.enter("txn", opts);
    return this.dedup(opts, () => {
      const ok = req.compare.every((c) => this.compareHolds(c));
      const events: WatchEvent[] = [];
      const rev = this.revNow + 1;
      const responses: ResponseOp[] = [];
      for (const op of ok ? req.success : req.failure) {
        if (op.op === "put") responses.push(this.doPut(op, rev, events));
        else if (op.op === "deleteRange") responses.push(this.doDelete(op, rev, events));
        else if (op.op === "range") responses.push(this.doRange(op) as ResponseOp);
        else throw new ApiError("bad_request", "nested txn not supported by the stub");
      }
      if (events.length) this.revNow = rev;
      this.emit(events);
      return { op: "txn", succeeded: ok, responses, revision: this.revNow };
    });
  }

  async range(req: RangeRequest, opts?: ReadOptions): Promise<ServiceRangeResult> {
    this.enter("range", opts);
    const r = this.doRange(req);
    return opts?.consistency === "stale" ? { ...r, stale: { appliedIndex: this.revNow, stalenessMs: 42 } } : r;
  }

  async leaseGrant(req: { ttlSeconds: number; id?: number }, opts?: WriteOptions) {
    this.enter("leaseGrant", opts);
    const id = req.id ?? this.nextLeaseId++;
    if (this.leases.has(id)) throw new ApiError("conflict", `lease ${id} exists`);
    this.leases.set(id, req.ttlSeconds);
    return { op: "leaseGrant" as const, id, ttlSeconds: req.ttlSeconds, revision: this.revNow };
  }

  private leaseStatus(id: number, keys = false): LeaseStatus {
    const ttl = this.leases.get(id);
    if (ttl === undefined) throw new ApiError("lease_not_found", `lease ${id} not found`);
    const s: LeaseStatus = { id, ttlSeconds: ttl, grantedTtlSeconds: ttl };
    if (keys) s.keys = [...this.kvs.values()].filter((kv) => kv.lease === id).map((kv) => kv.key);
    return s;
  }

  async leaseKeepAlive(id: number, opts?: CallOptions): Promise<LeaseStatus> {
    this.enter("leaseKeepAlive", opts);
    return this.leaseStatus(id);
  }

  async leaseRevoke(id: number, opts?: WriteOptions) {
    this.enter("leaseRevoke", opts);
    this.leaseStatus(id);
    this.leases.delete(id);
    const events: WatchEvent[] = [];
    const rev = this.revNow + 1;
    let deleted = 0;
    for (const kv of [...this.kvs.values()].filter((k) => k.lease === id)) deleted += this.doDelete({ op: "deleteRange", key: kv.key }, rev, events).deleted;
    if (deleted) this.revNow = rev;
    this.emit(events);
    return { op: "leaseRevoke" as const, id, deleted, revision: this.revNow };
  }

  async leaseTimeToLive(id: number, opts?: ReadOptions & { keys?: boolean }): Promise<LeaseStatus> {
    this.enter("leaseTimeToLive", opts);
    return this.leaseStatus(id, opts?.keys);
  }

  async watch(req: WatchRequest, opts?: CallOptions): Promise<AsyncIterable<WatchMessage>> {
    this.enter("watch", opts);
    this.checkRange(req.key, req.rangeEnd);
    const from = req.fromRevision ?? this.revNow + 1;
    if (from < this.compactRev) throw new ApiError("compacted", `revision ${from} is compacted`, { compactRevision: this.compactRev });
    const signal = opts?.signal;
    const self = this;
    async function* gen(): AsyncGenerator<WatchMessage> {
      let next = from;
      let wake: (() => void) | undefined;
      const listener = () => wake?.();
      self.listeners.add(listener);
      const onAbort = () => wake?.();
      signal?.addEventListener("abort", onAbort);
      let sentProgress = false;
      try {
        // Bounded: ends when the signal aborts; each pass waits for a new event or the abort.
        while (!signal?.aborted) {
          const upTo = self.revNow;
          const events = self.history.filter((h) => h.revision >= next && h.revision <= upTo && self.inRange(h.event.kv.key, req.key, req.rangeEnd));
          if (events.length) {
            const last = events[events.length - 1].revision;
            yield { type: "events", revision: last, events: events.map((h) => h.event) };
          }
          next = upTo + 1;
          if (!sentProgress) {
            sentProgress = true;
            yield { type: "progress", revision: upTo };
          }
          if (self.revNow > upTo) continue;
          await new Promise<void>((r) => {
            wake = r;
            if (signal?.aborted) r();
          });
        }
      } finally {
        self.listeners.delete(listener);
        signal?.removeEventListener("abort", onAbort);
      }
    }
    return gen();
  }

  async compact(revision: number, opts?: WriteOptions) {
    this.enter("compact", opts);
    if (revision > this.revNow) throw new ApiError("future_revision", `revision ${revision} is in the future`);
    if (revision <= this.compactRev) throw new ApiError("compacted", "already compacted", { compactRevision: this.compactRev });
    this.compactRev = revision;
    return { op: "compact" as const, compactRevision: revision, revision: this.revNow };
  }

  private view(): ClusterView {
    return {
      clusterId: "stub-cluster",
      selfId: "n1",
      leaderId: "n1",
      term: 3,
      commitIndex: this.revNow,
      appliedIndex: this.revNow,
      revision: this.revNow,
      members: [{ id: "n1", role: "voter", clientUrl: "http://127.0.0.1:8080", peerUrl: "http://127.0.0.1:7000", status: "connected", isLeader: true }],
    };
  }

  async cluster(opts?: CallOptions): Promise<ClusterView> {
    this.enter("cluster", opts);
    return this.view();
  }
  async addLearner(id: string, peerUrl: string, clientUrl: string, opts?: CallOptions): Promise<ClusterView> {
    this.enter("addLearner", { ...opts, id, peerUrl, clientUrl });
    const v = this.view();
    v.members.push({ id, role: "learner", clientUrl, peerUrl, status: "connected", isLeader: false });
    return v;
  }
  async updateMember(id: string, peerUrl: string, clientUrl: string, opts?: CallOptions): Promise<ClusterView> {
    this.enter("updateMember", { ...opts, id, peerUrl, clientUrl });
    if (id !== "n1") throw new ApiError("not_found", `member ${id} not found`);
    const v = this.view();
    v.members[0] = { ...v.members[0], peerUrl, clientUrl };
    return v;
  }
  async promote(id: string, opts?: CallOptions): Promise<ClusterView> {
    this.enter("promote", { ...opts, id });
    return this.view();
  }
  async remove(id: string, opts?: CallOptions): Promise<ClusterView> {
    this.enter("remove", { ...opts, id });
    if (id !== "n1") throw new ApiError("not_found", `member ${id} not found`);
    return this.view();
  }
  async transferLeader(id: string, opts?: CallOptions): Promise<ClusterView> {
    this.enter("transferLeader", { ...opts, id });
    return this.view();
  }
  async health(): Promise<HealthStatus> {
    return { ok: true };
  }
  async readiness(): Promise<HealthStatus> {
    return this.ready ? { ok: true, details: { leaderId: "n1" } } : { ok: false, reason: "no leader" };
  }
  async metricsText(): Promise<string> {
    return "# TYPE edgekv_stub_up gauge\nedgekv_stub_up 1\n";
  }
}
