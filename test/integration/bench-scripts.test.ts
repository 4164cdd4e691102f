/**
 * The commands under scripts/ as processes (always under Node with tsx, as `npm run` starts them, whichever
 * runtime runs this file): `--help` prints usage and exits 0 without starting anything, an unknown option is
 * a usage error (exit 2); and the benchmark's shutdown (scripts/bench/procs.ts `onShutdown`) stops exactly
 * the child it started when its stdout pipe closes (`npm run bench | head` used to die of EPIPE and leave
 * 3 edgekv nodes and 3 etcd members running), on SIGHUP and SIGTERM, and after an uncaught error. Only PIDs
 * spawned here are signalled. Runs in the Node run of `npm test` only: the processes are Node processes
 * whichever runtime runs the test, so Bun's and Deno's runs would repeat the same ~45 s of process starts.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AddressInfo, createServer } from "node:net";
import { repoRoot } from "../../scripts/node-command.ts";
import { sleep } from "../helpers/cluster.ts";
import { ChildProcesses, alive, nodeBin, nodeRunOnly, tsxLoader } from "../helpers/script-process.ts";

const skip = nodeRunOnly("the scripts run under Node (npm run) whichever runtime runs the test");
const procs = new ChildProcesses();

/** Runs `argv` to its end (killed with SIGKILL after `ms`: "still running"); env EDGEKV_ANCHORS points nowhere, so a bench that did start fails fast instead of starting etcd. */
const run = (cmd: string, argv: string[], env: Record<string, string> = {}, ms = 60_000) => procs.run(cmd, argv, { EDGEKV_ANCHORS: "/nonexistent-anchors", ...env }, ms);

const script = (path: string, ...args: string[]) => run(nodeBin, ["--import", tsxLoader, join(repoRoot, path), ...args]);

after(() => procs.killAll());

describe("scripts: --help and unknown options", { skip }, () => {
  const withHelp = ["scripts/bench.ts", "scripts/bench/probe.ts", "scripts/bench-storage.ts", "scripts/bench-write-path.ts", "scripts/test-all.ts", "scripts/nemesis.ts", "scripts/cluster.ts", "scripts/sim.ts"];

  it("every command prints its usage on --help and exits 0 without starting anything", async () => {
    // two at a time: each is a Node + tsx start on a shared 2-core machine
    for (let i = 0; i < withHelp.length; i += 2) {
      const pair = withHelp.slice(i, i + 2);
      const results = await Promise.all(pair.map((p) => script(p, "--help")));
      results.forEach((r, j) => {
        assert.equal(r.code, "0", `${pair[j]} --help: exit ${r.code}\n${r.err.slice(-500)}`);
        assert.match(r.out, /^usage: /, `${pair[j]} --help prints usage first`);
        assert.match(r.out, /--/, `${pair[j]} --help lists options`);
      });
    }
  });

  it("an unknown option is a usage error (exit 2) naming the option", async () => {
    const changed = ["scripts/bench.ts", "scripts/bench/probe.ts", "scripts/bench-storage.ts", "scripts/bench-write-path.ts", "scripts/test-all.ts"];
    for (let i = 0; i < changed.length; i += 2) {
      const pair = changed.slice(i, i + 2);
      const results = await Promise.all(pair.map((p) => script(p, "--no-such-option")));
      results.forEach((r, j) => {
        assert.equal(r.code, "2", `${pair[j]} --no-such-option: exit ${r.code}\n${r.err.slice(-500)}`);
        assert.match(r.err, /no-such-option/, `${pair[j]} names the option`);
      });
    }
  });

  it("bench.ts refuses a bad value before starting anything", async () => {
    const r = await script("scripts/bench.ts", "--duration", "soon");
    assert.equal(r.code, "2");
    assert.match(r.err, /--duration must be an integer/);
    assert.equal(r.out, "");
    const c = await script("scripts/bench.ts", "--cells", "put@64,put@zero");
    assert.equal(c.code, "2");
    assert.match(c.err, /--cells: bad cell "put@zero"/);
    assert.equal(c.out, "");
  });
});

describe("bench: its edgekv ports are checked before anything starts", { skip }, () => {
  it("a busy edgekv port (here n2's peer port) exits 2 naming it, before etcd or a node starts", async () => {
    // Hold one port the bench would use; base = held - 101 makes it n2's peer port (base + 101).
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", () => r()));
    const held = (holder.address() as AddressInfo).port;
    try {
      const r = await script("scripts/bench.ts", "--base-port", String(held - 101), "--no-doc");
      assert.equal(r.code, "2", r.err.slice(-1000));
      assert.ok(r.err.includes(`port ${held} on 127.0.0.1 (edgekv n2 peer port, from --base-port ${held - 101}) is in use`), r.err.slice(-1000));
      assert.doesNotMatch(r.out, /starting etcd/, "nothing was started");
    } finally {
      await new Promise<void>((r) => holder.close(() => r()));
    }
  });
});

/** State letter of `pid` from /proc (R, S, Z, ...), or "" when it is gone: a zombie has exited but still answers kill(pid, 0). */
function procState(pid: number): string {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1] ?? "";
  } catch {
    return "";
  }
}
const running = (pid: number) => procState(pid) !== "" && procState(pid) !== "Z";

