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
import { DISK_FULL_BYTES, DiskFullError, lockDataDir, LOCK_FILE } from "../../src/server/data-dir-lock.ts";
import { freeBytesOf } from "../../runtime-adapters/disk-space.ts";
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

  it("a lock that cannot be taken on a full file system is disk_full, and says not to delete the lock file", async () => {
    // On a full tmpfs SQLite answers "disk I/O error" when it opens the lock (B8 break session 2026-12-01), and
    // the old message sent the operator to delete the lock file, which does not help. The SQLite error is
    // imitated here and the free space given by the port; the real statfs is checked below.
    const dataDir = makeTempDir("edgekv-lockfull-");
    dirs.push(dataDir);
    const ports = await testPorts("n1", []);
    const ioError = async (): Promise<never> => {
      throw new Error("disk I/O error");
    };
    const owner = { nodeId: "n1", pid: process.pid, startedAt: "" };
    await assert.rejects(lockDataDir({ dataDir, openSqlite: ioError, files: ports.snapshotFiles, owner, freeBytes: () => 4096 }), (e: Error) => {
      assert.ok(e instanceof DiskFullError, `${e.name}: ${e.message}`);
      assert.equal(e.code, "disk_full");
      assert.equal(e.freeBytes, 4096);
      assert.ok(e.message.includes(`file system holding ${dataDir} is full (4096 bytes free; SQLite says: disk I/O error)`), e.message);
      assert.match(e.message, /do not delete them/);
      assert.doesNotMatch(e.message, /delete .*edgekv\.lock/);
      return true;
    });
    // Room on the disk: the same SQLite error is a broken lock file, as before.
    await assert.rejects(
      lockDataDir({ dataDir, openSqlite: ioError, files: ports.snapshotFiles, owner, freeBytes: () => 10 * DISK_FULL_BYTES }),
      (e: Error) => !(e instanceof DiskFullError) && /holds no data: if no edgekv process uses/.test(e.message),
    );
    // The ports' statfs: this temp dir has room; a missing path is unknown, never an error.
    const free = ports.freeBytes?.(dataDir);
    assert.ok(free !== undefined && free > DISK_FULL_BYTES, `free bytes of ${dataDir}: ${free}`);
    assert.equal(freeBytesOf(join(dataDir, "no", "such", "dir")), undefined);
  });
});
