/**
 * Process control for `npm run bench`: a 3-node edgekv cluster whose node PIDs this process owns (so one
 * node can be killed and restarted for the catch-up figure), the anchors' etcd cluster (started and stopped
 * through `../shared/anchors/etcd-cluster.sh`, which records its own PIDs; run asynchronously so a signal is
 * handled while it works), and wrk runs. Every child is
 * tracked; `stopAllChildren()` stops exactly those PIDs (SIGTERM, then SIGKILL after a bounded wait), and
 * `onShutdown` runs a cleanup on signals, a closed stdout/stderr (EPIPE) and uncaught errors.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type MemberPlan, type NodeRuntime, loopbackUrl, memberArgs, nodeCommand, nodeEnv, repoRoot } from "../node-command.ts";

/** Folder of the anchor scripts: `shared/anchors` beside the repo clone (CI layout), or EDGEKV_ANCHORS. */
export const anchorsDir = resolve(process.env.EDGEKV_ANCHORS ?? join(repoRoot, "..", "shared", "anchors"));

const live = new Set<ChildProcess>();
/** Set once a shutdown began: no new child may start after it (it would outlive the cleanup). */
let closing = false;

/** True once `onShutdown`'s handler began stopping the children (a signal, a closed stdout, an uncaught error). */
export function shuttingDown(): boolean {
  return closing;
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One running edgekv node: its plan and its process (undefined while killed). */
export interface EdgeMember {
  plan: MemberPlan;
  url: string;
  child?: ChildProcess;
}

/** A 3-node (or N-node) edgekv cluster on loopback that this process started. */
export class EdgeCluster {
  readonly members: EdgeMember[];
  private readonly env: NodeJS.ProcessEnv;

  /** Plans N members on client ports basePort.., peer ports basePort+100.., data under `dir`; `runtimeFlags` precede the runtime's own arguments. */
  constructor(readonly dir: string, runtime: NodeRuntime, basePort: number, nodes = 3, private readonly runtimeFlags: string[] = []) {
    const plans: MemberPlan[] = [];
    for (let i = 0; i < nodes; i++) {
      plans.push({ id: `n${i + 1}`, runtime, clientPort: basePort + i, peerPort: basePort + 100 + i, dataDir: join(dir, `n${i + 1}`) });
    }
    this.members = plans.map((plan) => ({ plan, url: loopbackUrl(plan.clientPort) }));
    this.env = { ...process.env, EDGEKV_CLUSTER_SECRET: "bench-local-secret-0123456789" };
  }

  /** Starts member `m` (bootstrap on the first start only); its log goes to DIR/<id>.log. */
  start(m: EdgeMember, bootstrap: boolean): void {
    if (closing) throw new Error(`not starting ${m.plan.id}: shutting down`);
    mkdirSync(this.dir, { recursive: true });
    const [cmd, rtArgs] = nodeCommand(m.plan.runtime);
    // Runtime flags (e.g. Node's --cpu-prof) go before the entry point's arguments.
    const baseArgs = [...this.runtimeFlags, ...rtArgs];
    const fd = openSync(join(this.dir, `${m.plan.id}.log`), "a");
    const all = this.members.map((x) => x.plan);
    const child = spawn(cmd, [...baseArgs, ...memberArgs(m.plan, all, { bootstrap })], { cwd: repoRoot, env: nodeEnv(m.plan.runtime, this.env), stdio: ["ignore", fd, fd], detached: true });
    closeSync(fd);
    live.add(child);
    child.on("exit", () => live.delete(child));
    m.child = child;
  }

  /** Starts every member and waits (at most `timeoutMs`) until all name the same leader. Returns its id. */
  async startAll(timeoutMs = 90_000): Promise<string> {
    for (const m of this.members) this.start(m, true);
    return this.waitLeader(timeoutMs);
  }

  /** Polls every live member's GET /v1/cluster until they agree on a leader; throws after `timeoutMs`. */
  async waitLeader(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const views = await Promise.all(this.members.filter((m) => m.child).map((m) => clusterView(m.url)));
      const ids = new Set(views.map((v) => v?.leaderId ?? ""));
      if (ids.size === 1 && !ids.has("")) return [...ids][0];
      await sleep(250);
    }
    throw new Error(`edgekv: no agreed leader within ${timeoutMs} ms; logs in ${this.dir}`);
  }

  /** The member with id `id`. */
  byId(id: string): EdgeMember {
    const m = this.members.find((x) => x.plan.id === id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** SIGKILLs member `m` (kill -9, as a crash) and waits for its exit. */
  async kill(m: EdgeMember): Promise<void> {
    const c = m.child;
    if (!c) return;
    m.child = undefined;
    await stopChild(c, "SIGKILL", 5000);
  }

  /** VmRSS of each live member in bytes, from /proc/<pid>/status. */
  rssBytes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of this.members) if (m.child?.pid) out[m.plan.id] = vmRssBytes(m.child.pid);
    return out;
  }
}

