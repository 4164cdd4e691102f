/**
 * The replicated KV state machine (etcd v3 semantics, docs/kv.md), stored in the node's SQLite file through
 * the SqlDriver port. Pure: time and randomness never enter; every replica applying the same entries
 * reaches the same state and the same per-entry results.
 *
 * Log positions: appliedIndex is recorded in the same SQLite transaction as the effects of the entries up
 * to it, so after a crash the state is exactly "every entry <= appliedIndex applied once".
 */
import { applyConfChange, emptyConfState } from "../raft/confchange.ts";
import type { ConfChangeStep, ConfState, Entry } from "../raft/types.ts";
import { META } from "./schema.ts";
import { Sessions } from "./sessions.ts";
import type { SqlDriver, SqlStatement } from "./sql-driver.ts";
import { KvStore, asBytes } from "./store.ts";
import { Writer, readRange, stampRevision } from "./ops.ts";
import { AnswerBudget, answerBytes, answerBytesBound, checkAnswerBytes, rangeAnswerBytes } from "./answer-size.ts";
import { validateRangeRequest, validateRequest } from "./validate.ts";
import {
  DEFAULT_KV_LIMITS,
  KvError,
  type Bytes,
  type Command,
  type CompactResult,
  type KvLimits,
  type KvOptions,
  type KvRequest,
  type KvResult,
  type LeaseInfo,
  type RangeRequest,
  type RangeResult,
  type RequestOp,
  type WatchEvent,
} from "./types.ts";

/** The outcome of one applied entry: a result or a deterministic error, and the watch events it produced. */
export interface AppliedEntry {
  index: number;
  result?: KvResult;
  error?: KvError;
  /** Put/delete events in revision order (empty for reads, no-ops, conf changes, errors, session duplicates). */
  events: WatchEvent[];
  /**
   * True when the entry was a retry of an already applied (clientId, sequence): `result`/`error` are the
   * stored ones and nothing was applied, so the node must not repeat side effects (e.g. Lessor.grant).
   */
  duplicate?: boolean;
}

/** A member's URLs (kv_members): where peers dial it and where clients reach it. */
export interface MemberAddress {
  peerUrl: string;
  clientUrl: string;
}

/** A page of watch history: events in (revision, sub) order; resume from `nextRevision`. */
export interface EventsPage {
  events: WatchEvent[];
  /** Revision to ask from next time (last included revision + 1; when caught up, max(from, store revision + 1)). */
  nextRevision: number;
  /** Store revision when read. */
  revision: number;
}

/** The KV state machine over one SqlDriver. Not thread-safe; one instance per node. */
export class KvStateMachine {
  readonly limits: KvLimits;
  private readonly store: KvStore;
  private readonly sessions: Sessions;
  private readonly decode: (data: Uint8Array) => Command;
  private readonly sLeaseGet: SqlStatement;
  private readonly sLeaseAdd: SqlStatement;
  private readonly sLeaseDel: SqlStatement;
  private readonly sLeaseAll: SqlStatement;
  private readonly sCompactPuts: SqlStatement;
  private readonly sCompactDeletes: SqlStatement;
  private readonly sMemberPut: SqlStatement;
  private readonly sMemberDel: SqlStatement;
  private readonly sMemberAll: SqlStatement;
  private readonly sSavepoint: SqlStatement;
  private readonly sRelease: SqlStatement;
  private readonly sRollbackTo: SqlStatement;
  /**
   * The store revision while `applyEntries` runs (undefined outside it): read once per batch and written
   * back once at its end, instead of a meta read and upsert per request (same transaction, same result).
   */
  private batchRevision: number | undefined;

