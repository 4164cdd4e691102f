/**
 * Leadership transfer (Raft thesis §3.10): the leader catches the target up, sends TimeoutNow, refuses
 * proposals meanwhile, and gives up after an election timeout. The target campaigns at once and its vote
 * requests pass the followers' leader lease.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, bytes } from "../helpers/raft-net.ts";
import { NotLeaderError, ProposalDroppedError } from "../../src/raft/index.ts";

describe("raft leadership transfer", () => {
  it("transfers to an up-to-date voter at once", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.node("a").transferLeader("b");
    const rd = net.handleReady("a")!;
    assert.deepEqual(rd.messages.filter((m) => m.type === "timeoutNow").map((m) => m.to), ["b"]);
    net.stabilize();
    assert.deepEqual(net.leaderIds(), ["b"]);
    assert.equal(net.node("b").status().term, 2);
    assert.equal(net.node("a").status().leaderId, "b");
  });

  it("catches a lagging target up first, refusing proposals meanwhile", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 3; i++) net.node("a").propose(bytes(`x${i}`));
    net.stabilize();
    net.heal();
    net.node("a").transferLeader("c");
    assert.equal(net.node("a").status().transferee, "c");
    assert.throws(() => net.node("a").propose(bytes("no")), ProposalDroppedError);
    for (let i = 0; i < 10 && !net.leaderIds().includes("c"); i++) {
      net.stabilize();
      net.tick("a", 1);
    }
    assert.deepEqual(net.leaderIds(), ["c"]);
    assert.equal(net.get("c").storage.lastIndex() >= 4, true);
  });

  it("aborts a transfer that does not finish within an election timeout", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.cut.add("a->c");
    net.node("a").transferLeader("c");
    net.stabilize();
    assert.equal(net.node("a").status().transferee, "c");
    for (let i = 0; i < 6; i++) net.tickAll();
    assert.deepEqual(net.leaderIds(), ["a"]);
    assert.equal(net.node("a").status().transferee, undefined);
    net.node("a").propose(bytes("accepted again"));
  });

  it("refuses off the leader and for a non-voter", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    assert.throws(() => net.node("b").transferLeader("c"), NotLeaderError);
    assert.throws(() => net.node("a").transferLeader("zz"), ProposalDroppedError);
    net.node("a").transferLeader("a");
    assert.equal(net.node("a").status().transferee, undefined, "transfer to self is a no-op");
  });

  it("TimeoutNow makes the target campaign without PreVote and the vote passes the followers' lease", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.node("a").transferLeader("b");
    net.handleReady("a");
    net.deliver();
    const rb = net.handleReady("b")!;
    const votes = rb.messages.filter((m) => m.type === "requestVote");
    assert.equal(votes.length, 2);
    assert.ok(votes.every((m) => m.type === "requestVote" && !m.preVote && m.leadershipTransfer));
  });
});
