/**
 * The nemesis harness's cluster: N real edgekv node processes (node.ts) on 127.0.0.1, each peer link i -> j
 * routed through its own {@link LinkProxy}, with kill -9, restart, SIGSTOP/SIGCONT, disk wipe and link
 * faults under the harness's control. Node i is `n<i+1>`; its log is `<dir>/<id>.log`, its data
 * `<dir>/<id>/`. Only PIDs this harness spawned are ever signalled.
 *
 * (test/helpers/cluster.ts, the generic real-process harness, had not landed when this was written and
 * has no proxies; this one is specific to fault injection.)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { LinkProxy } from "./proxy.ts";
import { type ClusterView, fetchClusterView, getJson, memberIds } from "../helpers/cluster-view.ts";
import { type NodeRuntime, nodeCommand, nodeEnv, repoRoot, runtimeOf } from "../../scripts/node-command.ts";
import { within } from "../helpers/within.ts";

export { getJson, type ClusterView };

/**
 * Sends `sig` to the child's PID (exactly the process this harness started). Not `ChildProcess.kill`: on
 * Deno (2.9.6) it delivers only the first signal of a child and returns false for every later one, so a
 * paused node was never resumed (SIGCONT) nor killed. A child already gone is ignored.
 */
function signalPid(proc: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (proc.pid !== undefined) process.kill(proc.pid, sig);
  } catch {
    // ESRCH: it exited meanwhile
  }
}

// The node command, runtime spread and repository root are the scripts' (npm start, bench) own; re-exported
// for the nemesis files that import them from here.
export { type NodeRuntime, nodeCommand, repoRoot, runtimeOf } from "../../scripts/node-command.ts";

/** Options of {@link NemesisCluster.create}. */
export interface ClusterOptions {
  nodes: number;
  runtime: NodeRuntime | "mixed";
  /** Folder for data dirs and logs (created). */
  dir: string;
  /** Extra environment for every node (e.g. EDGEKV_UNSAFE_BUG). */
  env?: Record<string, string>;
  /** Extra node flags. */
  extraArgs?: string[];
  /**
   * Members beyond `nodes` that get ports and proxies but are not started nor part of the bootstrap
   * configuration (for membership scenarios: start them with {@link NemesisCluster.restart}).
   */
  spares?: number;
}

/** One member process. `proc` is undefined while it is down. */
export interface Member {
  id: string;
  index: number;
  runtime: NodeRuntime;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  log: string;
  proc: ChildProcess | undefined;
  paused: boolean;
  /** Not a founding member (see ClusterOptions.spares). */
  spare: boolean;
}

/**
 * Reserves `n` distinct free loopback ports: each is held open until `release()` so neither the OS nor the
 * proxies started meanwhile can hand the same port out twice.
 */
async function reservePorts(n: number): Promise<{ ports: number[]; release: () => Promise<void> }> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    servers.push(s);
    ports.push(
      await new Promise<number>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => resolve((s.address() as net.AddressInfo).port));
      }),
    );
  }
  const release = () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
  return { ports, release };
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** See the file comment. */
export class NemesisCluster {
  readonly members: Member[] = [];
  /** proxies.get(`${from}>${to}`) */
  readonly proxies = new Map<string, LinkProxy>();
  /** Exits the harness did not cause (crashes), e.g. "n2 exited with code 1"; a run with any fails. */
  readonly crashes: string[] = [];
  private readonly killing = new Set<ChildProcess>();
  private started = false;

  private constructor(readonly options: ClusterOptions) {}

  /** Allocates ports, starts every proxy and every node (bootstrapping the cluster). */
  static async create(options: ClusterOptions): Promise<NemesisCluster> {
    const c = new NemesisCluster(options);
    mkdirSync(options.dir, { recursive: true });
    const total = options.nodes + (options.spares ?? 0);
    const reserved = await reservePorts(2 * total);
    for (let i = 0; i < total; i++) {
      const id = `n${i + 1}`;
      c.members.push({
        id,
        index: i,
        runtime: runtimeOf(options.runtime, i),
        clientPort: reserved.ports[2 * i],
        peerPort: reserved.ports[2 * i + 1],
        dataDir: join(options.dir, id),
        log: join(options.dir, `${id}.log`),
        proc: undefined,
        paused: false,
        spare: i >= options.nodes,
      });
    }
    for (const a of c.members)
      for (const b of c.members) {
        if (a === b) continue;
        const p = new LinkProxy(a.id, b.id, b.peerPort);
        await p.start();
        c.proxies.set(`${a.id}>${b.id}`, p);
      }
    await reserved.release();
    for (const m of c.members) if (!m.spare) c.spawn(m, true);
    c.started = true;
    return c;
  }

