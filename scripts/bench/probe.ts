/**
 * Quick probe for optimization work (not part of `npm run bench`'s report): starts a 3-node edgekv cluster
 * alone, optionally writes `--keys N` keys, runs the given cells once with wrk and prints req/s, p50, p99
 * (ms), then the leader's fsync count and entries, and the counts of long waits (event loop, commit, AppendEntries
 * round trip; all from /metrics) over the run, and stops its PIDs — also on
 * SIGINT/SIGTERM/SIGHUP, a closed stdout/stderr pipe and uncaught errors (bench/procs.ts `onShutdown`).
 *
 *   node --import tsx scripts/bench/probe.ts [--runtime bun] [--keys 0] [--duration 3] [--to leader|follower]
 *     [--runtime-flags "--cpu-prof --cpu-prof-dir=/tmp/prof"] put@1 put@64 get@64 stale@64 ...
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { NodeRuntime } from "../node-command.ts";
import { commandLine } from "./args.ts";
import { EdgeCluster, onShutdown, shuttingDown, stopAllChildren } from "./procs.ts";
import { loadEdgekv } from "./load.ts";
import { runWrk, setThinkTime } from "./wrk.ts";
import { parseCellSpec } from "./report.ts";

const USAGE = `usage: node --import tsx scripts/bench/probe.ts [options] CELL...

Starts a 3-node edgekv cluster alone, optionally writes --keys keys, runs each CELL once with wrk and prints
req/s, p50/p99 (ms), the leader's fsyncs and committed entries over the run, each node's Readys written
behind an fsync in flight (pipelined persist), its WAL fsyncs run inline on the event loop (of all), CPU ms per entry, and how many waits took past 25/50/100 ms (of how many): each node's event-loop delays, the leader's
proposal commits and its AppendEntries round trip to each follower; then stops the nodes it started. A CELL is SCENARIO@CONNECTIONS, SCENARIO one of put, get, stale,
mix (e.g. put@64 stale@256).

  --runtime bun|node|deno   nodes' runtime (default bun)
  --keys N                  keys written before the cells (default 0; gets then use a 100 000-key space)
  --duration S              seconds per wrk run (default 3)
  --to leader|follower      where the load goes (default leader)
  --runtime-flags "F..."    flags for the nodes' runtime, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  --base-port P             client ports P..P+2, peer ports P+100.. (default 7511)
  --think-ms MS             each wrk connection waits a random time of mean MS (exponential) before each
                            request: latency at an offered rate below saturation (default 0: closed loop)
  -h, --help                this text

Exit status: 0 done, 1 failed, 2 bad arguments, 128+N after signal N (141: output pipe closed).`;

const cli = commandLine(
  USAGE,
  { runtime: { type: "string" }, keys: { type: "string" }, duration: { type: "string" }, to: { type: "string" }, "runtime-flags": { type: "string" }, "base-port": { type: "string" }, "think-ms": { type: "string" } },
  true,
);
const runtime: NodeRuntime = cli.choice("runtime", "bun", ["bun", "node", "deno"] as const);
const keys = cli.int("keys", 0, 0, 100_000_000);
/** Mean think time per request and connection, ms (0: closed loop); kv.lua reads it as KV_THINK_MS. */
const thinkMs = cli.int("think-ms", 0, 0, 10_000);
setThinkTime(thinkMs);
const durationS = cli.int("duration", 3, 1, 3600);
const role = cli.choice("to", "leader", ["leader", "follower"] as const);
const runtimeFlags = cli.str("runtime-flags", "").split(" ").filter(Boolean);
const basePort = cli.int("base-port", 7511, 1024, 65_000);
const cells = cli.positionals.map((a) => {
  const c = parseCellSpec(a);
  if (!c || c.role === "follower") return cli.usageError(`bad cell ${JSON.stringify(a)}: expected SCENARIO@CONNECTIONS, e.g. put@64 (--to picks leader or follower)`);
  return { label: a, scenario: c.scenario, conns: c.conns };
});
if (cells.length === 0) cli.usageError("no CELL given");
const root = mkdtempSync(join(tmpdir(), "edgekv-probe-"));
const edge = new EdgeCluster(join(root, "edgekv"), runtime, basePort, 3, runtimeFlags);
let failed = false;
onShutdown("probe", async () => {
  await stopAllChildren();
  rmSync(root, { recursive: true, force: true });
});

async function metric(url: string, name: string): Promise<number> {
  const t = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of t.split("\n")) if (line.startsWith(name + " ") || line.startsWith(name + "{")) sum += Number(line.split(" ").pop());
  return sum;
}

/**
 * Observations of histogram `name` (series `labels`, e.g. `peer="n2"`, or none) past 25, 50 and 100 ms, then
 * the total, from a node's /metrics text; NaNs when the node does not expose the series.
 */
function pastMs(t: string, name: string, labels = ""): number[] {
  const esc = (x: string) => x.replace(/[.+{}]/g, "\\$&");
  const bucket = (le: string) => Number(new RegExp(`^${name}_bucket\\{${esc(labels ? `${labels},` : "")}le="${esc(le)}"\\} (\\d+)$`, "m").exec(t)?.[1] ?? NaN);
  const all = bucket("+Inf");
  return [...["0.025", "0.05", "0.1"].map((le) => all - bucket(le)), all];
}

/**
 * A node's histograms that split a write's wait, as counts past 25/50/100 ms and totals so far: event-loop
 * delay (src/server/loop-delay.ts), and on the leader its proposals' commit latency and each follower's
 * AppendEntries round trip (src/server/append-rtt.ts).
 */
