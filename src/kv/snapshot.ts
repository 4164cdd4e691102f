/**
 * Snapshots of a node's SQLite database (DESIGN.md "Storage"): create a consistent copy at the applied
 * index with `VACUUM INTO`, make it durable, name it `snap-<term>-<index>.db` with a `.json` metadata file
 * beside it, keep the last few; restore one by replacing the KV tables in ONE transaction that also resets
 * the Raft log to the snapshot; compact the log keeping a tail of entries behind the snapshot.
 *
 * Pure: the few file operations needed come in through the `SnapshotFiles` port (implemented over node:fs
 * by runtime-adapters/snapshot-files.ts). The SQL runs on the caller's driver, synchronously: creating a
 * snapshot blocks the caller (the apply loop, the only writer) for the duration of the VACUUM INTO, which
 * is what makes the copy exactly "the state at the applied index".
 */
import { RaftInvariantError, type ConfState, type Snapshot, type SnapshotMeta } from "../raft/types.ts";
import { crc32c } from "./checksum.ts";
import type { SqliteRaftLog } from "./raft-log.ts";
import { KV_TABLES, META, fillHistoryChain, tableColumns } from "./schema.ts";
import type { HardState } from "../raft/types.ts";
import type { SqlDriver } from "./sql-driver.ts";

/** File operations used by snapshots. Every method throws the platform's error on failure. */
export interface SnapshotFiles {
  /** Creates the directory (and parents) if missing. */
  ensureDir(dir: string): void;
  /** Entry names (not paths) in `dir`, sorted; [] if the directory is missing. */
  list(dir: string): string[];
  exists(path: string): boolean;
  /** fsync of a file or of a directory (after a rename or create in it). */
  fsync(path: string): void;
  /** Atomic rename within one file system. */
  rename(from: string, to: string): void;
  /** Deletes a file; a missing file is fine. */
  remove(path: string): void;
  /** Size in bytes. */
  size(path: string): number;
  /** Calls `fn` with each successive chunk (at most `chunkBytes` bytes) of the file. */
  forEachChunk(path: string, chunkBytes: number, fn: (chunk: Uint8Array) => void): void;
  /** Writes a small text file so that after return it is durable and complete (temp file, fsync, rename). */
  writeTextDurably(path: string, text: string): void;
  /** The file's text, or undefined if it does not exist. */
  readText(path: string): string | undefined;
}

/** A snapshot file on disk and what it holds. Stored as `<name without .db>.json` beside the file. */
export interface SnapshotInfo {
  /** File name, `snap-<term>-<index>.db`. */
  name: string;
  /** Full path of the file. */
  path: string;
  meta: SnapshotMeta;
  sizeBytes: number;
  /** CRC-32C of the whole file (src/kv/checksum.ts), checked before a restore and after a transfer. */
  crc32c: number;
}

/** Options shared by create and restore. */
export interface SnapshotOptions {
  /** Directory of the snapshot files (e.g. `$DATA_DIR/snapshots`). */
  dir: string;
  files: SnapshotFiles;
  /** Tables copied by restore; default KV_TABLES (src/kv/schema.ts). */
  tables?: string[];
  /** Snapshot files kept after a new one is made; default 2. */
  keep?: number;
  /**
   * Reads the snapshot metadata from the given schema ("main" or the attached copy). Default: the state
   * machine's `kv_meta` rows applied_index, applied_term and conf_state.
   */
  readMeta?: (db: SqlDriver, schema: string) => SnapshotMeta;
  /**
   * Whether the copy must be at the live database's applied index (default true: the caller is the only
   * writer and blocks meanwhile). False when the copy is made on a second connection while the apply loop
   * goes on (runtime-adapters/snapshot-worker.ts): the copy is then at whatever index its read transaction
   * saw, and its metadata, read from the copy itself, says which.
   */
  checkLive?: boolean;
}

/** Chunk size used to checksum a file: 1 MiB. */
const CHUNK_BYTES = 1 << 20;
const SNAP_FILE = /^snap-(\d+)-(\d+)\.db$/;

