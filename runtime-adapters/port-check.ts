/**
 * Port check before anything starts: each port to be listened on is bound once on its host and closed at
 * once. Used by a node before it opens its data dir (node.ts: a busy port is `port_in_use`, exit 2, before
 * a bootstrap writes anything; U5 saw a node bootstrap, elect itself, then die on the bind), by `npm start`
 * (scripts/cluster.ts) and by the benchmark (scripts/bench.ts: a second bench or a cluster on the same
 * ports is found here instead of as a node that dies while the bench waits 90 s for a leader). There is a
 * window between this check and the real bind; it only turns a late failure into an early one, it does not
 * reserve anything. node:net works the same on Node, Bun and Deno.
 */
import { createServer } from "node:net";

/** One port to check and what it is for, e.g. `{ port: 7512, what: "edgekv n2 peer port" }`. */
export interface PlannedPort {
  port: number;
  what: string;
}

/**
 * The first of `ports` that cannot be bound on `host` (default 127.0.0.1),
 * with the bind error's code (EADDRINUSE for a port in use, EACCES, ...), or undefined when all are free.
 * Checks one port at a time; each probe listens and closes before the next.
 */
export async function firstUnbindablePort(ports: PlannedPort[], host = "127.0.0.1"): Promise<(PlannedPort & { code: string }) | undefined> {
  for (const p of ports) {
    const code = await tryBind(p.port, host);
    if (code !== undefined) return { ...p, code };
  }
  return undefined;
}

/** Listens on host:port and closes; resolves undefined when that worked, else the error's code (e.g. "EADDRINUSE"). */
export function tryBind(port: number, host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}
