/**
 * Snapshots (src/kv/snapshot.ts with runtime-adapters/snapshot-files.ts) on the running runtime's SQLite:
 * a 100k-key round trip (create, restore into a fresh database, identical content and revision), the log
 * reset on restore, keeping the last two files, checksum checks, path quoting, compaction with a tail, and
 * the chunked file writer a transport uses.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createKvSchema } from "../../src/kv/schema.ts";
import { SqliteRaftLog } from "../../src/kv/raft-log.ts";
import { crc32c } from "../../src/kv/checksum.ts";
import { compactBehindSnapshot, compactionPoint, compactionPointHeld, compactStepBehindSnapshot, latestSnapshot, removeSnapshotFiles, removeSnapshotLeftovers, snapshotDue, snapshotPhaseEntries, listSnapshots, parseSnapshotRef, restoreSnapshot, takeSnapshot, type SnapshotInfo } from "../../src/kv/snapshot.ts";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import type { Entry } from "../../src/raft/types.ts";
import { nodeFsSnapshotFiles as files, readFileChunks, SnapshotFileWriter } from "../../runtime-adapters/snapshot-files.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

const KEYS = 100_000;
const dir = makeTempDir("edgekv-snap-'quote-"); // a quote in the path proves the SQL literal escaping
const snapDir = join(dir, "snapshots");
const conf = { voters: ["a", "b", "c"], votersOutgoing: [], learners: ["d"] };
const opened: SqlDriver[] = [];
let src: SqlDriver;
let srcLog: SqliteRaftLog;
let first: SnapshotInfo;

async function open(name: string): Promise<SqlDriver> {
  const db = await openTestDb(join(dir, name));
  opened.push(db);
  return db;
}

function key(i: number): Uint8Array {
  const s = `key-${String(i).padStart(7, "0")}`;
  return new Uint8Array([...s].map((c) => c.charCodeAt(0)));
}

/** Writes `count` keys starting at `from` at revisions from `rev`, plus the applied index/term, like an apply batch would. */
function writeKeys(db: SqlDriver, from: number, count: number, rev: number, applied: number, term: number): void {
  const put = db.prepare("INSERT OR REPLACE INTO kv_keys (key, value, create_revision, mod_revision, version, lease) VALUES (?, ?, ?, ?, 1, 0)");
  const meta = db.prepare("INSERT OR REPLACE INTO kv_meta (name, value) VALUES (?, ?)");
  const value = new Uint8Array(32);
  db.transaction(() => {
    for (let i = from; i < from + count; i++) {
      value[0] = i & 0xff;
      value[1] = (i >> 8) & 0xff;
      put.run(key(i), value, rev, rev, );
    }
    meta.run("applied_index", applied);
    meta.run("applied_term", term);
    meta.run("revision", rev);
    meta.run("conf_state", JSON.stringify(conf));
  });
}

/**
 * Rows of each KV table that differ between `db` and the database file at `otherPath`, compared exactly
 * by SQLite itself (EXCEPT both ways, so a missing, extra or changed row counts); also the row total.
 */
function diffTables(db: SqlDriver, otherPath: string): { differing: number; rows: number } {
  db.exec(`ATTACH DATABASE '${otherPath.replaceAll("'", "''")}' AS other`);
  try {
    let differing = 0;
    let rows = 0;
    for (const t of ["kv_meta", "kv_keys", "kv_history", "kv_leases", "kv_sessions"]) {
      differing += db.prepare(`SELECT count(*) AS n FROM (SELECT * FROM main.${t} EXCEPT SELECT * FROM other.${t})`).get()!.n as number;
      differing += db.prepare(`SELECT count(*) AS n FROM (SELECT * FROM other.${t} EXCEPT SELECT * FROM main.${t})`).get()!.n as number;
      rows += db.prepare(`SELECT count(*) AS n FROM main.${t}`).get()!.n as number;
    }
    return { differing, rows };
  } finally {
    db.exec("DETACH DATABASE other");
  }
}

function entries(lo: number, hi: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push({ index: i, term, type: "normal", data: new Uint8Array([i & 0xff]) });
  return out;
}

