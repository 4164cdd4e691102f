/**
 * The ack-before-fsync switch's storage (src/server/unsafe-write-behind.ts), on the running runtime's real
 * SQLite driver: writes are visible at once on the node's connection but reach the file only at a lazy
 * commit, so a crash (the connection dropped without a commit, as kill -9 does) loses them; each
 * `transaction` stays atomic on its own; snapshot statements commit first.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { WriteBehindSql } from "../../src/server/unsafe-write-behind.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-wb-");
after(() => removeDir(dir));

let n = 0;
/** A fresh database file with table t(k TEXT PRIMARY KEY, v TEXT), wrapped; returns both drivers. */
async function fresh(flushIntervalMs = 60_000): Promise<{ path: string; inner: SqlDriver; wb: WriteBehindSql }> {
  const path = join(dir, `db-${++n}.sqlite`);
  const inner = await openTestDb(path);
  inner.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)");
  return { path, inner, wb: new WriteBehindSql(inner, flushIntervalMs) };
}

/** What a restarted node would read from the file. */
async function onDisk(path: string): Promise<string[]> {
  const db = await openTestDb(path);
  try {
    return db.prepare("SELECT k FROM t ORDER BY k").all().map((r) => r.k as string);
  } finally {
    db.close();
  }
}

const put = (db: SqlDriver, k: string) => db.transaction(() => db.prepare("INSERT INTO t (k, v) VALUES (?, 'x')").run(k));

/** Drops the connection without committing, as kill -9 does; the wrapper's timer is stopped first. */
function crash(x: { inner: SqlDriver; wb: WriteBehindSql }): void {
  x.inner.close();
  try {
    x.wb.close();
  } catch {
    // the wrapped connection is already gone
  }
}

describe("WriteBehindSql (EDGEKV_UNSAFE_BUG=ack-before-fsync)", () => {
  it("a committed-looking transaction is visible on the connection but lost by a crash before the flush", async () => {
    const x = await fresh();
    put(x.wb, "a");
    assert.deepEqual(x.wb.prepare("SELECT k FROM t").all().map((r) => r.k), ["a"]);
    crash(x);
    assert.deepEqual(await onDisk(x.path), []);
  });

  it("flush makes everything held durable; later writes are held again", async () => {
    const x = await fresh();
    put(x.wb, "a");
    put(x.wb, "b");
    x.wb.flush();
    put(x.wb, "c");
    crash(x);
    assert.deepEqual(await onDisk(x.path), ["a", "b"]);
  });

  it("a throwing transaction rolls back only its own writes", async () => {
    const x = await fresh();
    put(x.wb, "a");
    assert.throws(() =>
      x.wb.transaction(() => {
        x.wb.prepare("INSERT INTO t (k, v) VALUES ('b', 'x')").run();
        throw new Error("boom");
      }),
    /boom/);
    put(x.wb, "c");
    x.wb.close();
    assert.deepEqual(await onDisk(x.path), ["a", "c"]);
  });

  it("ignores PRAGMA synchronous (refused inside a transaction) and commits before VACUUM INTO", async () => {
    const x = await fresh();
    put(x.wb, "a");
    x.wb.exec("PRAGMA synchronous=NORMAL");
    assert.equal(x.inner.prepare("PRAGMA synchronous").get()?.synchronous, 2); // still FULL
    x.wb.exec(`VACUUM INTO '${join(dir, `copy-${n}.sqlite`)}'`);
    crash(x);
    assert.deepEqual(await onDisk(x.path), ["a"]);
    assert.deepEqual(await onDisk(join(dir, `copy-${n}.sqlite`)), ["a"]);
  });

  it("commits by itself on its timer", async () => {
    const x = await fresh(20);
    put(x.wb, "a");
    let seen: string[] = [];
    for (let i = 0; i < 100 && seen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      seen = await onDisk(x.path);
    }
    x.wb.close();
    assert.deepEqual(seen, ["a"]);
  });

  it("refuses a nested transaction like the real drivers", async () => {
    const x = await fresh();
    assert.throws(() => x.wb.transaction(() => x.wb.transaction(() => 1)), /not re-entrant/);
    x.wb.close();
  });
});
