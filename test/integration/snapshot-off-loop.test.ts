/**
 * Off-loop snapshots (runtime-adapters/snapshot-off-loop.ts): a worker thread copies the database on its
 * own connection while this thread keeps applying entries; the snapshot names the index it caught, and
 * restoring it gives exactly the state of a replica that applied the entries up to that index — no more,
 * no fewer. Runs on Node (worker via tsx), Bun and Deno.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import { SqliteRaftLog } from "../../src/kv/raft-log.ts";
import { restoreSnapshot, type SnapshotInfo } from "../../src/kv/snapshot.ts";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import type { Entry } from "../../src/raft/types.ts";
import { createSnapshotOffLoop } from "../../runtime-adapters/snapshot-off-loop.ts";
import { nodeFsSnapshotFiles } from "../../runtime-adapters/snapshot-files.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";
import { b, decodeTest, encodeTest } from "../unit/kv-helpers.ts";

const dir = makeTempDir("edgekv-snap-offloop-");
const opened: SqlDriver[] = [];

async function node(name: string): Promise<{ db: SqlDriver; log: SqliteRaftLog; sm: KvStateMachine }> {
  const db = await openTestDb(join(dir, name));
  opened.push(db);
  return { db, log: new SqliteRaftLog(db), sm: new KvStateMachine(db, { decode: decodeTest }) };
}

/** Entry i (1-based): a put of key k<i mod 500> with value v<i>, every 7th a delete of k<(i+3) mod 500>. */
const entries: Entry[] = [];
for (let i = 1; i <= 6000; i++) {
  const request = i % 7 === 0 ? { op: "deleteRange" as const, key: b(`k${(i + 3) % 500}`) } : { op: "put" as const, key: b(`k${i % 500}`), value: b(`v${i}`.padEnd(200, "x")) };
  entries.push({ index: i, term: 1, type: "normal", data: encodeTest({ request }) });
}

function state(sm: KvStateMachine): unknown {
  const all = sm.range({ key: b("\0"), rangeEnd: b("\0") });
  return { revision: sm.revision(), applied: sm.appliedIndex(), kvs: all.kvs.map((kv) => [Array.from(kv.key), Array.from(kv.value), kv.createRevision, kv.modRevision, kv.version]) };
}

after(() => {
  for (const db of opened.splice(0)) db.close();
  removeDir(dir);
});

describe("snapshot off the event loop", () => {
  it("is consistent with the index it names while entries keep applying on the node's connection", async () => {
    const live = await node("live.db");
    live.sm.applyEntries(entries.slice(0, 3000));
    const startIndex = live.sm.appliedIndex();
    const pending = createSnapshotOffLoop(live.db.path, join(dir, "snapshots"));
    let info: SnapshotInfo | undefined;
    void pending.then((i) => (info = i), () => {});
    // Keep applying (in batches of 50, yielding between them) until the worker answers or the log runs out.
    let next = 3000;
    while (info === undefined && next < entries.length) {
      live.sm.applyEntries(entries.slice(next, next + 50));
      next += 50;
      await new Promise((r) => setTimeout(r, 1));
    }
    info = await pending;
    assert.ok(info.meta.index >= startIndex, `snapshot index ${info.meta.index} >= ${startIndex} at the call`);
    assert.ok(info.meta.index <= live.sm.appliedIndex());

    const restored = await node("restored.db");
    restoreSnapshot(restored.db, restored.log, info.path, { files: nodeFsSnapshotFiles });
    const reference = await node("reference.db");
    reference.sm.applyEntries(entries.slice(0, info.meta.index));
    assert.deepEqual(state(restored.sm), state(reference.sm));
    assert.equal(restored.log.snapshot().meta.index, info.meta.index);
    // And the live node went on past it, undisturbed.
    live.sm.applyEntries(entries.slice(next));
    reference.sm.applyEntries(entries.slice(info.meta.index));
    assert.deepEqual(state(live.sm), state(reference.sm));
  });

  it("rejects with the worker's error when the database cannot be copied", async () => {
    await assert.rejects(createSnapshotOffLoop(join(dir, "no-such-dir", "x.db"), join(dir, "snapshots2")), /snapshot worker|unable to open|no such/i);
  });
});