  /** Creates the KV schema if missing. Throws the driver's error if SQLite refuses. */
  constructor(
    private readonly driver: SqlDriver,
    options: KvOptions,
  ) {
    this.limits = { ...DEFAULT_KV_LIMITS, ...options.limits };
    this.decode = options.decode;
    this.store = new KvStore(driver);
    this.sessions = new Sessions(this.store, this.limits);
    this.sLeaseGet = driver.prepare("SELECT id, ttl_seconds FROM kv_leases WHERE id = ?");
    this.sLeaseAdd = driver.prepare("INSERT INTO kv_leases (id, ttl_seconds) VALUES (?, ?)");
    this.sLeaseDel = driver.prepare("DELETE FROM kv_leases WHERE id = ?");
    this.sLeaseAll = driver.prepare("SELECT id, ttl_seconds FROM kv_leases ORDER BY id");
    // Compaction keeps, below the compact revision, only each key's newest event if it is a put (reads at
    // the compact revision need it); everything at or above it stays, so a watch from exactly the compact
    // revision still sees a delete there (scenario C05, etcd-io/etcd#18089). A put is superseded when a
    // later event of its key at or below the new compact revision links to it (the history chain,
    // schema.ts); such a later event lies above the previous compact revision, or that compaction would
    // already have removed the put. Parameters: new, previous, new compact revision.
    this.sCompactPuts = driver.prepare(
      "DELETE FROM kv_history WHERE revision < ? AND kind = 0 AND (revision, key) IN " +
        "(SELECT prev_revision, key FROM kv_history WHERE revision > ? AND revision <= ? AND prev_revision > 0)",
    );
    this.sCompactDeletes = driver.prepare("DELETE FROM kv_history WHERE revision < ? AND kind = 1");
    this.sMemberPut = driver.prepare(
      "INSERT INTO kv_members (id, peer_url, client_url) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET peer_url = excluded.peer_url, client_url = excluded.client_url",
    );
    this.sMemberDel = driver.prepare("DELETE FROM kv_members WHERE id = ?");
    this.sMemberAll = driver.prepare("SELECT id, peer_url, client_url FROM kv_members ORDER BY id");
    // Prepared once: `exec` would parse the text again for every applied request.
    this.sSavepoint = driver.prepare("SAVEPOINT kv_request");
    this.sRelease = driver.prepare("RELEASE kv_request");
    this.sRollbackTo = driver.prepare("ROLLBACK TO kv_request");
  }

  /** Index of the last applied entry (0 before any). */
  appliedIndex(): number {
    return this.store.metaInt(META.appliedIndex);
  }

  /** Term of the last applied entry (0 before any). */
  appliedTerm(): number {
    return this.store.metaInt(META.appliedTerm);
  }

  /** The membership at the applied index (persisted; empty before any conf change or bootstrap). */
  confState(): ConfState {
    const text = this.store.metaText(META.confState);
    return text === undefined ? emptyConfState() : (JSON.parse(text) as ConfState);
  }

  /**
   * Records the bootstrap membership of a new cluster and the members' URLs (`addresses`: id -> peer and
   * client URL); ignored once anything was applied or a membership is stored.
   */
  bootstrap(confState: ConfState, addresses: Record<string, MemberAddress> = {}): void {
    this.driver.transaction(() => {
      if (this.appliedIndex() === 0 && this.store.metaText(META.confState) === undefined) {
        this.store.setMeta(META.confState, JSON.stringify(confState));
        for (const [id, a] of Object.entries(addresses)) this.sMemberPut.run(id, a.peerUrl, a.clientUrl);
      }
    });
  }

  /** Member id -> URLs, as applied (bootstrap plus the context of applied addLearner steps, minus removals). */
  members(): Record<string, MemberAddress> {
    const out: Record<string, MemberAddress> = {};
    for (const r of this.sMemberAll.all()) out[r.id as string] = { peerUrl: r.peer_url as string, clientUrl: r.client_url as string };
    return out;
  }

  /** The store revision: bumped once per request that changed at least one key; never lowered (C20). */
  revision(): number {
    return this.store.revision();
  }

  /** Oldest revision still readable and watchable (0 = never compacted). */
  compactRevision(): number {
    return this.store.compactRevision();
  }

  /**
   * Applies committed entries in ONE transaction together with the new applied index/term. Entries with
   * index <= appliedIndex are skipped (replay after a crash); the rest must follow on contiguously, else it
   * throws an Error (a driver bug: fatal). A request's KvError is that entry's result, not a throw; any
   * other error (I/O) rolls the whole batch back and is rethrown (fatal for the node).
   */
  applyEntries(entries: Entry[]): AppliedEntry[] {
    if (entries.length === 0) return [];
    return this.driver.transaction(() => this.applyEntriesInTransaction(entries));
  }

