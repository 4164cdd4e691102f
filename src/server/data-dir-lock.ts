/**
 * One process per data dir. Two edgekv processes on one data dir (a second start with the same
 * `--data-dir`, a container restarted while the old one still runs, a copy-pasted unit file) would write the
 * same SQLite file under one identity: each would vote, append and acknowledge on its own, and the Raft log
 * the other wrote would be overwritten — acknowledged writes lost. etcd refuses such a start with a file lock
 * on its WAL; so does every embedded store (LevelDB's LOCK file).
 *
 * None of the three runtimes offers flock in `node:fs`, and a pid file cannot tell a live owner from a
 * recycled PID. SQLite can: its unix VFS locks with fcntl byte-range locks, which the kernel drops when the
 * owning process dies (kill -9 included) and which SQLite also enforces between connections of one process.
 * So the lock is a tiny SQLite database, `<dataDir>/edgekv.lock`, with a write transaction (BEGIN
 * IMMEDIATE in EXCLUSIVE locking mode: SQLite's EXCLUSIVE fcntl lock on edgekv.lock itself, not only the
 * WAL write lock in edgekv.lock-shm) held open for the node's whole life and never committed. It goes
 * through the same `openSqlite` port as the store, so it works on Bun, Deno and Node alike. Deleting or
 * replacing edgekv.lock itself while the owner runs still defeats it (a new file, a new inode, no lock), as
 * deleting etcd's locked WAL file or LevelDB's LOCK does.
 *
 * A SIGSTOPped owner still holds it (the process is alive and may resume): that is intended.
 */
import type { SqlDriver } from "../kv/sql-driver.ts";
import type { SnapshotFiles } from "../kv/snapshot.ts";

/** Lock database in the data dir (with its `-wal`/`-shm` companions while held). */
export const LOCK_FILE = "edgekv.lock";
/** Who took the lock last (JSON of `LockOwner`), for the refusal message only: the SQLite lock decides. */
export const LOCK_OWNER_FILE = "edgekv.lock.json";

/** Recorded beside the lock so a refused start can say who holds it. */
export interface LockOwner {
  nodeId: string;
  /** Process id of the owner, or -1 when the runtime does not tell. */
  pid: number;
  /** ISO-8601 time the lock was taken. */
  startedAt: string;
}

/** Thrown by `lockDataDir` when another live process (or another open node in this process) holds the lock. */
export class DataDirLockedError extends Error {
  /** Stable code, also used in the log line of a refused start. */
  readonly code = "data_dir_locked";
  constructor(
    message: string,
    /** The last recorded owner, when the owner file was readable. */
    readonly owner: LockOwner | undefined,
  ) {
    super(message);
    this.name = "DataDirLockedError";
  }
}

/**
 * Thrown by `lockDataDir` when the lock cannot be taken and the file system holding the data dir has less
 * than `DISK_FULL_BYTES` free: SQLite then reports "disk I/O error" or "database or disk is full", and the
 * way out is free space, not deleting the lock file (B8 break session 2026-12-01).
 */
export class DiskFullError extends Error {
  /** Stable code, also used in the log line of a refused start. */
  readonly code = "disk_full";
  constructor(
    message: string,
    /** Bytes free on the data dir's file system when the start was refused. */
    readonly freeBytes: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "DiskFullError";
  }
}

/** Below this many free bytes (1 MiB) a failure to take the lock is reported as a full disk (`DiskFullError`). */
export const DISK_FULL_BYTES = 1024 * 1024;

/** A held lock; `release()` is idempotent. */
export interface DataDirLock {
  release(): void;
}

/** What `lockDataDir` needs. */
export interface LockDataDirOptions {
  dataDir: string;
  /** The store's SQLite port (NodePorts.openSqlite). */
  openSqlite(path: string): Promise<SqlDriver>;
  files: SnapshotFiles;
  owner: LockOwner;
  /**
   * Bytes free on the file system holding a path (NodePorts.freeBytes); undefined = unknown. Asked only when
   * the lock cannot be taken, to tell a full disk (`DiskFullError`) from a broken lock file.
   */
  freeBytes?(path: string): number | undefined;
  /**
   * How long to wait for a holder to go away before refusing, ms (SQLite busy_timeout). Covers an owner
   * that is still exiting when its successor starts; default 2000. The port's open pragmas wait first (its
   * own busy_timeout, 5000 ms), so a refusal comes after up to ~5 s.
   */
  waitMs?: number;
}

