/**
 * The node moves WAL checkpoints off its Ready loop when the ports can (NodePorts.startWalCheckpointer):
 * its connection runs with `wal_autocheckpoint=0` and the checkpoint thread is closed on stop; when that
 * thread fails, the node turns SQLite's automatic checkpoints (1000 pages) back on so the WAL stays bounded.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { EdgeNode, type NodePorts } from "../../src/server/node.ts";
import { freePort, testPorts } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-node-walcp-");
after(() => removeDir(dir));

/** A one-node member whose ports record the SQLite connection and the checkpointer's onFail. */
async function oneNode(name: string, lines: string[]) {
  const port = await freePort();
  const config = loadConfig({
    argv: ["--node-id", "n1", "--peers", `n1=http://127.0.0.1:${port}`, "--cluster-secret", "wal-checkpoint-test", "--data-dir", join(dir, name), "--peer-port", String(port)],
    env: {},
  });
  const base = await testPorts("n1", lines);
  const seen: { db?: SqlDriver; onFail?: (err: Error) => void; closed: number } = { closed: 0 };
  const ports: NodePorts = {
    ...base,
    openSqlite: async (path) => (seen.db = await base.openSqlite(path)),
    startWalCheckpointer: (dbPath, onFail) => {
      seen.onFail = onFail;
      const real = base.startWalCheckpointer!(dbPath, onFail);
      return { close: async () => (seen.closed++, real.close()), lastRound: () => real.lastRound(), counts: () => real.counts() };
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
});
