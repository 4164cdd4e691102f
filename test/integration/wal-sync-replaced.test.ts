/**
 * Attacks on the WAL syncer (runtime-adapters/wal-sync.ts) from outside the process, H5's write-path
 * nemesis: a node must never acknowledge a write it cannot make durable.
 *
 * Replaced -wal file: SQLite keeps its descriptor to the old inode and goes on appending there; the file
 * now at the path is not the one a restart will replay... and neither is the old one, which is unlinked.
 * The syncer used to reopen the new file and fsync it, so the node went on acknowledging writes: by hand
 * (a one-node Node cluster, scripts like /tmp/exp/scripts/repro-load.ts) 20 of 20 puts made after
 * `cp edgekv.db-wal x && mv x edgekv.db-wal` answered 200 and all 20 were gone after kill -9 and restart.
 * Now `sync()` rejects, which the node treats as fatal (test/integration/node-wal-sync.test.ts).
 * Deleted -wal file: `sync()` rejects with ENOENT (by hand: the node went fatal, 0 puts acknowledged).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { createWalSync } from "../../runtime-adapters/wal-sync.ts";
import { loadSqliteDriver } from "../../runtime-adapters/sqlite.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-walsync-replaced-");
after(() => removeDir(dir));

/** Opens a WAL database at `name` with one committed row (so its -wal file exists) under synchronous=NORMAL. */
async function walDb(name: string) {
  const open = await loadSqliteDriver();
  const path = join(dir, name);
  const db = open(path);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("CREATE TABLE t(x)");
  db.exec("PRAGMA synchronous=NORMAL");
  db.exec("INSERT INTO t VALUES (1)");
  return { db, path };
}

describe("createWalSync against a -wal file changed under a running database", () => {
  it("rejects once the -wal file at the path was replaced by another file (never fsyncs the newcomer)", async () => {
    const { db, path } = await walDb("replaced.db");
    const ws = createWalSync(path);
    try {
      await ws.sync(); // opens SQLite's -wal file
      copyFileSync(`${path}-wal`, `${path}-wal.copy`);
      renameSync(`${path}-wal.copy`, `${path}-wal`);
      db.exec("INSERT INTO t VALUES (2)"); // appended to the old, unlinked inode
      await assert.rejects(ws.sync(), /was replaced while the database is open/);
      await assert.rejects(ws.sync(), /was replaced while the database is open/);
    } finally {
      await ws.close();
      db.close();
    }
  });

  it("rejects with ENOENT once the -wal file was deleted", async () => {
    const { db, path } = await walDb("deleted.db");
    const ws = createWalSync(path);
    try {
      await ws.sync();
      unlinkSync(`${path}-wal`);
      db.exec("INSERT INTO t VALUES (2)");
      await assert.rejects(ws.sync(), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
    } finally {
      await ws.close();
      db.close();
    }
  });

  it("keeps fsyncing the same file across checkpoints that truncate it in place", async () => {
    const { db, path } = await walDb("truncated.db");
    const ws = createWalSync(path);
    try {
      await ws.sync();
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      db.exec("INSERT INTO t VALUES (2)");
      await ws.sync();
      db.exec("PRAGMA wal_checkpoint(RESTART)");
      db.exec("INSERT INTO t VALUES (3)");
      await ws.sync();
    } finally {
      await ws.close();
      db.close();
    }
  });
});
