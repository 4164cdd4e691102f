/**
 * The receiving side of the protocol that does not depend on leading: the term rules every server
 * applies first (Raft paper figure 2 "Rules for all servers", PreVote thesis §9.6, the vote lease of
 * thesis §4.2.3), RequestVote, AppendEntries and InstallSnapshot on a follower.
 */
import type { RaftNode } from "./raw-node.ts";
import type { AppendEntriesMessage, Message, NodeId, RequestVoteMessage, Snapshot } from "./types.ts";

/**
 * Applies the term rules to `m`. Returns false when the message must be dropped (older term, or a vote
 * request ignored under the leader lease); may step `n` down to follower of a newer term.
 */
export function admitTerm(n: RaftNode, m: Message): boolean {
  if (m.term > n.term) {
    if (m.type === "requestVote") {
      // While a leader is known and was heard within the minimum election timeout, votes are ignored, so
      // a removed or partitioned node cannot depose a healthy leader.
      const inLease = n.leaderId !== "" && n.electionElapsed < n.cfg.electionTicks;
      if (inLease && !m.leadershipTransfer) return false;
    }
    if (m.type === "requestVote" && m.preVote) {
      // A PreVote never changes the receiver's term.
    } else if (m.type === "requestVoteResponse" && m.preVote && m.granted) {
      // A granted PreVote carries the term the candidate will campaign in; not a newer leader.
    } else if (m.type === "appendEntries" || m.type === "heartbeat" || m.type === "installSnapshot") {
      n.becomeFollower(m.term, m.from, `${m.from} leads the newer term ${m.term}`);
    } else {
      n.becomeFollower(m.term, "", `a ${m.type} of the newer term ${m.term} came from ${m.from}`);
    }
    return true;
  }
  if (m.term < n.term) {
    if ((n.cfg.checkQuorum || n.cfg.preVote) && (m.type === "appendEntries" || m.type === "heartbeat")) {
      // A stale leader cut off by a partition learns the newer term from this answer and steps down.
      n.send({ type: "appendEntriesResponse", to: m.from, success: false, matchIndex: 0, rejectIndex: 0, conflictIndex: 0, conflictTerm: 0 });
    } else if (m.type === "requestVote" && m.preVote) {
      n.send({ type: "requestVoteResponse", to: m.from, preVote: true, granted: false });
    }
    return false;
  }
  return true;
}

/** RequestVote of the current term (after `admitTerm`): one vote per term, to an up-to-date log (§5.4.1). */
export function handleRequestVote(n: RaftNode, m: RequestVoteMessage): void {
  const canVote = n.vote === m.from || (n.vote === "" && n.leaderId === "") || (m.preVote && m.term > n.term);
  if (canVote && n.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
    // A granted answer carries the candidate's term, so a pre-candidate counts it for its next term.
    n.send({ type: "requestVoteResponse", to: m.from, term: m.term, preVote: m.preVote, granted: true });
    if (!m.preVote) {
      n.electionElapsed = 0;
      n.vote = m.from;
    }
  } else {
    n.send({ type: "requestVoteResponse", to: m.from, preVote: m.preVote, granted: false });
  }
}

/** Follower side of AppendEntries (Raft paper figure 2, receiver steps 1-5). */
export function handleAppendEntries(n: RaftNode, m: AppendEntriesMessage): void {
  const log = n.log;
  const reply = (success: boolean, matchIndex: number, conflictIndex = 0, conflictTerm = 0) =>
    n.send({ type: "appendEntriesResponse", to: m.from, success, matchIndex, rejectIndex: success ? 0 : m.prevLogIndex, conflictIndex, conflictTerm });
  if (m.prevLogIndex < log.committed) {
    reply(true, log.committed);
    return;
  }
  if (log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
    const lastNew = m.prevLogIndex + m.entries.length;
    // Append only from the first entry we do not already hold: a duplicate or reordered message must not
    // truncate entries that a later message already added.
    const conflictAt = m.entries.findIndex((e) => !log.matchTerm(e.index, e.term));
    if (conflictAt >= 0) n.appendToLog(m.entries.slice(conflictAt));
    log.commitTo(Math.min(m.commit, lastNew));
    reply(true, lastNew);
    return;
  }
  // Rejection hint (etcd findConflictByTerm): the last index whose term is <= the leader's prevLogTerm,
  // so the leader can skip a whole term of mismatching entries per round trip.
  const hint = log.findConflictByTerm(Math.min(m.prevLogIndex, log.lastIndex()), m.prevLogTerm);
  reply(false, 0, hint, Math.max(0, log.termOrNone(hint)));
}

/** Follower side of InstallSnapshot (Raft paper figure 13); answers with matchIndex = snapshot index. */
export function handleSnapshot(n: RaftNode, from: NodeId, s: Snapshot): void {
  const reply = (matchIndex: number) =>
    n.send({ type: "appendEntriesResponse", to: from, success: true, matchIndex, rejectIndex: 0, conflictIndex: 0, conflictTerm: 0 });
  if (s.meta.index <= n.log.committed) {
    reply(n.log.committed);
    return;
  }
  if (n.log.matchTerm(s.meta.index, s.meta.term)) {
    // Our log already holds the snapshot's last entry: just commit up to it and keep the tail.
    n.log.commitTo(s.meta.index);
    reply(s.meta.index);
    return;
  }
  n.restoreSnapshot(s);
  reply(s.meta.index);
}
