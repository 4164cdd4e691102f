/**
 * Maps the node configuration (src/config) to the peer transport's options, so every entry point wires
 * the same fields the same way (docs/configuration.md, docs/peer-protocol.md).
 */
import type { Config } from "../../src/config/schema.ts";
import type { PeerTransportOptions } from "../../src/server/transport.ts";

/**
 * Peer transport options from a resolved `Config`: identity and secret, listen `peerHost:peerPort`,
 * heartbeat interval (keepalives and suspect/failed thresholds), reconnect backoff bounds (ms) and the
 * frame limit (bytes). Queue bounds keep their defaults (1000 batches / 64 MiB per peer).
 */
export function peerTransportOptions(c: Config): PeerTransportOptions {
  return {
    nodeId: c.nodeId,
    clusterId: c.clusterId,
    clusterSecret: c.clusterSecret,
    host: c.peerHost,
    port: c.peerPort,
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    reconnectMsMin: c.peerReconnectMsMin,
    reconnectMsMax: c.peerReconnectMsMax,
    maxFrameBytes: c.maxFrameBytes,
  };
}
