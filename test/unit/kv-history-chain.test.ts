/**
 * The history chain (src/kv/schema.ts): every event links to its key's previous event, reads at a past
 * revision walk those links, compaction removes exactly the events no legal read reaches, and a store or a
 * snapshot written before the chain existed (index `kv_history_by_key`, no link columns) is upgraded.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Harness, b, s } from "./kv-helpers.ts";
import { KvError } from "../../src/kv/types.ts";
import { SqliteRaftLog } from "../../src/kv/raft-log.ts";
import { createSnapshot, restoreSnapshot } from "../../src/kv/snapshot.ts";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { nodeFsSnapshotFiles as files } from "../../runtime-adapters/snapshot-files.ts";
import { kvSchemaOutdated } from "../../src/kv/schema.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

/** rangeEnd "\0": every key >= the start key (etcd convention). */
const ALL_KEYS_END = new Uint8Array([0]);
const dir = makeTempDir("edgekv-chain-");
after(() => removeDir(dir));

/**
 * Revisions 1..8: put a=1, put b=1, put a=2, delete a, put a=3 (re-created), delete b, put c=1, put a=4.
 * `STATES[r]` is every key at revision r as "key=value@createRevision/modRevision/version".
 */
const STATES: Record<number, string> = {
  1: "a=1@1/1/1",
  2: "a=1@1/1/1 b=1@2/2/1",
  3: "a=2@1/3/2 b=1@2/2/1",
  4: "b=1@2/2/1",
  5: "a=3@5/5/1 b=1@2/2/1",
  6: "a=3@5/5/1",
  7: "a=3@5/5/1 c=1@7/7/1",
  8: "a=4@5/8/2 c=1@7/7/1",
};

function writeScenario(h: Harness): void {
  h.ok({ op: "put", key: b("a"), value: b("1") });
  h.ok({ op: "put", key: b("b"), value: b("1") });
  h.ok({ op: "put", key: b("a"), value: b("2") });
  h.ok({ op: "deleteRange", key: b("a") });
  h.ok({ op: "put", key: b("a"), value: b("3") });
  h.ok({ op: "deleteRange", key: b("b") });
  h.ok({ op: "put", key: b("c"), value: b("1") });
  h.ok({ op: "put", key: b("a"), value: b("4") });
}

function stateAt(h: Harness, revision: number): string {
  const r = h.sm.range({ key: b("a"), rangeEnd: ALL_KEYS_END, revision });
  assert.equal(r.count, r.kvs.length);
  return r.kvs.map((kv) => `${s(kv.key)}=${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/${kv.version}`).join(" ");
}

function historyRevisions(db: SqlDriver): number[] {
  return db
    .prepare("SELECT revision FROM kv_history ORDER BY revision")
    .all()
    .map((r) => r.revision as number);
}

function links(db: SqlDriver): string {
  return db
    .prepare("SELECT revision, prev_revision FROM kv_history ORDER BY revision")
    .all()
    .map((r) => `${r.revision}<-${r.prev_revision}`)
    .join(" ");
}

/** The chain of the scenario: a re-created key links to its delete, a delete to the put it removed. */
const LINKS = "1<-0 2<-0 3<-1 4<-3 5<-4 6<-2 7<-0 8<-5";

/** Turns a current store back into the schema before the chain: link columns gone, the (key, revision) index back. */
function downgrade(db: SqlDriver): void {
  db.exec(
    "DROP INDEX kv_history_deletes; ALTER TABLE kv_history DROP COLUMN prev_revision; ALTER TABLE kv_keys DROP COLUMN prev_mod_revision; " +
      "CREATE UNIQUE INDEX kv_history_by_key ON kv_history (key, revision);",
  );
}

function indexNames(db: SqlDriver): string[] {
  return db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'kv_history' ORDER BY name")
    .all()
    .map((r) => r.name as string);
}

