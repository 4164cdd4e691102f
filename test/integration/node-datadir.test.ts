/**
 * A member that lost its data must not rejoin under its old identity (docs/scenarios.md C13): once the data dir
 * has held state, a start that finds its database empty (truncated or deleted) refuses with a message that
 * says what to do; a data dir of another node is refused too; a damaged database names its path, also when
 * only some pages in the middle are overwritten (an integrity check at open, before the node votes or serves).
 * One node per data dir: a second open of a data dir in use is refused (src/server/data-dir-lock.ts), and
 * every refused or failed open leaves the lock free.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, openSync, closeSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { EdgeNode } from "../../src/server/node.ts";
import { DataDirLockedError } from "../../src/server/data-dir-lock.ts";
import { WalScanner } from "../../src/kv/wal-scan.ts";
import { freePort, testPorts } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

async function config(dataDir: string, nodeId = "n1") {
  const port = await freePort();
  return loadConfig({ argv: ["--node-id", nodeId, "--data-dir", dataDir, "--peer-port", String(port), "--client-port", String(port + 1)], env: {} });
}

async function startAndStop(dataDir: string, keys = 1): Promise<void> {
  const node = await EdgeNode.open(await config(dataDir), await testPorts("n1", []));
  await node.start();
  for (let i = 0; i < keys; i++) {
    const r = await node.fetch(new Request(`http://x/v1/kv/k${i}`, { method: "PUT", body: "v".repeat(keys > 1 ? 1000 : 1) }));
    assert.equal(r.status, 200, await r.text());
  }
  await node.stop();
}

describe("data dir identity", () => {
  it("refuses to start on an emptied database next to the marker, and starts again when the dir is new", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    await startAndStop(dir);
    for (const f of ["edgekv.db-wal", "edgekv.db-shm"]) rmSync(join(dir, f), { force: true });
    truncateSync(join(dir, "edgekv.db"), 0);
    await assert.rejects(EdgeNode.open(await config(dir), await testPorts("n1", [])), /database is empty.*must not rejoin/);
  });

  it("refuses a data dir that belongs to another node", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    await startAndStop(dir);
    await assert.rejects(EdgeNode.open(await config(dir, "n2"), await testPorts("n2", [])), /belongs to node n1, not n2/);
  });

  it("names the database and the way out when it is damaged", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    await startAndStop(dir);
    for (const f of ["edgekv.db-wal", "edgekv.db-shm"]) rmSync(join(dir, f), { force: true });
    writeFileSync(join(dir, "edgekv.db"), "this is not an SQLite database, just some bytes of garbage........");
    await assert.rejects(EdgeNode.open(await config(dir), await testPorts("n1", [])), /cannot use the database .*edgekv\.db.*Remove this member/);
  });

  it("refuses a database whose header is intact but some pages in the middle are overwritten", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    await startAndStop(dir, 300); // ~300 KB of values: the tables span many pages
    for (const f of ["edgekv.db-wal", "edgekv.db-shm"]) rmSync(join(dir, f), { force: true });
    const fd = openSync(join(dir, "edgekv.db"), "r+");
    try {
      writeSync(fd, new Uint8Array(4 * 4096).fill(0xab), 0, 4 * 4096, 3 * 4096); // pages 4..7 (1-based)
    } finally {
      closeSync(fd);
    }
    await assert.rejects(EdgeNode.open(await config(dir), await testPorts("n1", [])), /cannot use the database .*edgekv\.db: integrity check failed/);
  });

  it("refuses a -wal file with commits behind a damaged frame (wal_damaged), which SQLite would drop silently", async () => {
    const dir = makeTempDir();
    const copy = makeTempDir();
    dirs.push(dir, copy);
    const node = await EdgeNode.open(await config(dir), await testPorts("n1", []));
    await node.start();
    for (let i = 0; i < 5; i++) {
      const r = await node.fetch(new Request(`http://x/v1/kv/w${i}`, { method: "PUT", body: "v".repeat(500) }));
      assert.equal(r.status, 200, await r.text());
    }
    // A crash image: the files as they are while the node runs (no -shm: SQLite rebuilds it).
    for (const f of ["edgekv.db", "edgekv.db-wal", "edgekv-node.json"]) copyFileSync(join(dir, f), join(copy, f));
    await node.stop();
    const wal = new Uint8Array(readFileSync(join(copy, "edgekv.db-wal")));
    const before = new WalScanner();
    before.push(wal);
    const s = before.result();
    assert.ok(s.frames >= 4 && !s.damaged, `a clean WAL with frames to damage: ${JSON.stringify(s)}`);
    wal[32 + 1 * (24 + s.pageSize) + 24 + 50] ^= 0xff; // frame 1's page
    writeFileSync(join(copy, "edgekv.db-wal"), wal);
    await assert.rejects(EdgeNode.open(await config(copy), await testPorts("n1", [])), /wal_damaged: .*edgekv\.db-wal .*frame 1 .*remove this member/);
  });
});

describe("data dir lock", () => {
  it("refuses a second node on a data dir in use, naming the owner, and takes it once the first stopped", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    const first = await EdgeNode.open(await config(dir), await testPorts("n1", []));
    await first.start();
    const put = await first.fetch(new Request("http://x/v1/kv/a", { method: "PUT", body: "1" }));
    assert.equal(put.status, 200, await put.text());
    const refused = await EdgeNode.open(await config(dir), await testPorts("n1", [])).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof DataDirLockedError, String(refused));
    assert.equal(refused.code, "data_dir_locked");
    assert.equal(refused.owner?.nodeId, "n1");
    assert.equal(refused.owner?.pid, process.pid);
    assert.match(refused.message, /is in use by another edgekv process \(node n1, pid \d+, since /);
    // The first node is unharmed by the refused start: it still writes.
    const put2 = await first.fetch(new Request("http://x/v1/kv/a", { method: "PUT", body: "2" }));
    assert.equal(put2.status, 200, await put2.text());
    await first.stop();
    const second = await EdgeNode.open(await config(dir), await testPorts("n1", []));
    await second.start();
    const get = await second.fetch(new Request("http://x/v1/kv/a"));
    assert.equal(await get.text(), "2");
    await second.stop();
  });

  it("an open refused for another reason releases the lock", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    await startAndStop(dir);
    await assert.rejects(EdgeNode.open(await config(dir, "n2"), await testPorts("n2", [])), /belongs to node n1, not n2/);
    // Without the release in EdgeNode.open this start would be refused as data_dir_locked.
    await startAndStop(dir);
  });
});
