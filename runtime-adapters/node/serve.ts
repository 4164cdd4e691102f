/**
 * HTTP serving on Node with @hono/node-server (it converts node:http requests to web Requests and writes
 * streamed bodies chunk by chunk, so SSE events are flushed as they are produced).
 */
import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type HttpServerHandle, type ServeOptions, reachableUrl, sleepMs, trackedHandler } from "../shared-serve.ts";

/** Node implementation of `serveHttp` (see runtime-adapters/shared-serve.ts for the contract). */
export function serveHttp(options: ServeOptions): Promise<HttpServerHandle> {
  // Node bounds TCP connections itself; no per-request cap on top of it.
  const tracked = trackedHandler(options.fetch, undefined);
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: (req: Request) => tracked.fetch(req), hostname: options.host, port: options.port }) as Server;
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
