/**
 * Low-level SQL access of the KV state machine: prepared statements (created once, or once per query shape),
 * row <-> KeyValue mapping, and key-range resolution. No rules of etcd semantics live here except the range
 * conventions (see types.ts); the state machine composes these primitives inside its apply transaction.
 */
import type { SqlDriver, SqlRow, SqlStatement, SqlValue } from "./sql-driver.ts";
import { EVENT_DELETE, EVENT_PUT, META, createKvSchema } from "./schema.ts";
import { KvError, compareBytes, type Bytes, type KeyValue, type WatchEvent } from "./types.ts";

const EMPTY = new Uint8Array(0);

/**
 * A resolved key range (etcd conventions, types.ts): one key, every key >= `key`, or [key, end).
 * Throws KvError `bad_request` for an empty single key or an inverted/empty interval (scenario C21).
 */
export type KeyRange = { kind: "single"; key: Bytes } | { kind: "from"; key: Bytes } | { kind: "between"; key: Bytes; end: Bytes };

/** Resolves `key`/`rangeEnd` into a KeyRange; throws KvError("bad_request") as described on KeyRange. */
export function resolveRange(key: Bytes, rangeEnd?: Bytes): KeyRange {
  if (!(key instanceof Uint8Array)) throw new KvError("bad_request", "key must be bytes");
  if (rangeEnd === undefined || rangeEnd.length === 0) {
    if (key.length === 0) throw new KvError("bad_request", "key is empty");
    return { kind: "single", key };
  }
  if (!(rangeEnd instanceof Uint8Array)) throw new KvError("bad_request", "rangeEnd must be bytes");
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: "from", key };
  if (compareBytes(rangeEnd, key) <= 0) throw new KvError("bad_request", "invalid range: rangeEnd must be greater than key");
  return { kind: "between", key, end: rangeEnd };
}

/** True when `key` lies in `range`. */
export function inRange(range: KeyRange, key: Bytes): boolean {
  if (range.kind === "single") return compareBytes(key, range.key) === 0;
  if (compareBytes(key, range.key) < 0) return false;
  return range.kind === "from" || compareBytes(key, range.end) < 0;
}

/** SQL condition on column `col` and its parameters for a range. */
function rangeSql(range: KeyRange, col: string): { cond: string; params: SqlValue[] } {
  if (range.kind === "single") return { cond: `${col} = ?`, params: [range.key] };
  if (range.kind === "from") return { cond: `${col} >= ?`, params: [range.key] };
  return { cond: `${col} >= ? AND ${col} < ?`, params: [range.key, range.end] };
}

/**
 * Where a key's state at a past revision is stored (`KvStore.statesAt`): its live row (`rev` 0: unchanged
 * since) or its put event at revision `rev`.
 */
type StateAt = { key: Bytes; rev: number };

/** Candidate rows read per statement by `KvStore.statesAt`. */
const STATE_PAGE = 1024;

/**
 * Lookups of one revision within one `statesAt` call after which `EventLookup` reads all of that revision's
 * events into a map. A lookup by (revision, key) scans the revision's events (the primary key is
 * (revision, sub)), and a deleteRange or lease revoke puts thousands of events into one revision that many
 * walks pass through: reading 20 000 such keys at the revision before their deleteRange took 22 s, quadratic.
 */
const BULK_LOOKUPS = 8;

/**
 * Links a walk follows one by one before it scans back from the read revision instead. The links of a key
 * put 100 000 times, walked back to revision 1, held the loop 2.1 s (B4, docs/nemesis.md); the scan reads
 * the history between the read revision and the key's newest event at or below it, which for a key that
 * changes often is near, and never reads past the start of the key's current life.
 */
const WALK_STEPS = 32;

/** One history event of a key, as a walk needs it. */
type EventStep = { kind: number; prev: number; create: number };

