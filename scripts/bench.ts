/**
 * `npm run bench` — edgekv side by side with etcd 3.4 on this machine, same load generator, same run.
 *
 * Starts a 3-node edgekv cluster (this process owns the node PIDs) and the anchors' 3-member etcd cluster
 * (../shared/anchors/etcd-cluster.sh), writes the key space (100k keys, 256-byte values) into both at the
 * same time, restarts etcd (etcd 3.4's reads are slow after a write burst until restart: anchors/RESULTS.md
 * §3), runs the reads, then the writes, with wrk over HTTP/1.1 keep-alive. Each cell alternates the systems
 * (edgekv first on odd repetitions, etcd first on even ones) and reports medians. Then loads edgekv up to
 * --memory-keys keys (128-put CBOR txns) and records VmRSS per node, and the catch-up time of a follower
 * killed with SIGKILL while the others take 6000 single puts. Each wrk run logs its place in the plan and an
 * estimate of the wrk runs' time left; the loads log their rate and time left every 5 s. Writes the table into docs/bench.md ("etcd side by side").
 * Stops exactly the PIDs it started (edgekv nodes, wrk, the loader; etcd through `etcd-cluster.sh stop DIR`)
 * at the end, on error, on SIGINT/SIGTERM/SIGHUP and when its stdout or stderr pipe closes (`| head`).
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { execFileSync, spawn } from "node:child_process";
import process from "node:process";
import { repoRoot, type NodeRuntime } from "./node-command.ts";
import { commandLine } from "./bench/args.ts";
import { EdgeCluster, adoptStrayEtcdPids, anchorsDir, clusterView, etcdCluster, onShutdown, shuttingDown, sleep, stopAllChildren, track, vmRssBytes } from "./bench/procs.ts";
import { loadEdgekv } from "./bench/load.ts";
import { type Cell, type CellResult, medians, parseCellSpec, resultsTable, writeSection } from "./bench/report.ts";
import { type System, runWrk, setThinkTime } from "./bench/wrk.ts";
import { firstUnbindablePort } from "../runtime-adapters/port-check.ts";

const USAGE = `usage: npm run bench -- [options]        (node --import tsx scripts/bench.ts [options])

edgekv (3 nodes) side by side with etcd 3.4 (3 members, the anchors' etcd-cluster.sh) under wrk: puts,
linearizable and stale/serializable gets, a 90/10 get/put mix, at 1-256 connections, to the leader and a
follower; 3 repetitions per cell alternating which system goes first. Each figure in the table is the median
of its own column over the repetitions (req/s, p50, p99 and p999 separately, so a row's figures may come from
different repetitions); the ratios divide edgekv's medians by etcd's. Then VmRSS per edgekv node
after loading --memory-keys keys, and the catch-up time of a killed follower. Prints a markdown table and
writes it into docs/bench.md (section "etcd side by side"). Full run: 8-14 min on this 2-core machine (8 at
load average 1-5, 14 at 17; 2026-11-30 and 2026-12-01); --quick: 3-5 min. Data go to a new folder under the
system's temporary folder (TMPDIR), deleted at the end. Uses client ports P..P+2, peer ports P+100..P+102
and etcd's fixed ports 23791-23793/23801-23803 (one bench at a time). Stops every process it started on
exit, Ctrl-C, SIGTERM, SIGHUP and a closed output pipe.

  --runtime bun|node|deno   edgekv nodes' runtime (default bun)
  --quick                   subset: 7 cells, 2 repetitions, 100k keys for the memory figure
  --duration S              seconds per wrk run (default 3)
  --reps R                  repetitions per cell (default 3; --quick 2)
  --memory-keys N           keys in edgekv for the memory figure (default 1000000; --quick 100000)
  --base-port P             edgekv client ports P..P+2, peer ports P+100.. (default 7411)
  --cells LIST              only these cells, comma-separated [f:]SCENARIO@CONNS (put, get, stale, mix;
                            f: = to a follower), e.g. put@64,put@256,f:put@64; for A/B comparisons: skips
                            the memory figure and the catch-up and does not touch docs/bench.md
  --no-doc                  do not touch docs/bench.md
  --think-ms MS             each wrk connection waits a random time of mean MS (exponential) before each
                            request, so latency is compared at an offered rate below saturation (default 0:
                            closed loop, as the targets); with it the key order is no longer the anchors'
  -h, --help                this text

Needs wrk, python3, and the anchors folder (etcd-cluster.sh, prepopulate.py, wrk/*.lua): the team's shared
etcd harness, which is not part of this repository; it is looked for at ../shared/anchors beside the
repository, or in the folder named by the environment variable EDGEKV_ANCHORS. etcd is installed with
apt-get by etcd-cluster.sh when missing.

Exit status: 0 done, 1 failed (a run, a load, a start), 2 bad arguments or an edgekv port already in use
(checked on 127.0.0.1 before anything starts), 128+N after signal N (141: output pipe closed).`;

const cli = commandLine(USAGE, {
  runtime: { type: "string" },
  quick: { type: "boolean" },
  duration: { type: "string" },
  reps: { type: "string" },
  "memory-keys": { type: "string" },
  "base-port": { type: "string" },
  "no-doc": { type: "boolean" },
  cells: { type: "string" },
  "think-ms": { type: "string" },
});
const argv = process.argv.slice(2);
const quick = cli.flag("quick");
const runtime: NodeRuntime = cli.choice("runtime", "bun", ["bun", "node", "deno"] as const);
const durationS = cli.int("duration", 3, 1, 600);
const reps = cli.int("reps", quick ? 2 : 3, 1, 100);
const memoryKeys = cli.int("memory-keys", quick ? 100_000 : 1_000_000, 0, 100_000_000);
const basePort = cli.int("base-port", 7411, 1024, 65_000);
/** Mean think time per request and connection, ms (0: closed loop); kv.lua reads it as KV_THINK_MS. */
const thinkMs = cli.int("think-ms", 0, 0, 10_000);
setThinkTime(thinkMs);
const KEYSPACE = 100_000;
/** Txns in flight while loading: more share each group-committed fsync (the leader batches all it has). */
const LOAD_PARALLEL = 16;
const VALUE_BYTES = 256;
/**
 * Pause after each wrk run. Short: wrk's Lua init (100 000 pre-formatted requests per thread, before any
 * connection) already leaves the target idle for a while before the next run's load starts.
 */