/** The parts of edgekv's GET /v1/cluster view the bench reads, or undefined when the node does not answer. */
export async function clusterView(url: string): Promise<{ leaderId: string; appliedIndex: number; revision: number } | undefined> {
  try {
    const r = await fetch(`${url}/v1/cluster`, { signal: AbortSignal.timeout(2000) });
    if (!r.ok) return undefined;
    return (await r.json()) as { leaderId: string; appliedIndex: number; revision: number };
  } catch {
    return undefined;
  }
}

/** VmRSS of `pid` in bytes (Linux /proc/<pid>/status, kB units); 0 when unreadable. */
export function vmRssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** SIGTERM/SIGKILL one child we started and wait (bounded) for it to exit; SIGKILL after `graceMs`. */
export async function stopChild(c: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill(signal);
  if (await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])) return;
  c.kill("SIGKILL");
  await Promise.race([exited, sleep(2000)]);
}

/** Stops every child this process started and is still running (edgekv nodes, wrk, etcd-cluster.sh runs with their process groups). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...[...live].map((c) => stopChild(c, "SIGTERM", 10_000)), ...[...etcdScripts].map((c) => stopEtcdScript(c, 5000))]);
}

/** etcd-cluster.sh runs in flight; each leads its own process group (see `etcdCluster`). */
const etcdScripts = new Set<ChildProcess>();

/** Longest run of one etcd-cluster.sh subcommand (a first `start` may apt-get install etcd), ms. */
const ETCD_SCRIPT_MS_MAX = 180_000;

/**
 * Runs an anchors' etcd-cluster.sh subcommand (its state file comes from ETCD_ANCHOR_STATE, set by bench.ts)
 * as a child in its own process group, so that the event loop keeps running meanwhile: a SIGINT during a
 * `start` (which waits up to 30 s for health, longer when it installs etcd) reaches `onShutdown` at once,
 * and `stopAllChildren` stops the script with its helpers (curl, etcdctl, sleep, apt-get) by signalling that
 * group. The etcd members themselves run in their own sessions (the script's `setsid`) and are stopped by
 * `etcd-cluster.sh stop DIR` from the cleanup. Resolves with stdout (trimmed); rejects when the script fails,
 * is stopped, or runs past 180 s (then its group gets SIGKILL). After a shutdown began only `stop` and
 * `clean` may run (the cleanup's own calls).
 */