describe("kv history chain", () => {
  it("an empty database is not an outdated store", async () => {
    const db = await openTestDb();
    try {
      assert.equal(kvSchemaOutdated(db), false);
    } finally {
      db.close();
    }
  });

  it("links each event to its key's previous one, and reads at every past revision see that revision", async () => {
    const h = await Harness.open();
    try {
      writeScenario(h);
      assert.equal(links(h.driver), LINKS);
      for (let r = 1; r <= 8; r++) assert.equal(stateAt(h, r), STATES[r], `revision ${r}`);
      const page = h.sm.range({ key: b("a"), rangeEnd: ALL_KEYS_END, revision: 5, limit: 1 });
      assert.deepEqual([page.kvs.map((kv) => s(kv.key)), page.count, page.more], [["a"], 2, true]);
      assert.deepEqual(
        h.sm.range({ key: b("a"), rangeEnd: ALL_KEYS_END, revision: 5, keysOnly: true }).kvs.map((kv) => [s(kv.key), kv.value.length]),
        [
          ["a", 0],
          ["b", 0],
        ],
      );
    } finally {
      h.close();
    }
  });

  it("reads a past revision of a range larger than one page of candidates (live and deleted keys)", async () => {
    const h = await Harness.open();
    try {
      const key = (i: number) => b(`k${String(i).padStart(5, "0")}`);
      h.sm.applyEntries(Array.from({ length: 2500 }, (_, i) => h.entry({ request: { op: "put", key: key(i), value: b(`v${i}`) } })));
      const before = h.sm.revision();
      // Delete keys 0..1199 in one revision (1200 delete events: more than one page, and a revision many walks
      // pass through), re-create keys 0..99, then change every third key of those left.
      h.ok({ op: "deleteRange", key: key(0), rangeEnd: key(1200) });
      const afterDelete = h.sm.revision();
      h.sm.applyEntries(Array.from({ length: 100 }, (_, i) => h.entry({ request: { op: "put", key: key(i), value: b("again") } })));
      h.sm.applyEntries(Array.from({ length: 434 }, (_, j) => h.entry({ request: { op: "put", key: key(1200 + 3 * j), value: b("new") } })));
      const at = h.sm.range({ key: b("k"), rangeEnd: b("l"), revision: before });
      assert.equal(at.count, 2500);
      assert.equal(at.kvs.length, 2500);
      assert.deepEqual(
        at.kvs.map((kv) => s(kv.value)),
        Array.from({ length: 2500 }, (_, i) => `v${i}`),
      );
      const page = h.sm.range({ key: b("k"), rangeEnd: b("l"), revision: before, limit: 1100, countOnly: false });
      assert.deepEqual([page.kvs.length, page.count, page.more, s(page.kvs[1099].key)], [1100, 2500, true, "k01099"]);
      const rest = h.sm.range({ key: b("k"), rangeEnd: b("l"), revision: afterDelete });
      assert.deepEqual(
        rest.kvs.map((kv) => `${s(kv.key)}=${s(kv.value)}`),
        Array.from({ length: 1300 }, (_, i) => `k${String(1200 + i).padStart(5, "0")}=v${1200 + i}`),
      );
      assert.equal(h.sm.range({ key: b("k"), rangeEnd: b("l") }).count, 1400);
    } finally {
      h.close();
    }
  });

  it("reads a key changed thousands of times since the read revision without walking every change", async () => {
    const h = await Harness.open();
    try {
      h.ok({ op: "put", key: b("hot"), value: b("first") });
      for (let i = 0; i < 5; i++) h.sm.applyEntries(Array.from({ length: 1000 }, (_, j) => h.entry({ request: { op: "put", key: b("hot"), value: b(`v${i * 1000 + j}`) } })));
      h.ok({ op: "deleteRange", key: b("hot") });
      h.ok({ op: "put", key: b("hot"), value: b("reborn") });
      const at = (revision: number) => h.sm.range({ key: b("hot"), revision }).kvs.map((kv) => `${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/${kv.version}`).join();
      assert.equal(at(1), "first@1/1/1");
      assert.equal(at(2501), "v2499@1/2501/2501");
      assert.equal(at(5001), "v4999@1/5001/5001");
      assert.equal(at(5002), "", "deleted");
      assert.equal(at(5003), "reborn@5003/5003/1");
    } finally {
      h.close();
    }
  });

  it("compaction removes superseded puts and old deletes, and every read at or after the compact revision stays right", async () => {
    const h = await Harness.open();
    try {
      writeScenario(h);
      h.ok({ op: "compact", revision: 4 });
      // r1 and r3 (a's puts) are superseded at or below 4; b's put at 2 is superseded only at 6, so it stays.
      assert.deepEqual(historyRevisions(h.driver), [2, 4, 5, 6, 7, 8]);
      for (let r = 4; r <= 8; r++) assert.equal(stateAt(h, r), STATES[r], `revision ${r} after compacting at 4`);
      assert.throws(() => stateAt(h, 3), (e: KvError) => e.code === "compacted");
      h.ok({ op: "compact", revision: 6 });
      // Now b's put (superseded by its delete at 6) and the delete of a at 4 go; a's put at 5 is still the newest at or below 6.
      assert.deepEqual(historyRevisions(h.driver), [5, 6, 7, 8]);
      for (let r = 6; r <= 8; r++) assert.equal(stateAt(h, r), STATES[r], `revision ${r} after compacting at 6`);
    } finally {
      h.close();
    }
  });

  it("upgrades a store written before the chain: links filled, the old index dropped, reads and writes go on", async () => {
    const path = join(dir, "old.sqlite");
    const h = await Harness.open(path);
    writeScenario(h);
    h.ok({ op: "compact", revision: 4 });
    assert.equal(kvSchemaOutdated(h.driver), false);
    downgrade(h.driver);
    assert.equal(kvSchemaOutdated(h.driver), true);
    h.close();
    const up = await Harness.open(path);
    try {
      assert.equal(kvSchemaOutdated(up.driver), false);
      assert.deepEqual(indexNames(up.driver), ["kv_history_deletes"]);
      // r1 and r3 were compacted away: the survivors link to what remains, as a fresh store's would.
      assert.equal(links(up.driver), "2<-0 4<-0 5<-4 6<-2 7<-0 8<-5");
      for (let r = 4; r <= 8; r++) assert.equal(stateAt(up, r), STATES[r], `revision ${r} after the upgrade`);
      up.ok({ op: "put", key: b("b"), value: b("2") });
      assert.equal(links(up.driver).endsWith("9<-6"), true, "a put on a deleted key links to its delete");
      assert.equal(stateAt(up, 8), STATES[8]);
      assert.equal(stateAt(up, 9), "a=4@5/8/2 b=2@9/9/1 c=1@7/7/1");
    } finally {
      up.close();
    }
  });

  it("refills the links of a store an older build wrote to after the upgrade (index back, links 0), in place and from its snapshot", async () => {
    const path = join(dir, "rollback.sqlite");
    const h = await Harness.open(path);
    writeScenario(h);
    // What an older build leaves after it opened the upgraded store: its index recreated, its rows unlinked.
    h.driver.exec("CREATE UNIQUE INDEX kv_history_by_key ON kv_history (key, revision); UPDATE kv_history SET prev_revision = 0 WHERE revision >= 3");
    const info = createSnapshot(h.driver, { dir: join(dir, "rollback-snaps"), files });
    h.close();
    const again = await Harness.open(path);
    const dst = await Harness.open(join(dir, "rollback-dst.sqlite"));
    try {
      assert.equal(links(again.driver), LINKS);
      assert.deepEqual(indexNames(again.driver), ["kv_history_deletes"]);
      for (let r = 1; r <= 8; r++) assert.equal(stateAt(again, r), STATES[r], `revision ${r} after the refill`);
      restoreSnapshot(dst.driver, new SqliteRaftLog(dst.driver), info.path, { files });
      assert.equal(links(dst.driver), LINKS, "restored from the older build's snapshot");
    } finally {
      again.close();
      dst.close();
    }
  });

  it("restores a snapshot written before the chain and fills the links", async () => {
    const src = await Harness.open(join(dir, "src.sqlite"));
    const dst = await Harness.open(join(dir, "dst.sqlite"));
    try {
      writeScenario(src);
      downgrade(src.driver);
      const info = createSnapshot(src.driver, { dir: join(dir, "snaps"), files });
      restoreSnapshot(dst.driver, new SqliteRaftLog(dst.driver), info.path, { files });
      assert.equal(links(dst.driver), LINKS);
      for (let r = 1; r <= 8; r++) assert.equal(stateAt(dst, r), STATES[r], `revision ${r} after the restore`);
    } finally {
      src.close();
      dst.close();
    }
  });
});
