/**
 * Real-process test harness: N edgekv nodes (node.ts) as separate processes on free 127.0.0.1 ports in a
 * temp dir, each on its own runtime (bun / deno / node, or mixed round-robin). The harness only ever
 * signals PIDs it spawned; `stop()` (call it from `after()`) kills them all even when a test failed, and
 * `logs()` returns every node's output for the failure message. Every wait is bounded in time.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EdgeKvClient } from "../../src/client/index.ts";
import { type ClusterView, fetchClusterView } from "./cluster-view.ts";
import { within } from "./within.ts";
import { type MemberPlan, type NodeRuntime, loopbackUrl, memberArgs, nodeCommand, nodeEnv, repoRoot, runtimeOf } from "../../scripts/node-command.ts";

export type { NodeRuntime } from "../../scripts/node-command.ts";

/** Options of `TestCluster.start`. */
export interface TestClusterOptions {
  /** Members n1..nN (default 3). */
  nodes?: number;
  /** One runtime for all, or mixed round-robin (n1 bun, n2 deno, n3 node). */
  runtime: NodeRuntime | "mixed";
  /** Extra flags for every node (e.g. ["--heartbeat-interval-ms", "100"]). */
  extraArgs?: string[];
  /** Bound on the wait for the first leader, ms (default 60 000: cold tsx/deno starts on a busy machine). */
  startTimeoutMs?: number;
}

/** One member process. */
export interface TestMember {
  plan: MemberPlan;
  url: string;
  logPath: string;
  child?: ChildProcess;
  /** Every PID spawned for this member (restarts add one). */
  pids: number[];
  /**
   * True once the current child's 'exit' event came. Not `exitCode`/`signalCode`: Deno (2.9.6) sets
   * `signalCode` as soon as a signal is sent (SIGSTOP included), to a process that is still there.
   */
  exited?: boolean;
}

/** `GET /v1/cluster` as the harness reads it: the API's cluster view (test/helpers/cluster-view.ts). */
export type ClusterInfo = ClusterView;

/** Free TCP ports on 127.0.0.1 (listen on 0, read, close; all held open together so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((res, rej) => {
        s.once("error", rej);
        s.listen(0, "127.0.0.1", () => res());
      });
      ports.push((s.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A cluster of real node processes. Create with `TestCluster.start`. */
