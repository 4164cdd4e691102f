/**
 * Peer transport for Bun: the shared `node:http2` implementation (h2c client and server), which passed the
 * cross-runtime tests on Bun (test/integration/transport.test.ts; docs/peer-protocol.md "Runtimes").
 */
export { createHttp2PeerTransport as createPeerTransport, type Http2PeerTransportOptions as PeerTransportOptions } from "../shared/peer-http2.ts";
