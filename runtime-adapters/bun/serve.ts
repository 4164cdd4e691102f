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
  serve(options: { hostname: string; port: number; idleTimeout?: number; maxRequestBodySize?: number; fetch(req: Request): Response | Promise<Response> }): BunServer;
}

/** Bun implementation of `serveHttp` (see runtime-adapters/shared-serve.ts for the contract). */
export async function serveHttp(options: ServeOptions): Promise<HttpServerHandle> {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  const tracked = trackedHandler(options.fetch, options.maxConnections);
  // maxRequestBodySize: Bun refuses a body declared above it (default 128 MiB) itself, with an empty 413;
  // raised to 2^53-1 so the app decides every size (its limits are far lower and it never buffers an
  // oversized body; src/api/http.ts readBodyBytes), with the JSON error body. As on Node and Deno, which
  // have no such limit. A Content-Length above 2^53-1 is still Bun's own empty 413.
  const server = bun.serve({ hostname: options.host, port: options.port, idleTimeout: 120, maxRequestBodySize: Number.MAX_SAFE_INTEGER, fetch: (req) => tracked.fetch(req) });
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
