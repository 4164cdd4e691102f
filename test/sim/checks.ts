/**
 * Safety invariants checked by the simulator after every step, one function per invariant (Raft paper
 * figure 3 "Election Safety", "Log Matching", "Leader Completeness", "State Machine Safety", plus the
 * log-position order of openraft's log_pointers: applied <= commit, neither going backwards).
 * Each returns undefined when the invariant holds, or a one-line description of the violation.
 * The {@link Ledger} holds what the checks remember across steps (leaders seen, committed entries, applied
 * entries).
 */
import type { Entry, NodeId, RaftStorage } from "../../src/raft/types.ts";

/** The invariant names used in reports (and by `--bug` expectations). */
export type InvariantName =
  | "election-safety"
  | "log-matching"
  | "leader-completeness"
  | "state-machine-safety"
  | "commit-monotonic"
  | "applied-monotonic"
  | "applied-le-commit"
  | "committed-entry-changed"
  | "linearizability"
  | "core-error"
  | "liveness";

/** A broken invariant. */
export interface Violation {
  invariant: InvariantName;
  detail: string;
}

/** What the checks remember between steps. */
export class Ledger {
  /** term -> the node seen as leader in that term. */
  readonly leaderOfTerm = new Map<number, NodeId>();
  /** index -> term of the entry known committed at that index. */
  readonly committedTerm = new Map<number, number>();
  /**
   * index -> the lowest term in which some node was seen holding that index as committed. It is at least the
   * term in which the entry really committed (a node may learn of the commit later), so requiring only
   * entries with commitTerm < L of a leader of term L never raises a false alarm.
   */
  readonly commitTerm = new Map<number, number>();
  /** Highest index recorded in committedTerm. */
  maxCommitted = 0;
  /** index -> signature of the entry some node applied there (term + payload). */
  readonly appliedSignature = new Map<number, string>();
}

/** An entry's identity for comparisons: term, type and payload (as text; payloads are small). */
export function entrySignature(e: Entry): string {
  const payload = e.type === "confChange" ? JSON.stringify(e.confChange ?? null) : e.data.join(",");
  return `${e.term}/${e.type}/${payload}`;
}

/** True when two entries are the same (term, type, payload); fast when they share objects, as replicated ones do. */
export function sameEntry(x: Entry, y: Entry): boolean {
  if (x === y) return true;
  if (x.index !== y.index || x.term !== y.term || x.type !== y.type) return false;
  if (x.type === "confChange") return JSON.stringify(x.confChange ?? null) === JSON.stringify(y.confChange ?? null);
  if (x.data === y.data) return true;
  if (x.data.length !== y.data.length) return false;
  for (let i = 0; i < x.data.length; i++) if (x.data[i] !== y.data[i]) return false;
  return true;
}

/** Election Safety: at most one leader per term (Raft paper §5.2). Records `leader` for `term`. */
export function checkElectionSafety(ledger: Ledger, term: number, leader: NodeId): Violation | undefined {
  const seen = ledger.leaderOfTerm.get(term);
  if (seen === undefined) {
    ledger.leaderOfTerm.set(term, leader);
    return undefined;
  }
  if (seen !== leader) return { invariant: "election-safety", detail: `term ${term} has two leaders: ${seen} and ${leader}` };
  return undefined;
}

/** The durable log of one node as the checks see it. */
export interface DurableLog {
  id: NodeId;
  storage: RaftStorage;
}

/** Reads the entry at `index` or undefined when it is compacted or absent. */
function entryAt(s: RaftStorage, index: number): Entry | undefined {
  if (index < s.firstIndex() || index > s.lastIndex()) return undefined;
  return s.entries(index, index + 1, Number.MAX_SAFE_INTEGER)[0];
}

/**
 * Log Matching (Raft paper §5.3): if two durable logs hold an entry with the same index and term, they hold
 * identical entries at every index up to it (checked over the indexes both still store).
 */
export function checkLogMatching(a: DurableLog, b: DurableLog): Violation | undefined {
  const lo = Math.max(a.storage.firstIndex(), b.storage.firstIndex());
  const hi = Math.min(a.storage.lastIndex(), b.storage.lastIndex());
  if (hi < lo) return undefined;
  const ea = a.storage.entries(lo, hi + 1, Number.MAX_SAFE_INTEGER);
  const eb = b.storage.entries(lo, hi + 1, Number.MAX_SAFE_INTEGER);
  let matched = false;
  let matchIndex = 0;
  for (let i = hi - lo; i >= 0; i--) {
    const x = ea[i];
    const y = eb[i];
    if (x === undefined || y === undefined) continue;
    if (!matched && x.term === y.term) {
      matched = true;
      matchIndex = x.index;
    }
    if (matched && !sameEntry(x, y)) {
      return {
        invariant: "log-matching",
        detail: `${a.id} and ${b.id} agree on (index ${matchIndex}, term ${ea[matchIndex - lo].term}) but differ at index ${x.index}: ${entrySignature(x)} vs ${entrySignature(y)}`,
      };
    }
  }
  return undefined;
}