async function waits(url: string, peers: string[]): Promise<{ loop: number[]; commit: number[]; rtt: Record<string, number[]> }> {
  const t = await (await fetch(`${url}/metrics`)).text().catch(() => "");
  return {
    loop: pastMs(t, "edgekv_event_loop_delay_seconds"),
    commit: pastMs(t, "edgekv_proposal_commit_seconds"),
    rtt: Object.fromEntries(peers.map((p) => [p, pastMs(t, "edgekv_peer_round_trip_seconds", `peer="${p}"`)])),
  };
}

/** `after - before` per position, as "a/b/c of n" (the last position is the total). */
function delta(after: number[], before: number[]): string {
  const d = after.map((n, i) => n - (before[i] ?? 0));
  return `${d.slice(0, -1).join("/")} of ${d[d.length - 1]}`;
}

/**
 * CPU time (user + system, ms) a process has used, from /proc/<pid>/stat fields 14-15 (clock ticks, 100/s on
 * Linux); NaN elsewhere. CPU per committed entry is steadier than req/s on a shared machine.
 */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const leaderId = await edge.startAll();
  const leader = edge.byId(leaderId).url;
  const follower = edge.members.find((m) => m.plan.id !== leaderId)!.url;
  if (keys > 0) process.stdout.write(`loaded ${keys} keys in ${await loadEdgekv(leader, 0, keys)} ms\n`);
  for (const { label: a, scenario, conns } of cells) {
    const before = await metric(leader, "edgekv_fsync_duration_seconds_count").catch(() => NaN);
    const cpu0 = edge.members.map((m) => cpuMs(m.child?.pid));
    const ids = edge.members.map((m) => m.plan.id);
    const others = ids.filter((id) => id !== leaderId);
    const waits0 = await Promise.all(edge.members.map((m) => waits(m.url, others)));
    const piped0 = await Promise.all(edge.members.map((m) => metric(m.url, "edgekv_persists_pipelined_total").catch(() => NaN)));
    const inline0 = await Promise.all(edge.members.map((m) => metric(m.url, 'edgekv_wal_fsyncs_total{way="inline"}').catch(() => NaN)));
    const syncs0 = await Promise.all(edge.members.map((m) => metric(m.url, "edgekv_wal_fsyncs_total").catch(() => NaN)));
    const idx0 = (await (await fetch(`${leader}/v1/cluster`)).json()) as { commitIndex: number };
    const r = await runWrk("edgekv", scenario, role === "leader" ? leader : follower, conns, durationS, keys || 100_000);
    const after = await metric(leader, "edgekv_fsync_duration_seconds_count").catch(() => NaN);
    const idx1 = (await (await fetch(`${leader}/v1/cluster`)).json()) as { commitIndex: number };
    const entries = idx1.commitIndex - idx0.commitIndex;
    const cpu = edge.members.map((m, i) => `${m.plan.id === leaderId ? "leader " : ""}${m.plan.id} ${((cpuMs(m.child?.pid) - cpu0[i]) / Math.max(1, entries)).toFixed(3)}`);
    const waits1 = await Promise.all(edge.members.map((m) => waits(m.url, others)));
    const stalls = edge.members.map((m, i) => `${m.plan.id} ${delta(waits1[i].loop, waits0[i].loop)}`);
    const piped1 = await Promise.all(edge.members.map((m) => metric(m.url, "edgekv_persists_pipelined_total").catch(() => NaN)));
    const piped = edge.members.map((m, i) => `${m.plan.id} ${piped1[i] - piped0[i]}`);
    const inline1 = await Promise.all(edge.members.map((m) => metric(m.url, 'edgekv_wal_fsyncs_total{way="inline"}').catch(() => NaN)));
    const syncs1 = await Promise.all(edge.members.map((m) => metric(m.url, "edgekv_wal_fsyncs_total").catch(() => NaN)));
    const inline = edge.members.map((m, i) => `${m.plan.id} ${inline1[i] - inline0[i]} of ${syncs1[i] - syncs0[i]}`);
    const li = ids.indexOf(leaderId);
    const rtts = others.map((p) => `${p} ${delta(waits1[li].rtt[p], waits0[li].rtt[p])}`);
    process.stdout.write(
      `${a}: ${Math.round(r.okRps)} req/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms errors ${r.errors}; leader fsyncs ${after - before}, entries ${entries} (${((entries) / (after - before)).toFixed(1)}/fsync); ` +
        `Readys written behind an fsync: ${piped.join(", ")}; WAL fsyncs inline: ${inline.join(", ")}; ` +
        `CPU ms/entry: ${cpu.join(", ")}; past 25/50/100 ms: loop delays ${stalls.join(", ")}; ` +
        `leader's commits ${delta(waits1[li].commit, waits0[li].commit)}; AppendEntries round trips ${rtts.join(", ")}\n`,
    );
  }
}

main()
  .catch((e: Error) => {
    if (shuttingDown()) return;
    process.stderr.write(`probe: ${e.stack}\n`);
    failed = true;
  })
  .finally(async () => {
    if (shuttingDown()) return;
    await stopAllChildren();
    // a failed run keeps the nodes' logs for reading
    if (failed) process.stderr.write(`probe: logs in ${root}\n`);
    else rmSync(root, { recursive: true, force: true });
    process.exitCode = failed ? 1 : 0;
  });
