/**
 * Majority arithmetic over a (possibly joint) configuration: Raft paper §5.3 (commit by majority) and
 * thesis §4.3 (joint consensus needs a majority of both the old and the new voters).
 */
import type { ConfState, NodeId } from "./types.ts";

/** Outcome of a vote count. */
export type VoteResult = "won" | "lost" | "pending";

/** The highest index that a majority of `voters` has matched; `Infinity` for an empty voter set. */
function majorityIndex(voters: NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[Math.floor(voters.length / 2)]!;
}

/**
 * The largest index replicated on a majority of `cs.voters` and, when joint, also of `cs.votersOutgoing`.
 * `matchOf` gives a voter's match index (0 if unknown). Returns 0 for a configuration with no voters.
 */
export function committedIndex(cs: ConfState, matchOf: (id: NodeId) => number): number {
  const idx = Math.min(majorityIndex(cs.voters, matchOf), majorityIndex(cs.votersOutgoing, matchOf));
  return idx === Infinity ? 0 : idx;
}

function majorityVote(voters: NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return "won";
  let yes = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) yes++;
    else if (v === undefined) missing++;
  }
  const q = Math.floor(voters.length / 2) + 1;
  if (yes >= q) return "won";
  if (yes + missing >= q) return "pending";
  return "lost";
}

/**
 * Tally of `votes` (true = granted, false = rejected, absent = not yet answered) under `cs`: won when every
 * voter set in force has a majority of grants, lost when some set can no longer reach one.
 */
export function voteResult(cs: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVote(cs.voters, votes);
  const b = majorityVote(cs.votersOutgoing, votes);
  if (a === "lost" || b === "lost") return "lost";
  if (a === "won" && b === "won") return "won";
  return "pending";
}

/** True when the set of ids `acks` holds a majority of every voter set in force (used by CheckQuorum and ReadIndex). */
export function hasQuorum(cs: ConfState, acks: ReadonlySet<NodeId>): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of acks) votes.set(id, true);
  if (cs.voters.length === 0) return false;
  return voteResult(cs, votes) === "won";
}
