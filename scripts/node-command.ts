/**
 * How to start one edgekv node process on a given runtime, shared by the local cluster script
 * (scripts/cluster.ts) and the real-process test harness (test/helpers/cluster.ts). Binaries: the
 * `bun`/`deno` npm packages' `node_modules/.bin` shims; Node is this process's binary when running on Node
 * (else `node` from PATH), with `--import tsx` since Node 20 cannot strip types.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** A runtime a node can run on. */
export type NodeRuntime = "bun" | "deno" | "node";

/** The repository root (where node.ts lives). */
export const repoRoot = new URL("..", import.meta.url).pathname;

/** True when the runtime's binary is installed (bun/deno come from devDependencies). */
export function runtimeAvailable(rt: NodeRuntime, root = repoRoot): boolean {
  if (rt === "node") return true;
  return existsSync(join(root, "node_modules/.bin", rt));
}

/** `[command, args]` that runs node.ts on `rt`; append the node's flags to args. */
export function nodeCommand(rt: NodeRuntime, root = repoRoot): [string, string[]] {
  const entry = join(root, "node.ts");
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), ["run", entry]];
  // --unstable-no-legacy-abort (also in deno.json): request.signal aborts only when the client goes away, not
  // after every successful response, and Deno stops printing its legacy-behaviour warning at each start.
  // Watches are still cleaned up when their client leaves (the stream is cancelled and the signal aborts).
  if (rt === "deno") return [join(root, "node_modules/.bin/deno"), ["run", "-A", "--no-check", "--unstable-no-legacy-abort", entry]];
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  // Under Bun or Deno, process.execPath is bun/deno itself, so use the node on PATH.
  const nodeBin = g.Bun === undefined && g.Deno === undefined ? process.execPath : "node";
  // tsx by absolute URL: `--import tsx` resolves from the cwd, and nodes may run elsewhere (the tests use temp dirs).
  return [nodeBin, ["--import", pathToFileURL(join(root, "node_modules/tsx/dist/loader.mjs")).href, entry]];
}

/**
 * Environment a node process on runtime `rt` is started with: `base` (default this process's environment)
 * plus, for Bun, `MIMALLOC_PURGE_HOLES=0` unless `base` sets it. Bun's allocator (its mimalloc fork) by
 * default discards the free blocks inside partly used pages every 100 ms; under a steady write load that
 * cost a node 25-30 % of its CPU per committed put (a background thread doing the discards, then page faults
 * when the blocks are reused; docs/bench.md "Bun's allocator"). The option is read once at process start,
 * so it has to be in the environment, not set from code. Whole free pages are still returned to the OS.
 */
export function nodeEnv(rt: NodeRuntime, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (rt !== "bun" || base.MIMALLOC_PURGE_HOLES !== undefined) return { ...base };
  return { ...base, MIMALLOC_PURGE_HOLES: "0" };
}

/** One member of a local cluster: its id, ports and data dir. */
export interface MemberPlan {
  id: string;
  runtime: NodeRuntime;
  clientPort: number;
  peerPort: number;
  dataDir: string;
}

/** `http://127.0.0.1:<port>` */
export function loopbackUrl(port: number): string {
  return `http://127.0.0.1:${port}`;
}

/**
 * The flags of one member: its id, loopback ports, data dir, every member's peer URL, and `--bootstrap`
 * on the first start of a brand-new cluster only (EdgeNode ignores it once the data dir holds state, but
 * a node whose data dir was wiped must rejoin, not found a second cluster).
 */
export function memberArgs(m: MemberPlan, all: MemberPlan[], opts: { bootstrap: boolean; clusterId?: string; extra?: string[] }): string[] {
  const peers = all.map((p) => `${p.id}=${loopbackUrl(p.peerPort)}`).join(",");
  const args = ["--node-id", m.id, "--client-port", String(m.clientPort), "--peer-port", String(m.peerPort), "--data-dir", m.dataDir, "--peers", peers];
  if (opts.clusterId) args.push("--cluster-id", opts.clusterId);
  if (opts.bootstrap) args.push("--bootstrap");
  return [...args, ...(opts.extra ?? [])];
}

/** Round-robin runtimes for `mixed`: n1 bun, n2 deno, n3 node, n4 bun, ... */
export function runtimeOf(spec: NodeRuntime | "mixed", index: number): NodeRuntime {
  if (spec !== "mixed") return spec;
  return (["bun", "deno", "node"] as const)[index % 3];
}