  /** `http://127.0.0.1:<client port>` of a member. */
  url(m: Member | string): string {
    return `http://127.0.0.1:${this.member(m).clientPort}`;
  }

  /** The member by id (or itself). Throws on an unknown id. */
  member(m: Member | string): Member {
    if (typeof m !== "string") return m;
    const found = this.members.find((x) => x.id === m);
    if (!found) throw new Error(`no member ${m}`);
    return found;
  }

  /** The directed link proxy from -> to. */
  link(from: string, to: string): LinkProxy {
    const p = this.proxies.get(`${from}>${to}`);
    if (!p) throw new Error(`no link ${from}>${to}`);
    return p;
  }

  /** Members whose process runs and is not paused. */
  live(): Member[] {
    return this.members.filter((m) => m.proc !== undefined && !m.paused);
  }

  private spawn(m: Member, bootstrap: boolean): void {
    mkdirSync(m.dataDir, { recursive: true });
    // Founding members do not list spares (they would be bootstrapped as voters); a spare lists everyone.
    const peers = this.members.filter((p) => m.spare || !p.spare).map((p) => `${p.id}=http://127.0.0.1:${p === m ? p.peerPort : this.link(m.id, p.id).listenPort}`).join(",");
    const args = [
      "--node-id", m.id, "--client-port", String(m.clientPort), "--peer-port", String(m.peerPort), "--data-dir", m.dataDir,
      "--peers", peers, "--cluster-secret", "nemesis-secret-0123456789",
      "--peer-reconnect-ms-min", "100", "--peer-reconnect-ms-max", "1000", "--request-timeout-ms", "5000",
      ...(bootstrap ? ["--bootstrap", "true"] : []),
      ...(this.options.extraArgs ?? []),
    ];
    const [cmd, pre] = nodeCommand(m.runtime);
    const fd = openSync(m.log, "a");
    const proc = spawn(cmd, [...pre, ...args], { cwd: repoRoot, stdio: ["ignore", fd, fd], env: nodeEnv(m.runtime, { ...process.env, ...this.options.env }) });
    closeSync(fd);
    m.proc = proc;
    m.paused = false;
    proc.on("exit", (code, signal) => {
      if (!this.killing.has(proc)) this.crashes.push(`${m.id} (${m.runtime}) exited by itself with code ${code} signal ${signal}; see ${m.log}`);
      if (m.proc === proc) m.proc = undefined;
    });
  }

  /** kill -9 (the process loses nothing it fsynced). No-op when already down. */
  async kill(m: Member | string): Promise<void> {
    const x = this.member(m);
    const proc = x.proc;
    if (!proc || proc.pid === undefined) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    this.killing.add(proc);
    if (x.paused) signalPid(proc, "SIGCONT");
    signalPid(proc, "SIGKILL");
    await within(exited, 5000, undefined);
    x.proc = undefined;
    x.paused = false;
  }

  /** Starts a stopped member again on the same data dir (no bootstrap: it resumes, or rejoins when wiped). */
  restart(m: Member | string): void {
    const x = this.member(m);
    if (x.proc) return;
    this.spawn(x, false);
  }

  /** Deletes a stopped member's data dir (disk loss). Throws when the member runs. */
  wipe(m: Member | string): void {
    const x = this.member(m);
    if (x.proc) throw new Error(`wipe ${x.id}: still running`);
    rmSync(x.dataDir, { recursive: true, force: true });
  }

  /** SIGSTOP: the process freezes with its sockets open. */
  pause(m: Member | string): void {
    const x = this.member(m);
    if (!x.proc || x.paused) return;
    signalPid(x.proc, "SIGSTOP");
    x.paused = true;
  }

  /** SIGCONT after {@link pause}. */
  resume(m: Member | string): void {
    const x = this.member(m);
    if (!x.proc || !x.paused) return;
    signalPid(x.proc, "SIGCONT");
    x.paused = false;
  }

  /** Cuts every link between the two groups, both ways (a symmetric partition). */
  partition(a: string[], b: string[]): void {
    for (const x of a) for (const y of b) if (x !== y) { this.link(x, y).cut(); this.link(y, x).cut(); }
  }

