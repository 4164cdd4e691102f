/**
 * scripts/cluster.ts (`npm start`) as a process, under Node with tsx as `npm start` runs it: a second start on a
 * running cluster's data dir prints the nodes' `data_dir_locked` refusal, exits 1 and keeps cluster.json (it used
 * to overwrite it with dead pids and wrong ports); SIGHUP (the terminal closed) stops the nodes it started (they
 * used to keep running); --nodes outside 1..7 is a usage error (exit 2). Clusters on ports 9540-9557 (peers 9640-9657),
 * Node runtime; only PIDs spawned here (and the node pid the script reports) are signalled. Node run only.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sleep } from "../helpers/cluster.ts";
import { ChildProcesses, alive, nodeRunOnly } from "../helpers/script-process.ts";

const skip = nodeRunOnly("the script runs under Node (npm start) whichever runtime runs the test");
const dir = mkdtempSync(join(tmpdir(), "edgekv-cluster-script-"));
const procs = new ChildProcesses();

/** Starts scripts/cluster.ts with `args`; `text()` is its stdout+stderr so far, `done` its exit code or signal. */
const start = (...args: string[]) => procs.script("scripts/cluster.ts", args);

/** Resolves when `pred()` holds, polling every 100 ms for at most `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  return Promise.race([p, sleep(ms).then(() => "timeout" as const)]);
}

after(() => {
  procs.killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe("scripts/cluster.ts", { skip }, () => {
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

    const second = start("--runtime", "node", "--base-port", "9545", "--data-dir", data);
    assert.equal(await withTimeout(second.done, 90_000), "1", second.text());
    assert.match(second.text(), /edgekv: data_dir_locked:/);
    assert.equal(readFileSync(join(data, "cluster.json"), "utf8"), before, "cluster.json unchanged");
    assert.ok(alive(pid), "the running cluster's node is untouched");

    first.child.kill("SIGHUP");
    assert.equal(await withTimeout(first.done, 30_000), "0", first.text());
    await until(() => !alive(pid), 10_000, "n1 to exit");
    assert.match(first.text(), /SIGHUP: stopping 1 node/);
  });
});
