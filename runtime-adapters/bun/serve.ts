/**
 * HTTP serving on Bun with `Bun.serve` (HTTP/1.1 keep-alive; a ReadableStream body is written as each chunk
 * arrives, so SSE events flush per event). `idleTimeout` is raised from Bun's 10 s so a quiet keep-alive
 * connection or a watch between progress events (5 s) is not cut.
 */
import { type HttpServerHandle, type ServeOptions, reachableUrl, sleepMs, trackedHandler } from "../shared-serve.ts";

/** The part of Bun's server object we use (declared here: the project does not depend on bun-types). */
interface BunServer {
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
interface BunGlobal {
  serve(options: { hostname: string; port: number; idleTimeout?: number; fetch(req: Request): Response | Promise<Response> }): BunServer;
}

/** Bun implementation of `serveHttp` (see runtime-adapters/shared-serve.ts for the contract). */
export async function serveHttp(options: ServeOptions): Promise<HttpServerHandle> {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  const tracked = trackedHandler(options.fetch, options.maxConnections);
  const server = bun.serve({ hostname: options.host, port: options.port, idleTimeout: 120, fetch: (req) => tracked.fetch(req) });
  let closing: Promise<void> | undefined;
  return {
    url: reachableUrl(options.host, server.port),
    close() {
      closing ??= (async () => {
        const graceful = Promise.resolve(server.stop(false));
        await Promise.race([graceful, sleepMs(options.closeGraceMs ?? 2000)]);
        tracked.endStreams();
        await server.stop(true);
      })();
      return closing;
    },
  };
}