  /** Heals every link (partitions and delays). */
  healLinks(): void {
    for (const p of this.proxies.values()) p.heal();
  }

  /** Links currently cut, as "a>b" strings (for reports). */
  cutLinks(): string[] {
    return [...this.proxies.entries()].filter(([, p]) => p.isDown).map(([k]) => k);
  }

  /** Waits until every member answers GET /healthz (bounded by `timeoutMs`). Throws naming the laggards. */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < 10_000; i++) {
      const expected = this.members.filter((m) => !m.spare || m.proc);
      const ok = await Promise.all(expected.map((m) => getJson(`${this.url(m)}/healthz`, 1000).then((r) => r !== undefined)));
      if (ok.every(Boolean)) return;
      if (performance.now() > deadline) throw new Error(`nodes not healthy after ${timeoutMs} ms: ${expected.filter((_, i) => !ok[i]).map((m) => m.id).join(", ")}`);
      await sleep(200);
    }
  }

  /** The leader some live member reports (highest term wins), or undefined. */
  async leader(): Promise<string | undefined> {
    const views = await Promise.all(this.live().map((m) => clusterView(this.url(m))));
    let best: { id: string; term: number } | undefined;
    for (const v of views) if (v && v.leaderId && (!best || v.term > best.term)) best = { id: v.leaderId, term: v.term };
    return best?.id;
  }

  /**
   * The leader a quorum follows right now, or undefined: a live member whose own view says it leads at term
   * T, is one of the voters its view lists, and a majority of those voters (itself included) report that
   * leader at that same term. Unlike {@link leader}, a stale self-report does not count: a leader resumed after
   * SIGSTOP still reports itself until it reads its backlog, though its followers have moved to a newer term,
   * and a CI run sent a put to such a node 10 ms after `waitLeader` picked it and got `no_leader` (C18 on Bun).
   * A joint configuration is approximated by the majority of every voter listed.
   */
  async agreedLeader(): Promise<string | undefined> {
    const live = this.live();
    const views = await Promise.all(live.map((m) => clusterView(this.url(m))));
    for (const [i, own] of views.entries()) {
      if (!own || own.leaderId !== live[i].id) continue;
      const voters = memberIds(own, "voter");
      if (!voters.includes(live[i].id)) continue; // removing itself: it leads only until that change commits
      const agree = views.filter((v, j) => v && v.leaderId === own.leaderId && v.term === own.term && voters.includes(live[j].id)).length;
      if (agree >= Math.floor(voters.length / 2) + 1) return own.leaderId;
    }
    return undefined;
  }

  /**
   * Waits (bounded) for the leader a quorum follows ({@link agreedLeader}); returns its id or throws with
   * {@link describeState} (so a CI log that shows only the failure's message still says what each member saw).
   */
  async waitLeader(timeoutMs = 30_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
      const l = await this.agreedLeader();
      if (l) return l;
      await sleep(100);
    }
    throw new Error(`no leader a quorum follows within ${timeoutMs} ms: ${await this.describeState()}`);
  }

  /**
   * One line on every member, for failure messages: "n1 leader n2 term 7 commit 812 voters n1,n2,n3; n2 down;
   * n3 paused; n4 no answer", plus the links that are cut.
   */
  async describeState(): Promise<string> {
    const parts = await Promise.all(this.members.filter((m) => !m.spare || m.proc).map(async (m) => {
      if (!m.proc) return `${m.id} down`;
      if (m.paused) return `${m.id} paused`;
      const v = await clusterView(this.url(m));
      return v ? `${m.id} leader ${v.leaderId || "-"} term ${v.term} commit ${v.commitIndex} voters ${memberIds(v, "voter").join(",")}` : `${m.id} no answer`;
    }));
    const cut = this.cutLinks();
    return parts.join("; ") + (cut.length ? `; cut ${cut.join(",")}` : "");
  }

  /** Stops everything this harness started: resumes paused nodes, kill -9 each spawned PID, closes proxies. */
  async destroy(): Promise<void> {
    if (!this.started) return;
    await Promise.all(this.members.map((m) => this.kill(m)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    this.started = false;
  }
}

/** GET /v1/cluster of one node (1 s deadline); the shared reader of test/helpers/cluster-view.ts. */
export function clusterView(baseUrl: string): Promise<ClusterView | undefined> {
  return fetchClusterView(baseUrl, 1000);
}
