/**
 * Leader election rules: randomized timeouts from the injected Rng, one vote per term, the up-to-date log
 * check (Raft paper §5.2, §5.4.1), PreVote (thesis §9.6), CheckQuorum (thesis §6.2), ignoring votes while
 * a leader is known (thesis §4.2.3), and the vote's durability before the answer (forget-vote bug).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, bytes } from "../helpers/raft-net.ts";
import { DEFAULT_RAFT_CONFIG, MemoryStorage, RaftNode, createRng, type Message, type RaftConfig } from "../../src/raft/index.ts";

function ticksUntilCampaign(seed: number): number {
  const node = new RaftNode({ ...DEFAULT_RAFT_CONFIG, id: "a", preVote: false }, new MemoryStorage({ confState: { voters: ["a", "b", "c"], votersOutgoing: [], learners: [] } }), createRng(seed));
  for (let t = 1; t <= 100; t++) {
    node.tick();
    if (node.status().role === "candidate") return t;
  }
  return -1;
}

describe("raft election", () => {
  it("draws the election timeout from the injected Rng within [electionTicks, 2*electionTicks)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const t = ticksUntilCampaign(seed);
      assert.ok(t >= 6 && t < 12, `timeout ${t} out of range`);
      seen.add(t);
      assert.equal(ticksUntilCampaign(seed), t, "same seed, same timeout");
    }
    assert.ok(seen.size >= 3, "timeouts are spread out");
  });

  it("elects a leader that replicates a no-op of its term, and a proposal commits everywhere", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const st = net.node("a").status();
    assert.equal(st.role, "leader");
    assert.equal(st.term, 1);
    for (const id of ["b", "c"]) {
      assert.equal(net.node(id).status().leaderId, "a");
      assert.equal(net.get(id).storage.term(1), 1, "no-op of term 1 at index 1");
      assert.equal(net.node(id).status().commitIndex, 1);
    }
    const { index, term } = net.node("a").propose(bytes("x"));
    assert.deepEqual({ index, term }, { index: 2, term: 1 });
    net.stabilize();
    for (const id of ["a", "b", "c"]) assert.equal(net.get(id).applied[0]!.index, 2);
  });

  it("an election on timeout elects someone, with one leader per term", () => {
    const net = new RaftNet(["a", "b", "c", "d", "e"], {}, { seed: 7 });
    for (let i = 0; i < 40 && net.leaderIds().length === 0; i++) net.tickAll();
    assert.equal(net.leaderIds().length, 1);
    const term = net.node(net.leaderIds()[0]!).status().term;
    const leadersOfTerm = [...net.members.values()].filter((m) => m.node.status().role === "leader" && m.node.status().term === term);
    assert.equal(leadersOfTerm.length, 1);
  });

  it("grants at most one vote per term and only to an up-to-date log", () => {
    const net = new RaftNet(["a", "b", "c"], { preVote: false });
    net.elect("a");
    net.node("a").propose(bytes("x"));
    net.stabilize();
    const b = net.node("b");
    const vote = (from: string, term: number, lastLogIndex: number, lastLogTerm: number): Message => ({
      type: "requestVote", from, to: "b", term, preVote: false, lastLogIndex, lastLogTerm, leadershipTransfer: true,
    });
    // Stale log: index 1 < b's last index 2 with the same term.
    b.step(vote("c", 5, 1, 1));
    net.handleReady("b");
    let out = net.queue.filter((m) => m.type === "requestVoteResponse");
    assert.equal(out.length, 1);
    assert.equal((out[0] as { granted: boolean }).granted, false);
    net.queue = [];
    b.step(vote("c", 5, 2, 1));
    b.step(vote("a", 5, 9, 1));
    net.handleReady("b");
    out = net.queue.filter((m) => m.type === "requestVoteResponse");
    assert.deepEqual(out.map((m) => [m.to, (m as { granted: boolean }).granted]), [["c", true], ["a", false]]);
    assert.equal(net.get("b").storage.initialState().hardState.vote, "c");
  });

  it("persists term and vote before the vote request and the vote answer leave (messages, not sendNow)", () => {
    const net = new RaftNet(["a", "b", "c"], { preVote: false });
    net.node("a").campaign();
    const rd = net.node("a").ready();
    assert.deepEqual(rd.hardState, { term: 1, vote: "a", commit: 0 });
    assert.equal(rd.sendNow.length, 0);
    assert.deepEqual(rd.messages.map((m) => [m.type, m.to]), [["requestVote", "b"], ["requestVote", "c"]]);
    net.node("a").advance();
    net.node("b").step(rd.messages[0]!);
    const rb = net.node("b").ready();
    assert.deepEqual(rb.hardState, { term: 1, vote: "a", commit: 0 });
    assert.equal(rb.messages[0]!.type, "requestVoteResponse");
    assert.equal(rb.sendNow.length, 0);
  });

  it("forget-vote bug: the persisted hard state drops the vote, so a restarted node votes twice in a term", () => {
    for (const bug of [false, true]) {
      const net = new RaftNet(["a", "b", "c"], { preVote: false, bugs: new Set(bug ? ["forget-vote"] : []) });
      net.node("a").campaign();
      net.handleReady("a");
      net.deliver((m) => m.to === "b");
      net.handleReady("b");
      assert.equal(net.get("b").storage.initialState().hardState.vote, bug ? "" : "a");
      net.queue = [];
      net.restart("b");
      net.node("b").step({ type: "requestVote", from: "c", to: "b", term: 1, preVote: false, lastLogIndex: 0, lastLogTerm: 0, leadershipTransfer: false });
      net.handleReady("b");
      const ans = net.queue.find((m) => m.type === "requestVoteResponse" && m.to === "c") as { granted: boolean };
      assert.equal(ans.granted, bug, bug ? "the bug lets b vote again" : "b remembers its vote");
    }
  });

  it("PreVote: an isolated node does not raise its term and does not disrupt the leader when it returns", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 30; i++) net.tickAll();
    assert.equal(net.node("c").status().term, 1, "pre-votes never win, so the term stays");
    assert.notEqual(net.node("c").status().role, "leader");
    net.heal();
    for (let i = 0; i < 10; i++) net.tickAll();
    assert.deepEqual(net.leaderIds(), ["a"]);
    assert.equal(net.node("a").status().term, 1);
    assert.equal(net.node("c").status().leaderId, "a");
  });

  it("without PreVote an isolated node does raise its term (the rule above is not vacuous)", () => {
    const net = new RaftNet(["a", "b", "c"], { preVote: false });
    net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 30; i++) net.tickAll();
    assert.ok(net.node("c").status().term > 1);
  });

  it("a follower that heard from the leader recently ignores a (pre)vote, unless it is a leadership transfer", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const b = net.node("b");
    for (const preVote of [true, false]) {
      b.step({ type: "requestVote", from: "c", to: "b", term: 5, preVote, lastLogIndex: 9, lastLogTerm: 9, leadershipTransfer: false });
      assert.equal(b.hasReady(), false, "no answer, no state change");
      assert.equal(b.status().term, 1);
    }
    b.step({ type: "requestVote", from: "c", to: "b", term: 5, preVote: false, lastLogIndex: 9, lastLogTerm: 9, leadershipTransfer: true });
    assert.equal(b.status().term, 5);
    assert.equal(b.status().vote, "c");
  });

  it("after an election timeout without the leader, a follower answers pre-votes again", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const b = net.node("b");
    net.tick("b", 6);
    b.step({ type: "requestVote", from: "c", to: "b", term: 2, preVote: true, lastLogIndex: 9, lastLogTerm: 9, leadershipTransfer: false });
    net.handleReady("b");
    const ans = net.queue.find((m) => m.type === "requestVoteResponse") as { granted: boolean; term: number };
    assert.equal(ans.granted, true);
    assert.equal(ans.term, 2, "a granted pre-vote carries the proposed term");
    assert.equal(b.status().term, 1, "a pre-vote changes nothing on the receiver");
  });

  it("CheckQuorum: a leader that hears from no quorum within an election timeout steps down", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("a");
    for (let i = 0; i < 5; i++) net.tickAll();
    assert.equal(net.node("a").status().role, "leader", "still leading within the first timeout");
    for (let i = 0; i < 8; i++) net.tickAll();
    assert.notEqual(net.node("a").status().role, "leader");
    assert.throws(() => net.node("a").propose(bytes("x")), { code: "not_leader" });
    // The Ready that hands out the step-down says why (the node's "stepped down" line, src/server/role-log.ts).
    const down = net.get("a").readies.map((rd) => rd.softState).filter((s) => s && s.role !== "leader" && s.stepDownReason);
    assert.equal(down.length, 1);
    assert.equal(down[0]!.stepDownReason, "CheckQuorum: 1 of the members heard from within the election timeout, no quorum");
    assert.equal(net.get("b").readies.some((rd) => rd.softState?.stepDownReason !== undefined), false, "only a leader's step-down carries a reason");
  });

  it("a leader with a quorum keeps leading across many election timeouts", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 40; i++) net.tickAll();
    assert.equal(net.node("a").status().role, "leader");
    assert.equal(net.node("a").status().term, 1);
  });

  it("a stale leader learns the newer term from a follower's answer and steps down", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("a");
    // Only b and c tick: a keeps believing it leads (its CheckQuorum timer does not run).
    const newLeader = () => ["b", "c"].find((id) => net.node(id).status().role === "leader");
    for (let i = 0; i < 60 && !newLeader(); i++) {
      net.node("b").tick();
      net.node("c").tick();
      net.stabilize();
    }
    const nl = newLeader();
    assert.ok(nl, "b or c was elected");
    assert.ok(net.node(nl).status().term >= 2);
    assert.equal(net.node("a").status().role, "leader", "a still believes it leads (CheckQuorum not yet fired)");
    net.heal();
    net.node("a").tick();
    net.node("a").tick();
    net.node("a").tick();
    net.stabilize();
    assert.equal(net.node("a").status().role, "follower");
    assert.match(net.node("a").stepDownReason, new RegExp(`of the newer term ${net.node(nl).status().term} came from [bc]$`));
    net.tick(nl, 3); // the new leader's next heartbeat names it
    net.stabilize();
    assert.equal(net.node("a").status().leaderId, nl);
    assert.equal(net.node("a").status().term, net.node(nl).status().term);
  });

  it("config fields left undefined take the defaults; an inconsistent config throws", () => {
    const st = new MemoryStorage({ confState: { voters: ["a"], votersOutgoing: [], learners: [] } });
    const node = new RaftNode({ id: "a", bugs: undefined, electionTicks: undefined } as unknown as RaftConfig, st, createRng(1));
    node.campaign();
    assert.equal(node.status().role, "leader");
    assert.equal(node.cfg.electionTicks, 6);
    assert.throws(() => new RaftNode({ ...DEFAULT_RAFT_CONFIG, id: "a", heartbeatTicks: 6 }, st, createRng(1)), { code: "invariant" });
  });

  it("learners and non-members never campaign", () => {
    const net = new RaftNet(["a", "b"], {}, { confState: { voters: ["a", "b"], votersOutgoing: [], learners: ["l"] }, extra: ["x"] });
    net.add("l", new MemoryStorage({ confState: { voters: ["a", "b"], votersOutgoing: [], learners: ["l"] } }));
    for (let i = 0; i < 50; i++) {
      net.node("l").tick();
      net.node("x").tick();
    }
    assert.equal(net.node("l").hasReady(), false);
    assert.equal(net.node("x").hasReady(), false);
    assert.equal(net.node("l").status().term, 0);
  });

  it("a single-voter cluster elects itself and commits once its own log is durable", () => {
    const net = new RaftNet(["s"]);
    net.node("s").campaign();
    assert.equal(net.node("s").status().role, "leader");
    assert.equal(net.node("s").status().commitIndex, 0, "the no-op is not durable yet");
    net.stabilize();
    assert.equal(net.node("s").status().commitIndex, 1);
  });
});