/** The (kind, link, create revision) of a key's event at a revision, for one history walk; see BULK_LOOKUPS. */
class EventLookup {
  private readonly counts = new Map<number, number>();
  private readonly bulk = new Map<number, Map<string, EventStep>>();

  constructor(
    private readonly one: SqlStatement,
    private readonly all: SqlStatement,
  ) {}

  /** The event of `key` at `revision`, or undefined when history has none. */
  get(revision: number, key: Bytes): EventStep | undefined {
    const map = this.bulk.get(revision);
    if (map !== undefined) return map.get(byteString(key));
    const n = (this.counts.get(revision) ?? 0) + 1;
    this.counts.set(revision, n);
    if (n >= BULK_LOOKUPS) {
      const loaded = new Map<string, EventStep>();
      for (const r of this.all.all(revision)) loaded.set(byteString(asBytes(r.key)), step(r));
      this.bulk.set(revision, loaded);
      return loaded.get(byteString(key));
    }
    const r = this.one.get(revision, key);
    return r === undefined ? undefined : step(r);
  }
}

function step(r: SqlRow): EventStep {
  return { kind: r.kind as number, prev: r.prev_revision as number, create: r.create_revision as number };
}

/** A string with one char per byte (a Map key for bytes). */
function byteString(b: Bytes): string {
  let out = "";
  for (let i = 0; i < b.length; i++) out += String.fromCharCode(b[i]);
  return out;
}

/** Copies nothing: views the driver's BLOB (possibly a Node.js subclass of Uint8Array) as a plain Uint8Array. NULL/missing -> empty. */
export function asBytes(v: SqlValue | undefined): Bytes {
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return EMPTY;
}

function rowToKv(r: SqlRow): KeyValue {
  return {
    key: asBytes(r.key),
    value: asBytes(r.value),
    createRevision: r.create_revision as number,
    modRevision: r.mod_revision as number,
    version: r.version as number,
    lease: r.lease as number,
  };
}

/** Prepared-statement holder over one SqlDriver; creates the schema on construction. */
export class KvStore {
  private readonly cache = new Map<string, SqlStatement>();
  private readonly sGetMeta: SqlStatement;
  private readonly sSetMeta: SqlStatement;
  private readonly sGetKey: SqlStatement;
  private readonly sPutKey: SqlStatement;
  private readonly sDelKey: SqlStatement;
  private readonly sAddEvent: SqlStatement;
  private readonly sKeysOfLease: SqlStatement;
  private readonly sLastDelete: SqlStatement;
  private readonly sEventStep: SqlStatement;
  private readonly sNewestAtOrBelow: SqlStatement;
  private readonly sEventRow: SqlStatement;

