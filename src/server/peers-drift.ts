/**
 * What a restart's `peers` says that the data dir does not. Once the data dir holds state, membership comes
 * from it (the Raft configuration in the log: voters, outgoing voters of a joint configuration, learners);
 * `peers` and `bootstrap` only form a new cluster, as etcd ignores `--initial-cluster` once its data dir
 * exists. One exception is real and on purpose (EdgeNode.refreshPeers): for a member that `peers` lists,
 * this node dials the configured URL, not the stored one — after a restart on new ports the stored table
 * still holds the old URLs until the members announce the new ones, which needs a leader, which needs these
 * links. Members missing from `peers` are dialed at their stored URLs; ids in `peers` that are not members
 * take no part in Raft. The node used to apply this rule silently; this module words it for the log.
 */
import type { NodeId } from "../raft/types.ts";
import { urlKey } from "../config/peers.ts";

/** Inputs of {@link peersDrift}. */
export interface PeersDriftInput {
  /** This node's id (its own entry is never compared: it announces its advertised URL itself). */
  nodeId: NodeId;
  /** The data dir, named in the message. */
  dataDir: string;
  /** `config.peers`: id -> peer URL as configured for this start. */
  configured: Record<string, string>;
  /** Every member of the stored configuration (voters, outgoing voters, learners). */
  members: NodeId[];
  /** The stored member table: id -> peer URL ("" or missing when none is recorded). */
  storedPeerUrls: Record<string, string>;
}

/** A log line: `warn` when `peers` names non-members or other URLs, `info` when it only omits members. */
export interface PeersDrift {
  level: "warn" | "info";
  message: string;
}

/**
 * Compares `peers` with the stored membership; undefined when they agree (listing a subset of the members
 * at their stored URLs counts as agreeing only at `info`: a seed list like Fly.io's, docs/deploy.md).
 * URLs are compared by scheme, lower-case host and port. Pure.
 */
export function peersDrift(input: PeersDriftInput): PeersDrift | undefined {
  const members = new Set(input.members.filter((id) => id !== input.nodeId));
  const listed = Object.keys(input.configured).filter((id) => id !== input.nodeId);
  const notMembers = listed.filter((id) => !members.has(id)).sort();
  const missing = [...members].filter((id) => !(id in input.configured)).sort();
  const moved = listed
    .filter((id) => members.has(id) && input.storedPeerUrls[id] && urlKey(input.storedPeerUrls[id]) !== urlKey(input.configured[id]))
    .sort();
  if (notMembers.length === 0 && missing.length === 0 && moved.length === 0) return undefined;
  const parts: string[] = [];
  if (notMembers.length) {
    parts.push(`listed but not members: ${notMembers.join(", ")} (ignored; add a member with POST /v1/cluster/members)`);
  }
  if (missing.length) {
    const at = missing.map((id) => `${id} at ${input.storedPeerUrls[id] || "(no stored URL)"}`).join(", ");
    parts.push(`members not listed: ${at} (still members; dialed at the stored URL)`);
  }
  if (moved.length) {
    const urls = moved.map((id) => `${id} ${input.configured[id]} (stored ${input.storedPeerUrls[id]})`).join(", ");
    parts.push(`other URLs: ${urls} (this node dials the configured URL while it runs with it; the member table changes when that member announces its advertised URL)`);
  }
  const level = notMembers.length || moved.length ? "warn" : "info";
  return {
    level,
    message: `peers differs from the membership stored in data dir ${input.dataDir}; the stored membership wins (peers and bootstrap only form a new cluster): ${parts.join("; ")}`,
  };
}
