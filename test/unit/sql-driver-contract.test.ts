/**
 * The SqlDriver contract (duties in src/kv/sql-driver.ts), run against the real driver of whichever runtime
 * runs the suite: bun:sqlite under Bun, node:sqlite under Deno, better-sqlite3 (or node:sqlite) under Node.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { OPEN_PRAGMAS } from "../../runtime-adapters/sql-common.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

let db: SqlDriver;

before(async () => {
  db = await openTestDb();
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, r REAL, s TEXT, b BLOB)");
});

after(() => {
  db.close();
  removeDir(dirname(db.path));
});

describe("SqlDriver contract on " + currentRuntime(), () => {
  it("opens with WAL, synchronous=FULL and busy_timeout=5000", () => {
    // busy_timeout must be set before journal_mode=WAL, which can itself wait on a lock (crash recovery).
    assert.match(OPEN_PRAGMAS, /^PRAGMA busy_timeout=\d+;.*journal_mode=WAL/);
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    assert.equal(db.prepare("PRAGMA synchronous").get()?.synchronous, 2); // 2 = FULL
    assert.equal(db.prepare("PRAGMA busy_timeout").get()?.timeout, 5000);
  });

  it("binds integers as INTEGER, fractions as REAL, strings as TEXT, Uint8Array as BLOB, null as NULL", () => {
    const row = db.prepare("SELECT typeof(?) a, typeof(?) b, typeof(?) c, typeof(?) d, typeof(?) e, ? + 1 f").get(7, 2.5, "x", new Uint8Array([1]), null, 41);
    assert.deepEqual({ ...row }, { a: "integer", b: "real", c: "text", d: "blob", e: "null", f: 42 });
  });

  it("reads back each type with its JS type, including large integers below 2^53 and empty blobs", () => {
    const ins = db.prepare("INSERT INTO t (id, n, r, s, b) VALUES (?, ?, ?, ?, ?)");
    const big = 2 ** 53 - 1;
    const r = ins.run(1, big, 0.25, "héllo", new Uint8Array([0, 255, 7]));
    assert.equal(r.changes, 1);
    assert.equal(r.lastInsertRowid, 1);
    ins.run(2, 0, 0, "", new Uint8Array(0));
    const row = db.prepare("SELECT n, r, s, b FROM t WHERE id = ?").get(1)!;
    assert.equal(row.n, big);
    assert.equal(typeof row.n, "number");
    assert.equal(row.r, 0.25);
    assert.equal(row.s, "héllo");
    assert.ok(row.b instanceof Uint8Array);
    assert.deepEqual([...(row.b as Uint8Array)], [0, 255, 7]);
    const empty = db.prepare("SELECT b FROM t WHERE id = ?").get(2)!;
    assert.equal((empty.b as Uint8Array | null)?.length ?? 0, 0);
  });

  it("binds a subarray view as exactly its own bytes", () => {
    const whole = new Uint8Array([9, 8, 7, 6, 5]);
    db.prepare("INSERT INTO t (id, b) VALUES (?, ?)").run(3, whole.subarray(1, 3));
    const row = db.prepare("SELECT b FROM t WHERE id = 3").get()!;
    assert.deepEqual([...(row.b as Uint8Array)], [8, 7]);
  });

  it("get returns undefined (not null) for no row; all returns [] for no rows", () => {
    assert.equal(db.prepare("SELECT * FROM t WHERE id = ?").get(999), undefined);
    assert.deepEqual(db.prepare("SELECT * FROM t WHERE id = ?").all(999), []);
  });

  it("all returns rows in order and prepared statements are reusable", () => {
    const st = db.prepare("SELECT id FROM t WHERE id <= ? ORDER BY id");
    assert.deepEqual(st.all(2).map((r) => r.id), [1, 2]);
    assert.deepEqual(st.all(3).map((r) => r.id), [1, 2, 3]);
    assert.deepEqual(st.all(1).map((r) => r.id), [1]);
  });

  it("exec runs several statements at once", () => {
    db.exec("CREATE TABLE m1 (x INTEGER); CREATE TABLE m2 (y INTEGER); INSERT INTO m1 VALUES (1);");
    assert.equal(db.prepare("SELECT count(*) c FROM m1").get()!.c, 1);
    assert.equal(db.prepare("SELECT count(*) c FROM m2").get()!.c, 0);
  });

  it("transaction commits and returns fn's result", () => {
    const ins = db.prepare("INSERT INTO t (id, n) VALUES (?, ?)");
    const out = db.transaction(() => {
      ins.run(10, 1);
      ins.run(11, 2);
      return "done";
    });
    assert.equal(out, "done");
    assert.equal(db.prepare("SELECT count(*) c FROM t WHERE id IN (10, 11)").get()!.c, 2);
  });

  it("transaction rolls back everything and rethrows when fn throws", () => {
    const ins = db.prepare("INSERT INTO t (id, n) VALUES (?, ?)");
    assert.throws(
      () =>
        db.transaction(() => {
          ins.run(20, 1);
          throw new Error("boom");
        }),
      /boom/,
    );
    assert.equal(db.prepare("SELECT count(*) c FROM t WHERE id = 20").get()!.c, 0);
    // The driver is usable afterwards.
    db.transaction(() => ins.run(21, 1));
    assert.equal(db.prepare("SELECT count(*) c FROM t WHERE id = 21").get()!.c, 1);
  });

  it("transaction rolls back when a statement inside fails, and the error carries SQLite's message", () => {
    const ins = db.prepare("INSERT INTO t (id, n) VALUES (?, ?)");
    assert.throws(
      () =>
        db.transaction(() => {
          ins.run(30, 1);
          ins.run(30, 2); // duplicate primary key
        }),
      (e: unknown) => e instanceof Error && /UNIQUE constraint failed/i.test(e.message),
    );
    assert.equal(db.prepare("SELECT count(*) c FROM t WHERE id = 30").get()!.c, 0);
  });

  it("a nested transaction is refused", () => {
    assert.throws(() => db.transaction(() => db.transaction(() => 1)), /not re-entrant/);
    assert.equal(db.transaction(() => 2), 2);
  });

  it("bad SQL throws an Error synchronously with SQLite's message", () => {
    assert.throws(() => db.prepare("SELEC nonsense"), (e: unknown) => e instanceof Error && /syntax error/i.test(e.message));
    assert.throws(() => db.exec("INSERT INTO missing_table VALUES (1)"), (e: unknown) => e instanceof Error && /no such table/i.test(e.message));
  });

  it("committed data is visible after close and reopen of the file", async () => {
    const dir = makeTempDir();
    try {
      const path = join(dir, "reopen.sqlite");
      const a = await openTestDb(path);
      assert.equal(a.path, path);
      a.exec("CREATE TABLE k (k TEXT PRIMARY KEY, v BLOB)");
      a.transaction(() => a.prepare("INSERT INTO k VALUES (?, ?)").run("x", new Uint8Array([1, 2, 3])));
      a.close();
      const b = await openTestDb(path);
      const row = b.prepare("SELECT v FROM k WHERE k = ?").get("x")!;
      assert.deepEqual([...(row.v as Uint8Array)], [1, 2, 3]);
      b.close();
    } finally {
      removeDir(dir);
    }
  });

  it("close releases the file: another connection can then take an exclusive lock at once", async () => {
    const dir = makeTempDir();
    try {
      const path = join(dir, "release.sqlite");
      const a = await openTestDb(path);
      a.exec("CREATE TABLE r (x INTEGER)");
      a.transaction(() => a.prepare("INSERT INTO r VALUES (?)").run(1));
      a.prepare("SELECT x FROM r").get(); // a statement left prepared must not keep the connection alive
      a.close();
      const b = await openTestDb(path);
      b.exec("PRAGMA busy_timeout=0; PRAGMA locking_mode=EXCLUSIVE; INSERT INTO r VALUES (2);");
      assert.equal(b.prepare("SELECT count(*) AS n FROM r").get()!.n, 2);
      b.close();
    } finally {
      removeDir(dir);
    }
  });

  it("opens an in-memory database", async () => {
    const m = await openTestDb(":memory:");
    m.exec("CREATE TABLE q (x INTEGER)");
    m.prepare("INSERT INTO q VALUES (?)").run(5);
    assert.equal(m.prepare("SELECT x FROM q").get()!.x, 5);
    m.close();
  });
});
