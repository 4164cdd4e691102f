/**
 * The byte bound on in-flight AppendEntries per follower (RaftConfig.maxInflightBytes, etcd raft v3.6
 * MaxInflightBytes): a follower that stops answering (a SIGSTOPped process) gets at most the bound plus one
 * message of entry data, while the leader keeps committing with the other follower; once it answers again
 * it catches up. docs/nemesis.md "Leader memory under a stopped follower" is the finding behind it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, appliedData, bytes } from "../helpers/raft-net.ts";
import type { AppendEntriesMessage, Message } from "../../src/raft/index.ts";

const dataBytes = (m: AppendEntriesMessage) => m.entries.reduce((n, e) => n + e.data.byteLength, 0);
const isAppendTo = (m: Message, to: string): m is AppendEntriesMessage => m.type === "appendEntries" && m.to === to;

describe("raft in-flight byte bound", () => {
  it("stops sending a frozen follower entries at maxInflightBytes while committing with the others", () => {
    const bound = 1000;
    const net = new RaftNet(["a", "b", "c"], { maxInflightBytes: bound });
    net.elect("a");
    const a = net.node("a");
    assert.equal(a.status().progress!.c!.state, "replicate", "c answered the probe before it froze");
    // c is frozen: what is sent to it is held (neither lost nor answered), as the kernel holds a stopped
    // process's socket data.
    const held: Message[] = [];
    const freeze = (m: Message) => {
      if (m.to !== "c") return true;
      held.push(m);
      return false;
    };
    const value = "v".repeat(100);
    const bytesHeld: number[] = [];
    for (let i = 0; i < 60; i++) {
      a.propose(bytes(`${i}`.padStart(3, "0") + value.slice(3)));
      net.tick("a"); // heartbeats go out too; c never answers them
      net.stabilize(200, freeze);
      bytesHeld.push(held.filter((m) => isAppendTo(m, "c")).reduce((n, m) => n + dataBytes(m as AppendEntriesMessage), 0));
    }
    assert.equal(a.status().role, "leader");
    assert.equal(net.get("b").applied.length, 60, "the leader kept committing with b");
    assert.equal(a.status().commitIndex, a.status().lastIndex);
    const pr = a.status().progress!.c!;
    assert.equal(pr.inflightBytes, bound, "ten 100-byte AppendEntries fill the 1000-byte bound");
    assert.equal(pr.inflight, 10);
    assert.equal(bytesHeld.at(-1), bound, "no entry data went to c past the bound");
    assert.deepEqual(bytesHeld.slice(9), new Array(51).fill(bound), "it stopped growing once the bound was reached");

    // c resumes (SIGCONT): it handles what was held, in order, answers, and catches up.
    net.queue.push(...held);
    net.stabilize();
    assert.equal(net.get("c").applied.length, 60);
    assert.deepEqual(appliedData(net.get("c")), appliedData(net.get("b")));
    assert.equal(a.status().progress!.c!.inflightBytes, 0);
    assert.equal(a.status().progress!.c!.inflight, 0);
  });

  it("always lets one message go even when a single entry is larger than the bound", () => {
    const net = new RaftNet(["a", "b"], { maxInflightBytes: 50 });
    net.elect("a");
    const a = net.node("a");
    a.propose(bytes("x".repeat(200)));
    const sent = net.handleReady("a")!.sendNow.filter((m) => isAppendTo(m, "b"));
    assert.equal(sent.length, 1);
    assert.equal(dataBytes(sent[0] as AppendEntriesMessage), 200);
    a.propose(bytes("y"));
    assert.equal(net.handleReady("a")?.sendNow.filter((m) => isAppendTo(m, "b")).length ?? 0, 0, "paused by bytes until answered");
    net.stabilize();
    assert.deepEqual(appliedData(net.get("b")), ["x".repeat(200), "y"]);
  });

  it("frees the bytes of a lost AppendEntries when a heartbeat answer frees its slot", () => {
    // Each 10-byte entry fills the 10-byte bound, so one lost AppendEntries pauses b until the heartbeat
    // rule frees the oldest slot (test/sim/FINDINGS.md #1); it must free the slot's bytes too.
    const net = new RaftNet(["a", "b", "c"], { maxInflightBytes: 10 });
    net.elect("a");
    net.node("a").propose(bytes("lost-00000"));
    net.handleReady("a");
    net.queue = net.queue.filter((m) => !isAppendTo(m, "b")); // silently lost
    net.stabilize();
    net.node("a").propose(bytes("next-00000"));
    net.stabilize();
    assert.equal(net.node("a").status().progress!.b!.inflightBytes, 10, "the lost message still holds the bound");
    for (let i = 0; i < 3; i++) {
      net.tick("a", 3);
      net.stabilize();
    }
    assert.deepEqual(appliedData(net.get("b")), ["lost-00000", "next-00000"]);
    assert.equal(net.node("a").status().progress!.b!.inflightBytes, 0);
  });
});
