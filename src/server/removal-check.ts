/**
 * Whether another member's cluster view (`GET /v1/cluster`, read over the peer transport) shows that this
 * node was removed. Used by a follower or learner that stopped hearing a leader (src/server/node.ts
 * `checkMembership`): a removed member never applies its own removal, because the leader stops replicating
 * to it once the removal is appended (Raft thesis §4.1), so it must learn it from the others (etcd refuses
 * a removed member's peer messages for the same reason).
 */

/**
 * A removal proven by a member's view: `why` for the log, `term` the view's Raft term, `appliedIndex` the
 * view's applied index (its configuration as of that log index lacks this node).
 */
export interface RemovalVerdict {
  why: string;
  appliedIndex: number;
  /** The view's Raft term (for the log). */
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
  return { why: `leader ${v.leaderId}, term ${v.term}, applied index ${v.appliedIndex}, members ${ids.join(", ")}`, term: v.term, appliedIndex: v.appliedIndex };
}

/**
 * What this node knows of its own removal. `atIndex`: a log index whose configuration lacks this node (the
 * applied index when it applied such a configuration, or the proving view's applied index). Only applying a
 * configuration that lists this node at a later index ends it: leader contact does not, since AppendEntries
 * the leader queued before the removal may arrive late, and a leader of a later term re-adding this node
 * delivers the re-adding entry anyway (a contact rule made a re-added node flip back to removed when it
 * then applied its old removal entry).
 */
export type RemovalState = { removed: false } | { removed: true; atIndex: number };

/** A transition to log once: entered the removed state, or left it because membership was proven again. */
export type RemovalChange = "removed" | "member_again" | undefined;

/**
 * After applying a configuration (log entries or a snapshot) up to `appliedIndex`: `isMember` whether it
 * lists this node (voter, outgoing voter or learner), `wasMember` whether the one applied before did.
 * - Removed only on a member -> non-member step: a learner catching up from a snapshot older than its own
 *   addition applies configurations without itself before it was ever a member.
 * - Member again when a configuration listing this node is applied at an index past `atIndex`: applied
 *   entries are committed, and configurations only change through the log, so the cluster added this node
 *   back after removing it (the leader replicates to a re-added node in the same term as the removal, so
 *   the term cannot tell). A configuration at or before `atIndex` is an old one (AppendEntries a leader
 *   queued before the removal and delivered late) and changes nothing.
 */
export function afterConfigApplied(s: RemovalState, f: { wasMember: boolean; isMember: boolean; appliedIndex: number }): { state: RemovalState; change: RemovalChange } {
  if (!s.removed) {
    if (f.wasMember && !f.isMember) return { state: { removed: true, atIndex: f.appliedIndex }, change: "removed" };
    return { state: s, change: undefined };
  }
  if (f.isMember && f.appliedIndex > s.atIndex) return { state: { removed: false }, change: "member_again" };
  if (!f.isMember && f.appliedIndex > s.atIndex) return { state: { removed: true, atIndex: f.appliedIndex }, change: undefined };
  return { state: s, change: undefined };
}

/** After a member's view proved the removal (`removedByPeerView`): removed as of the view's applied index. */
export function afterRemovalVerdict(s: RemovalState, v: RemovalVerdict): { state: RemovalState; change: RemovalChange } {
  if (s.removed) return { state: s, change: undefined };
  return { state: { removed: true, atIndex: v.appliedIndex }, change: "removed" };
}

/** Whether configuration `cs` lists `id` as a voter (incoming or outgoing, joint consensus) or a learner. */
export function isMemberOf(cs: { voters: readonly string[]; votersOutgoing: readonly string[]; learners: readonly string[] }, id: string): boolean {
  return cs.voters.includes(id) || cs.votersOutgoing.includes(id) || cs.learners.includes(id);
}
