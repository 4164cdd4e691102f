/**
 * The Raft core driven the way src/server/node.ts drives it with the WAL fsync off the event loop
 * (docs/storage.md "The Raft log's fsync off the event loop", docs/raft.md after the I/O ordering
 * contract): a Ready is written and applied, then, while its fsync is in flight, the node keeps stepping
 * messages, proposing and ticking, and only when the fsync resolves sends `messages` and calls
 * `advance()`. These tests pin what must hold in that window: `advance()` marks entries stable only when
 * the log still holds them at the same term (etcd raft's stableTo rule), hard state changed meanwhile
 * is in the next Ready and the replies depending on it leave only after it, and a leader counts itself
 * only for what `advance()` confirmed (Raft thesis §10.2.1).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, bytes, storageWith } from "../helpers/raft-net.ts";
import type { AppendEntriesMessage, Entry, Message, Snapshot } from "../../src/raft/index.ts";

const dec = new TextDecoder();

/** An entry of the test log (payload as text). */
const ent = (index: number, term: number, data = ""): Entry => ({ index, term, type: "normal", data: bytes(data) });

/** AppendEntries `from` -> `to` in `term`. */
function append(from: string, to: string, term: number, prev: [number, number], entries: Entry[], commit: number): AppendEntriesMessage {
  return { type: "appendEntries", from, to, term, prevLogIndex: prev[0], prevLogTerm: prev[1], entries, commit };
}

/** `index/term "data"` for every stored entry of `id` (the durable log as a test reads it). */
function storedLog(net: RaftNet, id: string): string[] {
  const s = net.get(id).storage;
  if (s.lastIndex() < s.firstIndex()) return [];
  return s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity).map((e) => `${e.index}/${e.term} "${dec.decode(e.data)}"`);
}

const positions = (entries: Entry[]) => entries.map((e) => `${e.index}/${e.term}`);

/** Short renderings of the replies a Ready carries (type, receiver, term and the field that matters). */
function replies(msgs: Message[]): string[] {
  return msgs.map((m) => {
    if (m.type === "appendEntriesResponse") return `${m.to} appendEntriesResponse t${m.term} ${m.success ? `match=${m.matchIndex}` : "reject"}`;
    if (m.type === "requestVoteResponse") return `${m.to} requestVoteResponse t${m.term} ${m.granted ? "granted" : "rejected"}`;
    return `${m.to} ${m.type} t${m.term}`;
  });
}

/** A 3-voter net whose member b holds `terms` (entry i+1 of term terms[i]) durably, with hard state term/commit. */
function followerB(terms: number[], term: number, commit: number): RaftNet {
  const net = new RaftNet(["a", "b", "c"]);
  net.add("b", storageWith(["a", "b", "c"], terms, { term, commit }, terms.map((_, i) => `d${i + 1}`)), commit);
  return net;
}

