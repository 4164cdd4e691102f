/**
 * HTTP serving on Node with @hono/node-server (it converts node:http requests to web Requests and writes
 * streamed bodies chunk by chunk, so SSE events are flushed as they are produced).
 */
import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type HttpServerHandle, type ServeOptions, reachableUrl, sleepMs, trackedHandler } from "../shared-serve.ts";

/** Most time a client may take to send a request's headers, ms (Node answers 408 and closes past it). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Most time a client may take to send a whole request (headers and body), ms. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Node implementation of `serveHttp` (see runtime-adapters/shared-serve.ts for the contract). */
export function serveHttp(options: ServeOptions): Promise<HttpServerHandle> {
  // Node bounds TCP connections itself; no per-request cap on top of it.
  const tracked = trackedHandler(options.fetch, undefined);
  return new Promise((resolve, reject) => {
    // Slow-header / slow-body clients (slowloris) must not hold connections for Node's defaults (60 s of
    // headers, 300 s of request): a tester's 10 000 idle half-sent requests locked every client out. Bun
    // closed such sockets after 10-15 s. The request timeout bounds receiving the request only, so
    // long-lived responses (watch streams) are unaffected; checks run every 2 s.
    const server = serve({
      fetch: (req: Request) => tracked.fetch(req),
      hostname: options.host,
      port: options.port,
      serverOptions: {
        headersTimeout: options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS,
        requestTimeout: Math.max(options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS),
        connectionsCheckingInterval: Math.min(2000, options.headersTimeoutMs ?? 2000),
      },
    }) as Server;
    if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
    server.once("error", reject);
    server.once("listening", () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      let closing: Promise<void> | undefined;
      resolve({
        url: reachableUrl(options.host, port),
        close() {
          closing ??= (async () => {
            const closed = new Promise<void>((r) => server.close(() => r()));
            server.closeIdleConnections();
            await Promise.race([closed, sleepMs(options.closeGraceMs ?? 2000)]);
            tracked.endStreams();
            server.closeAllConnections();
            await closed;
          })();
          return closing;
        },
      });
    });
  });
}
