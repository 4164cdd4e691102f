/**
 * Starts a local edgekv cluster of N node processes on 127.0.0.1 (`npm start`, `npm run cluster`,
 * `npx deno task cluster`, `npx bun run scripts/cluster.ts`) and keeps it running until Ctrl-C, SIGTERM or
 * SIGHUP (the terminal closed), which stops every node it started (SIGTERM, then SIGKILL after
 * --stop-timeout-ms).
 *
 *   --nodes N           members n1..nN, 1..7 (default 3; on an existing data dir, its member count); an even
 *                       count starts with a warning: it tolerates no more failures than one node fewer
 *                       (Raft majority quorum, as etcd's FAQ warns)
 *   --runtime R         bun | deno | node | mixed (one node per runtime, round-robin: n1 bun, n2 deno, n3 node)
 *                       default: bun when node_modules/.bin/bun exists (fastest start), else node
 *   --base-port P       client ports P..P+N-1, peer ports P+100..P+100+N-1 (default 8080, the CLI's default
 *                     endpoint, so `npx edgekv get k` talks to n1)
 *   --peer-base-port Q  peer ports Q..Q+N-1 instead of P+100.. (e.g. to keep every port in one window)
 *   --data-dir D        default ./data/cluster; node nK keeps D/nK/ and logs to D/nK.log
 *   --stop-timeout-ms T SIGKILL nodes still running T ms after SIGTERM (default 10000)
 *
 * Before spawning, every client and peer port must be free on 127.0.0.1: a busy one (another cluster on the
 * same ports) exits 2 naming it and suggesting --base-port, and touches nothing. (A second cluster's nodes on
 * those ports used to answer the readiness poll, so the start reported `cluster ready`, exited 0 and wrote
 * cluster.json with the pids of its own nodes, which had exited.)
 *
 * Prints one line per member and `cluster ready: leader <id>` once every running member has logged, in this
 * run, that it serves its client port (`edgekv <id> serving clients on ...`) and its GET /v1/cluster names the
 * same leader; a node that exited is never ready. Only then does it write D/cluster.json (each member's id,
 * pid, runtime, client URL, peer URL, log path): a start that fails (e.g. every node refused with
 * data_dir_locked because another cluster runs on D) keeps the old file, which still describes the running
 * cluster. When none of the old file's pids is running at start, the file is stale: its pids are set to null
 * before spawning, so no recipe signals a dead (or reused) pid; once it wrote the file, the script nulls the
 * pid of each of its nodes that exits, and all of them after it stopped them. A node refusing with data_dir_locked stops this start: the script prints the refusal,
 * stops the nodes it started and exits 1. What it prints about a node that exited comes from the part of
 * the node's log (appended across runs) that this run wrote. The first start on an empty D bootstraps the
 * cluster; later starts on the same D resume it (no bootstrap).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { tryBind } from "../runtime-adapters/port-check.ts";
import { freeBytesOf } from "../runtime-adapters/disk-space.ts";
import { nodeFsSnapshotFiles } from "../runtime-adapters/snapshot-files.ts";
import { loadSqliteDriver } from "../runtime-adapters/sqlite.ts";
import { DISK_FULL_BYTES, DataDirLockedError, DiskFullError, lockDataDir } from "../src/server/data-dir-lock.ts";
import { join, resolve } from "node:path";
import process from "node:process";
import { type MemberPlan, type NodeRuntime, loopbackUrl, memberArgs, nodeCommand, nodeEnv, repoRoot, runtimeAvailable, runtimeOf } from "./node-command.ts";

interface Options {
  nodes?: number;
  runtime: NodeRuntime | "mixed";
  basePort: number;
  /** First peer port; undefined: basePort + 100. */
  peerBasePort?: number;
  dataDir: string;
  stopTimeoutMs: number;
}

/** What D/cluster.json holds. */
interface ClusterFile {
  clusterId: string;
  /** Peer authentication secret of this local cluster, made at first start (passed as EDGEKV_CLUSTER_SECRET). */
  clusterSecret: string;
  createdAt: string;
  startedAt: string;
  /** `pid` is null when the process is known not to run (stopped by this script, or found dead at a later start). */
  members: Array<{ id: string; pid: number | null; runtime: NodeRuntime; clientUrl: string; peerUrl: string; log: string }>;
}

