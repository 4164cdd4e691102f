/**
 * Whether another member's cluster view (`GET /v1/cluster`, read over the peer transport) shows that this
 * node was removed. Used by a follower or learner that stopped hearing a leader (src/server/node.ts
 * `checkMembership`): a removed member never applies its own removal, because the leader stops replicating
 * to it once the removal is appended (Raft thesis §4.1), so it must learn it from the others (etcd refuses
 * a removed member's peer messages for the same reason).
 */

/** A removal proven by a member's view: `why` for the log, `term` the view's Raft term. */
export interface RemovalVerdict {
  why: string;
  /**
   * The view's term. Only a leader of a later term can prove the verdict wrong (in one term the leader never
   * drops its own entries, so a removal it appended stays); AppendEntries of this term or older may be
   * stale ones the leader's transport queued while this node was down and delivers on reconnect.
   */
  term: number;
}

/**
 * The verdict when `view` proves `selfId` is no longer a member, else undefined. Proof: the view names a
 * leader other than `selfId` and a term, has applied at least `ownAppliedIndex` (so it applied the entry
 * that made this node a member, which this node applied too), and lists no member `selfId`. Any other shape
 * (an error body, an older peer, missing fields) proves nothing. Membership only changes through the log,
 * so a peer past our applied index that lacks us has seen a later removal.
 */
export function removedByPeerView(selfId: string, ownAppliedIndex: number, view: unknown): RemovalVerdict | undefined {
  if (typeof view !== "object" || view === null) return undefined;
  const v = view as { leaderId?: unknown; appliedIndex?: unknown; members?: unknown; term?: unknown };
  if (typeof v.leaderId !== "string" || v.leaderId === "" || v.leaderId === selfId) return undefined;
  if (typeof v.term !== "number") return undefined;
  if (typeof v.appliedIndex !== "number" || v.appliedIndex < ownAppliedIndex) return undefined;
  if (!Array.isArray(v.members) || v.members.length === 0) return undefined;
  const ids = v.members.map((m) => (typeof m === "object" && m !== null ? (m as { id?: unknown }).id : undefined));
  if (ids.some((id) => typeof id !== "string")) return undefined;
  if (ids.includes(selfId)) return undefined;
  return { why: `leader ${v.leaderId}, term ${v.term}, applied index ${v.appliedIndex}, members ${ids.join(", ")}`, term: v.term };
}