  constructor(readonly driver: SqlDriver) {
    createKvSchema(driver);
    this.sGetMeta = driver.prepare("SELECT value FROM kv_meta WHERE name = ?");
    this.sSetMeta = driver.prepare("INSERT INTO kv_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value");
    this.sGetKey = driver.prepare("SELECT key, value, create_revision, mod_revision, version, lease FROM kv_keys WHERE key = ?");
    // etcd put semantics in the statement itself: a new key gets version 1 and createRevision = its
    // revision; an existing one keeps its createRevision and counts its version up. RETURNING hands both
    // back, and the old mod revision (the history chain's link, schema.ts), so a put is one B-tree descent
    // of kv_keys instead of a read and then a write. SET expressions all see the old row.
    this.sPutKey = driver.prepare(
      "INSERT INTO kv_keys (key, value, create_revision, mod_revision, version, lease, prev_mod_revision) VALUES (?, ?, ?, ?, 1, ?, 0) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision, " +
        "version = kv_keys.version + 1, lease = excluded.lease, prev_mod_revision = kv_keys.mod_revision " +
        "RETURNING create_revision, version, prev_mod_revision",
    );
    this.sDelKey = driver.prepare("DELETE FROM kv_keys WHERE key = ?");
    this.sAddEvent = driver.prepare(
      "INSERT INTO kv_history (revision, sub, key, kind, value, create_revision, version, lease, prev_revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    // `lease != 0` lets SQLite use the partial index kv_keys_by_live_lease (schema.ts).
    this.sKeysOfLease = driver.prepare("SELECT key, mod_revision FROM kv_keys WHERE lease = ? AND lease != 0 ORDER BY key");
    // `kind = 1` lets SQLite use the partial index kv_history_deletes (schema.ts).
    this.sLastDelete = driver.prepare("SELECT MAX(revision) AS rev FROM kv_history WHERE key = ? AND kind = 1");
    this.sEventStep = driver.prepare("SELECT kind, prev_revision, create_revision FROM kv_history WHERE revision = ? AND key = ?");
    this.sNewestAtOrBelow = driver.prepare(
      "SELECT revision FROM kv_history WHERE revision <= ? AND revision >= ? AND key = ? ORDER BY revision DESC, sub DESC LIMIT 1",
    );
    this.sEventRow = driver.prepare(
      "SELECT key, value, create_revision, revision AS mod_revision, version, lease FROM kv_history WHERE revision = ? AND key = ?",
    );
  }

  /** A statement for a query shape built at run time (range variants); prepared once per distinct SQL. */
  stmt(sql: string): SqlStatement {
    let s = this.cache.get(sql);
    if (s === undefined) {
      s = this.driver.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  /** An integer meta value (0 when unset). */
  metaInt(name: string): number {
    const v = this.sGetMeta.get(name)?.value;
    return typeof v === "number" ? v : 0;
  }

  /** A text meta value (undefined when unset). */
  metaText(name: string): string | undefined {
    const v = this.sGetMeta.get(name)?.value;
    return typeof v === "string" ? v : undefined;
  }

  setMeta(name: string, value: number | string): void {
    this.sSetMeta.run(name, value);
  }

  revision(): number {
    return this.metaInt(META.revision);
  }

  compactRevision(): number {
    return this.metaInt(META.compactRevision);
  }

  /** The live key, or undefined. */
  getKey(key: Bytes): KeyValue | undefined {
    const r = this.sGetKey.get(key);
    return r === undefined ? undefined : rowToKv(r);
  }

  /**
   * Writes `key` = `value` at `revision` with `lease` (0: none) by etcd's put rule (version 1 and
   * createRevision = `revision` for a new key; else version + 1, createRevision kept) in ONE statement, records
   * its put event at (`revision`, `sub`), and returns the key as stored. Before this, a put read the key first
   * (`getKey`) and then wrote it: two statements and two descents of kv_keys, the read 12 % of a leader's
   * CPU samples under put load (docs/bench.md). Throws the driver's error on failure.
   */
  putKey(key: Bytes, value: Bytes, revision: number, lease: number, sub: number): KeyValue {
    const r = this.sPutKey.get(key, value, revision, revision, lease);
    if (r === undefined) throw new Error("kv_keys upsert returned no row");
    const kv: KeyValue = { key, value, createRevision: Number(r.create_revision), modRevision: revision, version: Number(r.version), lease };
    // The chain link: the live key's old mod revision, or for a created key its last delete (if history
    // still has one; only created keys pay this lookup, in the small partial index of deletes).
    const prev = kv.version === 1 ? Number(this.sLastDelete.get(key)?.rev ?? 0) : Number(r.prev_mod_revision);
    this.sAddEvent.run(revision, sub, key, EVENT_PUT, value, kv.createRevision, kv.version, lease, prev);
    return kv;
  }

  /**
   * Removes a live key whose mod revision is `modRevision` and records its delete event at (revision, sub),
   * linked to that mod revision (the history chain, schema.ts).
   */
  removeKey(key: Bytes, modRevision: number, revision: number, sub: number): void {
    this.sDelKey.run(key);
    this.sAddEvent.run(revision, sub, key, EVENT_DELETE, EMPTY, 0, 0, 0, modRevision);
  }

  /** Keys attached to a lease, sorted, each with its mod revision. */
  keysOfLease(id: number): Array<{ key: Bytes; modRevision: number }> {
    return this.sKeysOfLease.all(id).map((r) => ({ key: asBytes(r.key), modRevision: r.mod_revision as number }));
  }

  /**
   * One live key (undefined when absent) together with the store revision, read by ONE statement (a
   * LEFT JOIN from the revision meta row), so that a single-key read at the current revision costs one
   * SQLite call instead of four (revision, compact revision, count, range): each autocommit statement also
   * opens and closes its own WAL read transaction. `keysOnly` skips the value (empty bytes). The revision
   * is 0 before the first write, and then no key exists.
   */
  pointNow(key: Bytes, keysOnly: boolean): { revision: number; kv: KeyValue | undefined } {
    const value = keysOnly ? "x''" : "k.value";
    const sql =
      `SELECT r.value AS store_revision, k.key AS key, ${value} AS value, k.create_revision AS create_revision, ` +
      `k.mod_revision AS mod_revision, k.version AS version, k.lease AS lease ` +
      `FROM kv_meta r LEFT JOIN kv_keys k ON k.key = ? WHERE r.name = ?`;
    const r = this.stmt(sql).get(key, META.revision);
    if (r === undefined) return { revision: 0, kv: this.getKey(key) };
    return { revision: typeof r.store_revision === "number" ? r.store_revision : 0, kv: r.mod_revision == null ? undefined : rowToKv(r) };
  }

  /**
   * Live keys in a range at the current state, sorted; `limit` 0 = all. `keysOnly` skips reading values.
   */
  rangeCurrent(range: KeyRange, limit: number, keysOnly: boolean): KeyValue[] {
    const { cond, params } = rangeSql(range, "key");
    const value = keysOnly ? "x'' AS value" : "value";
    const sql = `SELECT key, ${value}, create_revision, mod_revision, version, lease FROM kv_keys WHERE ${cond} ORDER BY key LIMIT ?`;
    return this.stmt(sql).all(...params, limit > 0 ? limit : -1).map(rowToKv);
  }

  /** Number of live keys in a range now. */
  countCurrent(range: KeyRange): number {
    const { cond, params } = rangeSql(range, "key");
    return this.stmt(`SELECT COUNT(*) AS n FROM kv_keys WHERE ${cond}`).get(...params)?.n as number;
  }

  /**
   * The keys of a range that existed at `revision` (< the store revision, >= the compact revision), in key
   * order, each with where its state then is stored: its live row (`rev` 0, unchanged since) or its put
   * event at `rev`. Candidates are the live keys of the range and the keys deleted after `revision` (the
   * partial index of deletes); a candidate changed after `revision` walks its history chain (schema.ts)
   * back to its newest event at or before it: a put there is the state, a delete, no event (0) or a row
   * compaction removed (only deletes and superseded puts go, state-machine.ts) mean the key was absent.
   * Cost: an ordered scan of each candidate list, read `STATE_PAGE` rows at a time so a large range never
   * sits in memory whole, plus per candidate changed after `revision` at most `WALK_STEPS` link lookups, two
   * per life of the key that began after `revision`, and one scan back from `revision` for a key that
   * changed more often than that.
   */
  private *statesAt(range: KeyRange, revision: number): Generator<StateAt> {
    const { cond, params } = rangeSql(range, "key");
    const live = this.pages(`SELECT key, mod_revision AS rev FROM kv_keys WHERE ${cond} AND key > ? ORDER BY key LIMIT ?`, params);
    const gone = this.pages(
      `SELECT key, MAX(revision) AS rev FROM kv_history WHERE kind = ${EVENT_DELETE} AND ${cond} AND revision > ? AND key > ? ` +
        `GROUP BY key ORDER BY key LIMIT ?`,
      [...params, revision],
    );
    const events = new EventLookup(this.sEventStep, this.stmt("SELECT key, kind, prev_revision, create_revision FROM kv_history WHERE revision = ?"));
    let a = live.next();
    let b = gone.next();
    while (!a.done || !b.done) {
      const c = !a.done && !b.done ? compareBytes(a.value.key, b.value.key) : a.done ? 1 : -1;
      // A key both live and deleted after `revision` was re-created: its live row is its newest event.
      const { key, rev: newest } = c <= 0 ? a.value! : b.value!;
      if (c <= 0) a = live.next();
      if (c >= 0) b = gone.next();
      if (newest <= revision) {
        yield { key, rev: 0 };
        continue;
      }
      let rev = newest;
      let steps = 0;
      while (rev > revision) {
        const e = events.get(rev, key);
        if (e === undefined) throw new Error(`kv_history has no event of a key at revision ${rev} above the read revision`);
        if (e.kind === EVENT_PUT && e.create > revision) {
          // This life of the key began after `revision`: go on from the event before its creating put.
          const created = e.create === rev ? e : events.get(e.create, key);
          if (created === undefined) throw new Error(`kv_history has no creating put of a key at revision ${e.create}`);
          rev = created.prev;
          continue;
        }
        if (++steps > WALK_STEPS && e.kind === EVENT_PUT) {
          // A key changed often since `revision`, in a life that began at or before it: its newest event at or
          // below `revision` lies between the two, found by one scan back from `revision` (see WALK_STEPS).
          rev = (this.sNewestAtOrBelow.get(revision, e.create, key)?.revision as number | undefined) ?? 0;
          break;
        }
        rev = e.prev;
      }
      if (rev !== 0 && events.get(rev, key)?.kind === EVENT_PUT) yield { key, rev };
    }
  }

  /** Rows `{ key, rev }` of `sql` (whose last two parameters are "key after" and a page size), page by page. */
  private *pages(sql: string, params: SqlValue[]): Generator<{ key: Bytes; rev: number }> {
    let after: Bytes = EMPTY; // keys are never empty, so every key sorts after it
    for (;;) {
      const rows = this.stmt(sql).all(...params, after, STATE_PAGE);
      for (const r of rows) yield { key: asBytes(r.key), rev: r.rev as number };
      if (rows.length < STATE_PAGE) return;
      after = asBytes(rows[rows.length - 1].key);
    }
  }

  /** The KeyValue a `statesAt` entry stands for (`keysOnly`: value empty). */
  private loadAt(s: StateAt, keysOnly: boolean): KeyValue {
    const r = s.rev === 0 ? this.sGetKey.get(s.key) : this.sEventRow.get(s.rev, s.key);
    if (r === undefined) throw new Error(`a key read at a past revision vanished inside its read`);
    const kv = rowToKv(r);
    return keysOnly ? { ...kv, value: EMPTY } : kv;
  }

  /**
   * Keys in a range as of `revision` (< the store revision; from the history chain, `statesAt`), sorted:
   * the first `limit` (0 = all; none with `countOnly`) and how many there were in all. `keysOnly` leaves
   * values empty. Correct for any revision >= the compact revision (compaction keeps what that needs).
   */
  rangeAt(range: KeyRange, revision: number, limit: number, keysOnly: boolean, countOnly = false): { kvs: KeyValue[]; count: number } {
    const kvs: KeyValue[] = [];
    let count = 0;
    for (const s of this.statesAt(range, revision)) {
      if (!countOnly && (limit === 0 || count < limit)) kvs.push(this.loadAt(s, keysOnly));
      count++;
    }
    return { kvs, count };
  }

  /**
   * What `rangeCurrent` (revision 0) or `rangeAt` (revision > 0) would return, measured without loading it:
   * `{ keys, bytes }` = number of keys and the sum of key + value lengths (keys only with `keysOnly`) of the
   * first `limit` keys (0 = all). Reads only lengths, as `eventsFitting` does, so a read can be refused for
   * its size before any value is loaded (answer-size.ts; a 48 MB answer froze a leader, docs/nemesis.md).
   */
  rangeSize(range: KeyRange, revision: number, limit: number, keysOnly: boolean): { keys: number; bytes: number } {
    const n = keysOnly ? "length(key)" : "length(key) + ifnull(length(value), 0)";
    if (revision !== 0) {
      // Lengths only, as below: one small statement per key of the answer, no value loaded.
      let keys = 0;
      let bytes = 0;
      for (const s of this.statesAt(range, revision)) {
        if (limit > 0 && keys === limit) break;
        const sql = s.rev === 0 ? `SELECT ${n} AS n FROM kv_keys WHERE key = ?` : `SELECT ${n} AS n FROM kv_history WHERE revision = ? AND key = ?`;
        bytes += (this.stmt(sql).get(...(s.rev === 0 ? [s.key] : [s.rev, s.key]))?.n as number) ?? 0;
        keys++;
      }
      return { keys, bytes };
    }
    const inner = `SELECT ${n} AS n FROM kv_keys WHERE ${rangeSql(range, "key").cond} ORDER BY key LIMIT ?`;
    const r = this.stmt(`SELECT COUNT(*) AS keys, ifnull(SUM(n), 0) AS bytes FROM (${inner})`).get(...rangeSql(range, "key").params, limit > 0 ? limit : -1);
    return { keys: (r?.keys as number) ?? 0, bytes: (r?.bytes as number) ?? 0 };
  }

  /** Up to `limit` events with revision >= fromRevision in a range, ordered by (revision, sub). */
  events(range: KeyRange, fromRevision: number, limit: number): Array<WatchEvent & { revision: number }> {
    const { cond, params } = rangeSql(range, "key");
    const sql =
      `SELECT revision, kind, key, value, create_revision, version, lease FROM kv_history ` +
      `WHERE revision >= ? AND ${cond} ORDER BY revision, sub LIMIT ?`;
    return this.stmt(sql)
      .all(fromRevision, ...params, limit)
      .map((r) => toEvent(r));
  }

  /**
   * How many of the first `limit` events from `fromRevision` in the range (the order of `events`) fit in
   * `maxBytes` of key + value (at least 1 when any exists, 0 when none). Reads only lengths, so a watch can
   * size its page before loading values (1000 events of 500 KB per page froze a node).
   */
  eventsFitting(range: KeyRange, fromRevision: number, limit: number, maxBytes: number): number {
    const { cond, params } = rangeSql(range, "key");
    const sql =
      `SELECT length(key) + ifnull(length(value), 0) AS n FROM kv_history ` +
      `WHERE revision >= ? AND ${cond} ORDER BY revision, sub LIMIT ?`;
    let bytes = 0;
    let count = 0;
    for (const r of this.stmt(sql).all(fromRevision, ...params, limit)) {
      bytes += (r.n as number) + 64;
      if (count > 0 && bytes > maxBytes) break;
      count++;
    }
    return count;
  }

  /** Every event of one revision in a range, ordered by sub. */
  eventsOfRevision(range: KeyRange, revision: number): Array<WatchEvent & { revision: number }> {
    const { cond, params } = rangeSql(range, "key");
    const sql =
      `SELECT revision, kind, key, value, create_revision, version, lease FROM kv_history ` + `WHERE revision = ? AND ${cond} ORDER BY sub`;
    return this.stmt(sql)
      .all(revision, ...params)
      .map((r) => toEvent(r));
  }
}

function toEvent(r: SqlRow): WatchEvent & { revision: number } {
  const revision = r.revision as number;
  const kv: KeyValue = {
    key: asBytes(r.key),
    value: asBytes(r.value),
    createRevision: r.create_revision as number,
    modRevision: revision,
    version: r.version as number,
    lease: r.lease as number,
  };
  return { type: r.kind === EVENT_DELETE ? "delete" : "put", kv, revision };
}