/**
 * Records the entries `node` knows committed (its log up to `commitIndex`) and checks that a committed
 * entry never changes: the same index must always be committed with the same term.
 */
export function recordCommitted(ledger: Ledger, node: DurableLog, commitIndex: number, currentTerm: number): Violation | undefined {
  const s = node.storage;
  const from = Math.max(s.firstIndex(), 1);
  const to = Math.min(commitIndex, s.lastIndex());
  for (let i = from; i <= to; i++) {
    const term = s.term(i);
    const seenIn = ledger.commitTerm.get(i);
    if (seenIn === undefined || currentTerm < seenIn) ledger.commitTerm.set(i, currentTerm);
    const known = ledger.committedTerm.get(i);
    if (known === undefined) {
      ledger.committedTerm.set(i, term);
      if (i > ledger.maxCommitted) ledger.maxCommitted = i;
    } else if (known !== term) {
      return { invariant: "committed-entry-changed", detail: `${node.id} has term ${term} at committed index ${i}, which was committed with term ${known}` };
    }
  }
  return undefined;
}

/**
 * Leader Completeness (Raft paper §5.4): a new leader's log holds every entry committed in an earlier term.
 * (A leader of term L may legitimately be elected after an entry committed in a term > L, from votes
 * granted earlier; such entries are not required.) Checked when `leader` is first seen leading; entries
 * compacted into its snapshot are taken as present.
 */
export function checkLeaderCompleteness(ledger: Ledger, leader: DurableLog, term: number): Violation | undefined {
  const s = leader.storage;
  let required = 0;
  for (let i = ledger.maxCommitted; i > 0; i--) {
    const seenIn = ledger.commitTerm.get(i);
    if (seenIn !== undefined && seenIn < term) {
      required = i;
      break;
    }
  }
  if (s.lastIndex() < required) {
    return { invariant: "leader-completeness", detail: `leader ${leader.id} of term ${term} ends at index ${s.lastIndex()} but index ${required} was committed before term ${term}` };
  }
  for (let i = s.firstIndex(); i <= required; i++) {
    const want = ledger.committedTerm.get(i);
    const seenIn = ledger.commitTerm.get(i);
    if (want === undefined || seenIn === undefined || seenIn >= term) continue;
    const have = s.term(i);
    if (have !== want) {
      return { invariant: "leader-completeness", detail: `leader ${leader.id} of term ${term} has term ${have} at index ${i}, committed with term ${want}` };
    }
  }
  return undefined;
}

/** State Machine Safety (Raft paper §5.4.3): no two nodes apply different entries at the same index. */
export function checkStateMachineSafety(ledger: Ledger, nodeId: NodeId, entry: Entry): Violation | undefined {
  const sig = entrySignature(entry);
  const seen = ledger.appliedSignature.get(entry.index);
  if (seen === undefined) {
    ledger.appliedSignature.set(entry.index, sig);
    return undefined;
  }
  if (seen !== sig) return { invariant: "state-machine-safety", detail: `${nodeId} applied ${sig} at index ${entry.index}, another node applied ${seen}` };
  return undefined;
}

/** A snapshot installed at `index` with `term` must agree with what was applied there (if anything was). */
export function checkSnapshotAgrees(ledger: Ledger, nodeId: NodeId, index: number, term: number): Violation | undefined {
  const seen = ledger.appliedSignature.get(index);
  if (seen !== undefined && !seen.startsWith(`${term}/`)) {
    return { invariant: "state-machine-safety", detail: `${nodeId} installed a snapshot at (index ${index}, term ${term}) but ${seen} was applied there` };
  }
  return undefined;
}

/** Positions of one node between two steps; `restarted` is true when it crashed and restarted in between. */
export interface PositionChange {
  id: NodeId;
  commitBefore: number;
  commitAfter: number;
  appliedBefore: number;
  appliedAfter: number;
  restarted: boolean;
}

/**
 * Commit index never goes backwards, except across a crash restart (a restarted core may only know the
 * durable commit). Log positions (openraft log_pointers): commit is what the durable hard state said.
 */
export function checkCommitMonotonic(c: PositionChange): Violation | undefined {
  if (!c.restarted && c.commitAfter < c.commitBefore) {
    return { invariant: "commit-monotonic", detail: `${c.id} commit index went from ${c.commitBefore} to ${c.commitAfter}` };
  }
  return undefined;
}

/** Applied index never goes backwards, not even across a restart (the state machine is durable with it). */
export function checkAppliedMonotonic(c: PositionChange): Violation | undefined {
  if (c.appliedAfter < c.appliedBefore) {
    return { invariant: "applied-monotonic", detail: `${c.id} applied index went from ${c.appliedBefore} to ${c.appliedAfter}${c.restarted ? " across a restart" : ""}` };
  }
  return undefined;
}

/** applied <= commit (log positions order). */
export function checkAppliedLeCommit(id: NodeId, applied: number, commit: number): Violation | undefined {
  if (applied > commit) return { invariant: "applied-le-commit", detail: `${id} applied index ${applied} > commit index ${commit}` };
  return undefined;
}
