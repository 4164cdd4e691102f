/**
 * The `-wal` check (src/kv/wal-scan.ts) on WAL files written by the running runtime's SQLite: a clean file,
 * a byte flipped inside an early frame (SQLite itself then opens with rows missing, and the scan calls it
 * damaged), a flipped header, the limits (a cut-short file, damage in the last transaction), leftover frames
 * of an older generation after a restart (not damage), and chunked input.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WalScanner, type WalScan } from "../../src/kv/wal-scan.ts";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-walscan-");
const open: SqlDriver[] = [];
after(() => {
  for (const db of open) db.close();
  removeDir(dir);
});

const COMMITS = 6;

/** A database with `COMMITS` committed one-row transactions still in its WAL (no checkpoint); returns db and WAL bytes. */
async function walWithCommits(name: string): Promise<{ path: string; db: Uint8Array; wal: Uint8Array }> {
  const path = join(dir, name);
  const db = await openTestDb(path);
  open.push(db);
  db.exec("PRAGMA wal_autocheckpoint=0; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
  const ins = db.prepare("INSERT INTO t (id, v) VALUES (?, ?)");
  for (let i = 1; i <= COMMITS; i++) db.transaction(() => ins.run(i, new Uint8Array(600).fill(i)));
  // The connection stays open, so the files are what a crash at this moment leaves.
  return { path, db: new Uint8Array(readFileSync(path)), wal: new Uint8Array(readFileSync(`${path}-wal`)) };
}

function scan(bytes: Uint8Array, chunk = bytes.length): WalScan {
  const s = new WalScanner();
  for (let at = 0; at < bytes.length; at += chunk) s.push(bytes.subarray(at, Math.min(bytes.length, at + chunk)));
  return s.result();
}

/** Byte offset of frame `i`'s page data. */
function pageAt(s: WalScan, i: number): number {
  return 32 + i * (24 + s.pageSize) + 24;
}

/** Rows SQLite sees when it opens a copy made of `db` and `wal`. */
async function rowsSeen(name: string, db: Uint8Array, wal: Uint8Array): Promise<number> {
  const path = join(dir, name);
  writeFileSync(path, db);
  writeFileSync(`${path}-wal`, wal);
  const copy = await openTestDb(path);
  try {
    return copy.prepare("SELECT COUNT(*) AS n FROM t").get()?.n as number;
  } catch {
    return -1; // the table itself was in the dropped part
  } finally {
    copy.close();
  }
}

describe("WAL scan", () => {
  it("accepts a clean WAL: every frame recovered, nothing rejected", async () => {
    const { wal } = await walWithCommits("clean.db");
    const s = scan(wal);
    assert.equal(s.headerValid, true);
    assert.ok(s.frames >= COMMITS + 1, `frames ${s.frames}`);
    assert.deepEqual([s.recoveredFrames, s.firstRejected, s.commitsAfterRejected, s.damaged], [s.frames, -1, 0, false]);
    assert.deepEqual(scan(wal, 1000), s, "chunked input gives the same result");
  });

  it("calls a flipped byte in an early frame damaged, where SQLite silently opens without the later commits", async () => {
    const { db, wal } = await walWithCommits("flip.db");
    const s0 = scan(wal);
    const bad = wal.slice();
    bad[pageAt(s0, 2) + 100] ^= 0xff;
    const s = scan(bad, 4096);
    assert.equal(s.firstRejected, 2);
    assert.ok(s.commitsAfterRejected >= COMMITS - 2, `commits after ${s.commitsAfterRejected}`);
    assert.equal(s.damaged, true);
    assert.ok((await rowsSeen("flip-copy.db", db, bad)) < COMMITS, "SQLite drops the commits after the flipped frame without an error");
    assert.equal(await rowsSeen("clean-copy.db", db, wal), COMMITS);
  });

  it("calls a flipped header damaged when committed frames follow it (recovery would drop them all)", async () => {
    const { wal } = await walWithCommits("header.db");
    const bad = wal.slice();
    bad[13] ^= 0x01; // the checkpoint sequence: only the header checksum catches it
    const s = scan(bad);
    assert.deepEqual([s.headerValid, s.firstRejected, s.damaged], [false, 0, true]);
    assert.ok(s.commitsAfterRejected >= COMMITS);
  });

  it("cannot see a WAL cut short, nor damage in the last transaction (documented limits)", async () => {
    const { wal } = await walWithCommits("limits.db");
    const s0 = scan(wal);
    const cut = scan(wal.subarray(0, pageAt(s0, 3) + 10));
    assert.deepEqual([cut.frames, cut.damaged], [3, false]);
    const last = wal.slice();
    last[pageAt(s0, s0.frames - 1) + 7] ^= 0x10;
    const s = scan(last);
    assert.deepEqual([s.firstRejected, s.recoveredFrames, s.damaged], [s0.frames - 1, s0.frames - 1, false]);
  });

  it("does not call leftover frames of an older generation damage (a WAL started over, then a short write)", async () => {
    const { path } = await walWithCommits("restart.db");
    const db = open[open.length - 1];
    db.prepare("PRAGMA wal_checkpoint(RESTART)").get();
    db.transaction(() => db.prepare("INSERT INTO t (id, v) VALUES (?, ?)").run(100, new Uint8Array(10)));
    const wal = new Uint8Array(readFileSync(`${path}-wal`));
    const s = scan(wal);
    assert.ok(s.frames > s.recoveredFrames, "older frames are still in the file");
    assert.equal(s.firstRejected, s.recoveredFrames, "the first older frame is rejected (other salts)");
    assert.deepEqual([s.commitsAfterRejected, s.damaged], [0, false]);
  });

  it("reports an empty or foreign file as no WAL and no damage", () => {
    assert.deepEqual([scan(new Uint8Array(0)).headerValid, scan(new Uint8Array(0)).damaged], [false, false]);
    const foreign = scan(new Uint8Array(4096).fill(7));
    assert.deepEqual([foreign.headerValid, foreign.pageSize, foreign.frames, foreign.damaged], [false, 0, 0, false]);
  });
});
