/**
 * WAL checkpoints on a worker thread (runtime-adapters/wal-checkpointer.ts): with automatic checkpoints off
 * on the writing connection, the worker keeps the -wal file bounded while commits go on, every committed row
 * survives, a writer is asked to restart the WAL once per round past a frame count (`wantsRestart`), and a
 * worker that cannot start is reported (the node then turns automatic checkpoints back on).
 * Runs on Node (worker via tsx), Bun and Deno.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { startWalCheckpointer } from "../../runtime-adapters/wal-checkpointer.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-walcp-");
const opened: SqlDriver[] = [];
const MIB = 1024 * 1024;
/** Rows per transaction and bytes per row: 40 x 2 KiB is ~80 KiB of WAL per commit (plus index pages). */
const ROWS = 40;
const ROW_BYTES = 2048;
const COMMITS = 250; // ~20 MiB of WAL in all

function walBytes(db: SqlDriver): number {
  try {
    return statSync(`${db.path}-wal`).size;
  } catch {
    return 0;
  }
}

async function writer(name: string): Promise<SqlDriver> {
  const db = await openTestDb(join(dir, name));
  opened.push(db);
  db.exec("PRAGMA wal_autocheckpoint=0");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  return db;
}

/** Commits COMMITS transactions (yielding 1 ms between them); returns the largest -wal size seen, bytes. */
async function writeAll(db: SqlDriver): Promise<number> {
  const ins = db.prepare("INSERT INTO t (id, v) VALUES (?, ?)");
  const value = new Uint8Array(ROW_BYTES).fill(7);
  let maxWal = 0;
  for (let c = 0; c < COMMITS; c++) {
    db.transaction(() => {
      for (let r = 0; r < ROWS; r++) ins.run(c * ROWS + r + 1, value);
    });
    maxWal = Math.max(maxWal, walBytes(db));
    await new Promise((r) => setTimeout(r, 1));
  }
  return maxWal;
}

after(() => {
  for (const db of opened.splice(0)) db.close();
  removeDir(dir);
});

