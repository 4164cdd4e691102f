/**
 * SqliteRaftLog (src/kv/raft-log.ts) against the real SQLite driver of the running runtime: the RaftStorage
 * duties of src/raft/types.ts (no holes, term(first-1), Compacted/Unavailable), group-commit writes, suffix
 * overwrite, compaction, snapshots, checksum verification and reopen.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { CompactedError, RaftInvariantError, SnapshotUnavailableError, UnavailableError, type Entry } from "../../src/raft/types.ts";
import { SqliteRaftLog } from "../../src/kv/raft-log.ts";
import { crc32c, crc32cUtf16, entryChecksum } from "../../src/kv/checksum.ts";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir();
let n = 0;
const opened: SqlDriver[] = [];

after(() => {
  for (const d of opened) {
    try {
      d.close();
    } catch {
      // already closed by the test
    }
  }
  removeDir(dir);
});

async function fresh(): Promise<{ db: SqlDriver; log: SqliteRaftLog; path: string }> {
  const path = join(dir, `log-${n++}.sqlite`);
  const db = await openTestDb(path);
  opened.push(db);
  return { db, log: new SqliteRaftLog(db), path };
}

function ent(index: number, term: number, data: number[] = [index & 0xff]): Entry {
  return { index, term, type: "normal", data: new Uint8Array(data) };
}

function range(lo: number, hi: number, term: number | ((i: number) => number)): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, typeof term === "number" ? term : term(i)));
  return out;
}

describe("SqliteRaftLog", () => {
  it("starts empty: first 1, last 0, term(0) = 0, zero hard state, empty conf state", async () => {
    const { log } = await fresh();
    assert.equal(log.firstIndex(), 1);
    assert.equal(log.lastIndex(), 0);
    assert.equal(log.term(0), 0);
    assert.ok(log.isEmpty());
    assert.deepEqual(log.initialState(), { hardState: { term: 0, vote: "", commit: 0 }, confState: { voters: [], votersOutgoing: [], learners: [] } });
    assert.throws(() => log.term(1), UnavailableError);
    assert.throws(() => log.snapshot(), SnapshotUnavailableError);
  });

  it("bootstrap records the conf state once and refuses a second time", async () => {
    const { log } = await fresh();
    const cs = { voters: ["a", "b", "c"], votersOutgoing: [], learners: ["d"] };
    log.bootstrap(cs);
    assert.deepEqual(log.initialState().confState, cs);
    assert.throws(() => log.bootstrap(cs), RaftInvariantError);
  });

  it("appends entries and hard state in one save and reads them back", async () => {
    const { log } = await fresh();
    const cc = { steps: [{ type: "addLearner" as const, nodeId: "n4" }] };
    const entries: Entry[] = [ent(1, 1, []), ent(2, 1, [1, 2, 3]), { index: 3, term: 2, type: "confChange", data: new Uint8Array(0), confChange: cc }];
    log.save({ entries, hardState: { term: 2, vote: "a", commit: 1 } });
    assert.equal(log.lastIndex(), 3);
    assert.deepEqual(log.initialState().hardState, { term: 2, vote: "a", commit: 1 });
    const got = log.entries(1, 4, Infinity);
    assert.equal(got.length, 3);
    assert.deepEqual(got.map((e) => [e.index, e.term, e.type, [...e.data]]), [
      [1, 1, "normal", []],
      [2, 1, "normal", [1, 2, 3]],
      [3, 2, "confChange", []],
    ]);
    assert.deepEqual(got[2].confChange, cc);
    assert.equal(got[0].confChange, undefined);
    assert.deepEqual([log.term(1), log.term(2), log.term(3)], [1, 1, 2]);
  });

  it("keeps a conf change entry's confState (the membership it installs) across a reopen", async () => {
    const { log, db } = await fresh();
    const cs = { voters: ["a", "b"], votersOutgoing: [], learners: ["d"] };
    const cc = { steps: [{ type: "addLearner" as const, nodeId: "d", context: '{"peerUrl":"http://d:7000","clientUrl":""}' }] };
    log.save({ entries: [{ index: 1, term: 1, type: "confChange", data: new Uint8Array(0), confChange: cc, confState: cs }] });
    const reopened = new SqliteRaftLog(db);
    const [e] = reopened.entries(1, 2, Infinity);
    assert.deepEqual(e.confChange, cc);
    assert.deepEqual(e.confState, cs);
  });

  it("entries honours maxBytes but always returns at least one entry", async () => {
    const { log } = await fresh();
    log.save({ entries: [ent(1, 1, [1, 1, 1, 1]), ent(2, 1, [2, 2, 2, 2]), ent(3, 1, [3, 3, 3, 3])] });
    assert.deepEqual(log.entries(1, 4, 0).map((e) => e.index), [1]);
    assert.deepEqual(log.entries(1, 4, 8).map((e) => e.index), [1, 2]);
    assert.deepEqual(log.entries(1, 4, 11).map((e) => e.index), [1, 2]);
    assert.deepEqual(log.entries(2, 2, 100), []);
  });

  it("reads ranges longer than one SQL page without holes", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 1000, (i) => 1 + Math.floor(i / 300)) });
    const got = log.entries(5, 1001, Infinity);
    assert.equal(got.length, 996);
    got.forEach((e, k) => assert.equal(e.index, 5 + k));
    for (const i of [1, 299, 300, 599, 600, 1000]) assert.equal(log.term(i), log.storedTerm(i));
  });

  it("overwrites a conflicting suffix: stored entries >= entries[0].index are deleted first", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 10, 1) });
    log.save({ entries: [ent(6, 2, [66]), ent(7, 2, [77])] });
    assert.equal(log.lastIndex(), 7);
    assert.deepEqual(log.entries(5, 8, Infinity).map((e) => [e.index, e.term, e.data[0]]), [
      [5, 1, 5],
      [6, 2, 66],
      [7, 2, 77],
    ]);
    assert.throws(() => log.term(8), UnavailableError);
    assert.equal(log.storedTerm(8), undefined);
  });

  it("refuses a batch that would leave a hole or is not contiguous, and changes nothing", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 3, 1) });
    assert.throws(() => log.save({ entries: [ent(5, 1)] }), RaftInvariantError);
    assert.throws(() => log.save({ entries: [ent(4, 1), ent(6, 1)] }), RaftInvariantError);
    assert.equal(log.lastIndex(), 3);
    assert.equal(log.storedTerm(4), undefined);
  });

  it("compact drops entries <= index; term(first-1) still answers; reads below throw CompactedError", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 20, (i) => (i <= 10 ? 1 : 3)) });
    log.setSnapshot({ meta: { index: 15, term: 3, confState: { voters: ["a"], votersOutgoing: [], learners: [] } }, data: new Uint8Array([7]) });
    log.compact(12);
    assert.equal(log.firstIndex(), 13);
    assert.equal(log.lastIndex(), 20);
    assert.equal(log.term(12), 3);
    assert.throws(() => log.term(11), CompactedError);
    assert.throws(() => log.entries(12, 14, Infinity), CompactedError);
    assert.throws(() => log.entries(13, 22, Infinity), UnavailableError);
    assert.deepEqual(log.entries(13, 21, Infinity).map((e) => e.index), [13, 14, 15, 16, 17, 18, 19, 20]);
    assert.throws(() => log.compact(16), RaftInvariantError, "cannot compact past the snapshot");
    log.compact(5); // already compacted: no-op
    assert.equal(log.firstIndex(), 13);
  });

  it("save({snapshot}) that matches the log keeps the entries after it (Raft figure 13 step 6)", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 10, 2) });
    const meta = { index: 6, term: 2, confState: { voters: ["a", "b"], votersOutgoing: [], learners: [] } };
    log.save({ entries: [], snapshot: { meta, data: new Uint8Array([1, 2]) } });
    assert.equal(log.firstIndex(), 7);
    assert.equal(log.lastIndex(), 10);
    assert.equal(log.term(6), 2);
    assert.deepEqual(log.snapshot().meta, meta);
    assert.deepEqual([...log.snapshot().data], [1, 2]);
  });

  it("save({snapshot}) that conflicts with the log discards the whole log (figure 13 step 7)", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 10, 1) });
    const meta = { index: 8, term: 4, confState: { voters: ["a"], votersOutgoing: [], learners: [] } };
    log.save({ entries: [ent(9, 4)], snapshot: { meta, data: new Uint8Array(0) }, hardState: { term: 4, vote: "", commit: 8 } });
    assert.equal(log.firstIndex(), 9);
    assert.equal(log.lastIndex(), 9);
    assert.equal(log.term(8), 4);
    assert.equal(log.term(9), 4);
    assert.throws(() => log.term(7), CompactedError);
    assert.equal(log.storedTerm(5), undefined);
  });

  it("snapshot() throws SnapshotUnavailableError while marked busy", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 3, 1) });
    log.setSnapshot({ meta: { index: 3, term: 1, confState: { voters: ["a"], votersOutgoing: [], learners: [] } }, data: new Uint8Array([1]) });
    log.setSnapshotBusy(true);
    assert.throws(() => log.snapshot(), SnapshotUnavailableError);
    log.setSnapshotBusy(false);
    assert.equal(log.snapshot().meta.index, 3);
    assert.equal(log.snapshotFileWanted(), false, "a record with a file is never wanted");
  });

  it("a compaction point (no file) is refused by snapshot() and asks once for a file; a file record is served", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 6, 1) });
    const confState = { voters: ["a"], votersOutgoing: [], learners: [] };
    log.setSnapshot({ meta: { index: 4, term: 1, confState }, data: new Uint8Array(0) });
    assert.equal(log.snapshotIndex(), 4);
    assert.equal(log.snapshotFileWanted(), false, "nobody asked yet");
    assert.throws(() => log.snapshot(), SnapshotUnavailableError);
    assert.equal(log.snapshotFileWanted(), true);
    assert.equal(log.snapshotFileWanted(), false, "reading clears the wish");
    log.compact(4);
    assert.equal(log.firstIndex(), 5);
    log.setSnapshot({ meta: { index: 5, term: 1, confState }, data: new Uint8Array([7]) });
    assert.deepEqual([...log.snapshot().data], [7]);
    assert.equal(log.snapshotIndex(), 5);
    assert.equal(log.snapshotFileWanted(), false);
  });

  it("a corrupted row is detected on read: 'stored entry N is corrupt'", async () => {
    const { db, log: writer } = await fresh();
    writer.save({ entries: range(1, 5, 1) });
    // A fresh instance reads from the file (the writer would serve its recent entries from memory).
    const log = new SqliteRaftLog(db);
    db.prepare("UPDATE raft_log SET data = ? WHERE idx = 3").run(new Uint8Array([99]));
    assert.throws(() => log.entries(1, 6, Infinity), (e: unknown) => e instanceof RaftInvariantError && /stored entry 3 is corrupt/.test(e.message));
    assert.deepEqual(log.entries(1, 3, Infinity).map((e) => e.index), [1, 2]);
    db.prepare("UPDATE raft_log SET term = 9 WHERE idx = 4").run();
    assert.throws(() => log.entries(4, 5, Infinity), /stored entry 4 is corrupt/);
  });

  it("reopening the file restores entries, terms, hard state, log start and snapshot", async () => {
    const { db, log, path } = await fresh();
    log.bootstrap({ voters: ["a", "b", "c"], votersOutgoing: [], learners: [] });
    log.save({ entries: range(1, 30, (i) => (i < 10 ? 1 : i < 20 ? 2 : 5)), hardState: { term: 5, vote: "b", commit: 25 } });
    log.setSnapshot({ meta: { index: 20, term: 5, confState: { voters: ["a", "b"], votersOutgoing: ["c"], learners: [] } }, data: new Uint8Array([4, 2]) });
    log.compact(15);
    db.close();
    const db2 = await openTestDb(path);
    opened.push(db2);
    const again = new SqliteRaftLog(db2);
    assert.equal(again.firstIndex(), 16);
    assert.equal(again.lastIndex(), 30);
    assert.equal(again.term(15), 2);
    for (let i = 16; i <= 30; i++) assert.equal(again.term(i), i < 20 ? 2 : 5);
    assert.deepEqual(again.initialState(), {
      hardState: { term: 5, vote: "b", commit: 25 },
      confState: { voters: ["a", "b", "c"], votersOutgoing: [], learners: [] },
    });
    assert.deepEqual(again.snapshot().meta, { index: 20, term: 5, confState: { voters: ["a", "b"], votersOutgoing: ["c"], learners: [] } });
    assert.deepEqual([...again.snapshot().data], [4, 2]);
    assert.equal(again.entries(16, 31, Infinity).length, 15);
    assert.ok(!again.isEmpty());
  });

  it("a failed save leaves the caches and the database unchanged", async () => {
    const { db, log } = await fresh();
    log.save({ entries: range(1, 3, 1), hardState: { term: 1, vote: "a", commit: 0 } });
    db.exec("CREATE TRIGGER no_five BEFORE INSERT ON raft_log WHEN NEW.idx = 5 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    assert.throws(() => log.save({ entries: [ent(3, 2), ent(4, 2), ent(5, 2)], hardState: { term: 2, vote: "b", commit: 1 } }), /injected failure/);
    assert.equal(log.lastIndex(), 3);
    assert.equal(log.term(3), 1);
    assert.equal(log.storedTerm(3), 1);
    assert.deepEqual(log.initialState().hardState, { term: 1, vote: "a", commit: 0 });
  });

  it("prefers the state machine's kv_meta conf state (written on apply) over the bootstrap one", async () => {
    const { db, log } = await fresh();
    log.bootstrap({ voters: ["a"], votersOutgoing: [], learners: [] });
    db.exec("CREATE TABLE kv_meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID");
    db.prepare("INSERT INTO kv_meta VALUES (?, ?)").run("conf_state", JSON.stringify({ voters: ["a", "b"], votersOutgoing: [], learners: ["c"] }));
    assert.deepEqual(log.initialState().confState, { voters: ["a", "b"], votersOutgoing: [], learners: ["c"] });
  });
});

describe("SqliteRaftLog recent entries (read from memory after a save)", () => {
  /** Counts reads of raft_log rows through the driver (the range statement). */
  function countRangeReads(db: SqlDriver): { n: number } {
    const count = { n: 0 };
    const prepare = db.prepare.bind(db);
    db.prepare = (sql: string) => {
      const st = prepare(sql);
      if (!/FROM raft_log WHERE idx >= \? AND idx < \?/.test(sql)) return st;
      return { ...st, run: st.run.bind(st), get: st.get.bind(st), all: (...a: unknown[]) => (count.n++, st.all(...(a as []))) } as typeof st;
    };
    return count;
  }

  it("serves just-saved entries without reading SQL, equal to what a reopen reads", async () => {
    const { db, path } = await fresh();
    const count = countRangeReads(db);
    const log = new SqliteRaftLog(db);
    log.save({ entries: range(1, 50, 1) });
    log.save({ entries: range(51, 60, 2) });
    const got = log.entries(40, 61, Infinity);
    assert.equal(count.n, 0, "entries right after a save should come from memory");
    const db2 = await openTestDb(path);
    opened.push(db2);
    const stored = new SqliteRaftLog(db2).entries(40, 61, Infinity);
    assert.deepEqual(got.map((e) => [e.index, e.term, [...e.data]]), stored.map((e) => [e.index, e.term, [...e.data]]));
    // maxBytes applies the same way: 1 byte per entry here.
    assert.deepEqual(log.entries(40, 61, 3).map((e) => e.index), [40, 41, 42]);
    assert.deepEqual(log.entries(40, 61, 0).map((e) => e.index), [40]);
  });

  it("an overwritten suffix is never served from memory: the replacement is", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 10, 1) });
    log.save({ entries: [ent(6, 2, [66]), ent(7, 2, [77])] });
    assert.deepEqual(log.entries(4, 8, Infinity).map((e) => [e.index, e.term, e.data[0]]), [
      [4, 1, 4],
      [5, 1, 5],
      [6, 2, 66],
      [7, 2, 77],
    ]);
    assert.throws(() => log.entries(7, 9, Infinity), UnavailableError);
    log.save({ entries: [ent(8, 2, [88])] });
    assert.deepEqual(log.entries(5, 9, Infinity).map((e) => e.data[0]), [5, 66, 77, 88]);
  });

  it("compaction and a snapshot that replaces the log drop entries from memory too", async () => {
    const { log } = await fresh();
    log.save({ entries: range(1, 10, 1) });
    log.setSnapshot({ meta: { index: 5, term: 1, confState: { voters: ["a"], votersOutgoing: [], learners: [] } }, data: new Uint8Array(0) });
    log.compact(5);
    assert.throws(() => log.entries(5, 7, Infinity), CompactedError);
    assert.deepEqual(log.entries(6, 11, Infinity).map((e) => e.index), [6, 7, 8, 9, 10]);
    log.save({ entries: [], snapshot: { meta: { index: 20, term: 3, confState: { voters: ["a"], votersOutgoing: [], learners: [] } }, data: new Uint8Array(0) } });
    assert.throws(() => log.entries(10, 11, Infinity), CompactedError);
    log.save({ entries: [ent(21, 3, [21])] });
    assert.deepEqual(log.entries(21, 22, Infinity).map((e) => [e.index, e.term]), [[21, 3]]);
  });

  it("keeps a bounded window: old entries are read back from SQL, still verified", async () => {
    const { db } = await fresh();
    const count = countRangeReads(db);
    const log = new SqliteRaftLog(db);
    for (let i = 0; i < 10; i++) log.save({ entries: range(1 + i * 1000, (i + 1) * 1000, 1) });
    assert.equal(count.n, 0);
    assert.deepEqual(log.entries(1, 3, Infinity).map((e) => e.index), [1, 2]);
    assert.ok(count.n > 0, "entries far behind the tail should be read from SQL");
    const before = count.n;
    assert.deepEqual(log.entries(9990, 10001, Infinity).length, 11);
    assert.equal(count.n, before, "the tail should still be in memory");
  });
});

describe("crc32c", () => {
  const ascii = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));

  it("matches the RFC 3720 check value and chains across chunks", () => {
    assert.equal(crc32c(ascii("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeroes
    const b = ascii("the quick brown fox jumps over the lazy dog");
    assert.equal(crc32c(b.subarray(7), crc32c(b.subarray(0, 7))), crc32c(b));
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });

  it("entry checksums change with every column", () => {
    const base = entryChecksum(5, 2, 0, new Uint8Array([1]), null);
    assert.notEqual(entryChecksum(6, 2, 0, new Uint8Array([1]), null), base);
    assert.notEqual(entryChecksum(5, 3, 0, new Uint8Array([1]), null), base);
    assert.notEqual(entryChecksum(5, 2, 1, new Uint8Array([1]), null), base);
    assert.notEqual(entryChecksum(5, 2, 0, new Uint8Array([2]), null), base);
    assert.notEqual(entryChecksum(5, 2, 0, new Uint8Array([1]), "{}"), base);
    assert.notEqual(entryChecksum(2 ** 40 + 5, 2, 0, new Uint8Array([1]), null), base);
    assert.notEqual(crc32cUtf16("ab"), crc32cUtf16("ba"));
  });
});
