/**
 * The Docker image's start command (deploy/Dockerfile `CMD`), run the way Docker runs it (`sh -c ...` as the
 * container's first process) on the runtime under test: a SIGTERM to that first process reaches the node,
 * which stops gracefully (logs `SIGTERM: stopping`, exits 0). With `exec npx bun run node.ts` the signal went
 * to npm, which passed it to its `sh -c` wrapper; Debian's sh (dash) died of it without passing it on, the
 * node never heard it, and `docker stop` or a Fly deploy killed it at the timeout without a leader handover
 * (a new user's finding, 2026-11-30). Only the PID spawned here, and in the failure case the orphaned node's
 * PID from its data dir's lock owner file, are signalled.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { repoRoot } from "../../scripts/node-command.ts";
import { LOCK_OWNER_FILE } from "../../src/server/data-dir-lock.ts";
import { freePorts, sleep } from "../helpers/cluster.ts";
import { ChildProcesses, alive, exitWithin } from "../helpers/script-process.ts";

const runtime = currentRuntime();
const procs = new ChildProcesses();
const dir = mkdtempSync(join(tmpdir(), "edgekv-docker-cmd-"));

after(() => {
  // The bug's orphan: the node that never heard the SIGTERM keeps running; its pid is in the lock owner file.
  const owner = join(dir, "data", LOCK_OWNER_FILE);
  if (existsSync(owner)) {
    const pid = (JSON.parse(readFileSync(owner, "utf8")) as { pid: number }).pid;
    if (pid > 0 && alive(pid)) procs.pids.push(pid);
  }
  procs.killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe(`deploy/Dockerfile CMD on ${runtime}`, () => {
  it("a SIGTERM to the container's first process stops the node gracefully", async () => {
    const m = /^CMD (\[.*\])$/m.exec(readFileSync(join(repoRoot, "deploy", "Dockerfile"), "utf8"));
    assert.ok(m, "deploy/Dockerfile has a CMD in exec form");
    const cmd = JSON.parse(m[1]) as string[];
    const [clientPort, peerPort] = await freePorts(2);
    const r = procs.spawn(cmd[0], cmd.slice(1), {
      EDGEKV_RUNTIME: runtime,
      EDGEKV_DATA_DIR: join(dir, "data"),
      EDGEKV_CLIENT_HOST: "127.0.0.1",
      EDGEKV_PEER_HOST: "127.0.0.1",
      EDGEKV_CLIENT_PORT: String(clientPort),
      EDGEKV_PEER_PORT: String(peerPort),
      MIMALLOC_PURGE_HOLES: "0",
    });
    const deadline = Date.now() + 60_000;
    while (!r.out().includes("serving clients") && Date.now() < deadline && r.child.exitCode === null) await sleep(50);
    assert.match(r.out(), /serving clients/, r.err());
    process.kill(r.child.pid!, "SIGTERM");
    assert.equal(await exitWithin(r, 30_000), "0", r.err());
    assert.match(r.err(), /SIGTERM: stopping/);
  });
});