/**
 * A stand-in for the anchors' etcd-cluster.sh: `start DIR` marks DIR, launches a "member" in its own session
 * (as the real one does with setsid) and records its PID in DIR/etcd.pids, then blocks on a helper (the real
 * one waits up to 30 s for health, longer while apt-get installs etcd); `stop DIR` kills the recorded PIDs.
 * Both append what they did to $FAKE_ETCD_LOG.
 */
const FAKE_ETCD_CLUSTER = `#!/usr/bin/env bash
set -eu
case "$1" in
  start)
    mkdir -p "$2"; touch "$2/.etcd-anchor-cluster"
    setsid sleep 300 </dev/null >/dev/null 2>&1 &
    echo $! >> "$2/etcd.pids"
    sleep 300 </dev/null >/dev/null 2>&1 &
    helper=$!
    echo "started member $(tail -1 "$2/etcd.pids") helper $helper" >> "$FAKE_ETCD_LOG"
    wait $helper ;;
  stop)
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$2/etcd.pids"
    rm -f "$2/etcd.pids"; echo "stopped $2" >> "$FAKE_ETCD_LOG" ;;
  *) exit 1 ;;
esac
`;

describe("bench: SIGINT while etcd-cluster.sh runs", { skip }, () => {
  it("stops the script and its helper at once, stops the member it launched, and exits 130", async () => {
    const anchors = mkdtempSync(join(tmpdir(), "edgekv-fake-anchors-"));
    try {
      writeFileSync(join(anchors, "etcd-cluster.sh"), FAKE_ETCD_CLUSTER);
      const fakeLog = join(anchors, "fake.log");
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
      const base = (probe.address() as AddressInfo).port;
      await new Promise<void>((r) => probe.close(() => r()));
      const bench = procs.script("scripts/bench.ts", ["--base-port", String(base), "--no-doc"], { EDGEKV_ANCHORS: anchors, FAKE_ETCD_LOG: fakeLog });
      const { child, exited: exit } = bench;
      const logText = () => (existsSync(fakeLog) ? readFileSync(fakeLog, "utf8") : "");
      for (let i = 0; i < 600 && !/started member/.test(logText()) && child.exitCode === null; i++) await sleep(100);
      const m = /started member (\d+) helper (\d+)/.exec(logText());
      assert.ok(m, `the fake start did not run: ${bench.err().slice(-1000)}`);
      const [member, helper] = [Number(m[1]), Number(m[2])];
      procs.pids.push(member, helper);
      assert.ok(running(member) && running(helper));
      child.kill("SIGINT");
      // The fake start blocks for 300 s: with the script run synchronously the bench handled SIGINT only after it.
      assert.equal(await Promise.race([exit, sleep(30_000).then(() => "still running")]), "130", bench.err().slice(-1000));
      assert.match(bench.err(), /bench: SIGINT; stopping/);
      assert.match(logText(), /stopped /, "the cleanup ran etcd-cluster.sh stop");
      assert.equal(running(helper), false, "the script's helper was stopped with its process group");
      for (let i = 0; i < 50 && running(member); i++) await sleep(100);
      assert.equal(running(member), false, "the member it launched was stopped");
    } finally {
      rmSync(anchors, { recursive: true, force: true });
    }
  });
});

describe("bench shutdown: exactly the started processes stop", { skip }, () => {
  const fixture = join(repoRoot, "test/integration/fixtures/bench-shutdown-child.ts");
  /** Pid of the fixture's `sleep` child, from its `child <pid>` line. */
  const childPid = (err: string): number => {
    const m = /child (\d+)/.exec(err);
    assert.ok(m, `no child line in: ${err.slice(-500)}`);
    const pid = Number(m[1]);
    procs.pids.push(pid);
    return pid;
  };

  it("a closed stdout pipe (| head -1) stops the child and exits 141 instead of dying of EPIPE", async () => {
    // the shell reports the fixture's status; its stderr (the child line) goes to ours
    const line = `"${nodeBin}" --import "${tsxLoader}" "${fixture}" | head -1; echo "status \${PIPESTATUS[0]}" >&2`;
    const r = await run("bash", ["-c", line], {}, 30_000);
    assert.equal(r.code, "0");
    assert.equal(r.out, "line 1\n");
    const pid = childPid(r.err);
    assert.match(r.err, /status 141/);
    assert.equal(alive(pid), false, "the sleep child was stopped");
  });

  for (const sig of ["SIGHUP", "SIGTERM"] as const) {
    it(`${sig} stops the child and exits 128 + the signal number`, async () => {
      const fix = procs.spawn(nodeBin, ["--import", tsxLoader, fixture]);
      const { child, exited: exit } = fix;
      for (let i = 0; i < 300 && !/child \d+/.test(fix.err()); i++) await sleep(100);
      const pid = childPid(fix.err());
      assert.equal(alive(pid), true);
      child.kill(sig);
      assert.equal(await Promise.race([exit, sleep(20_000).then(() => "still running")]), sig === "SIGHUP" ? "129" : "143");
      assert.equal(alive(pid), false, "the sleep child was stopped");
      assert.match(fix.err(), new RegExp(`fixture: ${sig}; stopping`));
    });
  }

  it("an uncaught error stops the child and exits 1", async () => {
    const r = await run(nodeBin, ["--import", tsxLoader, fixture], { FIXTURE_THROW: "1" }, 30_000);
    assert.equal(r.code, "1");
    const pid = childPid(r.err);
    assert.match(r.err, /fixture: uncaught/);
    assert.equal(alive(pid), false, "the sleep child was stopped");
  });
});
