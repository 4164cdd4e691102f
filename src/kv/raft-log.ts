/**
 * The durable Raft log, hard state and snapshot record of one node, in its SQLite file (DESIGN.md
 * "Storage"). `SqliteRaftLog` is the core's `RaftStorage` (read duties in src/raft/types.ts, after etcd
 * raft's storage.go) plus the writes the node performs for each Ready (step 2 of the I/O contract).
 *
 * Tables (created if missing):
 * - `raft_log(idx, term, type, data, conf_change, checksum)`: one row per entry; `type` 0 normal /
 *   1 confChange; `conf_change` is JSON text `{"change": ConfChange, "state"?: ConfState}` (the entry's
 *   `confChange` and `confState`, both kept so a joined member rebuilds membership from its own log after a
 *   restart); `checksum` is CRC-32C (src/kv/checksum.ts)
 *   over every other column, verified on every read.
 * - `raft_state` (one row): hard state (term, vote, commit), the conf state given at bootstrap or by the
 *   last installed snapshot, the log's start (`prev_index`/`prev_term`: the entry just before the first
 *   stored one) and the latest snapshot's metadata and reference data.
 *
 * Log positions (openraft log_pointers): prev_index <= snapshot index; firstIndex = prev_index + 1;
 * lastIndex >= prev_index. Compaction may keep a tail of entries behind the snapshot, so term(firstIndex-1)
 * is `prev_term`, which equals the snapshot's term when nothing is kept.
 *
 * Hot path: first/last index and every term are cached in memory (terms as runs `[startIndex, term]`,
 * since a term covers many entries), so `term`, `firstIndex`, `lastIndex` never touch SQL. Statements are
 * prepared once. Entry data is bound as the caller's Uint8Array (no copy).
 */
import {
  CompactedError,
  RaftInvariantError,
  SnapshotUnavailableError,
  UnavailableError,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type RaftStorage,
  type Snapshot,
} from "../raft/types.ts";
import { entryChecksum } from "./checksum.ts";
import type { SqlDriver, SqlRow, SqlStatement } from "./sql-driver.ts";

/** One Ready's worth of durable writes (I/O contract step 2), applied in this order: snapshot, entries, hard state. */
export interface RaftLogUpdate {
  hardState?: HardState;
  /** Contiguous entries; stored entries with index >= entries[0].index are deleted first (suffix overwrite). */
  entries: Entry[];
  /** Raft paper figure 13 steps 6-7: keep the entries after it if the log matches it, else discard the log. */
  snapshot?: Snapshot;
}

