/**
 * What a node says when its Raft role or known leader changes (a new user's finding, 2026-11-30: elections
 * happened with one line at most, the winner's "became leader", and no counter; an etcd operator expects
 * "starting a new election", "lost leader" and `etcd_server_leader_changes_seen_total`). Pure: the node
 * passes the soft state before and after a Ready (src/raft/types.ts `SoftState`) and the term after it.
 */
import type { Role } from "../raft/types.ts";

/** The part of the Raft soft state this module reads. */
export interface RoleSeen {
  role: Role;
  /** Known leader of the current term, "" when none. */
  leaderId: string;
  /** Why a leader stepped down (src/raft/types.ts SoftState), added to the "stepped down" line. */
  stepDownReason?: string;
}

/** One log line (level info) for a change, and whether the node saw a new leader (the counter's increment). */
export interface RoleChangeNote {
  /** The line to log, or undefined when nothing worth a line changed. */
  message: string | undefined;
  /** True when a leader different from the last one seen is now known (etcd counts "leader changes seen"). */
  newLeader: boolean;
}

/**
 * Describes the change from `prev` to `next` in `term` for node `selfId`. Lines: a pre-vote or an election
 * starting (Raft thesis §9.6 PreVote, §3.4 elections), becoming leader, stepping down, following a new
 * leader, losing the leader. `newLeader` is true when `next.leaderId` is set and differs from
 * `lastLeaderId` (the last leader this node saw, kept by the caller across leaderless stretches, so that a
 * leader lost and found again is not counted twice).
 */
export function describeRoleChange(prev: RoleSeen, next: RoleSeen, term: number, selfId: string, lastLeaderId: string): RoleChangeNote {
  const newLeader = next.leaderId !== "" && next.leaderId !== lastLeaderId;
  let message: string | undefined;
  if (next.role !== prev.role) {
    if (next.role === "preCandidate") message = `no leader heard within the election timeout: starting a pre-vote (term ${term})`;
    else if (next.role === "candidate") message = `starting an election in term ${term}`;
    else if (next.role === "leader") message = `became leader in term ${term}`;
    else if (prev.role === "leader") message = `stepped down in term ${term}${next.stepDownReason ? ` (${next.stepDownReason})` : ""}${next.leaderId ? `; the leader is now ${next.leaderId}` : ""}`;
    else if (next.leaderId) message = `following leader ${next.leaderId} in term ${term}`;
  } else if (next.leaderId !== prev.leaderId && next.leaderId !== selfId) {
    message = next.leaderId ? `following leader ${next.leaderId} in term ${term}` : `lost leader ${prev.leaderId} (now in term ${term}, no leader known)`;
  }
  return { message, newLeader };
}