before(async () => {
  src = await open("src.sqlite");
  createKvSchema(src);
  srcLog = new SqliteRaftLog(src);
  srcLog.save({ entries: entries(1, 200, 3), hardState: { term: 3, vote: "a", commit: 150 } });
  for (let i = 0; i < KEYS; i += 20_000) writeKeys(src, i, 20_000, 2 + i / 20_000, 150, 3);
  src.prepare("INSERT INTO kv_leases (id, ttl_seconds) VALUES (?, ?)").run(7, 60);
  first = takeSnapshot(src, srcLog, { dir: snapDir, files, logTailEntries: 100 });
});

after(() => {
  for (const d of opened) d.close();
  removeDir(dir);
});

describe("snapshots", () => {
  it("creates snap-<term>-<index>.db with metadata read from the copy, and records it in the log", () => {
    assert.equal(first.name, "snap-3-150.db");
    assert.deepEqual(first.meta, { index: 150, term: 3, confState: conf });
    assert.ok(existsSync(first.path));
    assert.equal(first.sizeBytes, readFileSync(first.path).length);
    assert.equal(first.crc32c, crc32c(new Uint8Array(readFileSync(first.path))));
    assert.deepEqual(srcLog.snapshot().meta, first.meta);
    assert.deepEqual(parseSnapshotRef(srcLog.snapshot().data), { name: first.name, sizeBytes: first.sizeBytes, crc32c: first.crc32c });
    assert.deepEqual(latestSnapshot(files, snapDir)?.name, first.name);
  });

  it("compacts the log keeping logTailEntries behind the snapshot", () => {
    assert.equal(srcLog.firstIndex(), 51); // 150 - 100 tail
    assert.equal(srcLog.lastIndex(), 200);
    assert.equal(srcLog.term(50), 3);
    assert.equal(compactBehindSnapshot(srcLog, 150, 1000), 51, "a longer tail never un-compacts");
  });

  it("compacts behind a snapshot in bounded steps, each dropping at most maxEntries of the oldest entries", async () => {
    const db = await open("steps.sqlite");
    const log = new SqliteRaftLog(db);
    log.save({ entries: entries(1, 1000, 2), hardState: { term: 2, vote: "x", commit: 1000 } });
    log.setSnapshot({ meta: { index: 900, term: 2, confState: conf }, data: new Uint8Array(0) });
    const firsts: number[] = [];
    while (compactStepBehindSnapshot(log, 900, 100, 300)) firsts.push(log.firstIndex());
    firsts.push(log.firstIndex());
    // 800 entries may go (900 - 100 tail): 300, 300, then the last 200.
    assert.deepEqual(firsts, [301, 601, 801]);
    assert.equal(log.term(800), 2, "the new log start's term is kept");
    assert.equal(compactStepBehindSnapshot(log, 900, 100, 300), false, "nothing left: no step");
    assert.equal(log.firstIndex(), 801);
  });

  it("spreads the members' snapshots over the interval: phase by sorted id, due when a phase point is passed", () => {
    const members = ["n3", "n1", "n2", "n2"];
    assert.deepEqual(
      ["n1", "n2", "n3", "x"].map((id) => snapshotPhaseEntries(members, id, 90_000)),
      [0, 30_000, 60_000, 0],
    );
    // Without a phase: every 100 000 applied entries, as before (etcd's --snapshot-count).
    assert.equal(snapshotDue(99_999, 0, 100_000, 0), false);
    assert.equal(snapshotDue(100_000, 0, 100_000, 0), true);
    assert.equal(snapshotDue(150_000, 100_040, 100_000, 0), false);
    assert.equal(snapshotDue(200_000, 100_040, 100_000, 0), true);
    // Phase 60 000: due at 40 000, 140 000, ... whatever the last snapshot's exact index was.
    assert.equal(snapshotDue(39_999, 0, 100_000, 60_000), false);
    assert.equal(snapshotDue(40_000, 0, 100_000, 60_000), true);
    assert.equal(snapshotDue(139_999, 40_050, 100_000, 60_000), false);
    assert.equal(snapshotDue(140_000, 40_050, 100_000, 60_000), true);
  });

  it("restores 100k keys into a fresh database: identical content and revision, log reset to the snapshot", async () => {
    const dst = await open("dst.sqlite");
    const dstLog = new SqliteRaftLog(dst);
    dstLog.save({ entries: entries(1, 5, 1), hardState: { term: 1, vote: "x", commit: 5 } });
    const meta = restoreSnapshot(dst, dstLog, first.path, { files, expected: { crc32c: first.crc32c, sizeBytes: first.sizeBytes } });
    assert.deepEqual(meta, first.meta);
    const diff = diffTables(dst, src.path);
    assert.equal(diff.differing, 0);
    assert.equal(diff.rows, KEYS + 5); // 100k keys + 4 meta rows + 1 lease
    assert.equal(dst.prepare("SELECT count(*) AS n FROM kv_keys").get()!.n, KEYS);
    assert.equal(dst.prepare("SELECT value FROM kv_meta WHERE name = 'revision'").get()!.value, src.prepare("SELECT value FROM kv_meta WHERE name = 'revision'").get()!.value);
    assert.equal(dstLog.firstIndex(), 151);
    assert.equal(dstLog.lastIndex(), 150);
    assert.equal(dstLog.term(150), 3);
    assert.deepEqual(dstLog.snapshot().meta, first.meta);
    assert.deepEqual(dstLog.initialState().confState, conf);
    assert.equal(dst.prepare("PRAGMA integrity_check").get()!.integrity_check, "ok");
  });

  it("restore replaces existing KV rows rather than merging", async () => {
    const dst = await open("dst2.sqlite");
    createKvSchema(dst);
    writeKeys(dst, KEYS + 5, 3, 99, 10, 1); // keys the snapshot does not have
    const log = new SqliteRaftLog(dst);
    restoreSnapshot(dst, log, first.path, { files });
    assert.equal(dst.prepare("SELECT count(*) AS n FROM kv_keys").get()!.n, KEYS);
    assert.equal(dst.prepare("SELECT count(*) AS n FROM kv_keys WHERE key = ?").get(key(KEYS + 5))!.n, 0);
  });

  it("refuses a corrupted snapshot file and leaves the target database unchanged", async () => {
    const bad = join(dir, "snap-3-150-corrupt.db");
    const bytes = new Uint8Array(readFileSync(first.path));
    bytes[bytes.length - 100] ^= 0x40;
    writeFileSync(bad, bytes);
    const dst = await open("dst3.sqlite");
    createKvSchema(dst);
    writeKeys(dst, 0, 2, 1, 1, 1);
    const log = new SqliteRaftLog(dst);
    assert.throws(() => restoreSnapshot(dst, log, bad, { files, expected: { crc32c: first.crc32c, sizeBytes: first.sizeBytes } }), /is corrupt/);
    assert.equal(dst.prepare("SELECT count(*) AS n FROM kv_keys").get()!.n, 2);
    assert.equal(log.firstIndex(), 1);
  });

  it("a restore that fails inside its transaction leaves the KV tables and the log as they were", async () => {
    const dst = await open("dst4.sqlite");
    createKvSchema(dst);
    writeKeys(dst, 0, 3, 1, 1, 1);
    const log = new SqliteRaftLog(dst);
    log.save({ entries: entries(1, 4, 1), hardState: { term: 1, vote: "a", commit: 1 } });
    dst.exec("CREATE TRIGGER no_lease BEFORE INSERT ON kv_leases BEGIN SELECT RAISE(ABORT, 'injected restore failure'); END;");
    assert.throws(() => restoreSnapshot(dst, log, first.path, { files }), /injected restore failure/);
    assert.equal(dst.prepare("SELECT count(*) AS n FROM kv_keys").get()!.n, 3);
    assert.equal(log.firstIndex(), 1);
    assert.equal(log.lastIndex(), 4);
    assert.throws(() => log.snapshot(), /unavailable/);
    dst.exec("DROP TRIGGER no_lease");
    restoreSnapshot(dst, log, first.path, { files }); // the database is not left attached or locked
    assert.equal(log.firstIndex(), 151);
  });

  it("keeps only the last two snapshots", () => {
    writeKeys(src, 0, 10, 10, 180, 3);
    takeSnapshot(src, srcLog, { dir: snapDir, files, logTailEntries: 100 });
    writeKeys(src, 0, 10, 11, 200, 4);
    const third = takeSnapshot(src, srcLog, { dir: snapDir, files, logTailEntries: 100 });
    assert.equal(third.name, "snap-4-200.db");
    assert.deepEqual(listSnapshots(files, snapDir).map((s) => s.name), ["snap-3-180.db", "snap-4-200.db"]);
    assert.deepEqual(readdirSync(snapDir).sort(), ["snap-3-180.db", "snap-3-180.json", "snap-4-200.db", "snap-4-200.json"]);
    assert.equal(srcLog.firstIndex(), 101);
  });

  it("a compaction point reads the applied state without a copy; removeSnapshotFiles leaves temp and incoming files", async () => {
    const db = await open("point.sqlite");
    createKvSchema(db);
    writeKeys(db, 0, 5, 7, 321, 6);
    const point = compactionPoint(db);
    assert.deepEqual(point.meta, { index: 321, term: 6, confState: conf });
    assert.equal(point.data.byteLength, 0);
    const d = join(dir, "point-snaps");
    files.ensureDir(d);
    takeSnapshot(db, new SqliteRaftLog(db), { dir: d, files });
    writeFileSync(join(d, "snap-6-400.db"), "arriving"); // being received: no .json yet
    writeFileSync(join(d, "snap-6-500.db.part"), "arriving");
    writeFileSync(join(d, "snap-321-bg.tmp"), "a worker copy a crash left");
    writeFileSync(join(d, "snap-321-bg.tmp-journal"), "its journal");
    writeFileSync(join(d, "snap-6-321.json.tmp"), "{");
    assert.equal(removeSnapshotFiles(files, d), 1);
    assert.deepEqual(readdirSync(d).sort(), ["snap-6-400.db", "snap-6-500.db.part"]);
  });

  it("at start, removes what a crash left but keeps the file the log's record names", () => {
    const d = join(dir, "leftover-snaps");
    files.ensureDir(d);
    for (const name of ["snap-1-10.db", "snap-1-10.json", "snap-2-20.db", "snap-3-30.db", "snap-3-40.db.part", "snap-40-bg.tmp", "snap-40-bg.tmp-journal", "snap-50.tmp", "snap-1-10.json.tmp"]) {
      writeFileSync(join(d, name), "x");
    }
    const removed = removeSnapshotLeftovers(files, d, "snap-2-20.db");
    assert.deepEqual(removed.sort(), ["snap-1-10.json.tmp", "snap-3-30.db", "snap-3-40.db.part", "snap-40-bg.tmp", "snap-40-bg.tmp-journal", "snap-50.tmp"]);
    assert.deepEqual(readdirSync(d).sort(), ["snap-1-10.db", "snap-1-10.json", "snap-2-20.db"]);
  });

  it("holds compaction points after a file made for a follower until it is sent and the follower is within the log tail", () => {
    const none = new Map<string, number>();
    const sent = new Map([["n2", 1000]]);
    const match = (m: number) => () => m;
    assert.equal(compactionPointHeld(5, 0, none, match(0), 2000, 100), false, "no file held");
    assert.equal(compactionPointHeld(5, 30_005, none, match(0), 2000, 100), true, "made, not sent yet");
    assert.equal(compactionPointHeld(30_005, 30_005, none, match(0), 2000, 100), false, "the hold ran out");
    // Sent at index 1000; applied is 2000, so a point now would drop up to 1900.
    assert.equal(compactionPointHeld(5, 30_005, sent, match(1000), 2000, 100), true, "installed but not yet within the tail");
    assert.equal(compactionPointHeld(5, 30_005, sent, match(1899), 2000, 100), true);
    assert.equal(compactionPointHeld(5, 30_005, sent, match(1900), 2000, 100), false, "caught up to within the tail");
    const two = new Map([["n2", 1000], ["n3", 1000]]);
    assert.equal(compactionPointHeld(5, 30_005, two, (id) => (id === "n2" ? 1950 : 0), 2000, 100), true, "n3 is still behind");
  });

  it("streams a snapshot file in chunks and verifies the CRC-32C on arrival", () => {
    const info = latestSnapshot(files, snapDir)!;
    const target = join(dir, "received.db");
    const w = new SnapshotFileWriter(target);
    for (const chunk of readFileChunks(info.path, 4096 + 3)) w.write(chunk);
    assert.equal(w.finish(info.crc32c, info.sizeBytes), info.sizeBytes);
    assert.deepEqual(new Uint8Array(readFileSync(target)), new Uint8Array(readFileSync(info.path)));

    const w2 = new SnapshotFileWriter(join(dir, "received2.db"));
    for (const chunk of readFileChunks(info.path)) w2.write(chunk);
    assert.throws(() => w2.finish(info.crc32c ^ 1), /is corrupt/);
    assert.ok(!existsSync(join(dir, "received2.db")));
    assert.ok(!existsSync(join(dir, "received2.db.part")));
  });
});
