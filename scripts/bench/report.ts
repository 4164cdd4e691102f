/**
 * Medians and the markdown report of `npm run bench`: one row per (target role, scenario, connections)
 * with edgekv's and etcd's median req/s, p50/p99/p999 (ms) over the repetitions, and the ratios
 * edgekv/etcd for throughput and p99. `writeSection` replaces the "etcd side by side" section of
 * docs/bench.md and leaves every other section (e.g. "Storage") as it is.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Scenario, System, WrkResult } from "./wrk.ts";

/** One cell of the plan: where the load goes, what it does, how many connections. */
export interface Cell {
  role: "leader" | "follower";
  scenario: Scenario;
  conns: number;
}

/** Scenario names as written in a cell spec (`put@64`, `stale@64`) and what they run. */
const SPEC_SCENARIOS: Record<string, Scenario> = { put: "put", get: "get", stale: "get-serializable", mix: "mix" };

/**
 * Parses a cell spec `[f:]SCENARIO@CONNECTIONS`: SCENARIO one of put, get (linearizable), stale
 * (serializable), mix (90/10 get/put); CONNECTIONS an integer ≥ 1; the prefix `f:` sends the load to a
 * follower (default: the leader). E.g. `put@64`, `f:stale@64`. Returns undefined for anything else.
 */
export function parseCellSpec(spec: string): Cell | undefined {
  const m = /^(f:)?(put|get|stale|mix)@(\d+)$/.exec(spec);
  if (!m || Number(m[3]) < 1) return undefined;
  return { role: m[1] ? "follower" : "leader", scenario: SPEC_SCENARIOS[m[2]], conns: Number(m[3]) };
}

/** Samples of one cell, per system. */
export interface CellResult {
  cell: Cell;
  samples: Record<System, WrkResult[]>;
}

/** Median of a non-empty list (mean of the middle two for even lengths); NaN for an empty one. */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Medians of a system's samples of one cell. */
export function medians(rs: WrkResult[]): { rps: number; p50: number; p99: number; p999: number; errors: number } {
  return { rps: median(rs.map((r) => r.okRps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), p999: median(rs.map((r) => r.p999)), errors: rs.reduce((a, r) => a + r.errors, 0) };
}

const SCENARIO_NAME: Record<Scenario, string> = { put: "put (random key, 256 B)", get: "get linearizable", "get-serializable": "get stale / etcd serializable", mix: "90/10 get/put" };
const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US").replace(/,/g, " ") : "–");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");

/** The results table in markdown. */
export function resultsTable(results: CellResult[]): string {
  const head = "| to | workload | conns | edgekv req/s | etcd req/s | **tput ratio** | edgekv p50/p99/p999 ms | etcd p50/p99/p999 ms | **p99 ratio** | errors e/etcd |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|";
  const rows = results.map(({ cell, samples }) => {
    const e = medians(samples.edgekv);
    const d = medians(samples.etcd);
    return `| ${cell.role} | ${SCENARIO_NAME[cell.scenario]} | ${cell.conns} | ${f0(e.rps)} | ${f0(d.rps)} | **${f2(e.rps / d.rps)}** | ${f2(e.p50)} / ${f2(e.p99)} / ${f2(e.p999)} | ${f2(d.p50)} / ${f2(d.p99)} / ${f2(d.p999)} | **${f2(e.p99 / d.p99)}** | ${e.errors} / ${d.errors} |`;
  });
  return [head, ...rows].join("\n");
}

/** Replaces (or appends) the `## etcd side by side` section of the markdown file at `path`. */
export function writeSection(path: string, body: string): void {
  const title = "## etcd side by side";
  const doc = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  const start = doc.indexOf(title);
  let out: string;
  if (start < 0) out = doc.trimEnd() + "\n\n" + body.trimEnd() + "\n";
  else {
    const rest = doc.slice(start + title.length);
    const next = rest.search(/\n## /);
    out = doc.slice(0, start) + body.trimEnd() + "\n" + (next < 0 ? "" : rest.slice(next));
  }
  writeFileSync(path, out);
}