/** Quotes a value as an SQL string literal (VACUUM INTO and ATTACH take no bind parameters for the file). */
export function sqlLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** Default metadata reader: the KV state machine's kv_meta table (src/kv/schema.ts META) in `schema`. */
export function readKvMeta(db: SqlDriver, schema: string): SnapshotMeta {
  const rows = db.prepare(`SELECT name, value FROM ${schema}.kv_meta WHERE name IN (?, ?, ?)`).all(META.appliedIndex, META.appliedTerm, META.confState);
  const m = new Map(rows.map((r) => [r.name as string, r.value]));
  const confText = m.get(META.confState);
  const confState: ConfState = typeof confText === "string" ? (JSON.parse(confText) as ConfState) : { voters: [], votersOutgoing: [], learners: [] };
  return { index: Number(m.get(META.appliedIndex) ?? 0), term: Number(m.get(META.appliedTerm) ?? 0), confState };
}

/** CRC-32C and size of a file, streamed in 1 MiB chunks. */
export function fileChecksum(files: SnapshotFiles, path: string): { crc32c: number; sizeBytes: number } {
  let crc = 0;
  let sizeBytes = 0;
  files.forEachChunk(path, CHUNK_BYTES, (chunk) => {
    crc = crc32c(chunk, crc);
    sizeBytes += chunk.length;
  });
  return { crc32c: crc, sizeBytes };
}

/**
 * Makes a snapshot of `db` at its applied index: VACUUM INTO `<dir>/snap-<index>.tmp` (a transactionally
 * consistent, compacted copy; SQLite lang_vacuum.html), fsync, metadata read from the copy, CRC-32C over
 * the file, rename to `snap-<term>-<index>.db`, durable `.json` beside it, directory fsync, then older
 * snapshots beyond `keep` removed. Must not be called inside a transaction. Throws RaftInvariantError if
 * the copy's metadata differs from the live database's (someone wrote concurrently), else the SQL/fs error.
 */
export function createSnapshot(db: SqlDriver, opts: SnapshotOptions): SnapshotInfo {
  const { dir, files } = opts;
  const readMeta = opts.readMeta ?? readKvMeta;
  files.ensureDir(dir);
  const live = readMeta(db, "main");
  // A second connection's copy may land past `live.index`: a per-call suffix keeps two temp names apart.
  const tmp = `${dir}/snap-${live.index}${opts.checkLive === false ? "-bg" : ""}.tmp`;
  files.remove(tmp); // VACUUM INTO refuses an existing non-empty target (a leftover from a crash)
  db.exec(`VACUUM INTO ${sqlLiteral(tmp)}`);
  files.fsync(tmp);
  let meta: SnapshotMeta;
  db.exec(`ATTACH DATABASE ${sqlLiteral(tmp)} AS snap_new`);
  try {
    meta = readMeta(db, "snap_new");
  } finally {
    db.exec("DETACH DATABASE snap_new");
  }
  if ((opts.checkLive ?? true) && (meta.index !== live.index || meta.term !== live.term)) {
    files.remove(tmp);
    throw new RaftInvariantError(`snapshot copy is at ${meta.term}/${meta.index} but the database was at ${live.term}/${live.index}`);
  }
  const sum = fileChecksum(files, tmp);
  const name = `snap-${meta.term}-${meta.index}.db`;
  const path = `${dir}/${name}`;
  files.rename(tmp, path);
  const info: SnapshotInfo = { name, path, meta, sizeBytes: sum.sizeBytes, crc32c: sum.crc32c };
  files.writeTextDurably(metaPath(path), JSON.stringify(info));
  files.fsync(dir);
  pruneSnapshots(files, dir, opts.keep ?? 2);
  return info;
}

/**
 * Records a snapshot file that arrived from the leader (InstallSnapshot) as a complete local snapshot: writes
 * its `.json` metadata durably, so `listSnapshots` sees it, `pruneSnapshots` keeps it as one of the newest,
 * and this node can stream it on if it becomes leader (without the metadata the next prune would delete the
 * file the Raft log's snapshot record still names).
 */