describe("raft with the persist of a Ready still in flight", () => {
  it("a newer leader's AppendEntries that replaces the pending entries: advance() leaves the replacement for the next Ready", () => {
    const net = followerB([1], 1, 1);
    const b = net.node("b");
    b.step(append("a", "b", 1, [1, 1], [ent(2, 1, "x"), ent(3, 1, "y")], 1));
    const rd1 = net.beginReady("b")!;
    assert.deepEqual(positions(rd1.entries), ["2/1", "3/1"]);
    assert.deepEqual(net.queue, [], "nothing leaves b before its write is durable");
    // While the fsync runs, c (leader of term 2) overwrites index 3.
    b.step(append("c", "b", 2, [2, 1], [ent(3, 2, "z")], 1));
    assert.equal(b.hasReady(), false, "no second Ready before advance()");
    assert.deepEqual({ term: b.status().term, leader: b.status().leaderId, last: b.status().lastIndex }, { term: 2, leader: "c", last: 3 });
    net.finishReady("b");
    assert.deepEqual(replies(net.queue), ["a appendEntriesResponse t1 match=3"], "only rd1's reply leaves with rd1");
    net.queue = [];
    // advance() saw (3, term 1) no longer in the log: index 3 of term 2 is still unstable and is rewritten.
    // 2/1 went out in rd1 and was written: the next Ready hands out only what the replacement changed.
    const rd2 = net.beginReady("b")!;
    assert.deepEqual(positions(rd2.entries), ["3/2"]);
    assert.deepEqual(rd2.hardState, { term: 2, vote: "", commit: 1 });
    net.finishReady("b");
    assert.deepEqual(replies(net.queue), ["c appendEntriesResponse t2 match=3"], "the reply to c leaves only once 3/2 is durable");
    assert.deepEqual(storedLog(net, "b"), ['1/1 "d1"', '2/1 "x"', '3/2 "z"']);
    assert.equal(b.hasReady(), false);
  });

  it("a replacement that starts below the pending entries and ends before their last index is rewritten too", () => {
    const net = followerB([1], 1, 1);
    const b = net.node("b");
    b.step(append("a", "b", 1, [1, 1], [ent(2, 1, "x"), ent(3, 1, "y")], 1));
    net.beginReady("b");
    b.step(append("c", "b", 2, [1, 1], [ent(2, 2, "z")], 1));
    assert.equal(b.status().lastIndex, 2);
    net.finishReady("b");
    const rd2 = net.beginReady("b")!;
    assert.deepEqual(positions(rd2.entries), ["2/2"]);
    net.finishReady("b");
    assert.deepEqual(storedLog(net, "b"), ['1/1 "d1"', '2/2 "z"'], "3/1 is gone: the rewrite deletes stored entries from index 2 on");
  });

  it("entries that come back identical (same index and term) while pending are stable once the pending write is durable", () => {
    // Log Matching (Raft paper §5.3): the same (index, term) is the same entry, so rd1's write covers them.
    const net = followerB([1], 1, 1);
    const b = net.node("b");
    b.step(append("a", "b", 1, [1, 1], [ent(2, 1, "x")], 1));
    net.beginReady("b");
    b.step(append("a", "b", 1, [1, 1], [ent(2, 1, "x"), ent(3, 1, "y")], 2));
    net.finishReady("b");
    const rd2 = net.beginReady("b")!;
    assert.deepEqual(positions(rd2.entries), ["3/1"], "2/1 is not written twice");
    assert.deepEqual(positions(rd2.committedEntries), ["2/1"]);
    net.finishReady("b");
    assert.deepEqual(storedLog(net, "b"), ['1/1 "d1"', '2/1 "x"', '3/1 "y"']);
  });

  it("a vote granted while a Ready is pending is in the next Ready's hard state, and its reply leaves only after that Ready", () => {
    const net = new RaftNet(["a", "b", "c"]);
    const b = net.node("b");
    b.step({ type: "requestVote", from: "a", to: "b", term: 1, preVote: false, lastLogIndex: 0, lastLogTerm: 0, leadershipTransfer: false });
    const rd1 = net.beginReady("b")!;
    assert.deepEqual(rd1.hardState, { term: 1, vote: "a", commit: 0 });
    b.step({ type: "requestVote", from: "c", to: "b", term: 2, preVote: false, lastLogIndex: 0, lastLogTerm: 0, leadershipTransfer: false });
    assert.deepEqual({ term: b.status().term, vote: b.status().vote }, { term: 2, vote: "c" });
    net.finishReady("b");
    assert.deepEqual(replies(net.queue), ["a requestVoteResponse t1 granted"]);
    assert.deepEqual(net.get("b").storage.initialState().hardState, { term: 1, vote: "a", commit: 0 });
    net.queue = [];
    const rd2 = net.beginReady("b")!;
    assert.deepEqual(rd2.hardState, { term: 2, vote: "c", commit: 0 });
    assert.deepEqual(net.queue, [], "the grant to c waits for rd2's fsync");
    net.finishReady("b");
    assert.deepEqual(replies(net.queue), ["c requestVoteResponse t2 granted"]);
    assert.deepEqual(net.get("b").storage.initialState().hardState, { term: 2, vote: "c", commit: 0 });
  });

  it("a crash while the vote's Ready is pending loses the vote and its reply never leaves; earlier Readies are kept", () => {
    const net = new RaftNet(["a", "b", "c"]);
    const vote = (from: string, term: number) =>
      net.node("b").step({ type: "requestVote", from, to: "b", term, preVote: false, lastLogIndex: 0, lastLogTerm: 0, leadershipTransfer: false });
    vote("a", 1);
    net.handleReady("b");
    net.queue = [];
    vote("c", 2);
    net.beginReady("b");
    net.crashPending("b");
    assert.deepEqual(net.queue, []);
    const st = net.node("b").status();
    assert.deepEqual({ term: st.term, vote: st.vote }, { term: 1, vote: "a" }, "term 1's vote was durable, term 2's was not");
    // The restarted node may vote again in term 2 (its grant to c never left), and only once.
    vote("a", 2);
    net.handleReady("b");
    vote("c", 2);
    net.handleReady("b");
    assert.deepEqual(replies(net.queue), ["a requestVoteResponse t2 granted", "c requestVoteResponse t2 rejected"]);
  });

  it("a leader proposing while its entries are pending counts itself only for what advance() confirmed", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const a = net.node("a");
    net.cut.add("a->c"); // c never answers: commit needs a's own durable copy plus b
    const x = a.propose(bytes("x"));
    const rd1 = net.beginReady("a")!;
    assert.deepEqual(positions(rd1.entries), [`${x.index}/1`]);
    net.deliver(); // sendNow: b gets x
    net.handleReady("b");
    net.deliver(); // b's ack reaches a while a's fsync of x is in flight
    assert.equal(a.status().progress!.b!.matchIndex, x.index);
    assert.equal(a.status().commitIndex, x.index - 1, "b alone is no quorum while a's copy is not durable");
    const y = a.propose(bytes("y"));
    assert.equal(a.hasReady(), false);
    net.finishReady("a");
    assert.equal(a.status().commitIndex, x.index, "a's copy of x is durable: a + b commit it");
    const rd2 = net.beginReady("a")!;
    assert.deepEqual(positions(rd2.entries), [`${y.index}/1`]);
    assert.deepEqual(rd2.committedEntries.map((e) => dec.decode(e.data)), ["x"]);
    net.deliver();
    net.handleReady("b");
    net.deliver();
    assert.equal(a.status().progress!.b!.matchIndex, y.index);
    assert.equal(a.status().commitIndex, x.index, "y waits for a's own fsync");
    net.finishReady("a");
    assert.equal(a.status().commitIndex, y.index);
  });

  it("takeSendNow: while the leader's fsync is in flight, a new entry is replicated at once, yet the leader counts itself only after advance()", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const a = net.node("a");
    net.cut.add("a->c");
    const x = a.propose(bytes("x"));
    net.beginReady("a");
    net.deliver();
    net.handleReady("b");
    net.deliver();
    // x's fsync on a is still in flight; y is proposed meanwhile.
    const y = a.propose(bytes("y"));
    const sent = a.takeSendNow();
    const toB = sent.filter((m): m is AppendEntriesMessage => m.type === "appendEntries" && m.to === "b");
    assert.deepEqual(toB.flatMap((m) => m.entries.map((e) => dec.decode(e.data))), ["y"], "y goes to b before any Ready carries it");
    assert.deepEqual(a.takeSendNow(), [], "taken once");
    assert.equal(a.hasReady(), false, "still no Ready before advance()");
    net.queue.push(...sent);
    net.deliver();
    net.handleReady("b");
    net.deliver();
    assert.equal(a.status().progress!.b!.matchIndex, y.index, "b acknowledged y while a's fsync of x was in flight");
    assert.equal(a.status().commitIndex, x.index - 1, "nothing commits on b's word alone");
    net.finishReady("a");
    assert.equal(a.status().commitIndex, x.index, "a's copy of x is durable; y is not yet (it was never written)");
    const rd2 = net.beginReady("a")!;
    assert.deepEqual(rd2.entries.map((e) => dec.decode(e.data)), ["y"], "y is written with the next Ready");
    assert.deepEqual(rd2.sendNow.filter((m) => m.type === "appendEntries" && m.to === "b" && m.entries.length > 0), [], "and not sent to b twice");
    net.finishReady("a");
    assert.equal(a.status().commitIndex, y.index);
    assert.deepEqual(net.node("b").takeSendNow(), [], "a follower has nothing to send early");
  });

  it("a leader deposed while its entry is pending: the new leader's entry replaces it and the old one is never counted", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const a = net.node("a");
    const x = a.propose(bytes("x"));
    net.beginReady("a");
    net.queue = []; // its AppendEntries are lost
    net.isolate("a");
    // c heard from a within the election timeout and would ignore b's votes (thesis §4.2.3); a TimeoutNow
    // (as a leadership transfer sends) makes b campaign past that lease.
    net.node("b").step({ type: "timeoutNow", from: "a", to: "b", term: 1 });
    net.stabilize();
    assert.deepEqual(net.leaderIds().sort(), ["a", "b"], "a has not heard of term 2 yet");
    const bTerm = net.node("b").status().term;
    const bLog = net.get("b").storage;
    // b's AppendEntries reaches a while a's fsync of x is still in flight: index x is replaced.
    a.step(append("b", "a", bTerm, [x.index - 1, 1], bLog.entries(x.index, bLog.lastIndex() + 1, Infinity), net.node("b").status().commitIndex));
    assert.deepEqual({ role: a.status().role, leader: a.status().leaderId }, { role: "follower", leader: "b" });
    net.finishReady("a");
    const rd2 = net.beginReady("a")!;
    assert.deepEqual(positions(rd2.entries), [`${x.index}/${bTerm}`]);
    assert.deepEqual(positions(rd2.committedEntries), [`${x.index}/${bTerm}`], "what commits at x's index is b's no-op, never x");
    net.finishReady("a");
    assert.deepEqual(storedLog(net, "a"), storedLog(net, "b"));
    assert.equal(net.get("a").storage.term(x.index), bTerm);
  });

  it("an InstallSnapshot stepped while a Ready is pending: advance() succeeds and the next Ready installs the snapshot", () => {
    const net = followerB([1], 1, 1);
    const b = net.node("b");
    b.step(append("a", "b", 1, [1, 1], [ent(2, 1, "x")], 2));
    const rd1 = net.beginReady("b")!;
    assert.deepEqual(positions(rd1.committedEntries), ["2/1"]);
    const snapshot: Snapshot = { meta: { index: 10, term: 1, confState: { voters: ["a", "b", "c"], votersOutgoing: [], learners: [] } }, data: bytes("s10") };
    b.step({ type: "installSnapshot", from: "a", to: "b", term: 1, snapshot });
    net.finishReady("b"); // threw "snapshot 10 > applied 2" before the fix: the check counted the unstable snapshot
    assert.equal(b.status().appliedIndex, 2);
    const rd2 = net.beginReady("b")!;
    assert.equal(rd2.snapshot?.meta.index, 10);
    assert.deepEqual(rd2.committedEntries, []);
    net.finishReady("b");
    assert.deepEqual(replies(net.queue), ["a appendEntriesResponse t1 match=2", "a appendEntriesResponse t1 match=10"]);
    const st = b.status();
    assert.deepEqual({ first: st.firstIndex, last: st.lastIndex, commit: st.commitIndex, applied: st.appliedIndex }, { first: 11, last: 10, commit: 10, applied: 10 });
  });
});