const PAUSE_MS = 250;

/** `--cells`: the chosen cells (undefined: the full or quick plan). */
const chosenCells: Cell[] | undefined = cli.str("cells", "") !== ""
  ? cli.str("cells", "").split(",").map((spec) => parseCellSpec(spec.trim()) ?? cli.usageError(`--cells: bad cell ${JSON.stringify(spec)}: expected [f:]SCENARIO@CONNS, e.g. put@64 or f:stale@64`))
  : undefined;
const isRead = (c: Cell) => c.scenario === "get" || c.scenario === "get-serializable";

const readCells: Cell[] = chosenCells ? chosenCells.filter(isRead) : quick
  ? [{ role: "leader", scenario: "get", conns: 64 }, { role: "leader", scenario: "get-serializable", conns: 64 }, { role: "follower", scenario: "get", conns: 64 }]
  : [
      ...[1, 16, 64, 256].map((conns): Cell => ({ role: "leader", scenario: "get", conns })),
      ...[1, 16, 64, 256].map((conns): Cell => ({ role: "leader", scenario: "get-serializable", conns })),
      { role: "follower", scenario: "get", conns: 64 },
      { role: "follower", scenario: "get-serializable", conns: 64 },
    ];
const writeCells: Cell[] = chosenCells ? chosenCells.filter((c) => !isRead(c)) : quick
  ? [{ role: "leader", scenario: "put", conns: 1 }, { role: "leader", scenario: "put", conns: 64 }, { role: "leader", scenario: "put", conns: 256 }, { role: "leader", scenario: "mix", conns: 64 }]
  : [
      ...[1, 16, 64, 256].map((conns): Cell => ({ role: "leader", scenario: "put", conns })),
      { role: "follower", scenario: "put", conns: 64 },
      { role: "leader", scenario: "mix", conns: 64 },
    ];

