/**
 * Membership arithmetic: the ConfState that results from one conf change entry (Raft thesis §4.3 joint
 * consensus, with etcd's learners). Pure and shared: the core applies it when a conf entry is appended
 * (thesis §4.1), the KV state machine uses it to record the membership at its applied index.
 */
import { RaftError, type ConfChange, type ConfState, type NodeId } from "./types.ts";

/** An empty membership (a node that joins as learner starts with it). */
export function emptyConfState(): ConfState {
  return { voters: [], votersOutgoing: [], learners: [] };
}

/** True when `cs` is a joint configuration (decisions need a majority of `voters` AND of `votersOutgoing`). */
export function isJoint(cs: ConfState): boolean {
  return cs.votersOutgoing.length > 0;
}

/** Every member id of `cs` (incoming and outgoing voters, learners), each once, sorted. */
export function allMembers(cs: ConfState): NodeId[] {
  return [...new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners])].sort();
}

/** True when `id` may vote (and so campaign) under `cs`: an incoming or outgoing voter. */
export function isVoter(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || cs.votersOutgoing.includes(id);
}

function sameSet(a: NodeId[], b: NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

function invalid(message: string): never {
  throw new RaftError("invariant", `invalid conf change: ${message}`);
}

/**
 * The membership after applying `cc` to `cs`.
 *
 * - `steps` empty = leave the joint configuration: `votersOutgoing` is dropped (thesis §4.3, C_new).
 * - otherwise each step is applied in order: `addLearner` (id must not be a member), `promote` (id must be a
 *   learner), `remove` (id must be a voter or learner), `update` (id must be a member; no set changes). If the voter set changed, the result is the joint
 *   configuration voters = new, votersOutgoing = old; a change that only touches learners applies
 *   directly. From an empty voter set (bootstrap) the voters apply directly too.
 *
 * @throws RaftError("invariant") when the change is invalid: a step on a joint configuration, leaving a
 *   non-joint one, a duplicate id among the steps, a step whose precondition fails, or no voter left.
 */
export function applyConfChange(cs: ConfState, cc: ConfChange): ConfState {
  if (cc.steps.length === 0) {
    if (!isJoint(cs)) invalid("leave-joint on a configuration that is not joint");
    return { voters: [...cs.voters], votersOutgoing: [], learners: [...cs.learners] };
  }
  if (isJoint(cs)) invalid("the joint configuration must be left before another change");
  const seen = new Set<NodeId>();
  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  for (const step of cc.steps) {
    if (!step.nodeId) invalid("empty node id");
    if (seen.has(step.nodeId)) invalid(`node ${step.nodeId} appears twice in one change`);
    seen.add(step.nodeId);
    switch (step.type) {
      case "addLearner":
        if (voters.has(step.nodeId) || learners.has(step.nodeId)) invalid(`${step.nodeId} is already a member`);
        learners.add(step.nodeId);
        break;
      case "promote":
        if (!learners.has(step.nodeId)) invalid(`${step.nodeId} is not a learner`);
        learners.delete(step.nodeId);
        voters.add(step.nodeId);
        break;
      case "remove":
        if (!voters.delete(step.nodeId) && !learners.delete(step.nodeId)) invalid(`${step.nodeId} is not a member`);
        break;
      case "update":
        // Only the step's context (member URLs) changes; the sets stay as they are.
        if (!voters.has(step.nodeId) && !learners.has(step.nodeId)) invalid(`${step.nodeId} is not a member`);
        break;
      default:
        invalid(`unknown step type ${(step as { type: string }).type}`);
    }
  }
  const newVoters = [...voters].sort();
  if (newVoters.length === 0) invalid("no voter would remain");
  const oldVoters = [...cs.voters].sort();
  const joint = oldVoters.length > 0 && !sameSet(oldVoters, newVoters);
  return { voters: newVoters, votersOutgoing: joint ? oldVoters : [], learners: [...learners].sort() };
}