export function recordSnapshotFile(files: SnapshotFiles, info: SnapshotInfo): void {
  files.writeTextDurably(metaPath(info.path), JSON.stringify(info));
}

function metaPath(dbPath: string): string {
  return dbPath.replace(/\.db$/, ".json");
}

/** Snapshots in `dir` that have both their file and their metadata, oldest first (by index, then term). */
export function listSnapshots(files: SnapshotFiles, dir: string): SnapshotInfo[] {
  const out: SnapshotInfo[] = [];
  for (const name of files.list(dir)) {
    if (!SNAP_FILE.test(name)) continue;
    const text = files.readText(metaPath(`${dir}/${name}`));
    if (text === undefined) continue; // crashed between rename and metadata write: not a snapshot yet
    const info = JSON.parse(text) as SnapshotInfo;
    out.push({ ...info, path: `${dir}/${name}` });
  }
  return out.sort((a, b) => a.meta.index - b.meta.index || a.meta.term - b.meta.term);
}

/** The newest complete snapshot in `dir`, or undefined. */
export function latestSnapshot(files: SnapshotFiles, dir: string): SnapshotInfo | undefined {
  const all = listSnapshots(files, dir);
  return all[all.length - 1];
}

/** Removes all but the newest `keep` snapshots, plus leftover temp files and files without metadata. */
export function pruneSnapshots(files: SnapshotFiles, dir: string, keep: number): void {
  const complete = listSnapshots(files, dir);
  const keepNames = new Set(complete.slice(Math.max(0, complete.length - keep)).map((s) => s.name));
  for (const name of files.list(dir)) {
    const m = /^(snap-\d+-\d+)\.(db|json)$/.exec(name);
    const stale = m ? !keepNames.has(`${m[1]}.db`) : /^snap-\d+(?:-bg)?\.tmp$|\.json\.tmp$/.test(name);
    if (stale) files.remove(`${dir}/${name}`);
  }
}

/**
 * The core's view of a snapshot file: its metadata, and as `data` a small ASCII JSON reference
 * `{"name","sizeBytes","crc32c"}` (parse with `parseSnapshotRef`) that the transport uses to stream the file.
 */
export function snapshotRef(info: SnapshotInfo): Snapshot {
  const json = JSON.stringify({ name: info.name, sizeBytes: info.sizeBytes, crc32c: info.crc32c });
  const data = new Uint8Array(json.length);
  for (let i = 0; i < json.length; i++) data[i] = json.charCodeAt(i) & 0x7f;
  return { meta: info.meta, data };
}

/** Decodes `snapshotRef(...).data`. Throws on malformed data. */
export function parseSnapshotRef(data: Uint8Array): { name: string; sizeBytes: number; crc32c: number } {
  let json = "";
  for (const b of data) json += String.fromCharCode(b);
  const ref = JSON.parse(json) as { name: string; sizeBytes: number; crc32c: number };
  if (!SNAP_FILE.test(ref.name)) throw new Error(`bad snapshot reference ${json}`);
  return ref;
}

/**
 * A compaction point: the Raft snapshot record of the state at the applied index of `db`, with no file.
 * `meta` comes from `readMeta` (default: kv_meta's applied index, applied term and conf state) and `data`
 * is empty. The KV state and the applied index live in the same database and commit in the same
 * transaction as the entries that made them, so the database itself holds the state the record names: the
 * log behind it can be dropped without a copy. A copy (`createSnapshot`) is made only when a follower needs
 * one (`SqliteRaftLog.snapshotFileWanted`), as etcd makes its snapshot message from the live bbolt file
 * (etcdserver createMergedSnapshotMessage). Must be read outside a write transaction of another caller.
 */
export function compactionPoint(db: SqlDriver, readMeta: (db: SqlDriver, schema: string) => SnapshotMeta = readKvMeta): Snapshot {
  return { meta: readMeta(db, "main"), data: new Uint8Array(0) };
}

