/**
 * The data-dir lock (src/server/data-dir-lock.ts) against a second process after the lock's companion files
 * were removed while the owner runs (B1 break session 2026-11-30, docs/nemesis.md): an operator's "stale
 * -shm/-wal" cleanup must not let a second node serve on the same data dir. This test process holds the
 * lock (through the same SqlDriver port a node uses), deletes edgekv.lock-shm and edgekv.lock-wal, and
 * starts node.ts on the data dir: it must exit 1 with data_dir_locked. With the lock held in NORMAL locking
 * mode (the WAL write lock lives only in -shm) the child created a fresh -shm and served. Only the PID
 * spawned here is killed.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { nodeCommand, repoRoot, type NodeRuntime } from "../../scripts/node-command.ts";
import { lockDataDir, LOCK_FILE } from "../../src/server/data-dir-lock.ts";
import { freePorts, sleep } from "../helpers/cluster.ts";
import { testPorts } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const runtime = (process.env.EDGEKV_TEST_RUNTIME ?? currentRuntime()) as NodeRuntime;
const started: ChildProcess[] = [];
const dirs: string[] = [];
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  dirs.forEach(removeDir);
});

describe("data dir lock and its files", () => {
  it("a second process is refused after the lock's -shm and -wal were deleted under the owner", async () => {
    const dataDir = makeTempDir("edgekv-lockfiles-");
    dirs.push(dataDir);
    const ports = await testPorts("n1", []);
    const lock = await lockDataDir({
      dataDir,
      openSqlite: (p) => ports.openSqlite(p),
      files: ports.snapshotFiles,
      owner: { nodeId: "n1", pid: process.pid, startedAt: new Date().toISOString() },
    });
    try {
      for (const f of ["-shm", "-wal"]) rmSync(join(dataDir, LOCK_FILE + f), { force: true });
      assert.equal(existsSync(join(dataDir, LOCK_FILE + "-shm")), false);
      const [clientPort, peerPort] = await freePorts(2);
      const [cmd, base] = nodeCommand(runtime);
      const child = spawn(cmd, [...base, "--data-dir", dataDir, "--client-port", String(clientPort), "--peer-port", String(peerPort)], {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"],
      });
      started.push(child);
      let out = "";
      let err = "";
      child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
      child.stderr!.on("data", (d: Uint8Array) => (err += new TextDecoder().decode(d)));
      const exit = new Promise<string>((r) => child.on("exit", (code, sig) => r(code === null ? `signal ${sig}` : String(code))));
      // Bounded: the refusal comes after the SQLite busy waits (~5 s); a child that serves is caught at once.
      const deadline = Date.now() + 60_000;
      let status = "still running";
      while (Date.now() < deadline && !out.includes("serving clients")) {
        status = await Promise.race([exit, sleep(100).then(() => "still running")]);
        if (status !== "still running") break;
      }
      assert.equal(out, "", "the second process must never serve");
      assert.equal(status, "1", err);
      assert.match(err, new RegExp(`data_dir_locked: .* \\(node n1, pid ${process.pid}, since `));
    } finally {
      lock.release();
    }
  });

  it("a lock file that is not a database is named in the error, with the way out", async () => {
    const dataDir = makeTempDir("edgekv-lockfiles-");
    dirs.push(dataDir);
    writeFileSync(join(dataDir, LOCK_FILE), "not an SQLite database, just garbage bytes ".repeat(4));
    const ports = await testPorts("n1", []);
    await assert.rejects(
      lockDataDir({ dataDir, openSqlite: (p) => ports.openSqlite(p), files: ports.snapshotFiles, owner: { nodeId: "n1", pid: process.pid, startedAt: "" } }),
      (e: Error) => e.message.includes(`cannot take the data dir lock ${join(dataDir, LOCK_FILE)}`) && /holds no data: if no edgekv process uses/.test(e.message),
    );
  });
});
