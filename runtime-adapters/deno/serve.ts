/**
 * HTTP serving on Deno with `Deno.serve`, hostname passed explicitly (Deno's default is 0.0.0.0, IPv4 only;
 * research/ecosystem.md §1.2). Deno streams a ReadableStream body chunk by chunk, so SSE events flush per
 * event. `shutdown()` is graceful and waits for open bodies, hence the tracked event streams are ended
 * after the grace period.
 */
import { type HttpServerHandle, type ServeOptions, reachableUrl, sleepMs, trackedHandler } from "../shared-serve.ts";

/** The part of Deno's HttpServer we use (declared here: tsconfig has no Deno lib). */
interface DenoHttpServer {
  readonly addr: { port: number };
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}
interface DenoGlobal {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: unknown) => void; onError?: (e: unknown) => Response },
    handler: (req: Request) => Response | Promise<Response>,
  ): DenoHttpServer;
}

/** Deno implementation of `serveHttp` (see runtime-adapters/shared-serve.ts for the contract). */
export async function serveHttp(options: ServeOptions): Promise<HttpServerHandle> {
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  const tracked = trackedHandler(options.fetch, options.maxConnections);
  const onError = (e: unknown) => {
    const body = JSON.stringify({ error: { code: "internal", message: e instanceof Error ? e.message : String(e) } });
    return new Response(body, { status: 500, headers: { "content-type": "application/json" } });
  };
  // onListen replaced: Deno's default prints "Listening on ..." to stdout, which would break the ready line.
  const server = deno.serve({ hostname: options.host, port: options.port, onListen: () => {}, onError }, (req) => tracked.fetch(req));
  let closing: Promise<void> | undefined;
  return {
    url: reachableUrl(options.host, server.addr.port),
    close() {
      closing ??= (async () => {
        const done = server.shutdown();
        await Promise.race([done, sleepMs(options.closeGraceMs ?? 2000)]);
        tracked.endStreams();
        await done;
      })();
      return closing;
    },
  };
}
