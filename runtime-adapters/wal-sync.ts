/**
 * The Raft log's fsync off the event loop (issue #6, write path). With `PRAGMA synchronous=FULL` SQLite
 * fsyncs the -wal file inside every COMMIT, on the calling thread: on a node that is the Ready loop's
 * persist step, and the whole process waited for the disk (27 % of a Bun leader's wall time under put
 * load, docs/bench.md). Instead the node commits the Ready's entries with `synchronous=NORMAL` (SQLite
 * writes the WAL frames with write(2) and returns) and then asks this object to fsync the -wal file; Node's
 * `fs.fdatasync` runs on the runtime's thread pool (libuv in Node, Bun's and Deno's own pools), so the event
 * loop meanwhile reads requests, proposes and applies. The node sends its replies and counts its own
 * entries as durable only after `sync()` resolves (src/server/node.ts `handleReady`). `syncNow()` makes the
 * same call on the calling thread, for a lone small Ready on a fast disk (node.ts `inlineSyncFits`), where the
 * two hand-offs to the pool and back cost more than the fsync blocks.
 *
 * It calls fdatasync(2), not fsync(2): both make the file's data durable, and fdatasync also the metadata
 * needed to read it back (the size, when an append grew the file); it skips only timestamps. SQLite
 * rewrites its -wal file in place after each full checkpoint, and an fsync of such a write also commits
 * the inode's new mtime to the filesystem journal: on this project's VM disk 4-8 ms per fsync against
 * 1-2 ms per fdatasync (a 16 KiB rewrite, 200 rounds; etcd preallocates its WAL files for the same reason).
 *
 * Why one fdatasync of the -wal file is enough: in WAL mode a COMMIT only appends frames to the -wal file; the
 * database file is written only by checkpoints, which fsync the WAL before and the database after copying
 * (SQLite's WAL format, synchronous=NORMAL). fdatasync(2) makes every byte written to the file before the call
 * durable, whichever descriptor wrote it, so a resolved `sync()` covers every COMMIT that returned before it
 * was called. The -wal file is the same inode while a connection is open (a checkpoint may truncate or
 * overwrite it in place, never replace it, and the node never reopens its database). So the syncer opens
 * the file when it is CREATED (the node creates it in `EdgeNode.start`, after `open` wrote to the database
 * in WAL mode, so SQLite's -wal file exists; it also exists as soon as an existing WAL database is read),
 * keeps that descriptor's identity (device and inode), and `sync()` compares the file at the path with it
 * before each fsync and REJECTS if they differ: someone replaced the file, SQLite keeps appending to the
 * old, now unlinked inode, and no fsync can make those commits survive a restart (a syncer that reopened
 * the new file let a node acknowledge 20 of 20 puts that a kill -9 then lost; H5's finding,
 * test/integration/wal-sync.test.ts). Opening at the first sync instead missed a replacement made between
 * the node's start and its first fsync. A deleted file rejects with ENOENT; so does every `sync()` of a
 * syncer created while there was no -wal file (nothing written yet, or not a WAL database).
 */
import { closeSync, fdatasync, fdatasyncSync, fstatSync, openSync, statSync } from "node:fs";

/** Fsyncs one SQLite database's -wal file on the runtime's thread pool; see the module comment. */
export interface WalSync {
  /**
   * Resolves once every write made to the -wal file before this call is durable (fdatasync(2) returned).
   * Rejects with the system error (e.g. EIO) when the fsync fails: the caller must treat that as fatal and
   * never retry (a failed fsync may have dropped the dirty pages; PostgreSQL's "fsyncgate"); with ENOENT
   * when the -wal file is gone, and with an Error when the file at the path is no longer the one opened.
   */
  sync(): Promise<void>;
  /**
   * The same fdatasync(2) on the calling thread: when it returns, every write made to the -wal file before
   * the call is durable. For a node whose Ready loop has nothing else to do and whose disk syncs fast (see
   * src/server/node.ts `inlineSyncFits`): it saves the two thread hand-offs of `sync()` (to the pool and back).
   * Returns how long the call blocked the thread, ms (performance.now() around the file's identity check and
   * fdatasync(2)): the node keeps a fast disk's inline fsyncs inline by it. Throws what `sync()` rejects with
   * (the system error, ENOENT, a replaced file, after close).
   */
  syncNow(): number;
  /** Closes the descriptor after every fsync in flight settles (several may run at once). Idempotent; never rejects. */
  close(): Promise<void>;
}

/**
 * Creates the WAL syncer for the database file `dbPath` (its WAL is `${dbPath}-wal`) and opens the -wal
 * file at once, recording its device and inode; call it after the database was written in WAL mode. Never
 * throws: if the -wal file cannot be opened now (ENOENT, EACCES), every `sync()` rejects with that error.
 * `opts.fdatasync` and `opts.fdatasyncSync` replace `node:fs`'s (tests: fsyncs that finish out of order, or fail).
 */
export function createWalSync(dbPath: string, opts: { fdatasync?: typeof fdatasync; fdatasyncSync?: typeof fdatasyncSync } = {}): WalSync {
  const datasync = opts.fdatasync ?? fdatasync;
  const walPath = `${dbPath}-wal`;
  let fd: number | undefined;
  let dev = -1;
  let ino = -1;
  let openError: Error | undefined;
  try {
    fd = openSync(walPath, "r");
    ({ dev, ino } = fstatSync(fd));
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
    openError = err as Error;
  }
  let closed = false;
  /** Every fsync not yet settled: several may run at once on the pool's threads (pipelined persist). */
  const inFlight = new Set<Promise<void>>();

  /** The descriptor to fsync; throws when the file at the path is gone or is not the one opened. */
  const descriptor = (): number => {
    if (fd === undefined) throw openError;
    const atPath = statSync(walPath);
    if (atPath.dev !== dev || atPath.ino !== ino) {
      throw new Error(`${walPath} was replaced while the database is open (device ${dev} inode ${ino}, now device ${atPath.dev} inode ${atPath.ino}): SQLite writes the old file, which a restart will not read`);
    }
    return fd;
  };

  return {
    sync(): Promise<void> {
      if (closed) return Promise.reject(new Error(`WAL sync of ${walPath} after close`));
      let d: number;
      try {
        d = descriptor();
      } catch (err) {
        return Promise.reject(err as Error);
      }
      const p = new Promise<void>((resolve, reject) => datasync(d, (err) => (err ? reject(err) : resolve())));
      const settled: Promise<void> = p.then(
        () => void inFlight.delete(settled),
        () => void inFlight.delete(settled),
      );
      inFlight.add(settled);
      return p;
    },
    syncNow(): number {
      if (closed) throw new Error(`WAL sync of ${walPath} after close`);
      const t0 = performance.now(); // from before descriptor(): its identity check (fstat, stat) blocks too
      (opts.fdatasyncSync ?? fdatasyncSync)(descriptor());
      return performance.now() - t0;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all([...inFlight]);
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
