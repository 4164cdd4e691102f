/**
 * `npm run bench` — edgekv side by side with etcd 3.4 on this machine, same load generator, same run.
 *
 * Starts a 3-node edgekv cluster (this process owns the node PIDs) and the anchors' 3-member etcd cluster
 * (../shared/anchors/etcd-cluster.sh), writes the key space (100k keys, 256-byte values) into both,
 * restarts etcd (etcd 3.4's reads are slow after a write burst until restart: anchors/RESULTS.md §3), runs
 * the reads, then the writes, with wrk over HTTP/1.1 keep-alive. Each cell alternates the systems
 * (edgekv first on odd repetitions, etcd first on even ones) and reports medians. Then loads edgekv up to
 * --memory-keys keys (128-put CBOR txns, 16 in flight) and records VmRSS per node, and the catch-up time
 * of a follower killed with SIGKILL while the others take 6000 single puts. The full run took 19.5 min on
 * this 2-core machine at load average 15 (wrk's Lua init of 100k requests per thread is a large share of
 * each run there); the quick run about 3-5 min.
 * Writes the table into docs/bench.md ("etcd side by side"). Stops exactly the PIDs it started, also on
 * error and Ctrl-C.
 *
 *   --runtime bun|node|deno   edgekv nodes' runtime (default bun)
 *   --quick                   ~3-minute subset (7 cells, 2 repetitions, no 1M-key load)
 *   --duration S              seconds per wrk run (default 3)
 *   --reps R                  repetitions per cell (default 3; --quick 2)
 *   --memory-keys N           keys in edgekv for the memory figure (default 1000000; --quick 100000)
 *   --base-port P             edgekv client ports P..P+2, peer ports P+100.. (default 7411)
 *   --no-doc                  do not touch docs/bench.md
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { repoRoot, type NodeRuntime } from "./node-command.ts";
import { EdgeCluster, clusterView, etcdCluster, sleep, stopAllChildren, vmRssBytes } from "./bench/procs.ts";
import { loadEdgekv } from "./bench/load.ts";
import { type Cell, type CellResult, medians, resultsTable, writeSection } from "./bench/report.ts";
import { type System, runWrk } from "./bench/wrk.ts";

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const quick = flag("--quick");
const runtime = opt("--runtime", "bun") as NodeRuntime;
if (!["bun", "node", "deno"].includes(runtime)) throw new Error(`--runtime must be bun, node or deno`);
const durationS = Number(opt("--duration", "3"));
const reps = Number(opt("--reps", quick ? "2" : "3"));
const memoryKeys = Number(opt("--memory-keys", quick ? "100000" : "1000000"));
const basePort = Number(opt("--base-port", "7411"));
const KEYSPACE = 100_000;
/** Txns in flight while loading: more share each group-committed fsync (the leader batches all it has). */
const LOAD_PARALLEL = 16;
const VALUE_BYTES = 256;

const readCells: Cell[] = quick
  ? [{ role: "leader", scenario: "get", conns: 64 }, { role: "leader", scenario: "get-serializable", conns: 64 }, { role: "follower", scenario: "get", conns: 64 }]
  : [
      ...[1, 16, 64, 256].map((conns): Cell => ({ role: "leader", scenario: "get", conns })),
      ...[1, 16, 64, 256].map((conns): Cell => ({ role: "leader", scenario: "get-serializable", conns })),
      { role: "follower", scenario: "get", conns: 64 },
      { role: "follower", scenario: "get-serializable", conns: 64 },
    ];
const writeCells: Cell[] = quick
  ? [{ role: "leader", scenario: "put", conns: 1 }, { role: "leader", scenario: "put", conns: 64 }, { role: "leader", scenario: "put", conns: 256 }, { role: "leader", scenario: "mix", conns: 64 }]
  : [
      ...[1, 16, 64, 256].map((conns): Cell => ({ role: "leader", scenario: "put", conns })),
      { role: "follower", scenario: "put", conns: 64 },
      { role: "leader", scenario: "mix", conns: 64 },
    ];

