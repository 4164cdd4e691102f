/**
 * Membership by joint consensus with learners (Raft thesis §4.3, etcd-style learners): the ConfState
 * arithmetic, changes taking effect when appended (thesis §4.1) and reverting on truncation, one change
 * in flight, auto-leave of the joint configuration, removing the leader, a learner joining with an empty
 * ConfState, and a removed node not disrupting the cluster (thesis §4.2.3).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, appliedData, bytes } from "../helpers/raft-net.ts";
import { MemoryStorage, ProposalDroppedError, RaftError, applyConfChange, type ConfState, type Entry } from "../../src/raft/index.ts";

const cs = (voters: string[], votersOutgoing: string[] = [], learners: string[] = []): ConfState => ({ voters, votersOutgoing, learners });

/** Stabilizes and ticks the leader until `pred` holds (bounded). */
function runUntil(net: RaftNet, leader: string, pred: () => boolean): void {
  for (let i = 0; i < 30 && !pred(); i++) {
    net.stabilize();
    if (!pred()) net.tick(leader, 3);
  }
  net.stabilize();
}

describe("applyConfChange", () => {
  it("adds learners directly and changes voters through a joint configuration", () => {
    const base = cs(["a", "b", "c"]);
    assert.deepEqual(applyConfChange(base, { steps: [{ type: "addLearner", nodeId: "d" }] }), cs(["a", "b", "c"], [], ["d"]));
    const joint = applyConfChange(cs(["a", "b", "c"], [], ["d"]), { steps: [{ type: "promote", nodeId: "d" }] });
    assert.deepEqual(joint, cs(["a", "b", "c", "d"], ["a", "b", "c"], []));
    assert.deepEqual(applyConfChange(joint, { steps: [] }), cs(["a", "b", "c", "d"]));
    assert.deepEqual(applyConfChange(base, { steps: [{ type: "remove", nodeId: "a" }] }), cs(["b", "c"], ["a", "b", "c"]));
    assert.deepEqual(applyConfChange(cs(["a"], [], ["l"]), { steps: [{ type: "remove", nodeId: "l" }] }), cs(["a"]));
  });

  it("an update step changes no set (only its context matters) and needs an existing member", () => {
    const base = cs(["a", "b"], [], ["l"]);
    assert.deepEqual(applyConfChange(base, { steps: [{ type: "update", nodeId: "a", context: "{}" }] }), base);
    assert.deepEqual(applyConfChange(base, { steps: [{ type: "update", nodeId: "l" }] }), base);
    assert.throws(() => applyConfChange(base, { steps: [{ type: "update", nodeId: "x" }] }), (e: unknown) => e instanceof RaftError && e.code === "invariant");
  });

  it("rejects invalid changes with RaftError('invariant')", () => {
    const bad: Array<[ConfState, Parameters<typeof applyConfChange>[1]]> = [
      [cs(["a", "b"]), { steps: [] }],
      [cs(["a", "b"], ["a"]), { steps: [{ type: "addLearner", nodeId: "x" }] }],
      [cs(["a", "b"]), { steps: [{ type: "addLearner", nodeId: "a" }] }],
      [cs(["a", "b"]), { steps: [{ type: "promote", nodeId: "x" }] }],
      [cs(["a", "b"]), { steps: [{ type: "remove", nodeId: "x" }] }],
      [cs(["a"]), { steps: [{ type: "remove", nodeId: "a" }] }],
      [cs(["a"]), { steps: [{ type: "addLearner", nodeId: "x" }, { type: "promote", nodeId: "x" }] }],
    ];
    for (const [state, change] of bad) assert.throws(() => applyConfChange(state, change), (e: unknown) => e instanceof RaftError && e.code === "invariant");
  });
});