export class TestCluster {
  readonly members = new Map<string, TestMember>();
  private readonly secret = `test-secret-${crypto.randomUUID()}`;
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly options: TestClusterOptions,
  ) {}

  /** Spawns the nodes (bootstrapping a new cluster) and waits until they agree on a leader. Throws with the logs on timeout. */
  static async start(options: TestClusterOptions): Promise<TestCluster> {
    const n = options.nodes ?? 3;
    const dir = mkdtempSync(join(tmpdir(), "edgekv-cluster-"));
    const c = new TestCluster(dir, options);
    const ports = await freePorts(2 * n);
    const plans: MemberPlan[] = [];
    for (let i = 0; i < n; i++) {
      const id = `n${i + 1}`;
      plans.push({ id, runtime: runtimeOf(options.runtime, i), clientPort: ports[2 * i], peerPort: ports[2 * i + 1], dataDir: join(dir, id) });
    }
    for (const plan of plans) {
      mkdirSync(plan.dataDir, { recursive: true });
      c.members.set(plan.id, { plan, url: loopbackUrl(plan.clientPort), logPath: join(dir, `${plan.id}.log`), pids: [] });
    }
    for (const plan of plans) c.spawn(plan.id, true);
    await c.waitForLeader({ timeoutMs: options.startTimeoutMs ?? 60_000 });
    return c;
  }

  private spawn(id: string, bootstrap: boolean): void {
    const m = this.member(id);
    const [cmd, base] = nodeCommand(m.plan.runtime);
    const all = [...this.members.values()].map((x) => x.plan);
    const fd = openSync(m.logPath, "a");
    const child = spawn(cmd, [...base, ...memberArgs(m.plan, all, { bootstrap, clusterId: "edgekv-test", extra: this.options.extraArgs })], {
      cwd: repoRoot,
      env: nodeEnv(m.plan.runtime, { ...process.env, EDGEKV_CLUSTER_SECRET: this.secret }),
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    m.child = child;
    m.exited = false;
    child.once("exit", () => {
      if (m.child === child) m.exited = true;
    });
    if (child.pid !== undefined) m.pids.push(child.pid);
  }

  private member(id: string): TestMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** Ids of members whose process is running. */
  running(): string[] {
    return [...this.members.values()].filter((m) => m.child && !m.exited).map((m) => m.plan.id);
  }

  /** The client URL of `id`. */
  url(id: string): string {
    return this.member(id).url;
  }

  /** An SDK client talking to `ids` (default: all members), with short retries suited to tests. */
  client(ids: string | string[] = [...this.members.keys()], timeoutMs = 10_000): EdgeKvClient {
    const list = typeof ids === "string" ? [ids] : ids;
    return new EdgeKvClient({ endpoints: list.map((id) => this.url(id)), timeoutMs });
  }

  /** Plain fetch to `id`'s client API (`path` starts with /), with a 10 s bound. */
  fetch(id: string, path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(this.url(id) + path, { signal: AbortSignal.timeout(10_000), ...init });
  }

  /** `GET /v1/cluster` on `id`, or undefined when it does not answer 200 within 1 s. */
  info(id: string): Promise<ClusterInfo | undefined> {
    return fetchClusterView(this.url(id), 1000);
  }

  /**
   * Waits until every running member (or those in `among`) names the same leader, and that leader is one of
   * them; returns its id. Polls every 50 ms; throws with the logs after `timeoutMs` (default 15 000).
   */
  async waitForLeader(opts: { timeoutMs?: number; among?: string[]; not?: string } = {}): Promise<string> {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    let last = "";
    while (Date.now() < deadline) {
      const ids = opts.among ?? this.running();
      const infos = await Promise.all(ids.map((id) => this.info(id)));
      last = JSON.stringify(infos.map((i, k) => `${ids[k]}:${i ? i.leaderId || "-" : "down"}`));
      const leader = infos[0]?.leaderId;
      if (leader && leader !== opts.not && ids.includes(leader) && infos.every((i) => i?.leaderId === leader)) return leader;
      if (this.running().length === 0) break;
      await sleep(50);
    }
    throw new Error(`no agreed leader within ${opts.timeoutMs ?? 15_000} ms (last view ${last})\n${this.logs()}`);
  }

  /** The current agreed leader (waits up to 15 s). */
  leader(): Promise<string> {
    return this.waitForLeader();
  }

  /**
   * Sends `signal` to `id`'s running process by PID; no-op when it has exited. By PID, not ChildProcess.kill():
   * Deno's (2.9.6) marks the child killed after its first signal and ignores every later call, so on Deno a
   * SIGCONT after a SIGSTOP never arrived (the continued follower "did not catch up": it was still stopped)
   * and stop()'s SIGKILL after it was lost too.
   */
  signal(id: string, signal: NodeJS.Signals): void {
    const m = this.member(id);
    if (!m.child?.pid || m.exited) return;
    try {
      process.kill(m.child.pid, signal);
    } catch {
      // ESRCH: it exited before its exit event was seen
    }
  }

  /** Sends `signal` (default SIGKILL) to `id`'s process (by PID, see signal()) and waits (at most 10 s) for it to exit. */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const m = this.member(id);
    const child = m.child;
    if (!child || m.exited) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    this.signal(id, signal);
    await within(exited, 10_000, undefined);
  }

  /** Starts `id` again on the same data dir and ports (no bootstrap) and waits (at most 30 s) until it serves /healthz. */
  async restart(id: string): Promise<void> {
    const m = this.member(id);
    if (m.child && !m.exited) throw new Error(`${id} is still running`);
    this.spawn(id, false);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${m.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await res.body?.cancel();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`${id} did not serve /healthz within 30 s after restart\n${this.logs()}`);
  }

  /** Every member's log (last 4000 characters each), for failure messages. */
  logs(): string {
    const parts: string[] = [];
    for (const m of this.members.values()) {
      let text = "";
      try {
        text = readFileSync(m.logPath, "utf8");
      } catch {
        text = "(no log)";
      }
      parts.push(`----- ${m.plan.id} (${m.plan.runtime}, pids ${m.pids.join(",")}) ${m.logPath} -----\n${text.slice(-4000)}`);
    }
    return parts.join("\n");
  }

  /**
   * SIGKILLs every process this harness spawned that is still running and waits for them (at most 10 s).
   * Removes the temp dir unless `keepDir` (logs stay readable after a failure) . Idempotent.
   */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.members.keys()].map((id) => this.kill(id, "SIGKILL")));
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Runs one test body of a file that shares a TestCluster: when `fn` throws, every node's log (`cluster()`
 * gives the cluster, undefined before it started) is appended to the error message, `onFail` is called (the
 * files then keep the cluster's temp dir) and the error is thrown on. Returns what `fn` returns.
 */
export async function withClusterLogs<T>(cluster: () => TestCluster | undefined, onFail: () => void, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    onFail();
    const c = cluster();
    if (!(e instanceof Error) || !c) throw e;
    const logs = `\n${c.logs()}`;
    try {
      e.message += logs;
    } catch {
      // A DOMException's message is a getter on Deno (e.g. fetch's TimeoutError): the assignment threw a
      // TypeError that hid the real failure. Wrap it instead.
      throw new Error(`${e.name}: ${e.message}${logs}`, { cause: e });
    }
    throw e;
  }
}