const t0 = Date.now();
const log = (msg: string) => process.stdout.write(`[bench +${Math.round((Date.now() - t0) / 1000)}s] ${msg}\n`);
const root = mkdtempSync(join(tmpdir(), "edgekv-bench-"));
/** /proc/loadavg's first three fields when the run began (the doc's "load average at start"). */
const loadAtStart = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
process.env.ETCD_ANCHOR_STATE = join(root, "etcd-anchor.state");
const etcdDir = join(root, "etcd");
const edge = new EdgeCluster(join(root, "edgekv"), runtime, basePort);

/** Set when a part of the run failed but the rest could still be measured and printed (exit status 1 at the end). */
let failed = false;
let cleaning: Promise<void> | undefined;
/**
 * Stops what this run started (tracked children; etcd when its folder was made) and removes the data. Runs
 * once. `keepLogs`: the edgekv nodes' logs are copied to a new /tmp/edgekv-bench-logs-* folder first (a
 * failed run's clue; the data folders are too large to keep).
 */
function cleanup(keepLogs = false): Promise<void> {
  cleaning ??= (async () => {
    await stopAllChildren();
    if (keepLogs && existsSync(edge.dir)) {
      const kept = mkdtempSync(join(tmpdir(), "edgekv-bench-logs-"));
      for (const f of readdirSync(edge.dir)) if (f.endsWith(".log")) copyFileSync(join(edge.dir, f), join(kept, f));
      process.stderr.write(`bench: edgekv node logs kept in ${kept}\n`);
    }
    // etcd-cluster.sh marks its folder before starting a member; without the marker nothing was started
    if (existsSync(join(etcdDir, ".etcd-anchor-cluster"))) {
      try {
        adoptStrayEtcdPids(etcdDir);
        await etcdCluster("stop", etcdDir);
      } catch (e) {
        process.stderr.write(`bench: etcd stop: ${(e as Error).message}\n`);
      }
    }
    rmSync(root, { recursive: true, force: true });
  })();
  return cleaning;
}
onShutdown("bench", () => cleanup());

async function edgeUrls(): Promise<{ leader: string; follower: string }> {
  const leaderId = await edge.waitLeader(30_000);
  const leader = edge.byId(leaderId).url;
  const follower = edge.members.find((m) => m.plan.id !== leaderId && m.child)!.url;
  return { leader, follower };
}

/** Progress of the wrk runs, for the estimate of their time left printed with each run. */
const progress = { runsDone: 0, runsTotal: 0, runMsSum: 0 };

/**
 * What is left after this run: the remaining wrk runs at the mean wall time of those done (minutes), then
 * the steps whose length the run cannot know yet (the memory load prints its own estimate as it goes).
 */
function timeLeft(): string {
  const runsLeft = progress.runsTotal - progress.runsDone;
  const min = (runsLeft * progress.runMsSum) / Math.max(1, progress.runsDone) / 60_000;
  const after = chosenCells ? "the table" : memoryKeys > KEYSPACE ? `the ${memoryKeys - KEYSPACE}-key load and the catch-up` : "the catch-up";
  return runsLeft > 0 ? `wrk runs ~${min.toFixed(1)} min left, then ${after}` : `next: ${after}`;
}

