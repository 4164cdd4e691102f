/**
 * node.ts as a process on the runtime running the test: `--help`, invalid configuration (exit 2 naming the
 * field and its source), the no-arguments single-node cluster (id n1, ready line, put/get, graceful
 * SIGTERM), and one process per data dir (a second process on a data dir in use exits 1 with
 * `data_dir_locked`; after the first is killed with SIGKILL the lock is free). Only PIDs spawned here are
 * signalled.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { nodeCommand, repoRoot, type NodeRuntime } from "../../scripts/node-command.ts";
import { freePorts, sleep } from "../helpers/cluster.ts";
import { ChildProcesses, type Running, exitWithin } from "../helpers/script-process.ts";

const runtime = (process.env.EDGEKV_TEST_RUNTIME ?? currentRuntime()) as NodeRuntime;
const isDenoParent = (globalThis as { Deno?: unknown }).Deno !== undefined;

const procs = new ChildProcesses();
/** node.ts with `args` on the runtime under test, `env` added to this process's, in `cwd`. */
function run(args: string[], env: NodeJS.ProcessEnv = {}, cwd = repoRoot): Running {
  const [cmd, base] = nodeCommand(runtime);
  return procs.spawn(cmd, [...base, ...args], env, cwd);
}

describe(`node.ts on ${runtime}`, () => {
  const dirs: string[] = [];
  after(() => {
    procs.killAll();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("--help prints every option with its env var and exits 0", async () => {
    const r = run(["--help"]);
    assert.equal(await exitWithin(r, 30_000), "0");
    assert.match(r.out(), /^usage: edgekv/);
    assert.match(r.out(), /--election-timeout-ms-min <int> \[ms\]  default 300/);
    assert.match(r.out(), /env EDGEKV_CLUSTER_SECRET/);
  });

  it("invalid configuration exits 2 with a message naming the field and its source", async () => {
    // The four refusals are independent processes that exit before binding anything: started together,
    // they share one start-up wait instead of four in a row.
    const flag = run(["--peer-port", "99999"]);
    const env = run([], { EDGEKV_HEARTBEAT_INTERVAL_MS: "soon" });
    const cross = run(["--election-timeout-ms-min", "100", "--heartbeat-interval-ms", "150"]);
    // An initial cluster without this node (etcd refuses an --initial-cluster without its --name).
    const peers = run(["--node-id", "n1", "--bootstrap", "--peers", "n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003"]);
    const codes = await Promise.all([flag, env, cross, peers].map((r) => exitWithin(r, 30_000)));
    assert.deepEqual(codes, ["2", "2", "2", "2"], [flag, env, cross, peers].map((r) => r.err()).join("\n---\n"));
    assert.match(flag.err(), /invalid peerPort from flag \(--peer-port\): "99999"/);
    assert.match(env.err(), /invalid heartbeatIntervalMs from env \(EDGEKV_HEARTBEAT_INTERVAL_MS\)/);
    assert.match(cross.err(), /invalid electionTimeoutMsMin .*must be > heartbeatIntervalMs/);
    assert.match(peers.err(), /invalid peers from flag \(--peers\): does not list this node's id n1/);
  });

  it("a cluster id other than the data dir's exits 2 naming both ids and the data dir", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgekv-entry-"));
    dirs.push(dir);
    // The marker a node writes once its data dir holds state (src/server/node.ts, edgekv-node.json).
    writeFileSync(join(dir, "edgekv-node.json"), JSON.stringify({ nodeId: "n1", clusterId: "alpha", createdAt: "2026-11-30T00:00:00.000Z" }) + "\n");
    const [clientPort, peerPort] = await freePorts(2);
    const r = run(["--node-id", "n1", "--cluster-id", "beta", "--data-dir", dir, "--client-port", String(clientPort), "--peer-port", String(peerPort)]);
    assert.equal(await exitWithin(r, 30_000), "2", r.err());
    assert.match(r.err(), /invalid configuration: clusterId "beta" .*does not match the cluster id "alpha" recorded in data dir /);
    assert.ok(r.err().includes(dir), r.err());
    assert.equal(r.out(), "", "the refused node never served");
  });

  it("with no node id or peers runs a single-node cluster n1, serves put/get and stops on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgekv-entry-"));
    dirs.push(dir);
    const [clientPort, peerPort] = await freePorts(2);
    // cwd = the temp dir: the default data dir ./data lands there.
    const r = run(["--client-port", String(clientPort), "--peer-port", String(peerPort)], {}, dir);
    const deadline = Date.now() + 60_000;
    while (!r.out().includes("serving clients") && Date.now() < deadline && r.child.exitCode === null) await sleep(50);
    assert.equal(r.out(), `edgekv n1 serving clients on http://127.0.0.1:${clientPort} (peers on http://127.0.0.1:${peerPort})\n`, r.err());
    assert.ok(existsSync(join(dir, "data", "edgekv.db")));
    const url = `http://127.0.0.1:${clientPort}`;
    let put: Response | undefined;
    // Bounded: the lone voter elects itself within an election timeout.
    for (let i = 0; i < 50; i++) {
      put = await fetch(`${url}/v1/kv/solo`, { method: "PUT", body: "one" });
      if (put.status === 200) break;
      await put.body?.cancel();
      await sleep(100);
    }
    assert.equal(put!.status, 200);
    assert.equal(await (await fetch(`${url}/v1/kv/solo`)).text(), "one");
    r.child.kill("SIGTERM");
    const code = await exitWithin(r, 15_000);
    // Deno's child_process reports a child it signalled as killed by the signal even when it exited 0.
    assert.ok(code === "0" || (isDenoParent && code === "signal SIGTERM"), `exit ${code}: ${r.err()}`);
    assert.match(r.err(), /SIGTERM: stopping/);
    assert.match(r.err(), /stopped/);
  });

  it("on Bun, a node started without MIMALLOC_PURGE_HOLES logs how to set it; with it set, it does not", { skip: runtime !== "bun" }, async () => {
    const logs: Record<string, string> = {};
    for (const value of [undefined, "0"]) {
      const dir = mkdtempSync(join(tmpdir(), "edgekv-entry-"));
      dirs.push(dir);
      const [clientPort, peerPort] = await freePorts(2);
      const r = run(["--client-port", String(clientPort), "--peer-port", String(peerPort)], { MIMALLOC_PURGE_HOLES: value }, dir);
      const deadline = Date.now() + 60_000;
      while (!r.out().includes("serving clients") && Date.now() < deadline && r.child.exitCode === null) await sleep(50);
      assert.match(r.out(), /serving clients/, r.err());
      r.child.kill("SIGKILL");
      const err = r.err();
      logs[value ?? "unset"] = err;
    }
    assert.match(logs.unset, /MIMALLOC_PURGE_HOLES is not set: .*MIMALLOC_PURGE_HOLES=0/);
    assert.doesNotMatch(logs["0"], /MIMALLOC_PURGE_HOLES/);
    assert.match(logs["0"], /starting on bun/);
  });

  it("a stop signal while it waits at start-up for a member to confirm it stops it gracefully (status 0)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgekv-wait-"));
    dirs.push(dir);
    const [c1, p1, p2] = await freePorts(3);
    // An empty data dir, no --bootstrap, and a peer that is not there: it waits to be confirmed (identity.ts).
    const r = run(["--node-id", "n1", "--data-dir", join(dir, "data"), "--client-port", String(c1), "--peer-port", String(p1), "--peers", `n1=http://127.0.0.1:${p1},n2=http://127.0.0.1:${p2}`]);
    const deadline = Date.now() + 60_000;
    while (!r.err().includes("starting on") && Date.now() < deadline && r.child.exitCode === null) await sleep(50);
    await sleep(1_000);
    assert.equal(r.child.exitCode, null, `it should still be waiting: ${r.err()}`);
    r.child.kill("SIGTERM");
    const code = await exitWithin(r, 15_000);
    assert.ok(code === "0" || (isDenoParent && code === "signal SIGTERM"), `exit ${code}: ${r.err()}`);
    assert.match(r.err(), /SIGTERM: stopping/);
    assert.match(r.err(), /stopped before serving \(it was still starting\)/);
  });

  it("a stop signal just after the data dir appears (open, start, bind) still stops it: never ignored", async () => {
    // B6: with one handler while opening and another once serving, a signal pending while the first was
    // removed was dropped (Node, Bun) and the node went on serving.
    for (const delayMs of [0, 10, 20]) {
      const dir = mkdtempSync(join(tmpdir(), "edgekv-early-"));
      dirs.push(dir);
      const [c1, p1] = await freePorts(2);
      const r = run(["--data-dir", join(dir, "data"), "--client-port", String(c1), "--peer-port", String(p1)]);
      const deadline = Date.now() + 60_000;
      while (!existsSync(join(dir, "data", "edgekv.db")) && Date.now() < deadline && r.child.exitCode === null) await sleep(2);
      await sleep(delayMs);
      r.child.kill("SIGTERM");
      const code = await exitWithin(r, 20_000);
      assert.ok(code === "0" || (isDenoParent && code === "signal SIGTERM"), `delay ${delayMs} ms: exit ${code}: ${r.err()}`);
      assert.match(r.err(), /SIGTERM: stopping/, `delay ${delayMs} ms`);
    }
  });

  it("a port in use exits 2 with port_in_use before the data dir is touched (no bootstrap, no election)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgekv-port-"));
    dirs.push(dir);
    const dataDir = join(dir, "data");
    const [c1, p1] = await freePorts(2);
    // This test process holds the peer port.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen({ port: p1, host: "127.0.0.1" }, () => resolve()));
    try {
      const r = run(["--data-dir", dataDir, "--client-port", String(c1), "--peer-port", String(p1)]);
      assert.equal(await exitWithin(r, 60_000), "2", r.err());
      assert.match(r.err(), new RegExp(`^edgekv: port_in_use: the peer port ${p1} on 127\\.0\\.0\\.1 cannot be listened on \\(EADDRINUSE\\); .*--peer-port$`, "m"));
      assert.doesNotMatch(r.err() + r.out(), /bootstrapped|became leader|fatal/);
      assert.equal(existsSync(dataDir), false, "the data dir was created before the port check");
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it("a second process on a data dir in use exits 1 with data_dir_locked; kill -9 of the owner frees it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgekv-lock-"));
    dirs.push(dir);
    const dataDir = join(dir, "data");
    const ready = async (r: Running) => {
      const deadline = Date.now() + 60_000;
      while (!r.out().includes("serving clients") && Date.now() < deadline && r.child.exitCode === null) await sleep(50);
      assert.match(r.out(), /serving clients/, r.err());
    };
    const putUntilOk = async (url: string, body: string) => {
      let put: Response | undefined;
      for (let i = 0; i < 50; i++) {
        put = await fetch(`${url}/v1/kv/owner`, { method: "PUT", body });
        if (put.status === 200) break;
        await put.body?.cancel();
        await sleep(100);
      }
      assert.equal(put!.status, 200);
    };
    const [c1, p1, c2, p2] = await freePorts(4);
    const first = run(["--data-dir", dataDir, "--client-port", String(c1), "--peer-port", String(p1)]);
    await ready(first);
    await putUntilOk(`http://127.0.0.1:${c1}`, "first");
    const second = run(["--data-dir", dataDir, "--client-port", String(c2), "--peer-port", String(p2)]);
    assert.equal(await exitWithin(second, 60_000), "1", second.err());
    assert.match(second.err(), new RegExp(`data_dir_locked: data dir ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is in use by another edgekv process \\(node n1, pid ${first.child.pid}, since `));
    assert.equal(second.out(), "", "the refused process never served");
    // The owner still serves and writes.
    await putUntilOk(`http://127.0.0.1:${c1}`, "first again");
    // kill -9: no chance to release anything; the kernel drops the SQLite (fcntl) lock with the process.
    first.child.kill("SIGKILL");
    await exitWithin(first, 15_000);
    const third = run(["--data-dir", dataDir, "--client-port", String(c2), "--peer-port", String(p2)]);
    await ready(third);
    assert.equal(await (await fetch(`http://127.0.0.1:${c2}/v1/kv/owner?consistency=stale`)).text(), "first again");
    third.child.kill("SIGKILL");
    await exitWithin(third, 15_000);
  });
});
