/**
 * Spawns peer-fixture.ts processes under Node, Bun or Deno and talks to them by JSON lines. Every wait is
 * bounded; `kill()` signals exactly the PID this harness started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

export type Runtime = "node" | "bun" | "deno";
const root = new URL("../..", import.meta.url).pathname;
const fixture = join(root, "test/integration/fixtures/peer-fixture.ts");

// Under `bun test` / `deno test`, process.execPath is bun / deno: find the real node then.
const g = globalThis as { Bun?: unknown; Deno?: unknown };
const nodeBin = g.Bun === undefined && g.Deno === undefined ? process.execPath : "node";

function command(rt: Runtime): [string, string[]] {
  if (rt === "node") return [nodeBin, ["--import", "tsx", fixture]];
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), [fixture]];
  return [join(root, "node_modules/.bin/deno"), ["run", "-A", "--no-check", fixture]];
}

export type Event = Record<string, any> & { event: string };

/** One fixture process. */
export class Peer {
  readonly events: Event[] = [];
  stderr = "";
  url = "";
  private child: ChildProcess;
  private waiters: Array<() => void> = [];
  exited = false;

  constructor(
    readonly runtime: Runtime,
    readonly id: string,
    options: { port?: number; secret?: string; cluster?: string; heartbeatMs?: number } = {},
  ) {
    const [cmd, args] = command(runtime);
    const opts = { id, port: options.port ?? 0, secret: options.secret ?? "test-secret-0123456789", cluster: options.cluster ?? "c1", heartbeatMs: options.heartbeatMs ?? 100 };
    this.child = spawn(cmd, [...args, JSON.stringify(opts)], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
    let buf = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (s: string) => {
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.events.push(JSON.parse(line));
        } catch {
          this.stderr += `[stdout] ${line}\n`;
        }
      }
      this.wake();
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (s: string) => {
      if (this.stderr.length < 200_000) this.stderr += s;
      this.wake();
    });
    this.child.on("exit", () => {
      this.exited = true;
      this.wake();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits (at most `timeoutMs`) until `pred` holds, re-checking on output and every 50 ms. */
  async until<T>(what: string, pred: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`${this.runtime}:${this.id}: timed out waiting for ${what}; stderr:\n${this.stderr.slice(-2000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits for the first event after index `from` matching `pred`. */
  event(what: string, pred: (e: Event) => boolean, from = 0, timeoutMs = 15_000): Promise<Event> {
    return this.until(what, () => this.events.slice(from).find(pred), timeoutMs);
  }

  async started(): Promise<this> {
    const e = await this.event("listening", (e) => e.event === "listening", 0, 20_000);
    this.url = e.url;
    return this;
  }

  cmd(c: object): void {
    this.child.stdin!.write(JSON.stringify(c) + "\n");
  }

  /** Asks for peer status and returns the next status event. */
  async status(): Promise<Record<string, any>> {
    const from = this.events.length;
    this.cmd({ cmd: "status" });
    return (await this.event("status", (e) => e.event === "status", from, 5000)).peers;
  }

  /** SIGKILLs this process (only this PID) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.exited) return;
    this.child.kill(signal);
    await this.until("exit", () => this.exited, 5000).catch(() => {});
  }
}

/** Starts peers and introduces them to each other. */
export async function cluster(specs: Array<[Runtime, string]>, options: ConstructorParameters<typeof Peer>[2] = {}): Promise<Peer[]> {
  const peers = await Promise.all(specs.map(([rt, id]) => new Peer(rt, id, options).started()));
  const list = Object.fromEntries(peers.map((p) => [p.id, p.url]));
  for (const p of peers) p.cmd({ cmd: "peers", peers: list });
  return peers;
}
