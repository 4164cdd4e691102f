/**
 * The node moves WAL checkpoints off its Ready loop when the ports can (NodePorts.startWalCheckpointer):
 * its connection runs with `wal_autocheckpoint=0` and the checkpoint thread is closed on stop; when that
 * thread fails, the node turns SQLite's automatic checkpoints (1000 pages) back on so the WAL stays bounded.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { EdgeNode, type NodePorts } from "../../src/server/node.ts";
import { singleNodeConfig, testPorts } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-node-walcp-");
/** Every checkpointer the tests started: a node forgets its own after onFail, so `after` stops them all. */
const started: Array<{ close(): Promise<void> }> = [];
after(async () => {
  await Promise.all(started.splice(0).map((cp) => cp.close()));
  removeDir(dir);
});

/**
 * A one-node member whose ports record the SQLite connection, the checkpointer's onFail and the
 * PASSIVE checkpoints the node runs on its own connection; `wantsRestart` replaces the checkpointer's answer.
 */
async function oneNode(name: string, lines: string[], wantsRestart?: () => boolean, walCheckpointerRetryMs?: number) {
  const config = await singleNodeConfig(join(dir, name), "wal-checkpoint-test");
  const base = await testPorts("n1", lines);
  const seen: { db?: SqlDriver; onFail?: (err: Error) => void; closed: number; passive: number; starts: number } = { closed: 0, passive: 0, starts: 0 };
  const ports: NodePorts = {
    ...base,
    ...(walCheckpointerRetryMs !== undefined ? { walCheckpointerRetryMs } : {}),
    openSqlite: async (path) => {
      const db = (seen.db = await base.openSqlite(path));
      const prepare = db.prepare.bind(db);
      db.prepare = (sql) => {
        if (sql === "PRAGMA wal_checkpoint(PASSIVE)") seen.passive++;
        return prepare(sql);
      };
      return db;
    },
    startWalCheckpointer: (dbPath, onFail) => {
      seen.onFail = onFail;
      seen.starts++;
      const real = base.startWalCheckpointer!(dbPath, onFail);
      started.push(real);
      return { close: async () => (seen.closed++, real.close()), wantsRestart: wantsRestart ?? (() => real.wantsRestart()) };
    },
  };
  const node = await EdgeNode.open(config, ports);
  await node.start();
  return { node, seen };
}

function autocheckpoint(db: SqlDriver): number {
  return Number(db.prepare("PRAGMA wal_autocheckpoint").get()?.wal_autocheckpoint);
}

describe("EdgeNode WAL checkpoints", () => {
  it("runs with wal_autocheckpoint=0 while the checkpoint thread runs, and closes the thread on stop", async () => {
    const lines: string[] = [];
    const { node, seen } = await oneNode("a", lines);
    try {
      assert.ok(seen.db && seen.onFail, "the node should have started a checkpointer");
      assert.equal(autocheckpoint(seen.db), 0);
    } finally {
      await node.stop();
    }
    assert.equal(seen.closed, 1);
  });

  it("turns automatic checkpoints back on (1000 pages) when the checkpoint thread fails", async () => {
    const lines: string[] = [];
    const { node, seen } = await oneNode("b", lines);
    try {
      seen.onFail!(new Error("simulated worker failure"));
      assert.equal(autocheckpoint(seen.db!), 1000);
      assert.ok(lines.some((l) => l.includes("WAL checkpoint thread failed (simulated worker failure)")), lines.join("\n"));
    } finally {
      await node.stop();
    }
  });

  it("starts a new checkpoint thread after the retry delay, and checkpoints leave the COMMIT again", async () => {
    // B8 break session 2026-12-01: a full disk failed the thread once, and the node kept checkpointing in the
    // COMMIT until it restarted. Here the first thread "fails" and the retry delay is 300 ms.
    const lines: string[] = [];
    const { node, seen } = await oneNode("retry", lines, undefined, 300);
    try {
      assert.equal(seen.starts, 1);
      const first = seen.onFail!;
      first(new Error("database or disk is full"));
      assert.equal(autocheckpoint(seen.db!), 1000);
      assert.ok(lines.some((l) => l.includes("WAL checkpoint thread failed (database or disk is full); checkpoints run in the commit again; a new thread in 0 s")), lines.join("\n"));
      for (let i = 0; i < 200 && seen.starts < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(seen.starts, 2, "no new checkpoint thread within 4 s of a 300-ms retry delay");
      assert.equal(autocheckpoint(seen.db!), 0, "the new thread checkpoints; the COMMIT does not");
      assert.ok(lines.some((l) => l.includes("starting a new WAL checkpoint thread")), lines.join("\n"));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(seen.starts, 2, "one failure, one new thread");
    } finally {
      await node.stop();
    }
  });

  it("runs one PASSIVE checkpoint on its own connection when the checkpointer wants the WAL restarted", async () => {
    const lines: string[] = [];
    let asked = 0;
    let armed = false;
    const { node, seen } = await oneNode("c", lines, () => {
      asked++;
      const yes = armed;
      armed = false;
      return yes;
    });
    const put = async (key: string) => {
      const res = await node.fetch(new Request(`http://127.0.0.1/v1/kv/${key}`, { method: "PUT", body: "v" }));
      assert.equal(res.status, 200, await res.clone().text());
    };
    try {
      for (let i = 0; i < 100 && (await node.cluster()).leaderId !== "n1"; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await node.cluster()).leaderId, "n1", lines.slice(-20).join("\n"));
      await put("a");
      assert.ok(asked > 0, "the node never asked the checkpointer");
      assert.equal(seen.passive, 0, "a checkpoint ran though the checkpointer did not ask for one");
      armed = true;
      await put("b");
      assert.equal(armed, false, "the node did not ask after the put's Ready");
      assert.equal(seen.passive, 1);
      await put("c");
      assert.equal(seen.passive, 1);
    } finally {
      await node.stop();
    }
  });

  it("every restart the checkpointer asks for runs, also when it asks while Readys are in flight (pipelined persist)", async () => {
    const lines: string[] = [];
    let asked = 0;
    let yes = 0;
    // Like the real checkpointer: true once per "round" (here every 10th question), and asking consumes it.
    const { node, seen } = await oneNode("d", lines, () => {
      asked++;
      if (asked % 10 !== 0) return false;
      yes++;
      return true;
    });
    try {
      for (let i = 0; i < 100 && (await node.cluster()).leaderId !== "n1"; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await node.cluster()).leaderId, "n1", lines.slice(-20).join("\n"));
      for (let round = 0; round < 30; round++) {
        const puts = await Promise.all(Array.from({ length: 32 }, (_, i) => node.fetch(new Request(`http://127.0.0.1/v1/kv/r${round}-${i}`, { method: "PUT", body: "v" }))));
        assert.ok(puts.every((r) => r.status === 200));
      }
      await node.fetch(new Request("http://127.0.0.1/v1/kv/last", { method: "PUT", body: "v" }));
      assert.ok(yes >= 5, `the checkpointer said yes ${yes} times in ${asked} questions`);
      // A yes heard while Readys were in flight (the node then hands out no new Ready until they are durable)
      // used to be consumed there, and the restart never ran: the WAL grew to the TRUNCATE bound.
      assert.equal(seen.passive, yes, `${seen.passive} restarts for ${yes} requests`);
    } finally {
      await node.stop();
    }
  });
});
