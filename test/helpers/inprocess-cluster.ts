/**
 * An in-process cluster of real EdgeNodes for integration tests: each node has its own SQLite file in a
 * temp dir and its own HTTP/2 peer transport on a loopback port; clients call `node.fetch(Request)`
 * directly (no client HTTP server), so a test exercises Raft, storage, peers and the API together without
 * spawning processes. Real-process tests live in test/integration/cluster.test.ts.
 */
import { createServer } from "node:net";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { EdgeNode, type NodePorts, type NodeWalSync } from "../../src/server/node.ts";
import { createNodePorts } from "../../runtime-adapters/ports.ts";
import { makeTempDir, removeDir } from "./sql.ts";

/** A free TCP port on 127.0.0.1 (bind 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Config of a one-node cluster "n1" on a free loopback peer port, data in `dataDir` (tests that drive one
 * EdgeNode directly). Throws what `loadConfig` throws.
 */
export async function singleNodeConfig(dataDir: string, clusterSecret: string): Promise<Config> {
  const port = await freePort();
  return loadConfig({
    argv: ["--node-id", "n1", "--peers", `n1=http://127.0.0.1:${port}`, "--cluster-secret", clusterSecret, "--data-dir", dataDir, "--peer-port", String(port)],
    env: {},
  });
}

/**
 * `ports` whose WAL syncer is `wrap(real)`, `real` being the one `ports` would have made (tests that gate,
 * count, slow or fail fsyncs). `ports` must have `createWalSync` (the runtime's ports do).
 */
export function wrapWalSync(ports: NodePorts, wrap: (real: NodeWalSync) => NodeWalSync): NodePorts {
  return { ...ports, createWalSync: (dbPath) => wrap(ports.createWalSync!(dbPath)) };
}

/** NodePorts for the running runtime with logs (debug and up) collected in `lines` (printed by tests on failure). */
export function testPorts(name: string, lines: string[]): Promise<NodePorts> {
  return createNodePorts({
    name,
    logLevel: "debug",
    write: (line) => {
      lines.push(line);
      if (lines.length > 5000) lines.splice(0, 1000);
    },
  });
}

/** Options of `InProcessCluster.start`. */
export interface InProcessOptions {
  nodes: number;
  /** Extra flags for every node, e.g. ["--snapshot-entries", "50"]. */
  flags?: string[];
  /** Replaces parts of a node's ports (e.g. a gated WAL syncer); called at every (re)start of node `id`. */
  wrapPorts?: (id: string, ports: NodePorts) => NodePorts;
}

export class InProcessCluster {
  readonly nodes = new Map<string, EdgeNode>();
  readonly configs = new Map<string, Config>();
  readonly logs: string[] = [];
  private wrapPorts: InProcessOptions["wrapPorts"];
  private constructor(readonly dir: string) {}

  /** Starts `n` nodes n1..nN bootstrapped together. */
  static async start(opts: InProcessOptions): Promise<InProcessCluster> {
    const c = new InProcessCluster(makeTempDir("edgekv-cluster-"));
    c.wrapPorts = opts.wrapPorts;
    const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    const peerPorts = await Promise.all(ids.map(() => freePort()));
    const peers = ids.map((id, i) => `${id}=http://127.0.0.1:${peerPorts[i]}`).join(",");
    for (const [i, id] of ids.entries()) {
      const cfg = loadConfig({
        argv: ["--node-id", id, "--peers", peers, "--bootstrap", "true", "--cluster-secret", "in-process-test-secret", "--data-dir", join(c.dir, id), "--peer-port", String(peerPorts[i]), "--client-port", String(18000 + i), ...(opts.flags ?? [])],
        env: {},
      });
      c.configs.set(id, cfg);
    }
    for (const id of ids) await c.startNode(id);
    return c;
  }

  /** (Re)starts one node from its data dir. */
  async startNode(id: string): Promise<EdgeNode> {
    const base = await testPorts(id, this.logs);
    const node = await EdgeNode.open(this.configs.get(id)!, this.wrapPorts ? this.wrapPorts(id, base) : base);
    await node.start();
    this.nodes.set(id, node);
    return node;
  }

  /** Stops one node (graceful when `graceful`, else closes without leadership transfer as close to a crash as in-process allows). */
  async stopNode(id: string): Promise<void> {
    const n = this.nodes.get(id);
    if (!n) return;
    this.nodes.delete(id);
    await n.stop();
  }

  /**
   * The current leader's id once every running node knows it (a follower that has not heard the new
   * leader yet answers writes with 503 no_leader, by design), waiting up to `timeoutMs`; throws if none.
   */
  async leader(timeoutMs = 5000): Promise<string> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const seen = new Set<string>();
      for (const n of this.nodes.values()) seen.add((await n.cluster()).leaderId);
      const [only] = [...seen];
      if (seen.size === 1 && only && this.nodes.has(only)) return only;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no leader within ${timeoutMs} ms; logs:\n${this.logs.slice(-50).join("\n")}`);
  }

  /** Sends a request to node `id` through its client handler. */
  request(id: string, method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`node ${id} is not running`);
    return n.fetch(new Request(`http://127.0.0.1${path}`, { method, body: body as BodyInit | undefined, headers }));
  }

  /** Stops every node and removes the temp dir. */
  async close(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stopNode(id);
    removeDir(this.dir);
  }
}
