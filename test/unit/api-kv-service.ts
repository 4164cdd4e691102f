/**
 * An in-test `KvService` over the REAL `KvStateMachine` (src/kv) on a real SQLite file (`openTestDb`), with
 * no Raft: every write becomes the next log entry and is applied at once (kv-helpers.ts `Harness`). KV
 * semantics (revisions, txn, leases, sessions, compaction, watch history) are therefore the state
 * machine's own; cluster, health and metrics are the stub's. Lease TTLs do not run down (no clock).
 * Same test hooks as the stub (`calls`, `failNext`, `ready`, `rev`).
 */
import { dirname } from "node:path";
import { toApiError } from "../../src/api/errors.ts";
import type { CallOptions, KvService, LeaseStatus, ReadOptions, ServiceRangeResult, WatchMessage, WatchRequest, WriteOptions } from "../../src/api/service.ts";
import type { DeleteRangeRequest, DeleteResult, KvRequest, KvResult, PutRequest, PutResult, RangeRequest, TxnRequest, TxnResult } from "../../src/kv/types.ts";
import { removeDir } from "../helpers/sql.ts";
import { StubKvService } from "./api-stub-service.ts";
import { Harness } from "./kv-helpers.ts";

const opened: Harness[] = [];

/** Closes every state machine opened by `SmKvService.open` and removes its temporary directory. */
export function closeAllSmServices(): void {
  for (const h of opened.splice(0)) {
    const dir = dirname(h.driver.path);
    h.close();
    removeDir(dir);
  }
}

/** KvService over KvStateMachine (see file header). */
export class SmKvService extends StubKvService implements KvService {
  private readonly wakers = new Set<() => void>();
  private nextLease = 7000;

  private constructor(private readonly h: Harness) {
    super();
  }

  /** Opens a fresh database and state machine. Close with `closeAllSmServices()`. */
  static async open(): Promise<SmKvService> {
    const h = await Harness.open();
    opened.push(h);
    return new SmKvService(h);
  }

  override get rev(): number {
    return this.h.sm.revision();
  }

  private check(method: string, opts?: unknown): void {
    this.calls.push({ method, opts });
    const f = this.failNext;
    if (f) {
      this.failNext = undefined;
      throw f;
    }
  }

  private write<T extends KvResult>(request: KvRequest, opts?: WriteOptions): T {
    const r = this.h.apply(request, opts?.session);
    if (r.error) throw toApiError(r.error);
    if (r.events.length) for (const w of this.wakers) w();
    return r.result as T;
  }

  private read<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw toApiError(err);
    }
  }

  override async put(req: PutRequest, opts?: WriteOptions): Promise<PutResult> {
    this.check("put", opts);
    return this.write<PutResult>(req, opts);
  }
  override async deleteRange(req: DeleteRangeRequest, opts?: WriteOptions): Promise<DeleteResult> {
    this.check("deleteRange", opts);
    return this.write<DeleteResult>(req, opts);
  }
  override async txn(req: TxnRequest, opts?: WriteOptions): Promise<TxnResult> {
    this.check("txn", opts);
    return this.write<TxnResult>(req, opts);
  }
  override async range(req: RangeRequest, opts?: ReadOptions): Promise<ServiceRangeResult> {
    this.check("range", opts);
    const r = this.read(() => this.h.sm.range(req));
    return opts?.consistency === "stale" ? { ...r, stale: { appliedIndex: this.h.sm.appliedIndex(), stalenessMs: 42 } } : r;
  }
  override async leaseGrant(req: { ttlSeconds: number; id?: number }, opts?: WriteOptions) {
    this.check("leaseGrant", opts);
    return this.write<{ op: "leaseGrant"; id: number; ttlSeconds: number; revision: number }>({ op: "leaseGrant", id: req.id ?? this.nextLease++, ttlSeconds: req.ttlSeconds }, opts);
  }
  private status(id: number, keys = false): LeaseStatus {
    const l = this.read(() => this.h.sm.leaseInfo(id, keys));
    return { id, ttlSeconds: l.ttlSeconds, grantedTtlSeconds: l.ttlSeconds, ...(l.keys ? { keys: l.keys } : {}) };
  }
  override async leaseKeepAlive(id: number, opts?: CallOptions): Promise<LeaseStatus> {
    this.check("leaseKeepAlive", opts);
    return this.status(id);
  }
  override async leaseRevoke(id: number, opts?: WriteOptions) {
    this.check("leaseRevoke", opts);
    return this.write<{ op: "leaseRevoke"; id: number; deleted: number; revision: number }>({ op: "leaseRevoke", id }, opts);
  }
  override async leaseTimeToLive(id: number, opts?: ReadOptions & { keys?: boolean }): Promise<LeaseStatus> {
    this.check("leaseTimeToLive", opts);
    return this.status(id, opts?.keys);
  }
  override async compact(revision: number, opts?: WriteOptions) {
    this.check("compact", opts);
    return this.write<{ op: "compact"; compactRevision: number; revision: number }>({ op: "compact", revision }, opts);
  }

  override async watch(req: WatchRequest, opts?: CallOptions): Promise<AsyncIterable<WatchMessage>> {
    this.check("watch", opts);
    const sm = this.h.sm;
    let next = req.fromRevision ?? sm.revision() + 1;
    // Validates the range and the start revision now, so errors reach the caller before any event.
    this.read(() => sm.eventsSince(next, req.key, req.rangeEnd, 1));
    const signal = opts?.signal;
    const wakers = this.wakers;
    const read = <T>(f: () => T) => this.read(f);
    async function* gen(): AsyncGenerator<WatchMessage> {
      let wake: (() => void) | undefined;
      const waker = () => wake?.();
      wakers.add(waker);
      signal?.addEventListener("abort", waker);
      let sentProgress = false;
      try {
        while (!signal?.aborted) {
          const page = read(() => sm.eventsSince(next, req.key, req.rangeEnd, 100));
          if (page.events.length) yield { type: "events", revision: page.nextRevision - 1, events: page.events };
          next = page.nextRevision;
          if (page.events.length) continue;
          if (!sentProgress) {
            sentProgress = true;
            yield { type: "progress", revision: page.revision };
          }
          if (sm.revision() >= next) continue;
          await new Promise<void>((r) => {
            wake = r;
            if (signal?.aborted) r();
          });
        }
      } finally {
        wakers.delete(waker);
        signal?.removeEventListener("abort", waker);
      }
    }
    return gen();
  }
}
