/**
 * Peer transport for Bun: `node:http2` client (shared) and Bun's native server, `Bun.serve({ http2: true })`,
 * which serves h2c prior-knowledge connections with full-duplex streaming bodies since Bun 1.4 (oven-sh/bun
 * PR 40137; checked on 1.4.4 by test/integration/transport.test.ts against Node, Bun and Deno clients).
 */
import { baseUrl, type PeerServerStarter } from "../shared/peer-http2-server.ts";
import { handlePeerFetch } from "../shared/peer-fetch-server.ts";
import { type Http2PeerTransportOptions, createHttp2PeerTransport } from "../shared/peer-http2.ts";
import type { PeerTransport } from "../../src/server/transport.ts";

/** The subset of Bun's server API used here (Bun types are not in the project's type roots). */
interface BunServer {
  port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
declare const Bun: { serve(options: Record<string, unknown>): BunServer };

/** Serves the peer protocol with Bun.serve on host:port (0 = any free port). */
export const startBunPeerServer: PeerServerStarter = async (host, port, ctx) => {
  const server = Bun.serve({
    hostname: host,
    port,
    http2: true,
    // Peer streams live as long as the connection; never time them out (keepalives flow every heartbeat).
    idleTimeout: 0,
    // Bun counts a request body's bytes over the stream's whole life against maxRequestBodySize (default
    // 128 MiB) and then cuts the stream: the long-lived message stream reset every 128 MiB of AppendEntries
    // (losing the batches in flight) and no snapshot larger than that ever arrived (B7). The peer protocol
    // bounds each frame itself (maxFrameBytes) and a snapshot by its declared size.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: (req: Request) => handlePeerFetch(ctx, req),
    error: (e: Error) => {
      ctx.log("error", `peer server error: ${e.message}`);
      return new Response(JSON.stringify({ error: { code: "internal", message: e.message } }), { status: 500 });
    },
  });
  return {
    url: baseUrl(host, server.port),
    close: async () => {
      await server.stop(true);
    },
  };
};

/** Options of the Bun peer transport: those of the shared transport; the server defaults to Bun.serve. */
export type PeerTransportOptions = Http2PeerTransportOptions;

/** Creates the peer transport for Bun (see `PeerTransport` in src/server/transport.ts for the contract). */
export function createPeerTransport(opts: PeerTransportOptions): PeerTransport {
  return createHttp2PeerTransport({ startServer: startBunPeerServer, ...opts });
}
