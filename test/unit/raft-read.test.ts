/**
 * ReadIndex (Raft thesis §6.4): a read is served at the commit index once the leader has committed an
 * entry of its term and a quorum answered a heartbeat sent after the read arrived; reads are batched into
 * rounds; followers forward; lease reads need CheckQuorum; lost leadership fails pending reads; the
 * stale-read bug serves at once.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, bytes } from "../helpers/raft-net.ts";
import { NotLeaderError, type HeartbeatMessage } from "../../src/raft/index.ts";

describe("raft ReadIndex", () => {
  it("serves a read at the commit index after a quorum heartbeat round", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const w = net.node("a").propose(bytes("w"));
    net.stabilize();
    net.node("a").readIndex("r1");
    const rd = net.handleReady("a")!;
    assert.deepEqual(rd.readStates, [], "not before the quorum answered");
    const hbs = rd.sendNow.filter((m): m is HeartbeatMessage => m.type === "heartbeat");
    assert.equal(hbs.length, 2);
    assert.ok(hbs.every((m) => m.readSeq > 0));
    net.stabilize();
    assert.deepEqual(net.get("a").readStates, [{ requestId: "r1", index: w.index }]);
  });

  it("does not serve reads while no quorum answers; they fail when the leader steps down", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("a");
    net.node("a").readIndex("r1");
    for (let i = 0; i < 5; i++) net.tickAll();
    assert.deepEqual(net.get("a").readStates, []);
    for (let i = 0; i < 10; i++) net.tickAll();
    assert.notEqual(net.node("a").status().role, "leader");
    assert.deepEqual(net.get("a").droppedReads, ["r1"]);
    assert.deepEqual(net.get("a").readStates, [], "never served after being dropped");
  });

  it("a new leader waits for its term's no-op to commit before confirming reads", () => {
    const net = new RaftNet(["a", "b", "c"], { preVote: false });
    const a = net.node("a");
    a.campaign();
    net.stabilize(200, (m) => m.type === "requestVote" || m.type === "requestVoteResponse");
    assert.equal(a.status().role, "leader");
    a.readIndex("early");
    // Heartbeats alone (no AppendEntries delivered): a quorum confirms leadership, yet nothing is served.
    net.tick("a", 3);
    net.stabilize(200, (m) => m.type !== "appendEntries");
    assert.deepEqual(net.get("a").readStates, []);
    net.tick("a", 3);
    net.stabilize();
    assert.deepEqual(net.get("a").readStates, [{ requestId: "early", index: 1 }]);
  });

  it("batches the reads that arrive during a round into a single next round", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const a = net.node("a");
    a.readIndex("first");
    const rd = net.handleReady("a")!;
    const firstSeq = (rd.sendNow.find((m) => m.type === "heartbeat") as HeartbeatMessage).readSeq;
    for (let i = 0; i < 10; i++) a.readIndex(`r${i}`);
    assert.equal(a.hasReady(), false, "no new round while one is in flight");
    const seqs = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const any = net.handleAllReady();
      for (const m of net.queue) if (m.type === "heartbeat" && m.readSeq > firstSeq) seqs.add(m.readSeq);
      if (!any && net.queue.length === 0) break;
      net.deliver();
    }
    assert.deepEqual([...seqs], [firstSeq + 1], "one more round for the ten reads");
    assert.equal(net.get("a").readStates.length, 11);
  });

  it("a follower forwards reads to the leader and serves them at the leader's read index", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const w = net.node("a").propose(bytes("w"));
    net.stabilize();
    net.node("b").readIndex("fr");
    const rb = net.handleReady("b")!;
    assert.deepEqual(rb.messages.map((m) => [m.type, m.to]), [["readIndex", "a"]]);
    net.stabilize();
    assert.deepEqual(net.get("b").readStates, [{ requestId: "fr", index: w.index }]);
  });

  it("a follower sends the reads asked before its next Ready in one readIndex message; the leader answers them in one", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const w = net.node("a").propose(bytes("w"));
    net.stabilize();
    for (let i = 0; i < 5; i++) net.node("b").readIndex(`f${i}`);
    const rb = net.handleReady("b")!;
    const asks = rb.messages.filter((m) => m.type === "readIndex");
    assert.equal(asks.length, 1);
    assert.deepEqual(asks[0]!.type === "readIndex" && asks[0]!.requestIds, ["f0", "f1", "f2", "f3", "f4"]);
    net.node("b").readIndex("f5"); // after the Ready: a new message
    const rb2 = net.handleReady("b")!;
    assert.deepEqual(rb2.messages.filter((m) => m.type === "readIndex").map((m) => m.type === "readIndex" && m.requestIds), [["f5"]]);
    net.stabilize();
    assert.deepEqual(
      net.get("b").readStates.map((r) => r.requestId).sort(),
      ["f0", "f1", "f2", "f3", "f4", "f5"],
    );
    assert.ok(net.get("b").readStates.every((r) => r.index === w.index));
  });

  it("throws NotLeaderError when no leader is known", () => {
    const net = new RaftNet(["a", "b", "c"]);
    assert.throws(() => net.node("b").readIndex("x"), NotLeaderError);
  });

  it("a forwarded read fails on the follower when the leader steps down before answering", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.cut.add("a->c");
    net.cut.add("c->a");
    net.cut.add("a->b"); // a hears b's requests but its answers are lost: no quorum round completes
    net.node("b").readIndex("fr");
    net.stabilize();
    assert.deepEqual(net.get("b").readStates, []);
    for (let i = 0; i < 14; i++) net.tickAll();
    assert.notEqual(net.node("a").status().role, "leader");
    assert.deepEqual(net.get("b").readStates, []);
    assert.ok(net.get("b").droppedReads.includes("fr"), "the follower reports the read as failed");
  });

  it("a forwarded read whose request or answer is lost fails after two election timeouts; a late answer is ignored", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.node("b").readIndex("lost");
    net.handleReady("b");
    net.queue = []; // the forwarded request is lost
    for (let i = 0; i < 11; i++) net.tickAll();
    assert.deepEqual(net.get("b").droppedReads, [], "still waiting within the timeout");
    net.tickAll();
    assert.deepEqual(net.get("b").droppedReads, ["lost"]);
    net.node("b").step({ type: "readIndexResponse", from: "a", to: "b", term: 1, requestIds: ["lost"], index: 1 });
    net.stabilize();
    assert.deepEqual(net.get("b").readStates, [], "never served after being reported failed");
    assert.deepEqual(net.node("a").status().role, "leader");
  });

  it("lease reads (readOnly: lease, with CheckQuorum) are served without a heartbeat round", () => {
    const net = new RaftNet(["a", "b", "c"], { readOnly: "lease" });
    net.elect("a");
    net.isolate("a");
    net.node("a").readIndex("lr");
    const rd = net.handleReady("a")!;
    assert.deepEqual(rd.readStates, [{ requestId: "lr", index: 1 }]);
    assert.throws(() => new RaftNet(["a"], { readOnly: "lease", checkQuorum: false }), { code: "invariant" });
  });

  it("stale-read bug: a deposed leader serves an old commit index; without it the read is never served", () => {
    for (const bug of [false, true]) {
      const net = new RaftNet(["a", "b", "c"], { bugs: new Set(bug ? ["stale-read"] : []) });
      net.elect("a");
      net.isolate("a");
      net.tick("c", 6);
      net.node("b").campaign();
      for (let i = 0; i < 60 && net.leaderIds().filter((x) => x !== "a").length === 0; i++) {
        net.node("b").tick();
        net.node("c").tick();
        net.stabilize();
      }
      const nl = net.leaderIds().find((x) => x !== "a")!;
      const w = net.node(nl).propose(bytes("new"));
      net.stabilize();
      assert.equal(net.node(nl).status().commitIndex, w.index);
      net.node("a").readIndex("stale");
      net.handleReady("a");
      const served = net.get("a").readStates;
      if (bug) assert.deepEqual(served, [{ requestId: "stale", index: 1 }], "served below the write at " + w.index);
      else assert.deepEqual(served, []);
    }
  });

  it("a single-voter cluster serves reads at once", () => {
    const net = new RaftNet(["s"]);
    net.elect("s");
    net.node("s").readIndex("r");
    net.stabilize();
    assert.deepEqual(net.get("s").readStates, [{ requestId: "r", index: 1 }]);
  });
});