const t0 = Date.now();
const log = (msg: string) => process.stdout.write(`[bench +${Math.round((Date.now() - t0) / 1000)}s] ${msg}\n`);
const root = mkdtempSync("/tmp/edgekv-bench-");
process.env.ETCD_ANCHOR_STATE = join(root, "etcd-anchor.state");
const etcdDir = join(root, "etcd");
const edge = new EdgeCluster(join(root, "edgekv"), runtime, basePort);
let etcdStarted = false;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAllChildren();
    if (etcdStarted) {
      try {
        etcdCluster("stop", etcdDir);
      } catch (e) {
        process.stderr.write(`bench: etcd stop: ${(e as Error).message}\n`);
      }
    }
    rmSync(root, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    process.stderr.write(`bench: ${sig}, stopping the clusters\n`);
    void cleanup().then(() => process.exit(130));
  });
}

async function edgeUrls(): Promise<{ leader: string; follower: string }> {
  const leaderId = await edge.waitLeader(30_000);
  const leader = edge.byId(leaderId).url;
  const follower = edge.members.find((m) => m.plan.id !== leaderId && m.child)!.url;
  return { leader, follower };
}

async function runCells(cells: Cell[], phase: string): Promise<CellResult[]> {
  const e = await edgeUrls();
  const d = { leader: etcdCluster("leader"), follower: etcdCluster("follower") };
  const out: CellResult[] = [];
  for (const cell of cells) {
    const samples: Record<System, CellResult["samples"]["edgekv"]> = { edgekv: [], etcd: [] };
    for (let r = 0; r < reps; r++) {
      const order: System[] = r % 2 === 0 ? ["edgekv", "etcd"] : ["etcd", "edgekv"];
      for (const sys of order) {
        const url = (sys === "edgekv" ? e : d)[cell.role];
        const res = await runWrk(sys, cell.scenario, url, cell.conns, durationS, KEYSPACE);
        samples[sys].push(res);
        log(`${phase} ${cell.role} ${cell.scenario} c=${cell.conns} rep ${r + 1}/${reps} ${sys}: ${Math.round(res.okRps)} req/s p99 ${res.p99.toFixed(2)} ms${res.errors ? ` errors ${res.errors}` : ""}`);
        await sleep(500);
      }
    }
    out.push({ cell, samples });
  }
  return out;
}