  /**
   * `applyEntries` inside a transaction the caller already opened on the same driver (the node writes a
   * Ready's Raft log entries and applies its committed entries in one transaction: one COMMIT per Ready).
   * Same rules and errors; the caller's rollback undoes the batch.
   */
  applyEntriesInTransaction(entries: Entry[]): AppliedEntry[] {
    if (entries.length === 0) return [];
    {
      let applied = this.appliedIndex();
      let term = this.appliedTerm();
      const revisionBefore = this.store.revision();
      this.batchRevision = revisionBefore;
      try {
        const out: AppliedEntry[] = [];
        for (const e of entries) {
          if (e.index <= applied) continue;
          if (e.index !== applied + 1) throw new Error(`kv apply: entry ${e.index} does not follow applied index ${applied}`);
          out.push(this.applyEntry(e));
          applied = e.index;
          term = e.term;
        }
        if (out.length > 0) {
          this.store.setMeta(META.appliedIndex, applied);
          this.store.setMeta(META.appliedTerm, term);
        }
        if (this.batchRevision !== revisionBefore) this.store.setMeta(META.revision, this.batchRevision);
        return out;
      } finally {
        this.batchRevision = undefined;
      }
    }
  }

  private applyEntry(e: Entry): AppliedEntry {
    if (e.type === "confChange") {
      // The leader's computed membership (Entry.confState) wins when present: a node that joined with an
      // empty ConfState cannot replay the change on its own.
      const given = (e as { confState?: ConfState }).confState;
      const next = given ?? applyConfChange(this.confState(), e.confChange ?? { steps: [] });
      this.store.setMeta(META.confState, JSON.stringify(next));
      for (const step of e.confChange?.steps ?? []) this.applyMemberAddress(step);
      return { index: e.index, events: [] };
    }
    if (e.data.length === 0) return { index: e.index, events: [] };
    let cmd: Command;
    try {
      cmd = this.decode(e.data);
    } catch (err) {
      return { index: e.index, error: new KvError("bad_request", `undecodable command: ${(err as Error).message}`), events: [] };
    }
    if (cmd === null || typeof cmd !== "object") return { index: e.index, error: new KvError("bad_request", "command must be an object"), events: [] };
    const session = cmd.session;
    if (session) {
      const seen = this.sessions.lookup(session.clientId, session.sequence, e.index);
      if (seen.kind === "rejected") return { index: e.index, error: seen.error, events: [] };
      if (seen.kind === "duplicate") {
        const dup: AppliedEntry = { index: e.index, events: [], duplicate: true };
        if (seen.result) dup.result = seen.result;
        if (seen.error) dup.error = seen.error;
        return dup;
      }
    }
    // Entries written before the cap travelled in the command (or requests that cannot exceed it) carry
    // none and apply uncapped, as they always did.
    const cap = cmd.maxAnswerBytes;
    const outcome = this.applyRequest(cmd.request, typeof cap === "number" ? cap : undefined);
    if (session) this.sessions.record(session.clientId, session.sequence, e.index, outcome);
    return { index: e.index, ...outcome };
  }

  /**
   * Records a member's URLs from an addLearner or update step's context (JSON `{"peerUrl","clientUrl"}`, see
   * ConfChangeStep.context) and forgets them on remove. A context that does not parse is ignored: the
   * membership change itself already applied, and every replica ignores it the same way.
   */
  private applyMemberAddress(step: ConfChangeStep): void {
    if (step.type === "remove") {
      this.sMemberDel.run(step.nodeId);
      return;
    }
    if ((step.type !== "addLearner" && step.type !== "update") || step.context === undefined) return;
    let a: unknown;
    try {
      a = JSON.parse(step.context);
    } catch {
      return;
    }
    const { peerUrl, clientUrl } = (a ?? {}) as { peerUrl?: unknown; clientUrl?: unknown };
    if (typeof peerUrl === "string" && typeof clientUrl === "string") this.sMemberPut.run(step.nodeId, peerUrl, clientUrl);
  }