async function runCells(cells: Cell[], phase: string): Promise<CellResult[]> {
  const e = await edgeUrls();
  const d = { leader: await etcdCluster("leader"), follower: await etcdCluster("follower") };
  const out: CellResult[] = [];
  for (const cell of cells) {
    const samples: Record<System, CellResult["samples"]["edgekv"]> = { edgekv: [], etcd: [] };
    for (let r = 0; r < reps; r++) {
      const order: System[] = r % 2 === 0 ? ["edgekv", "etcd"] : ["etcd", "edgekv"];
      for (const sys of order) {
        const url = (sys === "edgekv" ? e : d)[cell.role];
        const runStart = Date.now();
        const res = await runWrk(sys, cell.scenario, url, cell.conns, durationS, KEYSPACE);
        samples[sys].push(res);
        await sleep(PAUSE_MS);
        progress.runsDone++;
        progress.runMsSum += Date.now() - runStart;
        log(`${phase} ${cell.role} ${cell.scenario} c=${cell.conns} rep ${r + 1}/${reps} ${sys}: ${Math.round(res.okRps)} req/s p99 ${res.p99.toFixed(2)} ms${res.errors ? ` errors ${res.errors}` : ""} [run ${progress.runsDone}/${progress.runsTotal}; ${timeLeft()}]`);
      }
    }
    out.push({ cell, samples });
  }
  return out;
}

/** Runs the anchors' prepopulate.py (etcd's key space, same keys and values) as a tracked child; rejects on failure or after 300 s. */
function prepopulateEtcd(url: string): Promise<void> {
  const script = join(anchorsDir, "prepopulate.py");
  return new Promise((resolve, reject) => {
    const c = spawn("python3", [script, "--url", url, "--keyspace", String(KEYSPACE)], { stdio: ["ignore", "ignore", "inherit"] });
    track(c);
    const timer = setTimeout(() => c.kill("SIGKILL"), 300_000);
    c.on("error", reject);
    c.on("exit", (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`prepopulate.py failed (${code ?? sig})`));
    });
  });
}

/** Longest wait for the restarted follower (normally seconds); past it the run reports the failure and exits 1 after printing the table. */
const CATCH_UP_MS_MAX = 120_000;

/**
 * SIGKILLs a follower, writes 6000 single puts through the leader, restarts the follower and times until its
 * applied index reaches the leader's. `reached` false: not within CATCH_UP_MS_MAX (`appliedIndex` is where it got).
 */