describe("WAL checkpoints on a worker thread", () => {
  it("without a checkpointer the WAL of this workload grows past 16 MiB (the control)", async () => {
    const db = await writer("control.db");
    const maxWal = await writeAll(db);
    assert.ok(maxWal > 16 * MIB, `control WAL reached only ${maxWal} bytes`);
  });

  it("truncates the -wal file (1 MiB TRUNCATE bound) once commits pause, and loses no row", async () => {
    // How large the WAL gets while commits race the worker depends on scheduling (clean-clone CI runs saw
    // 11.0 and 18.5 MiB on a loaded machine), so the test asserts what the worker guarantees: TRUNCATE
    // rounds happen, and once the writer pauses the file is cut back under the bound.
    const db = await writer("bounded.db");
    let failure: Error | undefined;
    const cp = startWalCheckpointer(db.path, { intervalMs: 10, truncateBytes: 1 * MIB, onFail: (e) => (failure = e) });
    let after = Infinity;
    try {
      await cp.ready;
      await writeAll(db);
      for (let i = 0; i < 500; i++) {
        after = walBytes(db);
        if (after <= 1 * MIB && cp.counts().truncates > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      await cp.close();
    }
    assert.equal(failure, undefined);
    assert.ok(cp.counts().truncates > 0, `the worker ran no TRUNCATE round (${JSON.stringify(cp.counts())})`);
    assert.ok(after <= 1 * MIB, `the -wal file is still ${after} bytes 5 s after the commits stopped (last ${JSON.stringify(cp.lastRound())})`);
    const count = db.prepare("SELECT count(*) AS n, sum(length(v)) AS bytes FROM t").get();
    assert.deepEqual([Number(count?.n), Number(count?.bytes)], [COMMITS * ROWS, COMMITS * ROWS * ROW_BYTES]);
    db.close();
    opened.splice(opened.indexOf(db), 1);
    // Reopened from the file alone (the WAL is folded in or replayed), every row is there.
    const again = await openTestDb(join(dir, "bounded.db"));
    opened.push(again);
    assert.equal(again.prepare("SELECT count(*) AS n FROM t").get()?.n, COMMITS * ROWS);
  });

  it("wantsRestart: true at most once per round past restartFrames, false below it", async () => {
    const db = await writer("restart.db");
    db.exec("INSERT INTO t (id, v) VALUES (1, x'00')"); // a few WAL frames
    // Each checkpointer on its own database: two on one file collide (a round that finds the other's
    // checkpoint running is busy and reports no frame count), which made this test flaky under load.
    const other = await writer("restart-other.db");
    other.exec("INSERT INTO t (id, v) VALUES (1, x'00')");
    const eager = startWalCheckpointer(db.path, { intervalMs: 10, restartFrames: 1 });
    const never = startWalCheckpointer(other.path, { intervalMs: 10, restartFrames: 1_000_000 });
    try {
      await Promise.all([eager.ready, never.ready]);
      assert.ok((eager.lastRound()?.walFrames ?? 0) >= 1, `the round saw no frames: ${JSON.stringify(eager.lastRound())}`);
      // Rounds arrive as messages, never between two synchronous calls: the second ask is the same round.
      assert.equal(eager.wantsRestart(), true);
      assert.equal(eager.wantsRestart(), false);
      const answered = eager.counts().rounds;
      for (let i = 0; i < 500 && eager.counts().rounds === answered; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(eager.counts().rounds > answered, "no second round within 5 s");
      assert.equal(eager.wantsRestart(), true, "a new round past restartFrames should ask again");
      assert.equal(never.wantsRestart(), false);
    } finally {
      await Promise.all([eager.close(), never.close()]);
    }
    assert.equal(eager.wantsRestart(), false, "a closed checkpointer never asks");
  });

  it("a round that copies frames syncs the database file itself, also one that reached the end of the WAL; an idle round does not", async () => {
    // SQLite syncs the database file only when a checkpoint reaches the end of the WAL. Under steady writes
    // a PASSIVE round never does, and the pages it copied stayed dirty until the node's restart checkpoint
    // flushed them all on the event loop (30-240 ms; docs/bench.md "WAL restarts"). Here a reader holding an
    // older snapshot stops the round short of the end, as a writer's new frames do.
    const db = await writer("sync.db");
    const ins = db.prepare("INSERT INTO t (id, v) VALUES (?, ?)");
    const value = new Uint8Array(ROW_BYTES).fill(3);
    for (let i = 1; i <= 20; i++) ins.run(i, value);
    const reader = await openTestDb(db.path);
    opened.push(reader);
    reader.exec("BEGIN");
    assert.equal(Number(reader.prepare("SELECT count(*) AS n FROM t").get()!.n), 20);
    for (let i = 21; i <= 40; i++) ins.run(i, value);
    const cp = startWalCheckpointer(db.path, { intervalMs: 20, restartFrames: 1_000_000 });
    try {
      await cp.ready;
      const first = cp.lastRound()!;
      assert.ok(first.checkpointedFrames > 0 && first.checkpointedFrames < first.walFrames, `the round should stop short of the end: ${JSON.stringify(first)}`);
      assert.equal(first.dbSynced, true, `the copied pages should be synced: ${JSON.stringify(first)}`);
      assert.equal(cp.counts().dbSyncs, 1);
      // Nothing new to copy while the reader holds its snapshot: no sync.
      const seen = cp.counts().rounds;
      for (let i = 0; i < 500 && cp.counts().rounds === seen; i++) await new Promise((r) => setTimeout(r, 10));
      const idle = cp.lastRound()!;
      assert.equal(idle.checkpointedFrames, first.checkpointedFrames, JSON.stringify(idle));
      assert.equal(idle.dbSynced, false, `an idle round should not sync: ${JSON.stringify(idle)}`);
      assert.equal(cp.counts().dbSyncs, 1, "a round while the reader held its snapshot synced");
      // The reader lets go: the next round copies the rest and syncs again.
      reader.exec("COMMIT");
      let done = idle;
      for (let i = 0; i < 500 && done.checkpointedFrames < done.walFrames; i++) {
        await new Promise((r) => setTimeout(r, 10));
        done = cp.lastRound()!;
      }
      assert.equal(done.checkpointedFrames, done.walFrames, JSON.stringify(done));
      // That round reached the end of the WAL it saw. SQLite syncs the database there only if no frame was
      // appended during the copy, which under steady writes is rare and which the round's result cannot
      // tell; unsynced, the rounds' pages were flushed by the node's restart checkpoint on its event loop
      // (20-36 ms per restart in the probe). So it syncs as well: the second sync of this checkpointer. The
      // count, not `done.dbSynced`: on a loaded machine the last round seen may be an idle one after it
      // (same frames, no sync; failed once in CI on Bun).
      assert.equal(cp.counts().dbSyncs, 2, `${JSON.stringify(done)} ${JSON.stringify(cp.counts())}`);
    } finally {
      await cp.close();
    }
  });

  it("reports a worker that cannot open the database through onFail", async () => {
    const failed = await new Promise<Error>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("onFail was not called within 20 s")), 20_000);
      startWalCheckpointer(join(dir, "no-such-dir", "x.db"), {
        onFail: (e) => {
          clearTimeout(t);
          resolve(e);
        },
      });
    });
    assert.match(failed.message, /WAL checkpoint worker|unable to open|no such|exited/i);
  });
});
