/**
 * Quick probe for optimization work (not part of `npm run bench`'s report): starts a 3-node edgekv cluster
 * alone, optionally writes `--keys N` keys, runs the given cells once with wrk and prints req/s, p50, p99
 * (ms), then the leader's fsync count and entries (from /metrics) over the run, and stops its PIDs.
 *
 *   node --import tsx scripts/bench/probe.ts [--runtime bun] [--keys 0] [--duration 3] [--to leader|follower]
 *     [--runtime-flags "--cpu-prof --cpu-prof-dir=/tmp/prof"] put@1 put@64 get@64 stale@64 ...
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { NodeRuntime } from "../node-command.ts";
import { EdgeCluster, stopAllChildren } from "./procs.ts";
import { loadEdgekv } from "./load.ts";
import { type Scenario, runWrk } from "./wrk.ts";

const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(name);
  if (i < 0) return d;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const runtime = opt("--runtime", "bun") as NodeRuntime;
const keys = Number(opt("--keys", "0"));
const durationS = Number(opt("--duration", "3"));
const role = opt("--to", "leader");
const root = mkdtempSync("/tmp/edgekv-probe-");
const runtimeFlags = opt("--runtime-flags", "").split(" ").filter(Boolean);
const edge = new EdgeCluster(join(root, "edgekv"), runtime, Number(opt("--base-port", "7511")), 3, runtimeFlags);
const names: Record<string, Scenario> = { put: "put", get: "get", stale: "get-serializable", mix: "mix" };

async function metric(url: string, name: string): Promise<number> {
  const t = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of t.split("\n")) if (line.startsWith(name + " ") || line.startsWith(name + "{")) sum += Number(line.split(" ").pop());
  return sum;
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
  for (const a of argv) {
    const [s, c] = a.split("@");
    const before = await metric(leader, "edgekv_fsync_duration_seconds_count").catch(() => NaN);
    const cpu0 = edge.members.map((m) => cpuMs(m.child?.pid));
    const idx0 = (await (await fetch(`${leader}/v1/cluster`)).json()) as { commitIndex: number };
    const r = await runWrk("edgekv", names[s], role === "leader" ? leader : follower, Number(c), durationS, keys || 100_000);
    const after = await metric(leader, "edgekv_fsync_duration_seconds_count").catch(() => NaN);
    const idx1 = (await (await fetch(`${leader}/v1/cluster`)).json()) as { commitIndex: number };
    const entries = idx1.commitIndex - idx0.commitIndex;
    const cpu = edge.members.map((m, i) => `${m.plan.id === leaderId ? "leader " : ""}${m.plan.id} ${((cpuMs(m.child?.pid) - cpu0[i]) / Math.max(1, entries)).toFixed(3)}`);
    process.stdout.write(`${a}: ${Math.round(r.okRps)} req/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms errors ${r.errors}; leader fsyncs ${after - before}, entries ${entries} (${((entries) / (after - before)).toFixed(1)}/fsync); CPU ms/entry: ${cpu.join(", ")}\n`);
  }
}

main()
  .catch((e: Error) => {
    process.stderr.write(`probe: ${e.stack}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAllChildren();
    if (!process.exitCode) rmSync(root, { recursive: true, force: true });
  });
