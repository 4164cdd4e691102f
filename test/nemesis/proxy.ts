/**
 * A fault-injecting TCP proxy for one directed peer link (node i -> node j), used by the nemesis harness:
 * node i's `--peers` entry for j points at this proxy, which forwards to j's real peer port. Because every
 * member dials its own HTTP/2 session to each peer and sends its frames only on that session
 * (docs/peer-protocol.md), cutting the i -> j proxy silences exactly the messages i sends to j (and the
 * answers to i's forwarded requests), which is what a one-way partition means.
 *
 * States: `up` forwards bytes (optionally each chunk held back `delayMs`, order kept); `down` destroys
 * every open connection (long-lived HTTP/2 sessions must not survive a partition) and blackholes new ones:
 * they are accepted, never connected upstream, and their bytes are swallowed until the link heals, when
 * they are destroyed so the dialer reconnects. Loopback only.
 */
import net from "node:net";

/** One connection pair through the proxy. */
interface Pipe {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

/** See the file comment. `listenPort` is valid after {@link LinkProxy.start}. */
export class LinkProxy {
  private server: net.Server | undefined;
  private readonly pipes = new Set<Pipe>();
  private down = false;
  private delayMs = 0;
  /** Bytes forwarded in either direction (for reports). */
  bytes = 0;
  listenPort = 0;

  /** `from`/`to` are node ids (for reports); `targetPort` is node `to`'s real peer port on 127.0.0.1. */
  constructor(
    readonly from: string,
    readonly to: string,
    readonly targetPort: number,
  ) {}

  /** Listens on 127.0.0.1 (port 0 = any free port). Rejects when the port cannot be bound. */
  start(port = 0): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        this.listenPort = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** True while the link is partitioned. */
  get isDown(): boolean {
    return this.down;
  }

  /** Partitions the link: destroys open connections, blackholes new ones until {@link heal}. */
  cut(): void {
    this.down = true;
    for (const p of [...this.pipes]) this.destroy(p);
  }

  /** Heals a partition and removes any delay; blackholed connections are closed so the dialer retries. */
  heal(): void {
    const wasDown = this.down;
    this.down = false;
    this.delayMs = 0;
    if (wasDown) for (const p of [...this.pipes]) if (p.upstream === undefined) this.destroy(p);
  }

  /** Holds every chunk back `ms` milliseconds in both directions (a slow link); 0 = no delay. */
  setDelay(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    for (const p of [...this.pipes]) this.destroy(p);
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private destroy(p: Pipe): void {
    this.pipes.delete(p);
    p.client.destroy();
    p.upstream?.destroy();
  }

  private accept(client: net.Socket): void {
    client.setNoDelay(true);
    const pipe: Pipe = { client, upstream: undefined };
    this.pipes.add(pipe);
    client.on("error", () => this.destroy(pipe));
    client.on("close", () => this.destroy(pipe));
    if (this.down) {
      client.on("data", () => {}); // blackhole: read and drop
      return;
    }
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    upstream.setNoDelay(true);
    pipe.upstream = upstream;
    upstream.on("error", () => this.destroy(pipe));
    upstream.on("close", () => this.destroy(pipe));
    this.forward(pipe, client, upstream);
    this.forward(pipe, upstream, client);
  }

  /** Copies `src` to `dst`, honouring the current delay; a later chunk never overtakes an earlier one. */
  private forward(pipe: Pipe, src: net.Socket, dst: net.Socket): void {
    let releaseAt = 0;
    src.on("data", (chunk: Uint8Array) => {
      if (this.down || !this.pipes.has(pipe)) return;
      this.bytes += chunk.length;
      if (this.delayMs === 0 && releaseAt <= performance.now()) {
        dst.write(chunk);
        return;
      }
      releaseAt = Math.max(performance.now() + this.delayMs, releaseAt);
      setTimeout(() => {
        if (this.pipes.has(pipe) && !dst.destroyed) dst.write(chunk);
      }, Math.max(0, releaseAt - performance.now()));
    });
  }
}