export function etcdCluster(sub: "start" | "stop" | "restart" | "clean" | "leader" | "follower" | "pids", dir?: string): Promise<string> {
  if (closing && sub !== "stop" && sub !== "clean") return Promise.reject(new Error(`not running etcd-cluster.sh ${sub}: shutting down`));
  const c = spawn("bash", [join(anchorsDir, "etcd-cluster.sh"), sub, ...(dir ? [dir] : [])], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  etcdScripts.add(c);
  let out = "";
  let err = "";
  c.stdout!.on("data", (d: Buffer) => (out += String(d)));
  c.stderr!.on("data", (d: Buffer) => (err = (err + String(d)).slice(-4000)));
  const timer = setTimeout(() => signalGroup(c, "SIGKILL"), ETCD_SCRIPT_MS_MAX);
  return new Promise((resolve, reject) => {
    c.on("error", (e) => {
      clearTimeout(timer);
      etcdScripts.delete(c);
      reject(e);
    });
    c.on("close", (code, sig) => {
      clearTimeout(timer);
      etcdScripts.delete(c);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`etcd-cluster.sh ${sub} failed (${code ?? sig}): ${err.slice(-2000)}`));
    });
  });
}

/** Signals the process group led by `c` (a detached child); quiet when it is gone already. */
function signalGroup(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.pid === undefined) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    // the group is gone
  }
}

/** Stops one running etcd-cluster.sh with its process group: SIGTERM, SIGKILL after `graceMs`; waits (bounded) for its exit. */
async function stopEtcdScript(c: ChildProcess, graceMs: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once("exit", () => r()));
  signalGroup(c, "SIGTERM");
  if (await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])) return;
  signalGroup(c, "SIGKILL");
  await Promise.race([exited, sleep(2000)]);
}

/**
 * A `start` stopped between launching a member and recording its PID leaves `DIR/mN.pid` (the script moves
 * each into DIR/etcd.pids only after the launch): append those to etcd.pids so that `etcd-cluster.sh stop DIR`
 * stops that member too (its stop checks each PID's command line before signalling it).
 */
export function adoptStrayEtcdPids(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => /^m\d+\.pid$/.test(f));
  } catch {
    return;
  }
  for (const f of names) {
    const pid = readFileSync(join(dir, f), "utf8").trim();
    if (/^\d+$/.test(pid)) appendFileSync(join(dir, "etcd.pids"), pid + "\n");
  }
}

/** Tracks a wrk (or other) child so that stopAllChildren() reaches it; a child started during a shutdown is killed at once. */
export function track(c: ChildProcess): void {
  if (closing) {
    c.kill("SIGKILL");
    return;
  }
  live.add(c);
  c.on("exit", () => live.delete(c));
}

/** Exit status per reason: 128 + signal number, as a shell reports it; EPIPE as SIGPIPE (141); 1 for an uncaught error. */
const EXIT_CODE: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143, EPIPE: 141, error: 1 };

/**
 * Runs `cleanup` (which must stop exactly what this process started) and exits when the process is asked to
 * stop or can no longer go on: SIGINT, SIGTERM, SIGHUP, an error on stdout or stderr (EPIPE when the reader
 * of a pipe went away, e.g. `npm run bench | head`; Node would otherwise die of the unhandled 'error' event
 * and leave the detached node processes and etcd running), an uncaught exception or an unhandled rejection.
 * The first reason wins; later ones are ignored while the cleanup runs. `name` prefixes the one stderr line.
 */
export function onShutdown(name: string, cleanup: () => Promise<void>): void {
  const stop = (reason: string, detail?: unknown): void => {
    if (closing) return;
    closing = true;
    if (reason !== "EPIPE") {
      const why = detail instanceof Error ? (detail.stack ?? detail.message) : reason;
      try {
        process.stderr.write(`${name}: ${why}; stopping the processes it started\n`);
      } catch {
        // stderr gone too: stop quietly
      }
    }
    void cleanup()
      .catch(() => undefined)
      .then(() => process.exit(EXIT_CODE[reason] ?? 1));
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => stop(sig));
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => stop(e.code === "EPIPE" ? "EPIPE" : "error", e));
  }
  process.on("uncaughtException", (e) => stop("error", e));
  process.on("unhandledRejection", (e) => stop("error", e));
}