/** Temp files of a snapshot being made (`createSnapshot`'s copy, SQLite's journal beside it, a `.json` being written). */
const MAKING_TEMP = /^snap-\d+(?:-bg)?\.tmp(?:-journal)?$|\.json\.tmp$/;

/**
 * Removes every complete snapshot file in `dir` (the `.db` and its `.json`) and the temp files of copies
 * this node was making (a crash or a failed copy leaves them: tens of MB each), leaving files still being
 * received (`.part`, or a `.db` without its `.json` yet) alone. Called once the log's record is a compaction
 * point, when no copy is being made or sent: no record names the older files any more, so no follower will
 * be sent them. Returns how many complete snapshots it removed.
 */
export function removeSnapshotFiles(files: SnapshotFiles, dir: string): number {
  const all = listSnapshots(files, dir);
  for (const s of all) {
    files.remove(metaPath(s.path));
    files.remove(s.path);
  }
  for (const name of files.list(dir)) if (MAKING_TEMP.test(name)) files.remove(`${dir}/${name}`);
  return all.length;
}

/**
 * At start, before anything runs: removes what a crash left in `dir`, namely temp files of copies being made,
 * partial received files (`.part`), and snapshot files without their `.json`, except `keepName` (the file the
 * log's record names: a crash between installing a received file and writing its `.json` leaves it so).
 * Returns the names removed.
 */
export function removeSnapshotLeftovers(files: SnapshotFiles, dir: string, keepName?: string): string[] {
  const removed: string[] = [];
  const names = files.list(dir);
  const have = new Set(names);
  for (const name of names) {
    const orphanDb = SNAP_FILE.test(name) && !have.has(name.replace(/\.db$/, ".json")) && name !== keepName;
    if (MAKING_TEMP.test(name) || name.endsWith(".part") || orphanDb) {
      files.remove(`${dir}/${name}`);
      removed.push(name);
    }
  }
  return removed;
}

/**
 * Replaces the KV state of `db` with the snapshot file at `path` and resets the Raft log to it, in ONE
 * transaction: ATTACH the file, DELETE + INSERT ... SELECT for each table, `log.stage({ snapshot })`
 * (plus `hardState` when given), COMMIT, DETACH. Tables missing in `db` are created from the file's own
 * schema. When `expected` is given the file's CRC-32C and size are checked first. Returns the metadata read
 * from the file. Throws on a checksum mismatch, an SQL or fs error (the database is then unchanged).
 */
export function restoreSnapshot(
  db: SqlDriver,
  log: SqliteRaftLog,
  path: string,
  opts: Omit<SnapshotOptions, "dir" | "keep"> & { expected?: { crc32c: number; sizeBytes: number }; hardState?: HardState },
): SnapshotMeta {
  const { files } = opts;
  const tables = opts.tables ?? KV_TABLES;
  const readMeta = opts.readMeta ?? readKvMeta;
  if (opts.expected) {
    const sum = fileChecksum(files, path);
    if (sum.crc32c !== opts.expected.crc32c || sum.sizeBytes !== opts.expected.sizeBytes) {
      throw new RaftInvariantError(`snapshot file ${path} is corrupt: crc32c ${sum.crc32c}/${sum.sizeBytes} bytes, expected ${opts.expected.crc32c}/${opts.expected.sizeBytes}`);
    }
  }
  const name = path.slice(path.lastIndexOf("/") + 1);
  db.exec(`ATTACH DATABASE ${sqlLiteral(path)} AS snap_src`);
  try {
    const meta = readMeta(db, "snap_src");
    createMissingTables(db, tables);
    const sum = opts.expected ?? fileChecksum(files, path);
    const ref = snapshotRef({ name, path, meta, sizeBytes: sum.sizeBytes, crc32c: sum.crc32c });
    let finish: (() => void) | undefined;
    try {
      db.transaction(() => {
        for (const t of tables) copyTable(db, t);
        finish = log.stage({ entries: [], snapshot: ref, hardState: opts.hardState });
      });
    } catch (err) {
      log.reload();
      throw err;
    }
    finish!();
    return meta;
  } finally {
    db.exec("DETACH DATABASE snap_src");
  }
}

