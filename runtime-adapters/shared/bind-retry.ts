/**
 * Binding a listen port again right after a restart. On Linux a port can be refused (EADDRINUSE; Deno:
 * `AddrInUse`) although nothing listens on it: while the node was down, an outgoing connection of another
 * process got that port as its ephemeral source port (listen ports picked with port 0 come from the same
 * range, 32768-60999), and once that connection closed actively it sits in TIME_WAIT for 60 s. The
 * listener's SO_REUSEADDR does not override a TIME_WAIT socket that was opened without it (all three
 * runtimes refuse alike; test/integration/bind-retry.test.ts holds a real ephemeral port). So: when the
 * port is refused but nothing accepts connections on it, wait and retry, bounded; when something does
 * accept (e.g. the previous process is still alive, even stopped), fail at once.
 */
import net from "node:net";

/** Options of {@link bindWithRetry}. Times in ms. */
export interface BindRetryOptions {
  /** What is being bound, for the log line, e.g. "peer port" or "client port". */
  what: string;
  host: string;
  port: number;
  /** Longest total wait before giving up with the last error (default 65 000: Linux TIME_WAIT is 60 s). */
  maxWaitMs?: number;
  /** Warning sink (one line per retry). */
  log: (message: string) => void;
  /** Whether something accepts TCP connections on host:port (default: a loopback connect, 1 s deadline). */
  probe?: (host: string, port: number) => Promise<boolean>;
  /** Sleep (default setTimeout), injectable for tests. */
  sleepMs?: (ms: number) => Promise<void>;
}

/** True for the "address in use" error of Node (`EADDRINUSE`), Bun (same code) and Deno (`AddrInUse`). */
export function isAddrInUse(e: unknown): boolean {
  const x = e as { code?: unknown; name?: unknown } | null;
  return x?.code === "EADDRINUSE" || x?.name === "AddrInUse";
}

/** Loopback address to probe for a listen address (a wildcard is probed on loopback). */
function probeHost(host: string): string {
  if (host === "" || host === "0.0.0.0") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "::1";
  return host.replace(/^\[|\]$/g, "");
}

/** Default probe: does a TCP connect to host:port succeed within 1 s? Never throws. */
export function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: probeHost(host), port });
    const done = (listening: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(listening);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Runs `bind` (which starts a listener and rejects with the runtime's error) and, while it fails with
 * "address in use" on a fixed port that no process listens on, retries after 100, 200, 400 ... 2000 ms
 * until `maxWaitMs` has passed. Rethrows at once: any other error, port 0, or a port where something
 * accepts connections (another server really owns it). Rethrows the last error when time runs out.
 */
export async function bindWithRetry<T>(bind: () => Promise<T>, o: BindRetryOptions): Promise<T> {
  const maxWaitMs = o.maxWaitMs ?? 65_000;
  const probe = o.probe ?? acceptsConnections;
  const sleep = o.sleepMs ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let waitedMs = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await bind();
    } catch (e) {
      if (!isAddrInUse(e) || o.port === 0 || waitedMs >= maxWaitMs) throw e;
      if (await probe(o.host, o.port)) throw e;
      const delayMs = Math.min(2000, 100 * 2 ** attempt, maxWaitMs - waitedMs);
      o.log(`${o.what} ${o.host}:${o.port} is in use but nothing listens on it (a closed connection in TIME_WAIT holds it, at most 60 s); retrying in ${delayMs} ms (waited ${Math.round(waitedMs / 1000)} s of at most ${Math.round(maxWaitMs / 1000)} s)`);
      await sleep(delayMs);
      waitedMs += delayMs;
    }
  }
}
