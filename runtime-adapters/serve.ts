/**
 * `serveHttp` for the running runtime: Bun.serve on Bun, Deno.serve on Deno, @hono/node-server on Node
 * (research/ecosystem.md §2.4: each runtime's own server, not the Node adapter everywhere). The runtime's
 * module is loaded with a dynamic import so no runtime loads another's code. HTTP/1.1 with keep-alive;
 * streaming responses (the SSE watch) are flushed per event on all three (test/integration/serve.test.ts).
 */
import { currentRuntime } from "./runtime.ts";
import type { HttpServerHandle, ServeOptions } from "./shared-serve.ts";
import { bindWithRetry } from "./shared/bind-retry.ts";

export type { HttpServerHandle, ServeOptions } from "./shared-serve.ts";

/**
 * Starts serving `options.fetch` on `options.host:options.port`. Resolves once listening, with the reachable
 * URL and a `close()`. Rejects with the runtime's error if the address cannot be bound (e.g. EADDRINUSE):
 * at once when another server listens there; after up to 65 s of retries when nothing listens but a
 * TIME_WAIT socket holds the port (a quick restart; runtime-adapters/shared/bind-retry.ts).
 */
export async function serveHttp(options: ServeOptions): Promise<HttpServerHandle> {
  const rt = currentRuntime();
  const impl = rt === "bun" ? await import("./bun/serve.ts") : rt === "deno" ? await import("./deno/serve.ts") : await import("./node/serve.ts");
  const log = options.log ?? ((m: string) => console.error(`edgekv: ${m}`));
  return bindWithRetry(() => impl.serveHttp(options), { what: "client port", host: options.host, port: options.port, log });
}