/**
 * Replaces main's table `t` with the attached snapshot's. A snapshot written before a column was added
 * (an older schema, e.g. before the history chain of schema.ts) copies the columns both have; the others
 * take their defaults, and a history copied without its chain, or from a file an older build wrote (it
 * has `kv_history_by_key`), gets the chain filled (`fillHistoryChain`). Throws
 * RaftInvariantError when the snapshot has a column main does not know (a newer schema: this node cannot
 * hold that state).
 */
function copyTable(db: SqlDriver, t: string): void {
  const mine = tableColumns(db, t);
  const theirs = tableColumns(db, t, "snap_src");
  const unknown = theirs.filter((c) => !mine.includes(c));
  if (unknown.length > 0) throw new RaftInvariantError(`snapshot table ${t} has columns this node does not know: ${unknown.join(", ")}`);
  db.exec(`DELETE FROM main.${t}`);
  db.exec(`INSERT INTO main.${t} (${theirs.join(", ")}) SELECT ${theirs.join(", ")} FROM snap_src.${t}`);
  // A history without links, or one an older build wrote to (it keeps `kv_history_by_key` and writes no links).
  const olderWriter = db.prepare("SELECT 1 AS x FROM snap_src.sqlite_master WHERE type = 'index' AND name = 'kv_history_by_key'").get() !== undefined;
  if (t === "kv_history" && (!theirs.includes("prev_revision") || olderWriter)) fillHistoryChain(db);
}