async function catchUp(): Promise<{ ms: number; entriesBehind: number; snapshotInstalled: boolean; reached: boolean; appliedIndex: number; target: number; id: string }> {
  const leaderId = await edge.waitLeader(30_000);
  const victim = edge.members.find((m) => m.plan.id !== leaderId)!;
  const leaderUrl = edge.byId(leaderId).url;
  await edge.kill(victim);
  const before = (await clusterView(leaderUrl))!.appliedIndex;
  // single puts: one entry each. With the default snapshot interval (100 000 entries, etcd's) the victim
  // catches up from the log; the log says whether a snapshot was installed instead.
  // 256 in flight: the leader batches them, so the 6000 entries are written sooner; the figure is the restart
  await loadEdgekv(leaderUrl, 0, 6000, VALUE_BYTES, 256, 1);
  const target = (await clusterView(leaderUrl))!.appliedIndex;
  const logPath = join(edge.dir, `${victim.plan.id}.log`);
  const logBefore = readFileSync(logPath, "utf8").length;
  const start = Date.now();
  edge.start(victim, false);
  let appliedIndex = 0;
  let reached = false;
  while (Date.now() - start <= CATCH_UP_MS_MAX) {
    appliedIndex = (await clusterView(victim.url))?.appliedIndex ?? appliedIndex;
    if (appliedIndex >= target) {
      reached = true;
      break;
    }
    await sleep(50);
  }
  const ms = Date.now() - start;
  const snapshotInstalled = /snapshot/i.test(readFileSync(logPath, "utf8").slice(logBefore));
  return { ms, entriesBehind: target - before, snapshotInstalled, reached, appliedIndex, target, id: victim.plan.id };
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/**
 * Exits 2 (after the cleanup) naming the first edgekv port (client and peer ports of every node, from
 * --base-port) that cannot be bound on 127.0.0.1, before anything starts: a second bench, or a local cluster
 * on the same ports, used to show up as a node that died at start and a 90 s wait for a leader.
 */
async function checkPorts(): Promise<void> {
  const planned = edge.members.flatMap((m) => [
    { port: m.plan.clientPort, what: `edgekv ${m.plan.id} client port` },
    { port: m.plan.peerPort, what: `edgekv ${m.plan.id} peer port` },
  ]);
  const busy = await firstUnbindablePort(planned);
  if (!busy) return;
  const why = busy.code === "EADDRINUSE" ? "is in use (another bench or cluster?)" : `cannot be bound (${busy.code})`;
  process.stderr.write(`bench: port ${busy.port} on 127.0.0.1 (${busy.what}, from --base-port ${basePort}) ${why}; stop what holds it or pick another --base-port\n`);
  await cleanup();
  process.exit(2);
}

async function main(): Promise<void> {
  await checkPorts();
  log(`data under ${root}; edgekv runtime ${runtime}; ${quick ? "quick" : "full"}; ${reps} reps x ${durationS} s per cell`);
  log("starting etcd (anchors) and edgekv");
  await etcdCluster("start", etcdDir);
  const leaderId = await edge.startAll();
  const etcdLeader = await etcdCluster("leader");
  log(`edgekv leader ${leaderId}; etcd leader ${etcdLeader}`);
  log(`writing ${KEYSPACE} keys into etcd and edgekv (both at once)`);
  const [, loadMs] = await Promise.all([prepopulateEtcd(etcdLeader), loadEdgekv((await edgeUrls()).leader, 0, KEYSPACE, VALUE_BYTES, LOAD_PARALLEL)]);
  log(`edgekv load: ${KEYSPACE} keys in ${loadMs} ms (${Math.round(KEYSPACE / (loadMs / 1000))} keys/s in 128-put txns, alongside etcd's prepopulate)`);
  await etcdCluster("restart", etcdDir);
  progress.runsTotal = (readCells.length + writeCells.length) * reps * 2;
  const results = [...(readCells.length ? await runCells(readCells, "reads") : []), ...(writeCells.length ? await runCells(writeCells, "writes") : [])];
  const etcdRss = (await etcdCluster("pids", etcdDir)).split(/\s+/).filter(Boolean).map((p) => vmRssBytes(Number(p)));
  // etcd's part is measured: stop it so that its members' heartbeats take no CPU from the edgekv-only steps
  await etcdCluster("stop", etcdDir);
  if (chosenCells) {
    // an A/B run of a few cells: the table only
    process.stdout.write("\n" + resultsTable(results) + "\n");
    log("--cells: memory figure, catch-up and docs/bench.md skipped");
    return;
  }
  let memLoadMs = 0;
  if (memoryKeys > KEYSPACE) {
    log(`loading edgekv to ${memoryKeys} keys for the memory figure`);
    memLoadMs = await loadEdgekv((await edgeUrls()).leader, KEYSPACE, memoryKeys, VALUE_BYTES, LOAD_PARALLEL);
    log(`edgekv load: ${memoryKeys - KEYSPACE} more keys in ${memLoadMs} ms (${Math.round((memoryKeys - KEYSPACE) / (memLoadMs / 1000))} keys/s)`);
  }
  await sleep(1000);
  const rss = edge.rssBytes();
  const dataBytes = Math.max(memoryKeys, KEYSPACE) * (VALUE_BYTES + 14);
  log(`VmRSS per node: ${Object.entries(rss).map(([id, b]) => `${id} ${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")}; data ${(dataBytes / 2 ** 20).toFixed(0)} MiB`);
  log("catch-up: SIGKILL a follower, 6000 puts, restart it");
  const cu = await catchUp();
  if (cu.reached) log(`catch-up: ${cu.entriesBehind} entries behind, caught up in ${cu.ms} ms${cu.snapshotInstalled ? " (log mentions a snapshot)" : ""}`);
  else {
    log(`catch-up FAILED: ${cu.id} at applied index ${cu.appliedIndex}, not ${cu.target}, ${CATCH_UP_MS_MAX / 1000} s after its restart`);
    failed = true;
  }

  const table = resultsTable(results);
  process.stdout.write("\n" + table + "\n");
  const maxRss = Math.max(...Object.values(rss));
  const section = [
    "## etcd side by side",
    "",
    `Command: \`npm run bench${argv.length ? " -- " + argv.join(" ") : ""}\` (script \`scripts/bench.ts\`). Started ${new Date(t0).toISOString().slice(0, 16).replace("T", " ")} UTC; ${((Date.now() - t0) / 60_000).toFixed(1)} min from the start to this table (stopping the clusters follows).`,
    `Commit: ${gitCommit()}. Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average at start ${loadAtStart} (shared with other jobs: figures are noisy; compare the ratios).`,
    `edgekv: 3 nodes on ${runtime}, default config. etcd 3.4.23: 3 members, defaults (anchors' etcd-cluster.sh). Load: wrk -t2 (-t1 at 1 conn), HTTP/1.1 keep-alive, the anchors' wrk requests (built by scripts/bench/kv.lua, byte-identical), ${thinkMs > 0 ? `a think time of mean ${thinkMs} ms before each request (exponential; the key order then differs from the anchors'), ` : ""}${durationS} s per run, ${reps} repetitions per cell alternating which system goes first; medians. Key space ${KEYSPACE} keys, 256-byte values, written first; etcd restarted before the reads; reads, then writes.`,
    "",
    table,
    "",
    `- Memory: VmRSS per edgekv node with ${Math.max(memoryKeys, KEYSPACE)} keys of 256 B (≈ ${(dataBytes / 2 ** 20).toFixed(0)} MiB of keys+values): ${Object.entries(rss).map(([id, b]) => `${id} ${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")} (max ${(maxRss / dataBytes).toFixed(2)}× the data). etcd members after the run (100k keys): ${etcdRss.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")}.`,
    `- Load (\`POST /v1/txn\`, 128 puts per txn, CBOR bodies, ${LOAD_PARALLEL} txns in flight, every write committed by a quorum): ${KEYSPACE} keys in ${(loadMs / 1000).toFixed(1)} s (while etcd's prepopulate ran)${memLoadMs ? `, then ${memoryKeys - KEYSPACE} more in ${(memLoadMs / 1000).toFixed(1)} s (${Math.round((memoryKeys - KEYSPACE) / (memLoadMs / 1000))} keys/s)` : ""}.`,
    cu.reached
      ? `- Catch-up: a follower killed with SIGKILL missed ${cu.entriesBehind} entries (single puts); after restart it reached the leader's applied index in ${(cu.ms / 1000).toFixed(1)} s, including process start${cu.snapshotInstalled ? " and a snapshot install" : ""}. Snapshot creation time for the same data: see "Storage".`
      : `- Catch-up: FAILED: a follower killed with SIGKILL missed ${cu.entriesBehind} entries (single puts); ${CATCH_UP_MS_MAX / 1000} s after its restart it was at applied index ${cu.appliedIndex} of ${cu.target}.`,
  ].join("\n");
  if (!cli.flag("no-doc")) {
    writeSection(join(repoRoot, "docs", "bench.md"), section);
    log("wrote docs/bench.md (section \"etcd side by side\")");
  }
  const headline = results.find((r) => r.cell.scenario === "put" && r.cell.conns === 64 && r.cell.role === "leader");
  if (headline) log(`put@64 edgekv/etcd throughput ${(medians(headline.samples.edgekv).rps / medians(headline.samples.etcd).rps).toFixed(2)}`);
}

main()
  .then(() => cleanup(failed))
  .then(() => {
    log(failed ? "done, with a failure (above)" : "done");
    if (failed) process.exitCode = 1;
  })
  .catch(async (e: Error) => {
    // after a signal or a closed pipe, onShutdown's cleanup owns the exit; the failure is its consequence
    if (shuttingDown()) return;
    process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
    await cleanup(true);
    process.exit(1);
  });
