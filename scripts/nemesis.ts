/**
 * The nemesis command (`npm run nemesis -- --time SECONDS --seed S [--nodes 3|5] [--runtime bun|deno|node|mixed]
 * [--faults k1,k2] [--clients N] [--quiet-ms MIN,MAX] [--key-window-ms MS] [--keep] [--dir D]`): one Jepsen-style run on real node processes behind
 * fault-injecting link proxies (test/nemesis/run.ts). Prints progress every few seconds and ends with
 *
 *   nemesis: <ops> ops, linearizable: <yes|no>, lost: <n>, duplicated: <n>, unavailable: <seconds>s
 *
 * Exit status 0 only when the history is linearizable, nothing acknowledged was lost, nothing was applied
 * twice, the cluster returned to service and the replicas converged; 1 otherwise (the run folder with the
 * history, node logs and replay command is printed); 2 on bad arguments.
 */
import process from "node:process";
import { FAULT_KINDS, type FaultKind } from "../test/nemesis/faults.ts";
import { runNemesis } from "../test/nemesis/run.ts";

const USAGE = `usage: npm run nemesis -- --time SECONDS --seed S [--nodes 3|5] [--runtime bun|deno|node|mixed]
                          [--faults ${FAULT_KINDS.join(",")}] [--clients N]
                          [--quiet-ms MIN,MAX] [--key-window-ms MS] [--keep] [--dir D]
Starts a real edgekv cluster on 127.0.0.1 with every peer link behind a fault-injecting proxy, runs a
concurrent workload (put, linearizable get, CAS via If-Match, txn CAS, session appends) while seeded faults
(kill -9, power cut, SIGSTOP, partitions, one-way links, slow links, leader transfer, membership cycle)
come and go, then heals and checks linearizability, lost and duplicated writes, recovery and convergence.
Last line: nemesis: <ops> ops, linearizable: <yes|no>, lost: <n>, duplicated: <n>, unavailable: <s>s
Exit 0 when all checks pass, 1 when one fails (the run folder is kept and printed), 2 on bad arguments.
--quiet-ms: quiet time before each fault (default 1000,2000); --key-window-ms: register keys move to fresh
ones this often, bounding each key's history for the checker (default 10000).
EDGEKV_UNSAFE_BUG=local-reads|ack-before-fsync in the environment starts deliberately broken nodes
(checker self-tests, docs/nemesis.md); such a run is expected to fail.
Defaults: --nodes 3, --runtime node, --clients 12, every fault kind.`;

function fail(msg: string): never {
  process.stderr.write(`nemesis: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv.includes("--help") || argv.includes("-h")) {
  process.stdout.write(USAGE + "\n");
  process.exit(0);
}
let timeSec: number | undefined;
let seed: number | undefined;
let nodes = 3;
let runtime: "bun" | "deno" | "node" | "mixed" = "node";
let faults: FaultKind[] | undefined;
let clients = 12;
let keep = false;
let quietMs: [number, number] | undefined;
let keyWindowMs: number | undefined;
let dir: string | undefined;
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i];
  const value = () => argv[++i] ?? fail(`${flag} needs a value`);
  const int = (min: number, max: number) => {
    const v = value();
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) fail(`${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    return n;
  };
  if (flag === "--time") timeSec = int(1, 86_400);
  else if (flag === "--seed") seed = int(0, 2 ** 32 - 1);
  else if (flag === "--nodes") {
    nodes = int(3, 5);
    if (nodes !== 3 && nodes !== 5) fail("--nodes must be 3 or 5");
  } else if (flag === "--runtime") {
    const v = value();
    if (v !== "bun" && v !== "deno" && v !== "node" && v !== "mixed") fail(`--runtime must be bun, deno, node or mixed, got ${JSON.stringify(v)}`);
    runtime = v;
  } else if (flag === "--faults") {
    const list = value().split(",");
    for (const k of list) if (!(FAULT_KINDS as readonly string[]).includes(k)) fail(`unknown fault ${JSON.stringify(k)}`);
    faults = list as FaultKind[];
  } else if (flag === "--clients") clients = int(1, 200);
  else if (flag === "--quiet-ms") {
    const v = value().split(",").map(Number);
    if (v.length !== 2 || !v.every((x) => Number.isInteger(x) && x >= 0 && x <= 600_000) || v[0] > v[1]) fail("--quiet-ms must be MIN,MAX in ms (integers, MIN <= MAX)");
    quietMs = [v[0], v[1]];
  } else if (flag === "--key-window-ms") keyWindowMs = int(100, 3_600_000);
  else if (flag === "--keep") keep = true;
  else if (flag === "--dir") dir = value();
  else fail(`unknown flag ${flag}`);
}
if (timeSec === undefined) fail("--time is required");
if (seed === undefined) fail("--seed is required");

const result = await runNemesis({ timeSec, seed, nodes, runtime, faults, clients, keep, dir, quietMs, keyWindowMs });
process.stdout.write(result.summary + "\n");
process.exit(result.ok ? 0 : 1);
