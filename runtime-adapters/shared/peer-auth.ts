/**
 * Admission of peer requests, shared by every server flavour (node:http2, Bun.serve, Deno.serve): the
 * protocol version, cluster id, cluster secret and addressee checks of docs/peer-protocol.md "Admission".
 */
import { PEER_PROTOCOL_VERSION } from "../../src/codec/frame.ts";
import type { NodeId } from "../../src/raft/types.ts";
import { PEER_HEADERS } from "../../src/server/transport.ts";

/** Compares two strings in time independent of where they differ (the secret must not leak by timing). */
export function sameSecret(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}

/**
 * Checks a peer request's headers (read through `get`, lower-case names). Returns `[status, code, message]`
 * when it must be refused — 400 protocol_mismatch, 403 cluster_mismatch, 401 unauthorized, 421 wrong_node,
 * 400 bad_request (no sender id) — else undefined.
 */
export function admissionProblem(self: { nodeId: NodeId; clusterId: string; clusterSecret: string }, get: (name: string) => string | undefined): [number, string, string] | undefined {
  const protocol = get(PEER_HEADERS.protocol);
  if (protocol !== String(PEER_PROTOCOL_VERSION)) return [400, "protocol_mismatch", `peer protocol ${String(protocol)} not supported; this node speaks ${PEER_PROTOCOL_VERSION}`];
  const cluster = get(PEER_HEADERS.cluster);
  if (cluster !== self.clusterId) return [403, "cluster_mismatch", `cluster id ${String(cluster)} does not match this node's cluster`];
  // Trimmed on both sides: HTTP strips trailing whitespace from header values, so with the empty secret
  // allowed locally the sender's "Bearer " arrives as "Bearer". A sender older than the trimmed header sent
  // "Bearer ", which node:http2 drops altogether: with the empty secret a missing header counts as "Bearer".
  const auth = get("authorization") ?? (self.clusterSecret.trim() === "" ? "Bearer" : "");
  if (!sameSecret(auth.trim(), `Bearer ${self.clusterSecret}`.trim())) return [401, "unauthorized", "cluster secret does not match"];
  const to = get(PEER_HEADERS.to);
  if (to !== undefined && to !== self.nodeId) return [421, "wrong_node", `this is node ${self.nodeId}, not ${to}`];
  if (!get(PEER_HEADERS.from)) return [400, "bad_request", "missing x-edgekv-from"];
  return undefined;
}
