/**
 * The readiness rule of `GET /readyz` (docs/api.md "Health"), a pure function of what the node knows. Like
 * etcd's `/readyz`, a node is ready when it can serve a linearizable request now: it is a member, it has a
 * leader, and that leader is in touch both ways. Unlike `/healthz` (liveness: the process serves requests),
 * a not-ready node should get no client traffic from a load balancer, but must not be restarted.
 */
import type { HealthStatus } from "../api/service.ts";

/**
 * Stable reason codes of a 503 `/readyz` answer (the JSON body's `reason`; docs/api.md):
 * - `fatal`: a storage error stopped the node.
 * - `not_member`: this node was removed from the cluster (it applied a configuration without itself, or a
 *   member's view no longer lists it), or it is not in the configuration yet (started to be added).
 * - `no_leader`: no leader is known (election in progress or no quorum).
 * - `leader_silent`: a follower/learner has not heard the leader (AppendEntries, heartbeat, snapshot) for
 *   longer than the election timeout.
 * - `leader_unreachable`: the leader is heard but this node's stream to it has been down for longer than
 *   the election timeout, so its acks never arrive (e.g. a wrong peer URL for the leader in `--peers`).
 * - `catching_up`: the applied index is more than `readyLagEntriesMax` behind the highest commit index
 *   known (its own, or the one the leader's heartbeats carry).
 */
export type NotReadyReason = "fatal" | "not_member" | "no_leader" | "leader_silent" | "leader_unreachable" | "catching_up";

/** What the rule reads. Times in ms, indexes are Raft log indexes. */
export interface ReadinessFacts {
  id: string;
  isLeader: boolean;
  /** Known leader id, "" = none. */
  leaderId: string;
  commitIndex: number;
  appliedIndex: number;
  /** Highest commit index the leader announced to this node (0 = none yet). */
  leaderCommitIndex: number;
  fatal: boolean;
  removed: boolean;
  /** Not in the configuration it knows, and never removed: waiting to be added (holds no data). */
  notYetMember?: boolean;
  /** Ms since this node last heard the leader; null = never since start. */
  sinceLeaderHeardMs: number | null;
  /** Ms this node's outbound stream to the leader has been down; 0 = open. */
  leaderStreamDownMs: number;
  /** Bound for `leader_silent` and `leader_unreachable` (config electionTimeoutMsMax). */
  electionTimeoutMs: number;
  /** Bound for `catching_up` (config readyLagEntriesMax). */
  lagEntriesMax: number;
}

/** The `/readyz` answer for `f`: ok, or not ok with a `NotReadyReason` and the numbers behind it. */
export function readinessOf(f: ReadinessFacts): HealthStatus & { reason?: NotReadyReason } {
  const knownCommit = Math.max(f.commitIndex, f.leaderCommitIndex);
  const details: Record<string, string | number | boolean> = {
    id: f.id,
    leaderId: f.leaderId,
    commitIndex: f.commitIndex,
    leaderCommitIndex: knownCommit,
    appliedIndex: f.appliedIndex,
  };
  const no = (reason: NotReadyReason, message: string) => ({ ok: false, reason, details: { ...details, message } });
  if (f.fatal) return no("fatal", "the node stopped after a storage error");
  if (f.removed) return no("not_member", `node ${f.id} is no longer a member of the cluster`);
  if (f.notYetMember) return no("not_member", `node ${f.id} is not in the cluster's configuration yet (waiting to be added)`);
  if (!f.leaderId) return no("no_leader", "no leader is known");
  if (!f.isLeader) {
    if (f.sinceLeaderHeardMs === null || f.sinceLeaderHeardMs > f.electionTimeoutMs) {
      return no("leader_silent", f.sinceLeaderHeardMs === null ? `leader ${f.leaderId} not heard since start` : `leader ${f.leaderId} not heard for ${Math.round(f.sinceLeaderHeardMs)} ms`);
    }
    if (f.leaderStreamDownMs > f.electionTimeoutMs) {
      return no("leader_unreachable", `this node's stream to leader ${f.leaderId} has been down for ${Math.round(f.leaderStreamDownMs)} ms (check its peer URL)`);
    }
  }
  if (knownCommit - f.appliedIndex > f.lagEntriesMax) {
    return no("catching_up", `applied index ${f.appliedIndex} is ${knownCommit - f.appliedIndex} entries behind commit index ${knownCommit} (bound ${f.lagEntriesMax})`);
  }
  return { ok: true, details };
}
