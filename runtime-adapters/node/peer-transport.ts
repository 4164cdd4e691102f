/**
 * Peer transport for Node: the shared `node:http2` client and server (h2c prior knowledge); see
 * runtime-adapters/shared/peer-http2.ts and docs/peer-protocol.md.
 */
import { type Http2PeerTransportOptions, createHttp2PeerTransport } from "../shared/peer-http2.ts";
import type { PeerTransport } from "../../src/server/transport.ts";

/** Options of the Node peer transport (those of the shared transport). */
export type PeerTransportOptions = Http2PeerTransportOptions;

/** Creates the peer transport for Node (see `PeerTransport` in src/server/transport.ts for the contract). */
export function createPeerTransport(opts: PeerTransportOptions): PeerTransport {
  return createHttp2PeerTransport(opts);
}