describe("raft membership", () => {
  it("a learner joins with an empty ConfState, learns the membership from the log, and never votes", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.node("a").propose(bytes("before"));
    net.stabilize();
    net.add("d", new MemoryStorage());
    net.node("a").proposeConfChange({ steps: [{ type: "addLearner", nodeId: "d" }] });
    runUntil(net, "a", () => net.get("d").appliedIndex === net.get("a").appliedIndex);
    assert.deepEqual(net.node("d").status().confState, cs(["a", "b", "c"], [], ["d"]));
    assert.deepEqual(appliedData(net.get("d")), ["before"]);
    assert.equal(net.node("a").status().progress!.d!.isLearner, true);
    // The learner's match does not count: with b and c cut off nothing commits.
    net.isolate("b");
    net.isolate("c");
    const p = net.node("a").propose(bytes("x"));
    net.stabilize();
    assert.ok(net.node("a").status().commitIndex < p.index);
    for (let i = 0; i < 40; i++) net.node("d").tick();
    assert.equal(net.node("d").status().role, "follower", "a learner never campaigns");
  });

  it("promotes a learner through a joint configuration that the leader leaves by itself", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.add("d", new MemoryStorage());
    net.node("a").proposeConfChange({ steps: [{ type: "addLearner", nodeId: "d" }] });
    runUntil(net, "a", () => net.get("d").appliedIndex === net.get("a").appliedIndex);
    net.node("a").proposeConfChange({ steps: [{ type: "promote", nodeId: "d" }] });
    assert.deepEqual(net.node("a").status().confState, cs(["a", "b", "c", "d"], ["a", "b", "c"]), "in force once appended");
    runUntil(net, "a", () => net.get("d").appliedIndex === net.get("a").appliedIndex && net.node("a").status().confState.votersOutgoing.length === 0);
    for (const id of ["a", "b", "c", "d"]) assert.deepEqual(net.node(id).status().confState, cs(["a", "b", "c", "d"]));
    const confEntries: Entry[] = [];
    for (let i = 1; i <= net.get("a").storage.lastIndex(); i++) {
      const e = net.get("a").storage.entries(i, i + 1, Infinity)[0]!;
      if (e.type === "confChange") confEntries.push(e);
    }
    assert.deepEqual(confEntries.map((e) => e.confChange!.steps.length), [1, 1, 0], "addLearner, promote, leave-joint");
  });

  it("allows one membership change in flight at a time", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.node("a").proposeConfChange({ steps: [{ type: "addLearner", nodeId: "d" }] });
    assert.throws(() => net.node("a").proposeConfChange({ steps: [{ type: "addLearner", nodeId: "e" }] }), ProposalDroppedError);
    net.stabilize();
    net.node("a").proposeConfChange({ steps: [{ type: "addLearner", nodeId: "e" }] });
    assert.throws(() => net.node("a").proposeConfChange({ steps: [{ type: "addLearner", nodeId: "e" }] }), ProposalDroppedError);
    net.stabilize();
    assert.throws(() => net.node("a").proposeConfChange({ steps: [{ type: "addLearner", nodeId: "e" }] }), RaftError, "invalid: already a member");
  });

  it("removes a follower; the removed node cannot disrupt the cluster", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.node("a").proposeConfChange({ steps: [{ type: "remove", nodeId: "c" }] });
    runUntil(net, "a", () => net.node("a").status().confState.votersOutgoing.length === 0 && net.node("b").status().confState.votersOutgoing.length === 0);
    assert.deepEqual(net.node("a").status().confState, cs(["a", "b"]));
    const term = net.node("a").status().term;
    for (let i = 0; i < 40; i++) net.tickAll();
    assert.deepEqual(net.leaderIds(), ["a"]);
    assert.equal(net.node("a").status().term, term, "the removed node's elections never reached the others' terms");
    net.isolate("c");
    net.node("a").propose(bytes("two voters"));
    net.stabilize();
    assert.deepEqual(appliedData(net.get("b")), ["two voters"], "a and b alone commit now");
  });

  it("removes the leader: it leads until the change commits, then steps down and never campaigns", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.node("a").proposeConfChange({ steps: [{ type: "remove", nodeId: "a" }] });
    assert.equal(net.node("a").status().role, "leader");
    runUntil(net, "a", () => net.node("a").status().role !== "leader");
    assert.equal(net.node("a").status().role, "follower");
    assert.equal(net.node("a").stepDownReason, "removed from the configuration");
    assert.deepEqual(net.node("a").status().confState, cs(["b", "c"]));
    for (let i = 0; i < 40 && net.leaderIds().length === 0; i++) net.tickAll();
    const leaders = net.leaderIds();
    assert.equal(leaders.length, 1);
    assert.notEqual(leaders[0], "a");
    net.node(leaders[0]!).propose(bytes("after removal"));
    net.stabilize();
    assert.deepEqual(appliedData(net.get(leaders[0] === "b" ? "c" : "b")), ["after removal"]);
  });

  it("a conf entry takes effect when appended and is reverted when a new leader truncates it", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const b = net.node("b");
    const confEntry: Entry = {
      index: 2, term: 1, type: "confChange", data: new Uint8Array(0),
      confChange: { steps: [{ type: "addLearner", nodeId: "x" }] }, confState: cs(["a", "b", "c"], [], ["x"]),
    };
    b.step({ type: "appendEntries", from: "a", to: "b", term: 1, prevLogIndex: 1, prevLogTerm: 1, entries: [confEntry], commit: 1 });
    assert.deepEqual(b.status().confState, cs(["a", "b", "c"], [], ["x"]));
    b.step({ type: "appendEntries", from: "c", to: "b", term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term: 2, type: "normal", data: new Uint8Array(0) }], commit: 1 });
    assert.deepEqual(b.status().confState, cs(["a", "b", "c"]), "back to the bootstrap membership");
  });

  it("a proposal that is invalid for the current membership throws and appends nothing", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const last = net.node("a").status().lastIndex;
    assert.throws(() => net.node("a").proposeConfChange({ steps: [{ type: "promote", nodeId: "zz" }] }), { code: "invariant" });
    assert.equal(net.node("a").status().lastIndex, last);
  });
});