async function catchUp(): Promise<{ ms: number; entriesBehind: number; snapshotInstalled: boolean }> {
  const leaderId = await edge.waitLeader(30_000);
  const victim = edge.members.find((m) => m.plan.id !== leaderId)!;
  const leaderUrl = edge.byId(leaderId).url;
  await edge.kill(victim);
  const before = (await clusterView(leaderUrl))!.appliedIndex;
  // single puts: one entry each. With the default snapshot interval (100 000 entries, etcd's) the victim
  // catches up from the log; the log says whether a snapshot was installed instead.
  await loadEdgekv(leaderUrl, 0, 6000, VALUE_BYTES, 64, 1);
  const target = (await clusterView(leaderUrl))!.appliedIndex;
  const logPath = join(edge.dir, `${victim.plan.id}.log`);
  const logBefore = readFileSync(logPath, "utf8").length;
  const start = Date.now();
  edge.start(victim, false);
  for (;;) {
    const v = await clusterView(victim.url);
    if (v && v.appliedIndex >= target) break;
    if (Date.now() - start > 180_000) throw new Error(`catch-up: ${victim.plan.id} not at index ${target} after 180 s`);
    await sleep(50);
  }
  const ms = Date.now() - start;
  const snapshotInstalled = /snapshot/i.test(readFileSync(logPath, "utf8").slice(logBefore));
  return { ms, entriesBehind: target - before, snapshotInstalled };
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  log(`data under ${root}; edgekv runtime ${runtime}; ${quick ? "quick" : "full"}; ${reps} reps x ${durationS} s per cell`);
  log("starting etcd (anchors) and edgekv");
  etcdCluster("start", etcdDir);
  etcdStarted = true;
  const leaderId = await edge.startAll();
  log(`edgekv leader ${leaderId}; etcd leader ${etcdCluster("leader")}`);
  log(`writing ${KEYSPACE} keys into etcd and edgekv`);
  execFileSync("python3", [join(process.env.EDGEKV_ANCHORS ?? join(repoRoot, "..", "shared", "anchors"), "prepopulate.py"), "--url", etcdCluster("leader"), "--keyspace", String(KEYSPACE)], { stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 });
  const loadMs = await loadEdgekv((await edgeUrls()).leader, 0, KEYSPACE, VALUE_BYTES, LOAD_PARALLEL);
  log(`edgekv load: ${KEYSPACE} keys in ${loadMs} ms (${Math.round(KEYSPACE / (loadMs / 1000))} keys/s in 128-put txns)`);
  etcdCluster("restart", etcdDir);
  const results = [...(await runCells(readCells, "reads")), ...(await runCells(writeCells, "writes"))];
  const etcdRss = etcdCluster("pids", etcdDir).split(/\s+/).filter(Boolean).map((p) => vmRssBytes(Number(p)));
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
  log(`catch-up: ${cu.entriesBehind} entries behind, caught up in ${cu.ms} ms${cu.snapshotInstalled ? " (log mentions a snapshot)" : ""}`);

  const table = resultsTable(results);
  process.stdout.write("\n" + table + "\n");
  const maxRss = Math.max(...Object.values(rss));
  const section = [
    "## etcd side by side",
    "",
    `Command: \`npm run bench${argv.length ? " -- " + argv.join(" ") : ""}\` (script \`scripts/bench.ts\`). Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC. Wall time of the whole run: ${((Date.now() - t0) / 60_000).toFixed(1)} min.`,
    `Commit: ${gitCommit()}. Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average at start ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} (shared with other jobs: figures are noisy; compare the ratios).`,
    `edgekv: 3 nodes on ${runtime}, default config. etcd 3.4.23: 3 members, defaults (anchors' etcd-cluster.sh). Load: wrk -t2 (-t1 at 1 conn), HTTP/1.1 keep-alive, ${durationS} s per run, ${reps} repetitions per cell alternating which system goes first; medians. Key space ${KEYSPACE} keys, 256-byte values, written first; etcd restarted before the reads; reads, then writes.`,
    "",
    table,
    "",
    `- Memory: VmRSS per edgekv node with ${Math.max(memoryKeys, KEYSPACE)} keys of 256 B (≈ ${(dataBytes / 2 ** 20).toFixed(0)} MiB of keys+values): ${Object.entries(rss).map(([id, b]) => `${id} ${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")} (max ${(maxRss / dataBytes).toFixed(2)}× the data). etcd members after the run (100k keys): ${etcdRss.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")}.`,
    `- Load (\`POST /v1/txn\`, 128 puts per txn, CBOR bodies, ${LOAD_PARALLEL} txns in flight, every write committed by a quorum): ${KEYSPACE} keys in ${(loadMs / 1000).toFixed(1)} s${memLoadMs ? `, then ${memoryKeys - KEYSPACE} more in ${(memLoadMs / 1000).toFixed(1)} s (${Math.round((memoryKeys - KEYSPACE) / (memLoadMs / 1000))} keys/s)` : ""}.`,
    `- Catch-up: a follower killed with SIGKILL missed ${cu.entriesBehind} entries (single puts); after restart it reached the leader's applied index in ${(cu.ms / 1000).toFixed(1)} s, including process start${cu.snapshotInstalled ? " and a snapshot install" : ""}. Snapshot creation time for the same data: see "Storage".`,
  ].join("\n");
  if (!flag("--no-doc")) {
    writeSection(join(repoRoot, "docs", "bench.md"), section);
    log("wrote docs/bench.md (section \"etcd side by side\")");
  }
  const headline = results.find((r) => r.cell.scenario === "put" && r.cell.conns === 64 && r.cell.role === "leader");
  if (headline) log(`put@64 edgekv/etcd throughput ${(medians(headline.samples.edgekv).rps / medians(headline.samples.etcd).rps).toFixed(2)}`);
}

main()
  .then(() => cleanup())
  .then(() => log("done"))
  .catch(async (e: Error) => {
    process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
    await cleanup();
    process.exit(1);
  });
