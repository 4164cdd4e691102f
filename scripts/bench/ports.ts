/**
 * Port check before the benchmark starts anything: each port it will listen on is bound once on its host
 * and closed at once. A port held by another process (a second bench, a `npm start` cluster on the same
 * ports) is found here instead of as an edgekv node that dies at start while the bench waits 90 s for a
 * leader. There is a window between this check and the nodes' own binds; it only turns a late failure
 * into an early one, it does not reserve anything.
 */
import { createServer } from "node:net";

/** One port to check and what it is for, e.g. `{ port: 7512, what: "edgekv n2 peer port" }`. */
export interface PlannedPort {
  port: number;
  what: string;
}

/**
 * The first of `ports` that cannot be bound on `host` (default 127.0.0.1, where the bench's nodes listen),
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

/** Listens on host:port and closes; resolves undefined when that worked, else the error's code. */
function tryBind(port: number, host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}