/** Creates in main, from the attached file's schema, any table of `tables` (with its indexes) that main lacks. */
function createMissingTables(db: SqlDriver, tables: string[]): void {
  const have = new Set(db.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'").all().map((r) => r.name as string));
  for (const t of tables) {
    if (have.has(t)) continue;
    const defs = db.prepare("SELECT sql FROM snap_src.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC").all(t);
    if (defs.length === 0) throw new RaftInvariantError(`snapshot has no table ${t}`);
    for (const d of defs) db.exec(d.sql as string);
  }
}

/**
 * Most entries kept in the log behind a snapshot: 5000, etcd's SnapshotCatchUpEntries (etcdserver/server.go),
 * so a follower a few thousand entries behind catches up from the log instead of a whole snapshot.
 */
export const LOG_TAIL_ENTRIES_MAX = 5000;

/**
 * Entries to keep behind a snapshot taken every `snapshotEntries` applied entries: the smaller of the two,
 * so a small interval (tests use 40-100) still compacts, and the default interval (100 000, etcd's
 * --snapshot-count) keeps the log at most ~105 000 entries instead of twice the interval.
 */
export function logTailEntriesFor(snapshotEntries: number): number {
  return Math.max(1, Math.min(snapshotEntries, LOG_TAIL_ENTRIES_MAX));
}

/**
 * Whether a node whose latest snapshot is at `lastIndex` is due for one at applied index `applied`: true once
 * the applied index has passed a point k × `snapshotEntries` − `phaseEntries` (k ≥ 1, entries) that the last
 * snapshot had not. With phase 0 that is every `snapshotEntries` applied entries (etcd's --snapshot-count);
 * `snapshotPhaseEntries` spreads the members of a cluster over the interval.
 */
export function snapshotDue(applied: number, lastIndex: number, snapshotEntries: number, phaseEntries: number): boolean {
  return Math.floor((applied + phaseEntries) / snapshotEntries) > Math.floor((lastIndex + phaseEntries) / snapshotEntries);
}

/**
 * The phase (entries, in [0, `snapshotEntries`)) of member `self` among `memberIds`: its position in the
 * sorted ids × `snapshotEntries` / number of members, 0 when it is not among them. Members apply the same
 * entries at nearly the same time, so without a phase all of them copied their database at once; three
 * VACUUM INTO copies at once on a shared 2-core machine made the put@256 p99 of docs/bench.md "History
 * chain". Spread, at most one member is copying at a time while the others keep the quorum's pace. A
 * membership change shifts the phase once, which only moves the next snapshot.
 */
export function snapshotPhaseEntries(memberIds: readonly string[], self: string, snapshotEntries: number): number {
  const ids = [...new Set(memberIds)].sort();
  const at = ids.indexOf(self);
  return at <= 0 ? 0 : Math.floor((at * snapshotEntries) / ids.length);
}

/**
 * Whether a compaction point must wait because of a snapshot file just made for a follower: while `nowMs` is
 * before `heldUntilMs` (0 = no file held), and once the file was sent, until every follower it was sent to
 * (`sentTo`: follower id → the file's index) has a match index (`matchIndex(id)`, 0 when unknown) within
 * `logTailEntries` of `applied`. A point recorded as soon as the file was sent dropped the entries right
 * after it, the follower that had just installed it was behind the log start again, and a second full copy
 * followed every send (B5, docs/nemesis.md). Pure: the node passes its clock and the leader's progress.
 */
export function compactionPointHeld(
  nowMs: number,
  heldUntilMs: number,
  sentTo: ReadonlyMap<string, number>,
  matchIndex: (id: string) => number,
  applied: number,
  logTailEntries: number,
): boolean {
  if (heldUntilMs === 0 || nowMs >= heldUntilMs) return false;
  if (sentTo.size === 0) return true;
  const need = applied - logTailEntries;
  for (const id of sentTo.keys()) if (matchIndex(id) < need) return true;
  return false;
}

/**
 * Log compaction after a snapshot at `snapshotIndex`: drops the entries older than `logTailEntries` behind
 * it (default 5000, DESIGN.md defaults), so a follower slightly behind catches up from the log instead of a
 * whole snapshot. Returns the new first index.
 */
export function compactBehindSnapshot(log: SqliteRaftLog, snapshotIndex: number, logTailEntries = 5000): number {
  const upTo = Math.min(snapshotIndex - logTailEntries, log.lastIndex());
  if (upTo >= log.firstIndex()) log.compact(upTo);
  return log.firstIndex();
}

/**
 * One bounded step of `compactBehindSnapshot`: drops at most `maxEntries` of the oldest entries that a
 * snapshot at `snapshotIndex` with a tail of `logTailEntries` allows to drop, in one transaction. Returns
 * true while more are left. A node compacts in such steps between its other work: dropping the ~95 000
 * entries behind a snapshot in one transaction held each node's event loop 160-350 ms, all three nodes
 * within a second of each other (docs/bench.md "History chain"). Throws what `SqliteRaftLog.compact` throws.
 */
export function compactStepBehindSnapshot(log: SqliteRaftLog, snapshotIndex: number, logTailEntries: number, maxEntries: number): boolean {
  const upTo = Math.min(snapshotIndex - logTailEntries, log.lastIndex());
  const first = log.firstIndex();
  if (upTo < first) return false;
  const next = Math.min(upTo, first - 1 + Math.max(1, maxEntries));
  log.compact(next);
  return next < upTo;
}

/**
 * The whole local cycle: mark the log's snapshot busy, create the file, record it as the log's latest
 * snapshot (`snapshotRef`), compact keeping `logTailEntries` (unless `compact` is false: the caller then
 * compacts, e.g. in steps), clear busy. Returns the new snapshot's info.
 */
export function takeSnapshot(db: SqlDriver, log: SqliteRaftLog, opts: SnapshotOptions & { logTailEntries?: number; compact?: boolean }): SnapshotInfo {
  log.setSnapshotBusy(true);
  try {
    const info = createSnapshot(db, opts);
    log.setSnapshot(snapshotRef(info));
    if (opts.compact !== false) compactBehindSnapshot(log, info.meta.index, opts.logTailEntries ?? 5000);
    return info;
  } finally {
    log.setSnapshotBusy(false);
  }
}