  /**
   * Runs one request inside a savepoint so that a KvError undoes its partial writes. A plain put needs none:
   * every KvError it can raise (validation, unknown lease) is thrown before its first write (ops.ts
   * Writer.put), and any other error rolls back the whole batch anyway. `maxAnswerBytes` (bytes, from the
   * command) caps the reads of a txn or `prevKv` delete (AnswerBudget): past it the request fails with
   * `response_too_large` and, rolled back, applies nothing (etcd: a failed request changes nothing).
   */
  private applyRequest(req: KvRequest, maxAnswerBytes?: number): { result?: KvResult; error?: KvError; events: WatchEvent[] } {
    if (req.op === "put") {
      try {
        return this.execute(req);
      } catch (err) {
        if (!(err instanceof KvError)) throw err;
        return { error: err, events: [] };
      }
    }
    this.sSavepoint.run();
    try {
      const r = this.execute(req, maxAnswerBytes);
      this.sRelease.run();
      return r;
    } catch (err) {
      if (!(err instanceof KvError)) throw err;
      this.sRollbackTo.run();
      this.sRelease.run();
      return { error: err, events: [] };
    }
  }

  private execute(req: KvRequest, maxAnswerBytes?: number): { result: KvResult; events: WatchEvent[] } {
    validateRequest(req, this.limits);
    const current = this.batchRevision ?? this.store.revision();
    const meter = maxAnswerBytes === undefined ? undefined : new AnswerBudget(this.store, this.limits, maxAnswerBytes);
    const w = new Writer(this.store, current + 1, this.limits, (id) => this.sLeaseGet.get(id) !== undefined, meter);
    let result: KvResult;
    switch (req.op) {
      case "put":
        result = w.put(req);
        break;
      case "deleteRange":
        result = w.deleteRange(req);
        break;
      case "txn":
        result = w.txn(req, current);
        break;
      case "leaseGrant":
        if (this.sLeaseGet.get(req.id) !== undefined) throw new KvError("lease_exists", `lease ${req.id} already exists`);
        this.sLeaseAdd.run(req.id, req.ttlSeconds);
        result = { op: "leaseGrant", id: req.id, ttlSeconds: req.ttlSeconds, revision: current };
        break;
      case "leaseRevoke": {
        if (this.sLeaseGet.get(req.id) === undefined) throw new KvError("lease_not_found", `lease ${req.id} not found`);
        result = { op: "leaseRevoke", id: req.id, deleted: this.dropLease(w, req.id), revision: current };
        break;
      }
      case "leaseExpire": {
        const expired: number[] = [];
        let deleted = 0;
        for (const id of [...new Set(req.ids)].sort((a, b) => a - b)) {
          if (this.sLeaseGet.get(id) === undefined) continue;
          expired.push(id);
          deleted += this.dropLease(w, id);
        }
        result = { op: "leaseExpire", expired, deleted, revision: current };
        break;
      }
      case "compact":
        result = this.compact(req.revision, current);
        break;
    }
    const revision = w.wrote ? w.rev : current;
    if (w.wrote) {
      if (this.batchRevision === undefined) this.store.setMeta(META.revision, revision);
      else this.batchRevision = revision;
    }
    if (result.op !== "compact") {
      if (result.op === "put" || result.op === "deleteRange" || result.op === "txn") stampRevision(result, revision);
      else result.revision = revision;
    }
    return { result, events: w.events };
  }

  /** Deletes a lease and its keys (one revision for all, delete events in key order). Returns keys deleted. */
  private dropLease(w: Writer, id: number): number {
    const keys = this.store.keysOfLease(id);
    for (const k of keys) w.deleteKey(k.key, k.modRevision);
    this.sLeaseDel.run(id);
    return keys.length;
  }

  /** etcd compaction rules: at or below the compact revision -> `compacted`; above the store revision -> `future_revision`. */
  private compact(revision: number, current: number): CompactResult {
    const compactRevision = this.store.compactRevision();
    if (revision <= compactRevision) {
      throw new KvError("compacted", `revision ${revision} is already compacted (compact revision ${compactRevision})`, { compactRevision });
    }
    if (revision > current) throw new KvError("future_revision", `cannot compact revision ${revision}: current is ${current}`);
    this.sCompactPuts.run(revision, compactRevision, revision);
    this.sCompactDeletes.run(revision);
    this.store.setMeta(META.compactRevision, revision);
    return { op: "compact", compactRevision: revision, revision: current };
  }

