/**
 * scripts/cluster.ts (`npm start`) as a process, under Node with tsx as `npm start` runs it: a second start on a
 * running cluster's data dir prints the nodes' `data_dir_locked` refusal, exits 1 and keeps cluster.json (it used
 * to overwrite it with dead pids and wrong ports); SIGHUP (the terminal closed) stops the nodes it started (they
 * used to keep running); --nodes outside 1..7 is a usage error (exit 2); a start on the ports of another running
 * cluster exits 2 naming the busy port and writes no cluster.json (it used to report the other cluster's leader as
 * `cluster ready` and exit 0); a node's exit is reported with the lines this run logged, not stale ones of earlier
 * runs; cluster.json never keeps dead pids (nulled when a node exits, after a stop, and at a start that finds them
 * all dead); a start without cluster.json on data dirs that hold state says "resuming", not "bootstrapping".
 * SIGTERM to npm's pid under `npm start` stops the script and its nodes (npm's `sh -c` used to die of it and
 * orphan them). Clusters on ports 9540-9574 (peers 9640-9674), Node runtime; only PIDs spawned here (and the node pids the
 * script reports) are signalled. Node run only.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sleep } from "../helpers/cluster.ts";
import { ChildProcesses, alive, nodeRunOnly } from "../helpers/script-process.ts";
import { within } from "../helpers/within.ts";

const skip = nodeRunOnly("the script runs under Node (npm start) whichever runtime runs the test");
const dir = mkdtempSync(join(tmpdir(), "edgekv-cluster-script-"));
const procs = new ChildProcesses();

/** Every script started here: `after` also kills the nodes each one reported (`nK  <runtime>  pid N ...`). */
const scripts: Array<ReturnType<ChildProcesses["script"]>> = [];

/** Starts scripts/cluster.ts with `args`; `text()` is its stdout+stderr so far, `done` its exit code or signal. */
const start = (...args: string[]) => {
  const r = procs.script("scripts/cluster.ts", args);
  scripts.push(r);
  return r;
};

/** Resolves when `pred()` holds, polling every 100 ms for at most `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  return within(p, ms, "timeout" as const);
}

/** The members of `data`/cluster.json. */
function clusterFile(data: string): Array<{ id: string; pid: number | null; peerUrl: string }> {
  return (JSON.parse(readFileSync(join(data, "cluster.json"), "utf8")) as { members: Array<{ id: string; pid: number | null; peerUrl: string }> }).members;
}