/**
 * Takes the data dir's lock or throws `DataDirLockedError` naming the recorded owner, or `DiskFullError` when
 * the lock cannot be taken and the data dir's file system is (nearly) full. Other errors (the directory is
 * not writable, the lock file is not a database) throw an Error naming the lock file, with the driver's error
 * as `cause`.
 */
export async function lockDataDir(opts: LockDataDirOptions): Promise<DataDirLock> {
  const path = `${opts.dataDir}/${LOCK_FILE}`;
  let db: SqlDriver | undefined;
  try {
    // Inside the try: the port's open pragmas read the file, which waits for (and then fails on) a holder's
    // exclusive lock; that is a refusal too, not an unexpected error.
    db = await opts.openSqlite(path);
    db.exec(`PRAGMA busy_timeout=${Math.max(0, Math.floor(opts.waitMs ?? 2000))}`);
    // EXCLUSIVE locking mode: the write transaction below then takes SQLite's EXCLUSIVE fcntl lock on
    // edgekv.lock itself and keeps it until close. In NORMAL mode a WAL write lock lives only in
    // edgekv.lock-shm: deleting that file (a "stale -shm" cleanup, or a restore) let a second process create
    // a fresh -shm, find no locks, and serve on the same data dir (B1 break session 2026-11-30).
    db.exec("PRAGMA locking_mode=EXCLUSIVE");
    db.exec("BEGIN IMMEDIATE");
  } catch (err) {
    try {
      db?.close();
    } catch {
      // The refusal below matters more than a failed close.
    }
    if (!/locked|busy/i.test((err as Error).message)) {
      const free = opts.freeBytes?.(opts.dataDir);
      if (free !== undefined && free < DISK_FULL_BYTES) {
        throw new DiskFullError(
          `cannot take the data dir lock ${path}: the file system holding ${opts.dataDir} is full (${free} bytes free; ` +
            `SQLite says: ${(err as Error).message}). Free space there or grow the volume, then start again; the lock ` +
            `file and the data are intact, do not delete them.`,
          free,
          { cause: err },
        );
      }
      // The driver's own message ("file is not a database") names no file; the lock file holds no data.
      throw new Error(
        `cannot take the data dir lock ${path}: ${(err as Error).message}. The lock file holds no data: if no edgekv process ` +
          `uses ${opts.dataDir}, delete ${path} (and its -wal/-shm) and start again.`,
        { cause: err },
      );
    }
    const owner = readOwner(opts.files, `${opts.dataDir}/${LOCK_OWNER_FILE}`);
    const who = owner ? `node ${owner.nodeId}, pid ${owner.pid}, since ${owner.startedAt}` : "owner unknown";
    throw new DataDirLockedError(
      `data dir ${opts.dataDir} is in use by another edgekv process (${who}): two processes on one data dir would ` +
        `overwrite each other's Raft log and lose acknowledged writes. Stop that process first, or give this node its own data dir.`,
      owner,
    );
  }
  opts.files.writeTextDurably(`${opts.dataDir}/${LOCK_OWNER_FILE}`, JSON.stringify(opts.owner) + "\n");
  let held = true;
  const heldDb = db;
  return {
    release() {
      if (!held) return;
      held = false;
      try {
        heldDb.exec("ROLLBACK");
      } finally {
        heldDb.close();
      }
    },
  };
}

function readOwner(files: SnapshotFiles, path: string): LockOwner | undefined {
  try {
    const text = files.readText(path);
    if (text === undefined) return undefined;
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.nodeId !== "string" || typeof o.pid !== "number" || typeof o.startedAt !== "string") return undefined;
    return { nodeId: o.nodeId, pid: o.pid, startedAt: o.startedAt };
  } catch {
    return undefined;
  }
}