const EMPTY_CONF: ConfState = { voters: [], votersOutgoing: [], learners: [] };
/** Rows fetched per SQL round trip by `entries()`, so a small maxBytes never loads a huge range. */
const PAGE_ROWS = 256;
/** Most recently saved entries kept in memory (RecentEntries): count bound. */
const RECENT_MAX_ENTRIES = 4096;
/** ... and bound on the sum of their `data` bytes (8 MiB). */
const RECENT_MAX_BYTES = 8 * 1024 * 1024;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS raft_log (
  idx INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  type INTEGER NOT NULL,
  data BLOB,
  conf_change TEXT,
  checksum INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS raft_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  term INTEGER NOT NULL,
  vote TEXT NOT NULL,
  commit_index INTEGER NOT NULL,
  conf_state TEXT,
  prev_index INTEGER NOT NULL,
  prev_term INTEGER NOT NULL,
  snap_index INTEGER NOT NULL,
  snap_term INTEGER NOT NULL,
  snap_conf_state TEXT,
  snap_data BLOB
);
INSERT OR IGNORE INTO raft_state VALUES (1, 0, '', 0, NULL, 0, 0, 0, 0, NULL, NULL);
`;

/**
 * SQLite-backed Raft log store. Construct with an open driver (creates the tables, loads the caches).
 * All methods are synchronous; any SQL failure or checksum mismatch is thrown and is fatal for the node
 * (RaftStorage duties). Not safe to share one database between two instances.
 */
export class SqliteRaftLog implements RaftStorage {
  private readonly db: SqlDriver;
  private readonly st: Record<string, SqlStatement>;
  private prevIndex = 0;
  private prevTerm = 0;
  private last = 0;
  /** Term runs covering (prevIndex, last]: runs[i] = [first index with this term, term], ascending. */
  private runs: Array<[number, number]> = [];
  private hard: HardState = { term: 0, vote: "", commit: 0 };
  private snap: Snapshot | undefined;
  private bootConf: ConfState | undefined;
  private snapshotBusy = false;
  /** Set when `snapshot()` was asked for while the latest record names no file (see `snapshotFileWanted`). */
  private fileWanted = false;
  /**
   * The most recently saved entries, contiguous (recent[i].index = recent[0].index + i), at most
   * RECENT_MAX_ENTRIES / RECENT_MAX_BYTES. Entries are read again soon after they are written: a leader
   * applies its entries once followers acknowledge them, a follower once the next AppendEntries moves its
   * commit index, and both replicate from here to a follower a little behind. Served from memory they skip
   * the SQL read, the CRC check and the row decode (etcd raft keeps its whole log tail in MemoryStorage).
   * Updated only after a commit; cut on overwrite and compaction; emptied by reload().
   */
  private recent: Entry[] = [];
  private recentBytes = 0;

  constructor(db: SqlDriver) {
    this.db = db;
    db.exec(SCHEMA);
    this.st = {
      insert: db.prepare("INSERT INTO raft_log (idx, term, type, data, conf_change, checksum) VALUES (?, ?, ?, ?, ?, ?)"),
      deleteFrom: db.prepare("DELETE FROM raft_log WHERE idx >= ?"),
      deleteUpTo: db.prepare("DELETE FROM raft_log WHERE idx <= ?"),
      deleteAll: db.prepare("DELETE FROM raft_log"),
      range: db.prepare("SELECT idx, term, type, data, conf_change, checksum FROM raft_log WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?"),
      hard: db.prepare("UPDATE raft_state SET term = ?, vote = ?, commit_index = ? WHERE id = 1"),
      conf: db.prepare("UPDATE raft_state SET conf_state = ? WHERE id = 1"),
      prev: db.prepare("UPDATE raft_state SET prev_index = ?, prev_term = ? WHERE id = 1"),
      snap: db.prepare("UPDATE raft_state SET snap_index = ?, snap_term = ?, snap_conf_state = ?, snap_data = ? WHERE id = 1"),
      state: db.prepare("SELECT * FROM raft_state WHERE id = 1"),
      termAt: db.prepare("SELECT term FROM raft_log WHERE idx = ?"),
    };
    this.load();
  }

  /** (Re)loads every cache from SQL: on open, and after a failed write left the caches unsure. */
  private load(): void {
    this.recent = [];
    this.recentBytes = 0;
    const s = this.st.state.get()!;
    this.hard = { term: s.term as number, vote: s.vote as string, commit: s.commit_index as number };
    this.bootConf = s.conf_state === null ? undefined : (JSON.parse(s.conf_state as string) as ConfState);
    this.prevIndex = s.prev_index as number;
    this.prevTerm = s.prev_term as number;
    const snapIndex = s.snap_index as number;
    this.snap =
      snapIndex === 0 && s.snap_conf_state === null
        ? undefined
        : {
            meta: { index: snapIndex, term: s.snap_term as number, confState: JSON.parse(s.snap_conf_state as string) as ConfState },
            data: (s.snap_data as Uint8Array | null) ?? new Uint8Array(0),
          };
    // Term runs straight from SQL: one row per term change, found by the window function in C.
    const rows = this.db
      .prepare("SELECT idx, term FROM (SELECT idx, term, lag(term) OVER (ORDER BY idx) AS p FROM raft_log) WHERE p IS NULL OR p != term ORDER BY idx")
      .all();
    this.runs = rows.map((r) => [r.idx as number, r.term as number]);
    const lastRow = this.db.prepare("SELECT max(idx) AS m, count(*) AS n, min(idx) AS f FROM raft_log").get()!;
    const n = lastRow.n as number;
    this.last = n === 0 ? this.prevIndex : (lastRow.m as number);
    if (n > 0 && ((lastRow.f as number) !== this.prevIndex + 1 || this.last - this.prevIndex !== n)) {
      throw new RaftInvariantError(`raft log has a hole: ${n} entries stored in [${lastRow.f}, ${lastRow.m}], log start ${this.prevIndex + 1}`);
    }
  }

  /** True when nothing was ever written (no hard state, no conf state, no entries, no snapshot): bootstrap is allowed. */
  isEmpty(): boolean {
    return this.hard.term === 0 && this.bootConf === undefined && this.last === 0 && this.snap === undefined;
  }

  /**
   * Records the initial membership of a brand-new cluster (etcd's bootstrap, without conf change entries:
   * the members start knowing the configuration). Throws RaftInvariantError if the store is not empty.
   */
  bootstrap(confState: ConfState): void {
    if (!this.isEmpty()) throw new RaftInvariantError("bootstrap on a non-empty raft log");
    this.st.conf.run(JSON.stringify(confState));
    this.bootConf = confState;
  }

  /**
   * Hard state and the membership in force at the applied index: the state machine's `kv_meta.conf_state`
   * when it has one (it is written with each applied conf change), else the bootstrap / installed
   * snapshot's conf state, else the empty configuration.
   */
  initialState(): { hardState: HardState; confState: ConfState } {
    let confState = this.bootConf ?? this.snap?.meta.confState ?? EMPTY_CONF;
    const hasMeta = this.db.prepare("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'kv_meta'").get();
    if (hasMeta) {
      // Row name as in src/kv/schema.ts META.confState (literal here so the log does not depend on the KV module).
      const row = this.db.prepare("SELECT value FROM kv_meta WHERE name = ?").get("conf_state");
      if (row && typeof row.value === "string") confState = JSON.parse(row.value) as ConfState;
    }
    return { hardState: { ...this.hard }, confState: structuredCloneConf(confState) };
  }

  firstIndex(): number {
    return this.prevIndex + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  /**
   * Term of the entry at `index`, from the in-memory runs. `term(firstIndex() - 1)` is the log start's term
   * (the snapshot's when no tail is kept; 0 for an empty log). Throws CompactedError below the log start,
   * UnavailableError past lastIndex.
   */
  term(index: number): number {
    if (index === this.prevIndex) return this.prevTerm;
    if (index < this.prevIndex) throw new CompactedError(index);
    if (index > this.last) throw new UnavailableError(index);
    const runs = this.runs;
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[mid][0] <= index) lo = mid;
      else hi = mid - 1;
    }
    return runs[lo][1];
  }

  /**
   * Entries in [lo, hi): at least one when lo < hi, then stopping before the total data bytes pass
   * `maxBytes`. Each row's checksum is verified. Throws CompactedError if lo < firstIndex, UnavailableError
   * if hi > lastIndex + 1, RaftInvariantError for lo > hi or a corrupt / missing row ("stored entry N is corrupt").
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo > hi) throw new RaftInvariantError(`entries: lo ${lo} > hi ${hi}`);
    if (lo <= this.prevIndex) throw new CompactedError(lo);
    if (hi > this.last + 1) throw new UnavailableError(hi - 1);
    const out: Entry[] = [];
    let bytes = 0;
    const r0 = this.recent.length > 0 ? this.recent[0].index : Infinity;
    if (lo >= r0 && hi <= r0 + this.recent.length) {
      for (let i = lo; i < hi; i++) {
        const e = this.recent[i - r0];
        bytes += e.data.length;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
      return out;
    }
    let next = lo;
    while (next < hi) {
      const rows = this.st.range.all(next, hi, Math.min(PAGE_ROWS, hi - next));
      for (const row of rows) {
        if ((row.idx as number) !== next) throw new RaftInvariantError(`stored entry ${next} is missing`);
        const e = decodeRow(row);
        bytes += e.data.length;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
        next++;
      }
      if (rows.length === 0) throw new RaftInvariantError(`stored entry ${next} is missing`);
    }
    return out;
  }

  /**
   * The latest snapshot (metadata + reference data). Throws SnapshotUnavailableError while one is being made,
   * when there is none, and when the latest record has no file (empty `data`: a compaction point recorded by
   * `setSnapshot` whose state is the database itself, src/kv/snapshot.ts `compactionPoint`). In that last case
   * it also notes that a file is wanted (`snapshotFileWanted`); the leader core retries on the follower's
   * next answer (raft/leader.ts sendSnapshot), like etcd's ErrSnapshotTemporarilyUnavailable.
   */
  snapshot(): Snapshot {
    if (this.snapshotBusy || this.snap === undefined) throw new SnapshotUnavailableError();
    if (this.snap.data.byteLength === 0 && this.snap.meta.index > 0) {
      this.fileWanted = true;
      throw new SnapshotUnavailableError();
    }
    return { meta: { ...this.snap.meta, confState: structuredCloneConf(this.snap.meta.confState) }, data: this.snap.data };
  }

  /**
   * True once after `snapshot()` was refused because the latest record names no file: the node should make
   * a snapshot file now (a follower needs it). Reading clears the flag.
   */
  snapshotFileWanted(): boolean {
    const wanted = this.fileWanted;
    this.fileWanted = false;
    return wanted;
  }

  /** Index of the latest snapshot record (with or without a file); 0 when there is none. */
  snapshotIndex(): number {
    return this.snap?.meta.index ?? 0;
  }

  /** Reference data of the latest snapshot record (empty for a compaction point); undefined when there is none. */
  snapshotData(): Uint8Array | undefined {
    return this.snap?.data;
  }

  /** Marks a snapshot as being made (snapshot() throws SnapshotUnavailableError until cleared). */
  setSnapshotBusy(busy: boolean): void {
    this.snapshotBusy = busy;
  }

  /**
   * Persists one Ready as ONE transaction (one fsync: group commit of all its entries). Throws
   * RaftInvariantError for entries that are not contiguous or would leave a hole or overwrite compacted
   * entries; SQL errors are rethrown (fatal). Caches change only after the commit succeeds.
   */
  save(update: RaftLogUpdate): void {
    const finish = this.db.transaction(() => this.stage(update));
    finish();
  }

  /**
   * Writes `update` using the caller's already open transaction (e.g. a snapshot restore that also
   * replaces the KV tables) and returns the function to call once that transaction has committed, which
   * updates the in-memory caches. If the caller rolls back instead, it must call `reload()`.
   */
  stage(update: RaftLogUpdate): () => void {
    const { entries, snapshot, hardState } = update;
    let prevIndex = this.prevIndex;
    let prevTerm = this.prevTerm;
    let last = this.last;
    let runs = this.runs;
    let snap = this.snap;
    if (snapshot) {
      const { index, term } = snapshot.meta;
      const keep = index >= prevIndex && index <= last && index > prevIndex && this.term(index) === term;
      if (keep) {
        this.st.deleteUpTo.run(index);
        runs = dropRunsUpTo(runs, index);
      } else {
        this.st.deleteAll.run();
        runs = [];
        last = index;
      }
      prevIndex = index;
      prevTerm = term;
      this.st.prev.run(prevIndex, prevTerm);
      this.st.snap.run(index, term, JSON.stringify(snapshot.meta.confState), snapshot.data);
      snap = snapshot;
    }
    if (entries.length > 0) {
      const first = entries[0].index;
      if (first <= prevIndex) throw new RaftInvariantError(`save: entry ${first} is at or before the log start ${prevIndex}`);
      if (first > last + 1) throw new RaftInvariantError(`save: entry ${first} would leave a hole after last index ${last}`);
      if (first <= last) {
        this.st.deleteFrom.run(first);
        runs = truncateRuns(runs, first);
      } else if (runs === this.runs) {
        runs = runs.slice();
      }
      let expect = first;
      for (const e of entries) {
        if (e.index !== expect) throw new RaftInvariantError(`save: entries not contiguous at ${e.index} (expected ${expect})`);
        const type = e.type === "confChange" ? 1 : 0;
        const cc = e.confChange === undefined ? null : JSON.stringify(e.confState ? { change: e.confChange, state: e.confState } : { change: e.confChange });
        this.st.insert.run(e.index, e.term, type, e.data, cc, entryChecksum(e.index, e.term, type, e.data, cc));
        const tail = runs[runs.length - 1];
        if (tail === undefined || tail[1] !== e.term) runs.push([e.index, e.term]);
        expect++;
      }
      last = expect - 1;
    }
    if (hardState) this.st.hard.run(hardState.term, hardState.vote, hardState.commit);
    return () => {
      this.prevIndex = prevIndex;
      this.prevTerm = prevTerm;
      this.last = last;
      this.runs = runs;
      this.snap = snap;
      if (hardState) this.hard = { ...hardState };
      // The recent entries follow the log: what the snapshot or the overwrite removed goes, new ones join.
      this.forgetRecent(prevIndex, entries.length > 0 ? entries[0].index - 1 : last);
      if (entries.length > 0) this.rememberRecent(entries);
    };
  }

  /** Drops recent entries at or below `upTo` (log start moved) or above `last` (suffix deleted). */
  private forgetRecent(upTo: number, last: number): void {
    if (this.recent.length === 0) return;
    const r0 = this.recent[0].index;
    const from = Math.max(0, upTo + 1 - r0);
    const to = Math.max(from, Math.min(this.recent.length, last + 1 - r0));
    if (from === 0 && to === this.recent.length) return;
    this.recent = this.recent.slice(from, to);
    this.recentBytes = this.recent.reduce((n, e) => n + e.data.length, 0);
  }

  /** Appends just-committed `entries` (contiguous, checked by stage) to the recent window, trimming its front. */
  private rememberRecent(entries: Entry[]): void {
    const first = entries[0].index;
    const r0 = this.recent.length > 0 ? this.recent[0].index : first;
    // forgetRecent already cut everything >= first that was overwritten; a gap means the window is stale.
    if (first !== r0 + this.recent.length) {
      this.recent = [];
      this.recentBytes = 0;
    }
    for (const e of entries) {
      this.recent.push(e);
      this.recentBytes += e.data.length;
    }
    if (this.recent.length <= RECENT_MAX_ENTRIES && this.recentBytes <= RECENT_MAX_BYTES) return;
    // Past a bound, trim to three quarters of it, so the copy below happens once per many saves.
    let drop = 0;
    let bytes = this.recentBytes;
    while (this.recent.length - drop > 1 && (this.recent.length - drop > (RECENT_MAX_ENTRIES * 3) / 4 || bytes > (RECENT_MAX_BYTES * 3) / 4)) {
      bytes -= this.recent[drop].data.length;
      drop++;
    }
    if (drop > 0) {
      this.recent = this.recent.slice(drop);
      this.recentBytes = bytes;
    }
  }

  /**
   * Records a snapshot made locally (src/kv/snapshot.ts) as the latest one, without touching the log:
   * the entries it covers stay until `compact`. `snapshot.data` may be empty: a compaction point with no
   * file (`compactionPoint`), which `snapshot()` refuses until a file is recorded. Throws
   * RaftInvariantError if it is older than the current one.
   */
  setSnapshot(snapshot: Snapshot): void {
    if (this.snap && snapshot.meta.index < this.snap.meta.index) {
      throw new RaftInvariantError(`setSnapshot: index ${snapshot.meta.index} is older than ${this.snap.meta.index}`);
    }
    this.st.snap.run(snapshot.meta.index, snapshot.meta.term, JSON.stringify(snapshot.meta.confState), snapshot.data);
    this.snap = snapshot;
  }

  /**
   * Drops the entries <= `index` (etcd MemoryStorage.Compact); the new log start's term is remembered so
   * term(firstIndex()-1) still answers. No-op when index < firstIndex. Throws RaftInvariantError when
   * index > lastIndex or past the latest snapshot (entries not covered by a snapshot must stay to rebuild state).
   */
  compact(index: number): void {
    if (index <= this.prevIndex) return;
    if (index > this.last) throw new RaftInvariantError(`compact: ${index} is past the last index ${this.last}`);
    const snapIndex = this.snap?.meta.index ?? 0;
    if (index > snapIndex) throw new RaftInvariantError(`compact: ${index} is past the latest snapshot ${snapIndex}`);
    const term = this.term(index);
    this.db.transaction(() => {
      this.st.deleteUpTo.run(index);
      this.st.prev.run(index, term);
    });
    this.prevIndex = index;
    this.prevTerm = term;
    this.runs = dropRunsUpTo(this.runs, index);
    this.forgetRecent(index, this.last);
  }

  /** Reloads every cache from SQL (after a caller's transaction around `stage` rolled back). */
  reload(): void {
    this.load();
  }

  /** Reads the term straight from SQL, bypassing the cache (tests check the cache against it). */
  storedTerm(index: number): number | undefined {
    return this.st.termAt.get(index)?.term as number | undefined;
  }
}

/** Decodes and verifies one raft_log row; a checksum mismatch is fatal ("stored entry N is corrupt"). */
function decodeRow(row: SqlRow): Entry {
  const index = row.idx as number;
  const term = row.term as number;
  const type = row.type as number;
  const data = (row.data as Uint8Array | null) ?? new Uint8Array(0);
  const cc = row.conf_change as string | null;
  if (entryChecksum(index, term, type, data, cc) !== row.checksum) {
    throw new RaftInvariantError(`stored entry ${index} is corrupt (checksum mismatch)`);
  }
  const e: Entry = { index, term, type: type === 1 ? "confChange" : "normal", data };
  if (cc !== null) {
    const stored = JSON.parse(cc) as { change: ConfChange; state?: ConfState };
    e.confChange = stored.change;
    if (stored.state) e.confState = stored.state;
  }
  return e;
}

/** Runs after deleting entries >= `from` (a suffix overwrite). Returns a new array. */
function truncateRuns(runs: Array<[number, number]>, from: number): Array<[number, number]> {
  const out = runs.filter((r) => r[0] < from);
  return out;
}

/** Runs after deleting entries <= `index` (compaction): the run holding index+1 now starts there. Returns a new array. */
function dropRunsUpTo(runs: Array<[number, number]>, index: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < runs.length; i++) {
    const end = i + 1 < runs.length ? runs[i + 1][0] - 1 : Infinity;
    if (end <= index) continue;
    out.push([Math.max(runs[i][0], index + 1), runs[i][1]]);
  }
  return out;
}

/** A deep copy of a conf state, so callers cannot mutate the cached one. */
function structuredCloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], votersOutgoing: [...c.votersOutgoing], learners: [...c.learners] };
}
