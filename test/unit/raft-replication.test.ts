/**
 * Log replication rules: batching by count and bytes, at most `maxInflight` AppendEntries in flight,
 * probe -> replicate, fast backtracking by conflict term (etcd findConflictByTerm), the commit rule
 * (Raft paper §5.4.2 and figure 8, with the commit-prior-term bug), and the I/O ordering contract: the
 * leader sends before persisting but counts itself only after advance(); followers answer after persisting.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, appliedData, bytes, storageWith } from "../helpers/raft-net.ts";
import { MemoryStorage, RaftInvariantError, type AppendEntriesMessage, type Message } from "../../src/raft/index.ts";
import { RaftLog } from "../../src/raft/log.ts";

const appendsTo = (msgs: Message[], to: string) =>
  msgs.filter((m): m is AppendEntriesMessage => m.type === "appendEntries" && m.to === to);

describe("raft replication", () => {
  it("batches at most maxPayloadEntries entries per AppendEntries", () => {
    const net = new RaftNet(["a", "b"], { maxPayloadEntries: 2 });
    net.elect("a");
    net.isolate("b");
    for (let i = 0; i < 5; i++) net.node("a").propose(bytes(`e${i}`));
    net.stabilize();
    net.heal();
    const seen: AppendEntriesMessage[] = [];
    for (let i = 0; i < 50 && net.get("b").applied.length < 5; i++) {
      net.handleAllReady();
      seen.push(...appendsTo(net.queue, "b"));
      net.deliver();
      if (net.queue.length === 0) net.tick("a", 3);
    }
    assert.deepEqual(appliedData(net.get("b")), ["e0", "e1", "e2", "e3", "e4"]);
    assert.ok(seen.some((m) => m.entries.length === 2), "batches are used");
    assert.ok(seen.every((m) => m.entries.length <= 2));
  });

  it("caps the bytes per AppendEntries but always sends at least one entry", () => {
    const net = new RaftNet(["a", "b"], { maxPayloadBytes: 25 });
    net.elect("a");
    net.isolate("b");
    net.node("a").propose(bytes("x".repeat(10)));
    net.node("a").propose(bytes("y".repeat(10)));
    net.node("a").propose(bytes("z".repeat(10)));
    net.node("a").propose(bytes("w".repeat(40)));
    net.stabilize();
    net.heal();
    const seen: AppendEntriesMessage[] = [];
    for (let i = 0; i < 50 && net.get("b").applied.length < 4; i++) {
      net.handleAllReady();
      seen.push(...appendsTo(net.queue, "b"));
      net.deliver();
      if (net.queue.length === 0) net.tick("a", 3);
    }
    assert.equal(net.get("b").applied.length, 4);
    for (const m of seen) {
      const size = m.entries.reduce((n, e) => n + e.data.byteLength, 0);
      assert.ok(m.entries.length <= 1 || size <= 25, `batch of ${size} bytes`);
    }
    assert.ok(seen.some((m) => m.entries.some((e) => e.data.byteLength === 40)), "the oversized entry still went out");
  });

  it("keeps at most maxInflight AppendEntries in flight to a follower in replicate mode", () => {
    const net = new RaftNet(["a", "b", "c"], { maxInflight: 2 });
    net.elect("a");
    const a = net.node("a");
    const sentToB: number[] = [];
    for (let i = 0; i < 5; i++) {
      a.propose(bytes(`p${i}`));
      sentToB.push(appendsTo(net.handleReady("a")!.sendNow, "b").length); // responses are not delivered
    }
    assert.deepEqual(sentToB, [1, 1, 0, 0, 0], "two in flight, the rest waits");
    assert.equal(a.status().progress!.b!.state, "replicate");
    assert.equal(a.status().progress!.b!.inflight, 2);
    net.stabilize();
    assert.equal(net.get("b").applied.length, 5, "acks free the window and the rest follows");
    assert.equal(a.status().progress!.b!.inflight, 0);
  });

  it("recovers from a lost AppendEntries when the in-flight window is full (heartbeat frees a slot)", () => {
    const net = new RaftNet(["a", "b", "c"], { maxInflight: 1 });
    net.elect("a");
    net.node("a").propose(bytes("lost"));
    net.handleReady("a");
    net.queue = net.queue.filter((m) => !(m.type === "appendEntries" && m.to === "b")); // silently lost
    net.stabilize();
    net.node("a").propose(bytes("next"));
    net.stabilize();
    assert.equal(net.node("a").status().progress!.b!.inflight, 1, "the lost message still holds the only slot");
    for (let i = 0; i < 3; i++) {
      net.tick("a", 3);
      net.stabilize();
    }
    assert.deepEqual(appliedData(net.get("b")), ["lost", "next"]);
  });

  it("probes a new follower with one AppendEntries at a time, then pipelines once it answered", () => {
    const net = new RaftNet(["a", "b"], { preVote: false });
    net.node("a").campaign();
    net.handleAllReady();
    net.deliver();
    net.handleAllReady(); // b's vote reaches a: a leads and probes b
    net.deliver();
    assert.equal(net.node("a").status().role, "leader");
    assert.equal(net.node("a").status().progress!.b!.state, "probe");
    net.node("a").propose(bytes("q"));
    const rd = net.handleReady("a")!;
    assert.equal(appendsTo(rd.sendNow, "b").length, 1, "paused after the probe");
    net.stabilize();
    assert.equal(net.node("a").status().progress!.b!.state, "replicate");
  });

  it("backtracks a divergent follower by whole terms using the conflict hint", () => {
    // Leader log terms [1 1 1 4 4 5 5 6 6 6]; follower [1 1 1 2 2 2 3 3 3 3 3] (Raft paper figure 7 style).
    const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const net = new RaftNet([], { preVote: false });
    const voters = ["a", "b", "c"];
    net.add("a", storageWith(voters, leaderTerms, { term: 7, commit: 3 }));
    net.add("b", storageWith(voters, [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], { term: 7, commit: 3 }));
    net.add("c", storageWith(voters, leaderTerms, { term: 7, commit: 3 }));
    net.node("a").campaign();
    let rejections = 0;
    for (let i = 0; i < 100; i++) {
      const ready = net.handleAllReady();
      rejections += net.queue.filter((m) => m.type === "appendEntriesResponse" && m.from === "b" && !m.success).length;
      if (!ready && net.queue.length === 0) break;
      net.deliver();
    }
    const terms = (id: string) => Array.from({ length: net.get(id).storage.lastIndex() }, (_, i) => net.get(id).storage.term(i + 1));
    assert.deepEqual(terms("b"), terms("a"));
    assert.ok(rejections <= 3, `${rejections} rejections (one per index would be 8)`);
  });

  it("the leader sends new entries before persisting them but counts itself only after advance()", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    const a = net.node("a");
    const { index } = a.propose(bytes("x"));
    const rd = a.ready();
    assert.deepEqual(rd.entries.map((e) => e.index), [index]);
    assert.equal(appendsTo(rd.sendNow, "b")[0]!.entries[0]!.index, index, "AppendEntries goes out in sendNow");
    assert.equal(rd.messages.length, 0);
    // Only b gets it; b persists and answers (its answer is in `messages`, after its own persistence).
    net.queue.push(...rd.sendNow.filter((m) => m.to === "b"));
    net.deliver();
    const rb = net.node("b").ready();
    assert.deepEqual(rb.entries.map((e) => e.index), [index]);
    assert.equal(rb.sendNow.length, 0);
    assert.equal(rb.messages[0]!.type, "appendEntriesResponse");
    net.get("b").storage.append(rb.entries);
    net.node("b").advance();
    a.step(rb.messages[0]!);
    assert.equal(a.status().commitIndex, index - 1, "b + a's non-durable copy is not a quorum");
    net.get("a").storage.append(rd.entries);
    a.advance();
    assert.equal(a.status().commitIndex, index, "durable on a and b: committed");
  });

  it("commits an entry of an earlier term only by committing one of the current term (figure 8 rule)", () => {
    // a (term 3) holds index 2 of term 2, replicated on b and c: a majority, yet not committable alone.
    const voters = ["a", "b", "c", "d", "e"];
    for (const bug of [false, true]) {
      const net = new RaftNet([], { preVote: false, bugs: new Set(bug ? ["commit-prior-term"] : []) });
      net.add("a", storageWith(voters, [1, 2], { term: 2, commit: 1 }));
      net.add("b", storageWith(voters, [1, 2], { term: 2, commit: 1 }));
      net.add("c", storageWith(voters, [1, 2], { term: 2, commit: 1 }));
      net.add("d", storageWith(voters, [1], { term: 2, commit: 1 }));
      net.add("e", storageWith(voters, [1], { term: 2, commit: 1 }));
      const a = net.node("a");
      a.campaign();
      net.stabilize(200, (m) => m.type === "requestVote" || m.type === "requestVoteResponse");
      assert.equal(a.status().role, "leader");
      assert.equal(a.status().term, 3);
      const ok = (from: string) => ({ type: "appendEntriesResponse", from, to: "a", term: 3, success: true, matchIndex: 2, rejectIndex: 0, conflictIndex: 0, conflictTerm: 0 }) as const;
      a.step(ok("b"));
      a.step(ok("c"));
      assert.equal(a.status().commitIndex, bug ? 2 : 1);
      // Once the no-op of term 3 (index 3) is on a majority, index 2 commits with it.
      a.step({ ...ok("b"), matchIndex: 3 });
      a.step({ ...ok("c"), matchIndex: 3 });
      assert.equal(a.status().commitIndex, 3);
    }
  });

  it("figure 8 end to end: with commit-prior-term a committed entry is later overwritten; without it, never", () => {
    const voters = ["s1", "s2", "s3", "s4", "s5"];
    const run = (bug: boolean) => {
      const net = new RaftNet([], { preVote: false, checkQuorum: false, maxPayloadEntries: 1, bugs: new Set(bug ? ["commit-prior-term"] : []) });
      net.add("s1", storageWith(voters, [1, 2], { term: 3, commit: 1 }, ["", "x"]));
      net.add("s2", storageWith(voters, [1, 2], { term: 3, commit: 1 }, ["", "x"]));
      net.add("s3", storageWith(voters, [1], { term: 3, commit: 1 }));
      net.add("s4", storageWith(voters, [1], { term: 3, commit: 1 }));
      net.add("s5", storageWith(voters, [1, 3], { term: 3, commit: 1 }, ["", "y"]));
      // (c) s1 leads term 4 and copies index 2 (term 2) to s3; its own index 3 reaches only s2.
      net.isolate("s5");
      net.node("s1").campaign();
      for (let i = 0; i < 200; i++) {
        const ready = net.handleAllReady();
        // s4 gets no entries at all; s3 gets everything except index 3 (stripped from the batch).
        // s3 never hears of commit 2 either: in figure 8, S1 crashes right after committing.
        net.queue = net.queue.flatMap((m): Message[] => {
          if (m.type === "heartbeat" && m.to === "s3") return [{ ...m, commit: Math.min(m.commit, 1) }];
          if (m.type !== "appendEntries") return [m];
          if (m.to === "s4") return [];
          if (m.to === "s3") return [{ ...m, entries: m.entries.filter((e) => e.index < 3), commit: Math.min(m.commit, 1) }];
          return [m];
        });
        if (!ready && net.queue.length === 0) break;
        net.deliver();
      }
      assert.equal(net.node("s1").status().term, 4);
      const s1Committed = net.node("s1").status().commitIndex;
      // (d) s1 is cut off; s5 (last term 3) wins with s3 and s4 and replicates its index 2.
      net.heal();
      net.isolate("s1");
      net.isolate("s2");
      net.queue = [];
      for (let i = 0; i < 200 && net.node("s5").status().role !== "leader"; i++) {
        for (const id of ["s3", "s4", "s5"]) net.node(id).tick();
        net.stabilize();
      }
      assert.equal(net.node("s5").status().role, "leader");
      net.node("s5").propose(bytes("z"));
      net.stabilize();
      return { s1Committed, s1: appliedData(net.get("s1")), s5: appliedData(net.get("s5")), s5log2: net.get("s5").storage.term(2) };
    };
    const bad = run(true);
    assert.equal(bad.s1Committed, 2, "the bug commits the term-2 entry");
    assert.deepEqual(bad.s1, ["x"], "s1 applied x at index 2");
    assert.equal(bad.s5log2, 3);
    assert.deepEqual(bad.s5.slice(0, 1), ["y"], "s5 applied y at index 2: a committed entry was lost");
    const good = run(false);
    assert.equal(good.s1Committed, 1, "index 2 is not committed by counting replicas of an old term");
    assert.deepEqual(good.s1, []);
  });

  it("a follower answers AppendEntries only in `messages` (after persisting), never in sendNow", () => {
    const net = new RaftNet(["a", "b"]);
    net.elect("a");
    net.node("a").propose(bytes("x"));
    net.handleReady("a");
    net.deliver();
    const rb = net.node("b").ready();
    assert.equal(rb.sendNow.length, 0);
    assert.ok(rb.messages.some((m) => m.type === "appendEntriesResponse"));
    assert.equal(rb.entries.length, 1);
  });

  it("the log refuses to truncate a committed entry or to commit past its end (invariant errors)", () => {
    const st = new MemoryStorage({ confState: { voters: ["a"], votersOutgoing: [], learners: [] } });
    st.append([1, 2, 3].map((i) => ({ index: i, term: 1, type: "normal" as const, data: new Uint8Array(0) })));
    const log = new RaftLog(st, 2, 0);
    assert.throws(() => log.append([{ index: 2, term: 2, type: "normal", data: new Uint8Array(0) }]), RaftInvariantError);
    assert.throws(() => log.commitTo(4), RaftInvariantError);
    assert.equal(log.commitTo(1), false, "commit never decreases");
    assert.equal(log.committed, 2);
    log.append([{ index: 3, term: 2, type: "normal", data: new Uint8Array(0) }]);
    assert.equal(log.term(3), 2, "an uncommitted entry may be replaced");
    assert.throws(() => new RaftLog(st, 9, 0), RaftInvariantError, "a hard state commit past the log is corrupt");
  });

  it("proposals made between two Readies share one AppendEntries per follower", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    for (let i = 0; i < 4; i++) net.node("a").propose(bytes(`p${i}`));
    const rd = net.handleReady("a")!;
    assert.deepEqual(appendsTo(rd.sendNow, "b").map((m) => m.entries.length), [4]);
    assert.deepEqual(appendsTo(rd.sendNow, "c").map((m) => m.entries.length), [4]);
  });

  it("keeps the proposed payload object (entries are never copied)", () => {
    const net = new RaftNet(["a", "b"]);
    net.elect("a");
    const payload = bytes("same");
    net.node("a").propose(payload);
    net.stabilize();
    assert.equal(net.get("a").applied[0]!.data, payload);
    assert.equal(net.get("b").applied[0]!.data, payload);
  });
});
