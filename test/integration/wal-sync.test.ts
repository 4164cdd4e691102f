/**
 * The WAL syncer (runtime-adapters/wal-sync.ts) against a real SQLite database on disk: it fdatasyncs the
 * -wal file beside the database, refuses after close, and rejects, never fsyncing a stranger, when the
 * -wal file is missing, deleted or replaced. The node treats every rejection as fatal; the node-level
 * gating (no acknowledgement before the fsync, a failed fsync stops the node) is in
 * test/integration/node-wal-sync.test.ts.
 *
 * Replaced -wal file (H5's write-path nemesis): SQLite keeps its descriptor to the old inode and goes on
 * appending there; the file now at the path is not the one a restart will replay... and neither is the old
 * one, which is unlinked. The syncer used to reopen the new file and fsync it, so the node went on
 * acknowledging writes: by hand (a one-node Node cluster) 20 of 20 puts made after
 * `cp edgekv.db-wal x && mv x edgekv.db-wal` answered 200 and all 20 were gone after kill -9 and restart.
 * Deleted -wal file: `sync()` rejects with ENOENT (by hand: the node went fatal, 0 puts acknowledged).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { createWalSync, type WalSync } from "../../runtime-adapters/wal-sync.ts";
import { loadSqliteDriver } from "../../runtime-adapters/sqlite.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-walsync-");
after(() => removeDir(dir));

/**
 * Opens a WAL database `name` with one committed row (so its -wal file exists) under synchronous=NORMAL,
 * creates a syncer for it, runs `body`, then closes the syncer and the database.
 */
async function withWalSync(name: string, body: (s: { db: SqlDriver; path: string; ws: WalSync }) => Promise<void>): Promise<void> {
  const open = await loadSqliteDriver();
  const path = join(dir, name);
  const db = open(path);
  let ws: WalSync | undefined;
  try {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("CREATE TABLE t(x)");
    db.exec("PRAGMA synchronous=NORMAL");
    db.exec("INSERT INTO t VALUES (1)");
    ws = createWalSync(path);
    await body({ db, path, ws });
  } finally {
    await ws?.close();
    db.close();
  }
}

/** Puts a copy of the -wal file at its path (a new inode): what `cp edgekv.db-wal x && mv x edgekv.db-wal` does. */
function replaceWal(path: string): void {
  copyFileSync(`${path}-wal`, `${path}-wal.copy`);
  renameSync(`${path}-wal.copy`, `${path}-wal`);
}

const REPLACED = /was replaced while the database is open/;

describe("createWalSync (runtime adapter)", () => {
  it("fsyncs the -wal file beside a database, and refuses after close", async () => {
    await withWalSync("adapter.db", async ({ ws }) => {
      await ws.sync();
      await ws.sync();
      await ws.close();
      await assert.rejects(ws.sync(), /after close/);
    });
  });

  it("syncNow() fdatasyncs the same descriptor on the calling thread, and refuses after close", async () => {
    await withWalSync("inline.db", async ({ path, db }) => {
      const fds: number[] = [];
      const ws = createWalSync(path, { fdatasyncSync: ((fd: number) => void fds.push(fd)) as typeof import("node:fs").fdatasyncSync });
      db.exec("INSERT INTO t VALUES (2)");
      assert.equal(typeof ws.syncNow(), "number");
      ws.syncNow();
      assert.equal(fds.length, 2, "each syncNow() called fdatasync once, before returning");
      assert.equal(fds[0], fds[1]);
      await ws.close();
      assert.throws(() => ws.syncNow(), /after close/);
      // The real call, too: it returns the ms it blocked.
      const real = createWalSync(path);
      const blockedMs = real.syncNow();
      assert.ok(Number.isFinite(blockedMs) && blockedMs >= 0, `blocked ${blockedMs} ms`);
      await real.close();
    });
  });

  it("close() waits for every fsync in flight, also one that finishes after a later one (pipelined persist)", async () => {
    await withWalSync("pipelined.db", async ({ path }) => {
      // Two fsyncs at once; the pool finishes the second first. close() must not close the descriptor
      // under the first (it used to wait for the last one started only).
      const held: Array<(err: NodeJS.ErrnoException | null) => void> = [];
      const slow = createWalSync(path, { fdatasync: ((_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void held.push(cb)) as typeof import("node:fs").fdatasync });
      const first = slow.sync();
      const second = slow.sync();
      assert.equal(held.length, 2);
      held[1]!(null);
      await second;
      let closed = false;
      const closing = slow.close().then(() => (closed = true));
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(closed, false, "close() resolved while the first fsync was still in flight");
      held[0]!(null);
      await first;
      await closing;
      assert.equal(closed, true);
    });
  });

  it("rejects when there is no -wal file (not a WAL database)", async () => {
    const ws = createWalSync(join(dir, "missing.db"));
    await assert.rejects(ws.sync(), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
    await ws.close();
  });

  it("keeps fsyncing the same file across checkpoints that truncate it in place", async () => {
    await withWalSync("truncated.db", async ({ db, ws }) => {
      await ws.sync();
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      db.exec("INSERT INTO t VALUES (2)");
      await ws.sync();
      db.exec("PRAGMA wal_checkpoint(RESTART)");
      db.exec("INSERT INTO t VALUES (3)");
      await ws.sync();
    });
  });
});

describe("createWalSync against a -wal file changed under a running database", () => {
  it("rejects once the -wal file at the path was replaced by another file (never fsyncs the newcomer)", async () => {
    await withWalSync("replaced.db", async ({ db, path, ws }) => {
      await ws.sync();
      replaceWal(path);
      db.exec("INSERT INTO t VALUES (2)"); // appended to the old, unlinked inode
      await assert.rejects(ws.sync(), REPLACED);
      await assert.rejects(ws.sync(), REPLACED);
      assert.throws(() => ws.syncNow(), REPLACED);
    });
  });

  it("rejects when the -wal file was replaced before the first sync (identity taken at creation)", async () => {
    // A node creates its syncer at start and fsyncs first on its first Ready that writes: a replacement in
    // between used to go unnoticed, because the syncer opened whatever file was at the path then.
    await withWalSync("replaced-early.db", async ({ db, path, ws }) => {
      replaceWal(path);
      db.exec("INSERT INTO t VALUES (2)");
      await assert.rejects(ws.sync(), REPLACED);
    });
  });

  it("rejects with ENOENT once the -wal file was deleted", async () => {
    await withWalSync("deleted.db", async ({ db, path, ws }) => {
      await ws.sync();
      unlinkSync(`${path}-wal`);
      db.exec("INSERT INTO t VALUES (2)");
      await assert.rejects(ws.sync(), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
      assert.throws(() => ws.syncNow(), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
    });
  });
});