after(() => {
  // The nodes are detached from the script: a failed assertion must not leave one running.
  for (const r of scripts) for (const m of r.out().matchAll(/^n\d+ +\w+ +pid (\d+) /gm)) procs.pids.push(Number(m[1]));
  procs.killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe("scripts/cluster.ts", { skip }, () => {
  it("refuses an empty --data-dir and a file as --data-dir with exit 2, before anything starts (B9)", async () => {
    const empty = start("--nodes", "1", "--runtime", "node", "--base-port", "9556", "--data-dir", "");
    const ec = await withTimeout(empty.done, 30_000);
    if (ec === "timeout") empty.child.kill("SIGTERM");
    assert.equal(ec, "2", empty.text());
    assert.match(empty.text(), /--data-dir needs a folder \(got an empty value\)/);
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    const asFile = start("--nodes", "1", "--runtime", "node", "--base-port", "9556", "--data-dir", file);
    const fc = await withTimeout(asFile.done, 30_000);
    if (fc === "timeout") asFile.child.kill("SIGTERM");
    assert.equal(fc, "2", asFile.text());
    assert.match(asFile.text(), /cannot be used as a folder: EEXIST/);
    assert.doesNotMatch(asFile.text(), /at mkdirSync/);
  });

  it("refuses --nodes outside 1..7 with exit 2", async () => {
    const r = start("--nodes", "8", "--base-port", "9550", "--data-dir", join(dir, "eight"));
    const code = await withTimeout(r.done, 30_000);
    // A script that did start (the bug) is stopped with SIGTERM so that it stops the nodes it spawned.
    if (code === "timeout") {
      r.child.kill("SIGTERM");
      await withTimeout(r.done, 20_000);
    }
    assert.equal(code, "2", r.text());
    assert.match(r.text(), /--nodes must be an integer in \[1, 7\]/);
    // Peer ports on the client ports of other nodes (B6): refused before anything starts.
    const overlap = start("--nodes", "3", "--runtime", "node", "--base-port", "9550", "--peer-base-port", "9551", "--data-dir", join(dir, "overlap"));
    const oc = await withTimeout(overlap.done, 30_000);
    if (oc === "timeout") {
      overlap.child.kill("SIGTERM");
      await withTimeout(overlap.done, 20_000);
    }
    assert.equal(oc, "2", overlap.text());
    assert.match(overlap.text(), /port 9551 would be both n1's peer port and n2's client port/);
    assert.equal(existsSync(join(dir, "overlap", "n1")), false, "a node data dir was made for a refused start");
  });

  it("a second start on a running cluster's data dir prints data_dir_locked, exits 1 and keeps cluster.json; SIGHUP stops the first", async () => {
    const data = join(dir, "c");
    const first = start("--nodes", "1", "--runtime", "node", "--base-port", "9540", "--data-dir", data, "--stop-timeout-ms", "5000");
    await until(() => /cluster ready/.test(first.text()) || first.child.exitCode !== null, 90_000, "cluster ready");
    assert.match(first.text(), /cluster ready: leader n1/);
    const before = readFileSync(join(data, "cluster.json"), "utf8");
    const pid = (JSON.parse(before) as { members: Array<{ pid: number; clientUrl: string }> }).members[0].pid;
    procs.pids.push(pid);
    assert.ok(alive(pid), "n1 runs");

    const logBefore = readFileSync(join(data, "n1.log"), "utf8");
    const second = start("--runtime", "node", "--base-port", "9545", "--data-dir", data);
    assert.equal(await withTimeout(second.done, 90_000), "1", second.text());
    assert.match(second.text(), /edgekv: data_dir_locked:/);
    assert.match(second.text(), /nothing started/);
    // Refused before spawning: nothing of it lands in the running node's log (the first start quoted such
    // a refusal as its own node's cause of death when that node later exited).
    assert.equal(readFileSync(join(data, "n1.log"), "utf8").slice(0, logBefore.length), logBefore);
    assert.doesNotMatch(readFileSync(join(data, "n1.log"), "utf8"), /data_dir_locked/);
    assert.equal(readFileSync(join(data, "cluster.json"), "utf8"), before, "cluster.json unchanged");
    assert.ok(alive(pid), "the running cluster's node is untouched");

    first.child.kill("SIGHUP");
    assert.equal(await withTimeout(first.done, 30_000), "0", first.text());
    await until(() => !alive(pid), 10_000, "n1 to exit");
    assert.match(first.text(), /SIGHUP: stopping 1 node/);
  });

  it("a start on the ports of another running cluster exits 2 naming the port and writes no cluster.json", async () => {
    const a = join(dir, "a");
    const first = start("--nodes", "1", "--runtime", "node", "--base-port", "9562", "--data-dir", a, "--stop-timeout-ms", "5000");
    await until(() => /cluster ready/.test(first.text()) || first.child.exitCode !== null, 90_000, "cluster ready");
    assert.match(first.text(), /cluster ready: leader n1/);
    const pid = clusterFile(a)[0].pid!;
    procs.pids.push(pid);

    const b = join(dir, "b");
    const second = start("--nodes", "1", "--runtime", "node", "--base-port", "9562", "--data-dir", b);
    const code = await withTimeout(second.done, 60_000);
    if (code === "timeout") second.child.kill("SIGTERM");
    assert.equal(code, "2", second.text());
    assert.doesNotMatch(second.text(), /cluster ready/);
    assert.match(second.text(), /port 9562 \(n1's client port\) is not free on 127\.0\.0\.1: EADDRINUSE.*--base-port/);
    assert.doesNotMatch(second.text(), /^usage:/m, "a refusal that names its way out needs no usage block (U7)");
    assert.equal(existsSync(join(b, "cluster.json")), false, "no cluster.json for the refused start");
    assert.ok(alive(pid), "the running cluster's node is untouched");

    first.child.kill("SIGTERM");
    assert.equal(await withTimeout(first.done, 30_000), "0", first.text());
    assert.deepEqual(clusterFile(a).map((m) => m.pid), [null], "a stop leaves no pid behind");

    // Without cluster.json the nodes resume their data dirs, and the banner says so (it said "bootstrapping").
    rmSync(join(a, "cluster.json"));
    // ... also with the peer port somewhere else than base + 100 (--peer-base-port: every port in one window).
    const third = start("--nodes", "1", "--runtime", "node", "--base-port", "9562", "--peer-base-port", "9563", "--data-dir", a, "--stop-timeout-ms", "5000");
    await until(() => /cluster ready/.test(third.text()) || third.child.exitCode !== null, 90_000, "cluster ready");
    procs.pids.push(clusterFile(a)[0].pid!);
    assert.match(third.text(), /resuming the cluster in /);
    assert.equal(clusterFile(a)[0].peerUrl, "http://127.0.0.1:9563");
    third.child.kill("SIGTERM");
    assert.equal(await withTimeout(third.done, 30_000), "0", third.text());
  });

  it("under npm (`npm start`), SIGTERM to npm's own pid stops the script and its nodes", async () => {
    // npm forwards SIGTERM to the `sh -c` running the script; Debian's sh (dash) died of it without passing it
    // on, so the script and its nodes kept running, orphaned (a new user's finding; `docker stop` is the
    // same case). The npm scripts now `exec` their command, so npm's child is the script itself.
    const data = join(dir, "npm");
    const npm = procs.spawn("npm", ["start", "--", "--nodes", "1", "--runtime", "node", "--base-port", "9574", "--data-dir", data, "--stop-timeout-ms", "5000"]);
    await until(() => /cluster ready/.test(npm.text()) || npm.child.exitCode !== null, 90_000, "cluster ready");
    assert.match(npm.text(), /cluster ready: leader n1/);
    const pid = clusterFile(data)[0].pid!;
    procs.pids.push(pid);
    npm.child.kill("SIGTERM");
    await withTimeout(npm.done, 30_000);
    await until(() => !alive(pid), 20_000, "n1 to stop after SIGTERM to npm");
    assert.match(npm.text(), /SIGTERM: stopping 1 node/);
  });

  it("reports a node's exit with this run's log lines only, and a start nulls the dead pids of the last one before spawning", async () => {
    const data = join(dir, "s");
    mkdirSync(data, { recursive: true });
    // What earlier runs left in the appended log: a port clash and a refusal that are not this run's.
    writeFileSync(join(data, "n1.log"), "edgekv: fatal: Error: Failed to start server. Is port 9999 in use?\nedgekv: data_dir_locked: old refusal\n");
    const first = start("--nodes", "1", "--runtime", "node", "--base-port", "9566", "--data-dir", data, "--stop-timeout-ms", "5000");
    await until(() => /cluster ready/.test(first.text()) || first.child.exitCode !== null, 90_000, "cluster ready");
    assert.match(first.text(), /cluster ready: leader n1/);
    const dead = clusterFile(data)[0].pid!;
    procs.pids.push(dead);
    // A warning of this run that mentions an error is not why the node exited (U7 saw one quoted as the cause).
    appendFileSync(join(data, "n1.log"), `${new Date().toISOString()} warn [n1] peer n3 unreachable (last error: ECONNREFUSED)\n`);
    process.kill(dead, "SIGKILL");
    await until(() => /n1 exited/.test(first.text()), 20_000, "n1 exited");
    // With its only node gone the script (past ready) says so and exits 1; it is stopped here if it does not.
    const ended = await withTimeout(first.done, 10_000);
    if (ended === "timeout") first.child.kill("SIGKILL");
    assert.equal(ended, "1", first.text());
    const report = first.text().slice(first.text().indexOf("n1 exited"));
    assert.match(report, /n1 exited \(SIGKILL\)/);
    assert.match(report, /every node has exited; npm start ends/);
    assert.doesNotMatch(report, /port 9999|old refusal/, "stale lines of earlier runs");
    assert.doesNotMatch(report, /peer n3 unreachable/, "a warning is not a cause of death");
    assert.deepEqual(clusterFile(data).map((m) => m.pid), [null], "the exited node's pid is dropped");
    // What a script killed with SIGKILL before its node died leaves behind: the dead pid.
    const stale = JSON.parse(readFileSync(join(data, "cluster.json"), "utf8")) as { members: Array<{ pid: number | null }> };
    stale.members[0].pid = dead;
    writeFileSync(join(data, "cluster.json"), JSON.stringify(stale));

    const again = start("--runtime", "node", "--base-port", "9566", "--data-dir", data, "--stop-timeout-ms", "5000");
    await until(() => /resuming the cluster/.test(again.text()) || again.child.exitCode !== null, 60_000, "the nodes spawned");
    assert.notEqual(clusterFile(data)[0].pid, dead, "the dead pid is gone before the new start is ready");
    await until(() => /cluster ready/.test(again.text()) || again.child.exitCode !== null, 90_000, "cluster ready");
    assert.match(again.text(), /cluster ready: leader n1/);
    assert.doesNotMatch(again.text(), /data dir locked/);
    const pid = clusterFile(data)[0].pid!;
    procs.pids.push(pid);
    assert.ok(alive(pid), "cluster.json names the running node");
    again.child.kill("SIGTERM");
    assert.equal(await withTimeout(again.done, 30_000), "0", again.text());
    assert.deepEqual(clusterFile(data).map((m) => m.pid), [null]);
  });
});