const USAGE = `usage: cluster [--nodes 1..7] [--runtime bun|deno|node|mixed] [--base-port P] [--peer-base-port Q] [--data-dir D] [--stop-timeout-ms T]
Starts N edgekv nodes on 127.0.0.1 (client ports P.., peer ports Q.., by default P+100..), writes D/cluster.json, and stops
them on Ctrl-C, SIGTERM or SIGHUP. An even N starts with a warning. Defaults: 3 nodes, runtime bun if installed else node, base port 8080, data dir ./data/cluster.`;

/** Exits 2 with `msg`: a bad argument (the usage follows) or, with `usage = false`, a refusal that names its own way out (busy ports, a bigger cluster in the data dir; U7 found the usage block after those noise). */
function fail(msg: string, usage = true): never {
  process.stderr.write(`cluster: ${msg}\n${usage ? `${USAGE}\n` : ""}`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runtime: runtimeAvailable("bun") ? "bun" : "node", basePort: 8080, dataDir: "./data/cluster", stopTimeoutMs: 10_000 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split(/=(.*)/s, 2) : [argv[i], undefined];
    const value = () => inline ?? argv[++i] ?? fail(`${flag} needs a value`);
    const int = (min: number, max: number) => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) fail(`${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
      return n;
    };
    if (flag === "--help" || flag === "-h") {
      process.stdout.write(USAGE + "\n");
      process.exit(0);
    } else if (flag === "--nodes") o.nodes = int(1, 7);
    else if (flag === "--base-port") o.basePort = int(1, 65_000);
    else if (flag === "--peer-base-port") o.peerBasePort = int(1, 65_000);
    else if (flag === "--stop-timeout-ms") o.stopTimeoutMs = int(0, 600_000);
    else if (flag === "--data-dir") {
      o.dataDir = value();
      // An empty value resolved to the current directory and started a cluster there (break session B9).
      if (o.dataDir.trim() === "") fail("--data-dir needs a folder (got an empty value)");
    }
    else if (flag === "--runtime") {
      const r = value();
      if (r !== "bun" && r !== "deno" && r !== "node" && r !== "mixed") fail(`--runtime must be bun, deno, node or mixed, got ${JSON.stringify(r)}`);
      o.runtime = r;
    } else fail(`unknown argument ${JSON.stringify(argv[i])}`);
  }
  return o;
}

function readClusterFile(path: string): ClusterFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ClusterFile;
  } catch (e) {
    fail(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** True while `pid` exists (signal 0 probes without signalling; EPERM means it exists under another user). */
function pidAlive(pid: number | null): boolean {
  if (typeof pid !== "number" || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** Size of the file at `path` in bytes, 0 when it does not exist. */
function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The text of `path` from byte `offset` on: what this run appended to a node log that earlier runs also wrote. */
function readFrom(path: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return "";
  }
  try {
    const buf = new Uint8Array(Math.max(0, sizeOf(path) - offset));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return new TextDecoder().decode(buf.subarray(0, got));
  } finally {
    closeSync(fd);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The leader id GET /v1/cluster reports on `url`, or "" (no leader yet or node unreachable). */
async function leaderOf(url: string): Promise<string> {
  try {
    const res = await fetch(`${url}/v1/cluster`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return "";
    return ((await res.json()) as { leaderId?: string }).leaderId ?? "";
  } catch {
    return "";
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dataDir = resolve(o.dataDir);
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    // e.g. EEXIST when the path is a file, EACCES, ENOSPC (B9: a file as --data-dir gave a stack trace).
    fail(`--data-dir ${dataDir} cannot be used as a folder: ${(err as Error).message}`, false);
  }
  // A new cluster on a full disk: the nodes' logs (on that disk) stay empty and say nothing (B9).
  const free = freeBytesOf(dataDir);
  if (free !== undefined && free < DISK_FULL_BYTES) {
    process.stdout.write(`edgekv: disk_full: ${dataDir} is on a file system with ${free} bytes free; edgekv needs at least ${DISK_FULL_BYTES} to start. Free space there or pick another --data-dir\nnothing started\n`);
    process.exit(1);
  }
  const filePath = join(dataDir, "cluster.json");
  const previous = readClusterFile(filePath);
  const n = o.nodes ?? previous?.members.length ?? 3;
  if (previous && previous.members.length !== n) {
    fail(`${dataDir} holds a ${previous.members.length}-node cluster; change membership through the API (POST /v1/cluster/members) or use another --data-dir`, false);
  }
  for (const rt of o.runtime === "mixed" ? (["bun", "deno", "node"] as const) : [o.runtime]) {
    if (!runtimeAvailable(rt)) fail(`runtime ${rt} is not installed (npm install brings bun and deno as devDependencies)`, false);
  }
  if (n % 2 === 0) {
    process.stderr.write(`cluster: warning: ${n} nodes tolerate no more failures than ${n - 1} would (a majority of ${n} is ${n / 2 + 1}); prefer an odd count\n`);
  }
  const plans: MemberPlan[] = [];
  for (let i = 0; i < n; i++) {
    const id = `n${i + 1}`;
    plans.push({ id, runtime: runtimeOf(o.runtime, i), clientPort: o.basePort + i, peerPort: (o.peerBasePort ?? o.basePort + 100) + i, dataDir: join(dataDir, id) });
  }
  // Every port once: --peer-base-port can put a peer port on another node's client port, and each node's own
  // port check would pass before the other binds (B6: two of three nodes died on the bind after bootstrapping).
  const owners = new Map<number, string>();
  for (const m of plans) {
    for (const [kind, port] of [["client", m.clientPort], ["peer", m.peerPort]] as const) {
      const other = owners.get(port);
      if (other) fail(`port ${port} would be both ${other} and ${m.id}'s ${kind} port: pick --base-port and --peer-base-port ranges that do not overlap; nothing started`, false);
      owners.set(port, `${m.id}'s ${kind} port`);
    }
  }
  // Our children must own these ports: a node of another cluster answering on one would pass the readiness poll.
  for (const m of plans) {
    for (const [kind, port] of [["client", m.clientPort], ["peer", m.peerPort]] as const) {
      const problem = await tryBind(port, "127.0.0.1");
      if (problem === undefined) continue;
      const owner = previous?.members.find((p) => pidAlive(p.pid) && (p.clientUrl === loopbackUrl(port) || p.peerUrl === loopbackUrl(port)));
      const hint = owner ? ` (${dataDir}/cluster.json says ${owner.id} runs there as pid ${owner.pid}: this cluster is already running)` : "";
      fail(`port ${port} (${m.id}'s ${kind} port) is not free on 127.0.0.1: ${problem}${hint}; stop what listens there or pick other ports with --base-port P (client ports P..P+${n - 1}, peer ports P+100..P+${100 + n - 1}) or --peer-base-port Q (peer ports Q..Q+${n - 1}); cluster.json left as it was`, false);
    }
  }
  // A data dir another process holds: refuse before spawning anything. A node of this run refused too, but
  // only after its output was appended to the running node's log, and this script's later "nK exited"
  // lines then quoted that refusal as the running node's cause of death (new-user trial 2026-12-01).
  const open = await loadSqliteDriver();
  for (const m of plans) {
    if (!existsSync(m.dataDir)) continue;
    try {
      const probe = await lockDataDir({ dataDir: m.dataDir, openSqlite: async (p) => open(p), files: nodeFsSnapshotFiles, owner: { nodeId: `${m.id} (npm start's check)`, pid: process.pid, startedAt: new Date().toISOString() }, waitMs: 0, freeBytes: freeBytesOf });
      probe.release();
    } catch (err) {
      if (err instanceof DiskFullError) {
        process.stdout.write(`edgekv: disk_full: ${err.message}\nnothing started, cluster.json left as it was\n`);
        process.exit(1);
      }
      if (!(err instanceof DataDirLockedError)) throw err;
      process.stdout.write(`edgekv: data_dir_locked: ${err.message}\n${dataDir} is in use by another edgekv process; nothing started, cluster.json left as it was\n`);
      process.exit(1);
    }
  }
  if (previous && !previous.members.some((m) => pidAlive(m.pid)) && previous.members.some((m) => m.pid !== null)) {
    // Stale: no process of the file runs, so nothing to protect; clear the pids so none is signalled by mistake.
    writeFileSync(filePath, JSON.stringify({ ...previous, members: previous.members.map((m) => ({ ...m, pid: null })) }, null, 2) + "\n");
  }
  const bootstrap = previous === undefined;
  const clusterSecret = previous?.clusterSecret || `local-${crypto.randomUUID()}`;
  // Through the environment, not argv: `ps` shows arguments to every local user.
  const env = { ...process.env, EDGEKV_CLUSTER_SECRET: clusterSecret };

  const children = new Map<string, ChildProcess>();
  let stopping = false;
  /** Set when a node refused with data_dir_locked: another process owns this data dir. */
  let locked = false;
  /** Set once this run wrote cluster.json with its own pids: a stop then nulls them. */
  let wroteFile = false;
  const members: ClusterFile["members"] = [];
  /** Each node log's size before this run: earlier runs' lines (an old port clash or refusal) are not this run's. */
  const logOffsets = new Map<string, number>();
  for (const m of plans) {
    const [cmd, baseArgs] = nodeCommand(m.runtime);
    const logPath = join(dataDir, `${m.id}.log`);
    logOffsets.set(m.id, sizeOf(logPath));
    const fd = openSync(logPath, "a");
    // detached: a terminal Ctrl-C reaches only this script, which then stops each node once with SIGTERM.
    const child = spawn(cmd, [...baseArgs, ...memberArgs(m, plans, { bootstrap })], { cwd: repoRoot, env: nodeEnv(m.runtime, env), stdio: ["ignore", fd, fd], detached: true });
    closeSync(fd);
    children.set(m.id, child);
    child.on("exit", (code, signal) => {
      children.delete(m.id);
      if (stopping) return;
      // After ready the file names this node: its pid is dead now, so drop it (a kill recipe must not reuse it).
      if (wroteFile) writeFileSync(filePath, JSON.stringify({ ...file, members: members.map((x) => (children.has(x.id) ? x : { ...x, pid: null })) }, null, 2) + "\n");
      // Show why (e.g. "Is port 8081 in use?") instead of only where to look.
      // `edgekv: <code>: ...` is how node.ts reports a refusal (data_dir_locked, invalid configuration).
      const lines = readFrom(logPath, logOffsets.get(m.id) ?? 0).split("\n");
      if (lines.some((l) => l.startsWith("edgekv: data_dir_locked:"))) locked = true;
      // Error-level log lines, a runtime's own "error:" lines and refusals; not a warn line that merely
      // mentions an error (U7 saw a minutes-old "peer unreachable" warning quoted as the cause).
      const fatal = lines.filter((l) => /^\S+ (error|fatal) |^edgekv: |^error: |fatal/i.test(l)).slice(-2).join("\n  ");
      process.stdout.write(`${m.id} exited (${signal ?? `status ${code}`}); see ${logPath}${fatal ? `\n  ${fatal}` : ""}\n`);
      if (children.size === 0 && wroteFile) {
        // After ready: nothing left to supervise. Say so and exit 1 (before ready the wait loop does).
        process.stdout.write("every node has exited; npm start ends (the data dirs and cluster.json remain: npm start resumes the cluster)\n");
        process.exit(1);
      }
    });
    members.push({ id: m.id, pid: child.pid ?? -1, runtime: m.runtime, clientUrl: loopbackUrl(m.clientPort), peerUrl: loopbackUrl(m.peerPort), log: logPath });
  }
  const file: ClusterFile = { clusterId: "edgekv", clusterSecret, createdAt: previous?.createdAt ?? new Date().toISOString(), startedAt: new Date().toISOString(), members };
  for (const m of members) process.stdout.write(`${m.id}  ${m.runtime.padEnd(4)}  pid ${m.pid}  client ${m.clientUrl}  peer ${m.peerUrl}  log ${m.log}\n`);
  // Without cluster.json the nodes still resume whatever their data dirs hold (--bootstrap is ignored then).
  const fresh = bootstrap && plans.every((m) => !existsSync(join(m.dataDir, "edgekv-node.json")));
  process.stdout.write(`${fresh ? "bootstrapping a new" : "resuming the"} cluster in ${dataDir} (Ctrl-C stops it)\n`);

  const stopAll = async (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    // Signal first, print after: on SIGHUP the terminal may be gone, and a write must not stop the stop.
    for (const c of children.values()) c.kill("SIGTERM");
    process.stdout.write(`${why}: stopping ${children.size} node(s)\n`);
    const deadline = Date.now() + o.stopTimeoutMs;
    while (children.size > 0 && Date.now() < deadline) await sleep(50);
    for (const [id, c] of children) {
      process.stdout.write(`${id} still running after ${o.stopTimeoutMs} ms: SIGKILL\n`);
      c.kill("SIGKILL");
    }
    if (wroteFile) {
      // Our nodes are gone: keep the secret and URLs, drop the pids (a later kill recipe must not hit a reused one).
      writeFileSync(filePath, JSON.stringify({ ...file, members: members.map((m) => ({ ...m, pid: null })) }, null, 2) + "\n");
    }
    process.stdout.write("stopped\n");
    process.exit(code);
  };
  process.on("SIGINT", () => void stopAll("SIGINT"));
  process.on("SIGTERM", () => void stopAll("SIGTERM"));
  // A closing terminal sends SIGHUP; the nodes are detached (own session), so only this script can stop them.
  process.on("SIGHUP", () => void stopAll("SIGHUP"));
  // Writes to a closed terminal fail with EIO/EPIPE; ignore them rather than die with the nodes still running.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});

  // Bounded wait for a leader: 60 s covers a cold start of tsx/deno on a slow machine.
  const deadline = Date.now() + 60_000;
  while (!stopping && Date.now() < deadline) {
    if (locked) {
      process.stdout.write(`${dataDir} is in use by another edgekv process (data_dir_locked); cluster.json left as it was\n`);
      await stopAll("data dir locked", 1);
      return;
    }
    if (children.size === 0) {
      process.stdout.write("every node exited; see the logs above (cluster.json left as it was)\n");
      process.exit(1);
    }
    // Ready = every running member serves its own port (logged this run) and names the same leader, so every
    // URL printed above serves reads and writes, and the answers come from our children, not from another
    // process on those ports.
    const serving = members.every((m) => !children.has(m.id) || new RegExp(`^edgekv ${m.id} serving clients on `, "m").test(readFrom(m.log, logOffsets.get(m.id) ?? 0)));
    const leaders = serving ? await Promise.all(members.map((m) => (children.has(m.id) ? leaderOf(m.clientUrl) : Promise.resolve("-")))) : [];
    const alive = leaders.filter((l) => l !== "-");
    const leader = alive[0] ?? "";
    // Checked again after the poll: a child that exited meanwhile is not ready.
    if (leader !== "" && alive.every((l) => l === leader) && members.every((m, i) => (leaders[i] === "-") === !children.has(m.id))) {
      const down = members.filter((m) => !children.has(m.id)).map((m) => m.id);
      // Only now: our nodes run and agree, so the pids and ports written are the live ones.
      writeFileSync(filePath, JSON.stringify(file, null, 2) + "\n");
      wroteFile = true;
      process.stdout.write(`cluster ready: leader ${leader}${down.length > 0 ? ` (without ${down.join(", ")}: exited)` : ""}\n`);
      return;
    }
    await sleep(200);
  }
  if (!stopping) {
    // Our nodes are running (not refused), so record them: Ctrl-C aside, cluster.json is how a user finds the pids.
    if (children.size > 0) {
      writeFileSync(filePath, JSON.stringify(file, null, 2) + "\n");
      wroteFile = true;
    }
    process.stdout.write("no leader after 60 s; the nodes keep trying (see their logs)\n");
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`cluster: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
