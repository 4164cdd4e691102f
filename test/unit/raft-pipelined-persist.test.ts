/**
 * The Raft core with `maxReadysInFlight` > 1, driven the way src/server/node.ts pipelines its persists:
 * the next Ready is taken and written while earlier ones' fsyncs are in flight, and each is advanced,
 * in order, once durable. These tests pin what each Ready hands out (only what earlier ones did not),
 * the bound and the snapshot rule, what happens when a newer leader replaces handed-out entries (they
 * are handed out again: etcd raft's unstable.offsetInProgress), and that a leader counts itself only
 * for the Readys advanced so far (Raft thesis §10.2.1).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, bytes, storageWith } from "../helpers/raft-net.ts";
import { RaftError, type AppendEntriesMessage, type Entry, type Ready } from "../../src/raft/index.ts";

const ent = (index: number, term: number, data = ""): Entry => ({ index, term, type: "normal", data: bytes(data) });

function append(from: string, to: string, term: number, prev: [number, number], entries: Entry[], commit: number): AppendEntriesMessage {
  return { type: "appendEntries", from, to, term, prevLogIndex: prev[0], prevLogTerm: prev[1], entries, commit };
}

const positions = (entries: Entry[]) => entries.map((e) => `${e.index}/${e.term}`);

/** A 3-voter net (every node with `maxReadysInFlight` = depth) whose b holds entries of `terms` durably. */
function followerB(terms: number[], term: number, commit: number, depth: number): RaftNet {
  const net = new RaftNet(["a", "b", "c"], { maxReadysInFlight: depth });
  net.add("b", storageWith(["a", "b", "c"], terms, { term, commit }, terms.map((_, i) => `d${i + 1}`)), commit);
  return net;
}

/** Step 2 of the contract for b: the Ready's snapshot, entries and hard state written to its storage. */
function write(net: RaftNet, id: string, rd: Ready): void {
  const st = net.get(id).storage;
  if (rd.snapshot) st.applySnapshot(rd.snapshot);
  st.append(rd.entries);
  if (rd.hardState) st.setHardState(rd.hardState);
}

describe("raft with pipelined persist (maxReadysInFlight > 1)", () => {
  it("each Ready hands out only the entries, commits and hard state the earlier ones did not; at most maxReadysInFlight are out", () => {
    const net = followerB([1], 1, 1, 2);
    const b = net.node("b");
    b.step(append("a", "b", 1, [1, 1], [ent(2, 1), ent(3, 1)], 1));
    const rd1 = b.ready();
    write(net, "b", rd1);
    assert.deepEqual(positions(rd1.entries), ["2/1", "3/1"]);
    assert.deepEqual(positions(rd1.committedEntries), []);
    // While rd1's fsync runs: the leader sends 4 and commits up to 3.
    b.step(append("a", "b", 1, [3, 1], [ent(4, 1)], 3));
    assert.equal(b.hasReady(), true, "a second Ready may go out before the first is advanced");
    const rd2 = b.ready();
    write(net, "b", rd2);
    assert.deepEqual(positions(rd2.entries), ["4/1"], "2 and 3 went out in rd1");
    assert.deepEqual(positions(rd2.committedEntries), ["2/1", "3/1"]);
    assert.deepEqual(rd2.hardState, { term: 1, vote: "", commit: 3 });
    // A third message, but two Readys are out: the bound holds.
    b.step(append("a", "b", 1, [4, 1], [ent(5, 1)], 4));
    assert.equal(b.hasReady(), false);
    assert.throws(() => b.ready(), (e: unknown) => e instanceof RaftError && /2 Readys awaiting advance\(\) \(at most 2/.test(e.message));
    // The replies leave with their own Ready; advancing the oldest frees a slot.
    assert.deepEqual(rd1.messages.map((m) => m.type === "appendEntriesResponse" && m.matchIndex), [3]);
    assert.deepEqual(rd2.messages.map((m) => m.type === "appendEntriesResponse" && m.matchIndex), [4]);
    b.advance();
    assert.equal(b.status().appliedIndex, 1, "rd1 applied nothing");
    const rd3 = b.ready();
    assert.deepEqual(positions(rd3.entries), ["5/1"]);
    assert.deepEqual(positions(rd3.committedEntries), ["4/1"], "2 and 3 went out for applying in rd2");
    write(net, "b", rd3);
    b.advance();
    assert.equal(b.status().appliedIndex, 3);
    b.advance();
    assert.equal(b.status().appliedIndex, 4);
    assert.equal(b.hasReady(), false);
    const st = net.get("b").storage;
    assert.deepEqual(positions(st.entries(1, st.lastIndex() + 1, Infinity)), ["1/1", "2/1", "3/1", "4/1", "5/1"]);
  });

  it("entries a newer leader writes over handed-out ones are handed out again, and the stale advance() leaves them unstable", () => {
    const net = followerB([1], 1, 1, 4);
    const b = net.node("b");
    b.step(append("a", "b", 1, [1, 1], [ent(2, 1, "x"), ent(3, 1, "y"), ent(4, 1, "w")], 1));
    const rd1 = b.ready();
    write(net, "b", rd1);
    // c, leader of term 2, replaces 3 and 4 with one entry 3 of term 2 while rd1's fsync runs.
    b.step(append("c", "b", 2, [2, 1], [ent(3, 2, "z")], 1));
    const rd2 = b.ready();
    assert.deepEqual(positions(rd2.entries), ["3/2"], "the replacement, not 2/1 again");
    write(net, "b", rd2);
    b.advance(); // rd1: (4, term 1) is gone from the log, so nothing becomes stable
    assert.equal(b.status().lastIndex, 3);
    b.advance(); // rd2
    const st = net.get("b").storage;
    assert.deepEqual(positions(st.entries(1, st.lastIndex() + 1, Infinity)), ["1/1", "2/1", "3/2"]);
    assert.equal(b.hasReady(), false, "nothing left to write");
    assert.deepEqual(net.node("b").log.unstable, []);
  });

  it("a leader counts its own entries toward the commit only as their Ready is advanced", () => {
    const net = new RaftNet(["a", "b", "c"], { maxReadysInFlight: 4 });
    net.elect("a");
    const a = net.node("a");
    const before = a.status().commitIndex;
    a.propose(bytes("p1"));
    const rd1 = a.ready();
    write(net, "a", rd1);
    a.propose(bytes("p2"));
    const rd2 = a.ready();
    write(net, "a", rd2);
    assert.deepEqual(rd1.entries.length + rd2.entries.length, 2);
    // Only b gets the AppendEntries (c hears nothing): b and a make the quorum, so a's own durability,
    // Ready by Ready, decides what commits.
    for (const m of [...rd1.sendNow, ...rd2.sendNow]) if (m.to === "b") net.node("b").step(m);
    net.handleReady("b");
    for (const m of net.queue.splice(0)) if (m.to === "a") a.step(m);
    assert.equal(a.status().commitIndex, before, "b alone is not a quorum while a's own entries are not advanced");
    a.advance();
    assert.equal(a.status().commitIndex, before + 1, "rd1 advanced: p1 commits with b");
    a.advance();
    assert.equal(a.status().commitIndex, before + 2, "rd2 advanced: p2 too");
  });
});