  /** Reads applied state (never proposed). See `readRange` in ops.ts for errors. */
  range(req: RangeRequest): RangeResult {
    return readRange(this.store, req, this.limits);
  }

  /**
   * Refuses a read whose answer would be above `maxResponseBytes` (key + value bytes plus 64 per key,
   * answer-size.ts) with KvError `response_too_large`, measured on the current state from lengths only:
   * a range request before `range`, or a txn / deleteRange (`prevKv`) before it is proposed. Requests whose
   * answer cannot exceed the limit (one key, no reads) cost no query. For a txn this is the leader's
   * estimate; the exact check is at apply, against the cap the command carries (Command.maxAnswerBytes).
   */
  checkAnswerSize(req: RangeRequest | RequestOp, maxResponseBytes: number): void {
    if (answerBytesBound(req, this.limits) <= maxResponseBytes) return;
    const bytes = "op" in req ? answerBytes(this.store, req, this.limits) : rangeAnswerBytes(this.store, req, this.limits);
    checkAnswerBytes(bytes, maxResponseBytes);
  }

  /** A live lease's granted TTL and, with `withKeys`, its attached keys. Throws KvError `lease_not_found`. */
  leaseInfo(id: number, withKeys = false): LeaseInfo {
    const row = this.sLeaseGet.get(id);
    if (row === undefined) throw new KvError("lease_not_found", `lease ${id} not found`);
    const info: LeaseInfo = { id, ttlSeconds: row.ttl_seconds as number };
    if (withKeys) info.keys = this.store.keysOfLease(id).map((k) => k.key);
    return info;
  }

  /** Every live lease (id and granted TTL), by id: what a new leader's Lessor must track. */
  leases(): LeaseInfo[] {
    return this.sLeaseAll.all().map((r) => ({ id: r.id as number, ttlSeconds: r.ttl_seconds as number }));
  }

  /**
   * Watch history: up to `limit` (>= 1) events with revision >= `fromRevision` (0 means 1) for keys in the
   * range, in (revision, sub) order. A page never splits a revision, so resuming at `nextRevision` neither
   * repeats nor skips an event. Throws KvError `compacted` (with compactRevision) when `fromRevision` is
   * below the compact revision (scenario C05), `bad_request` for an invalid range (C21). `maxBytes` (key +
   * value bytes, optional) lowers `limit` so the page's events fit in it (at least one event, and a revision
   * is still never split).
   */
  eventsSince(fromRevision: number, key: Bytes, rangeEnd: Bytes | undefined, limit: number, maxBytes?: number): EventsPage {
    const range = validateRangeRequest({ key, rangeEnd }, this.limits);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new KvError("bad_request", "limit must be a positive integer");
    const from = Math.max(1, fromRevision);
    const compactRevision = this.store.compactRevision();
    if (from < compactRevision) {
      throw new KvError("compacted", `revision ${from} is compacted; the earliest available is ${compactRevision}`, { compactRevision });
    }
    const revision = this.store.revision();
    if (maxBytes !== undefined) limit = Math.max(1, Math.min(limit, this.store.eventsFitting(range, from, limit, maxBytes)));
    const rows = this.store.events(range, from, limit + 1);
    // Caught up: resume after the store revision, but never before what was asked (a watch from the future).
    if (rows.length <= limit) return { events: rows.map(plainEvent), nextRevision: Math.max(from, revision + 1), revision };
    const cut = rows[limit - 1].revision;
    if (rows[limit].revision !== cut) return { events: rows.slice(0, limit).map(plainEvent), nextRevision: cut + 1, revision };
    const kept = rows.filter((r) => r.revision < cut);
    // One revision alone exceeds the page: return it whole rather than split it.
    const events = kept.length > 0 ? kept : this.store.eventsOfRevision(range, cut);
    return { events: events.map(plainEvent), nextRevision: (kept.length > 0 ? kept[kept.length - 1].revision : cut) + 1, revision };
  }
}

function plainEvent(e: WatchEvent & { revision: number }): WatchEvent {
  return { type: e.type, kv: { ...e.kv, key: asBytes(e.kv.key), value: asBytes(e.kv.value) } };
}
