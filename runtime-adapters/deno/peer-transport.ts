/**
 * Peer transport for Deno: `node:http2` client (shared) and Deno's native server, `Deno.serve`, which sniffs
 * the HTTP/2 preface on cleartext connections and serves h2c with full-duplex streaming bodies (denoland/deno
 * issue 19306; checked on 2.9.6 by test/integration/transport.test.ts against Node, Bun and Deno clients).
 */
import { baseUrl, type PeerServerStarter } from "../shared/peer-http2-server.ts";
import { handlePeerFetch } from "../shared/peer-fetch-server.ts";
import { type Http2PeerTransportOptions, createHttp2PeerTransport } from "../shared/peer-http2.ts";
import type { PeerTransport } from "../../src/server/transport.ts";

/** The subset of Deno's server API used here (Deno types are not in the project's type roots). */
interface DenoHttpServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
}
declare const Deno: {
  serve(options: Record<string, unknown>, handler: (req: Request) => Response | Promise<Response>): DenoHttpServer;
};

/** Serves the peer protocol with Deno.serve on host:port (0 = any free port). */
export const startDenoPeerServer: PeerServerStarter = async (host, port, ctx) => {
  const abort = new AbortController();
  let server: DenoHttpServer | undefined;
  const actualPort = await new Promise<number>((resolve, reject) => {
    try {
      server = Deno.serve(
        {
          hostname: host,
          port,
          signal: abort.signal,
          onListen: (addr: { port: number }) => resolve(addr.port),
          onError: (e: unknown) => {
            ctx.log("error", `peer server error: ${(e as Error).message}`);
            return new Response(JSON.stringify({ error: { code: "internal", message: String(e) } }), { status: 500 });
          },
        },
        (req) => handlePeerFetch(ctx, req),
      );
    } catch (e) {
      reject(e);
    }
  });
  return {
    url: baseUrl(host, actualPort),
    close: async () => {
      // Abort drops open peer streams at once (shutdown() would wait for them to end, which they never do).
      abort.abort();
      await server?.finished.catch(() => {});
    },
  };
};

/** Options of the Deno peer transport: those of the shared transport; the server defaults to Deno.serve. */
export type PeerTransportOptions = Http2PeerTransportOptions;

/** Creates the peer transport for Deno (see `PeerTransport` in src/server/transport.ts for the contract). */
export function createPeerTransport(opts: PeerTransportOptions): PeerTransport {
  return createHttp2PeerTransport({ startServer: startDenoPeerServer, ...opts });
}
