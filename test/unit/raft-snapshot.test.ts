/**
 * Snapshots and log compaction: MemoryStorage duties (types.ts `RaftStorage`), InstallSnapshot to a follower
 * whose next index was compacted (Raft paper §7), the follower's answer and its Ready, restart from a
 * snapshot with `config.applied`, and a snapshot that is temporarily unavailable.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, appliedData, bytes } from "../helpers/raft-net.ts";
import {
  CompactedError,
  DEFAULT_RAFT_CONFIG,
  MemoryStorage,
  RaftInvariantError,
  RaftNode,
  SnapshotUnavailableError,
  UnavailableError,
  createRng,
  type Entry,
  type Snapshot,
} from "../../src/raft/index.ts";
import { RaftLog } from "../../src/raft/log.ts";

const ent = (index: number, term: number, data = ""): Entry => ({ index, term, type: "normal", data: bytes(data) });
const cs3 = { voters: ["a", "b", "c"], votersOutgoing: [], learners: [] };

describe("MemoryStorage", () => {
  it("appends, replaces a suffix, and reports compacted/unavailable ranges", () => {
    const st = new MemoryStorage({ confState: cs3 });
    assert.equal(st.firstIndex(), 1);
    assert.equal(st.lastIndex(), 0);
    assert.equal(st.term(0), 0);
    st.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    st.append([ent(2, 2, "b")]);
    assert.equal(st.lastIndex(), 2);
    assert.equal(st.term(2), 2);
    assert.throws(() => st.term(3), UnavailableError);
    assert.throws(() => st.append([ent(5, 2)]), RaftInvariantError, "no holes");
    st.createSnapshot(2, cs3, bytes("s2"));
    st.compact(1);
    assert.equal(st.firstIndex(), 2);
    assert.equal(st.term(1), 1, "the term before the first index is kept");
    assert.throws(() => st.term(0), CompactedError);
    assert.throws(() => st.entries(1, 2, Infinity), CompactedError);
    assert.throws(() => st.compact(3), RaftInvariantError, "cannot compact past the snapshot");
    assert.equal(st.snapshot().meta.index, 2);
    assert.equal(st.snapshot().meta.term, 2);
  });

  it("entries() stops before maxBytes but returns at least one entry", () => {
    const st = new MemoryStorage();
    st.append([ent(1, 1, "aaaa"), ent(2, 1, "bbbb"), ent(3, 1, "cccc")]);
    assert.equal(st.entries(1, 4, 8).length, 2);
    assert.equal(st.entries(1, 4, 1).length, 1);
    assert.equal(st.entries(1, 4, Infinity).length, 3);
  });

  it("applySnapshot replaces the log; clone() is independent", () => {
    const st = new MemoryStorage({ confState: cs3 });
    st.append([ent(1, 1), ent(2, 1)]);
    const copy = st.clone();
    const snap: Snapshot = { meta: { index: 10, term: 3, confState: cs3 }, data: bytes("x") };
    st.applySnapshot(snap);
    assert.equal(st.firstIndex(), 11);
    assert.equal(st.lastIndex(), 10);
    assert.equal(st.term(10), 3);
    assert.equal(copy.lastIndex(), 2, "the clone did not change");
    assert.deepEqual(st.initialState().confState, cs3);
    assert.throws(() => st.applySnapshot({ ...snap, meta: { ...snap.meta, index: 5 } }), RaftInvariantError);
  });
});

describe("raft snapshots", () => {
  it("sends InstallSnapshot to a follower whose next entries were compacted, then catches it up", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 10; i++) net.node("a").propose(bytes(`v${i}`));
    net.stabilize();
    const applied = net.get("a").appliedIndex;
    assert.equal(applied, 11);
    net.get("a").storage.createSnapshot(applied, net.node("a").status().confState, bytes("state@11"));
    net.get("a").storage.compact(applied);
    net.node("a").propose(bytes("after"));
    net.stabilize();
    net.heal();
    let snapReady;
    for (let i = 0; i < 20 && net.get("c").appliedIndex < 12; i++) {
      net.tick("a", 3);
      for (let j = 0; j < 20; j++) {
        const rd = net.handleReady("c");
        if (rd?.snapshot) {
          snapReady = rd;
          assert.equal(rd.snapshot.meta.index, 11);
          assert.deepEqual(
            rd.messages.filter((m) => m.type === "appendEntriesResponse").map((m) => [m.success, m.matchIndex]),
            [[true, 11]],
            "the follower answers with matchIndex = snapshot index",
          );
        }
        const any = net.handleAllReady() || rd !== undefined;
        if (!any && net.queue.length === 0) break;
        net.deliver();
      }
    }
    assert.ok(snapReady, "c received a snapshot");
    assert.equal(net.get("c").storage.firstIndex(), 12);
    assert.equal(net.get("c").appliedIndex, 12);
    assert.deepEqual(appliedData(net.get("c")), ["after"], "entries after the snapshot are replicated normally");
    assert.equal(net.node("a").status().progress!.c!.state, "replicate");
  });

  it("a follower whose log already holds the snapshot's last entry just commits up to it", () => {
    const net = new RaftNet(["a", "b"]);
    net.elect("a");
    net.node("a").propose(bytes("x"));
    net.handleReady("a");
    net.deliver();
    net.handleReady("b"); // b holds index 2 but does not know it is committed
    net.queue = [];
    const b = net.node("b");
    assert.equal(b.status().commitIndex, 1);
    b.step({ type: "installSnapshot", from: "a", to: "b", term: 1, snapshot: { meta: { index: 2, term: 1, confState: { voters: ["a", "b"], votersOutgoing: [], learners: [] } }, data: bytes("s") } });
    const rd = b.ready();
    assert.equal(rd.snapshot, undefined);
    assert.equal(b.status().commitIndex, 2);
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [2]);
  });

  it("restarts from a compacted log with config.applied and re-delivers only what was not applied", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    for (let i = 0; i < 5; i++) net.node("a").propose(bytes(`v${i}`));
    net.stabilize();
    const b = net.get("b");
    b.storage.createSnapshot(4, net.node("b").status().confState, bytes("s4"));
    b.storage.compact(4);
    const node = new RaftNode({ ...DEFAULT_RAFT_CONFIG, id: "b", applied: 4 }, b.storage.clone(), createRng(3));
    const st = node.status();
    assert.equal(st.firstIndex, 5);
    assert.equal(st.appliedIndex, 4);
    assert.equal(st.commitIndex, 6);
    const rd = node.ready();
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [5, 6]);
    // applied below the snapshot is raised to it: the state machine was restored from that snapshot.
    const fromZero = new RaftNode({ ...DEFAULT_RAFT_CONFIG, id: "b", applied: 0 }, b.storage.clone(), createRng(3));
    assert.equal(fromZero.status().appliedIndex, 4);
  });

  it("retries later when the snapshot is temporarily unavailable", () => {
    class Flaky extends MemoryStorage {
      busy = true;
      override snapshot(): Snapshot {
        if (this.busy) throw new SnapshotUnavailableError();
        return super.snapshot();
      }
    }
    const net = new RaftNet([], {});
    const flaky = new Flaky({ confState: cs3 });
    net.add("a", flaky);
    net.add("b", new MemoryStorage({ confState: cs3 }));
    net.add("c", new MemoryStorage({ confState: cs3 }));
    net.elect("a");
    net.isolate("c");
    net.node("a").propose(bytes("x"));
    net.stabilize();
    flaky.createSnapshot(2, cs3, bytes("s"));
    flaky.compact(2);
    net.heal();
    for (let i = 0; i < 5; i++) {
      net.tick("a", 3);
      net.stabilize();
    }
    assert.equal(net.get("c").appliedIndex, 1, "no snapshot could be sent");
    assert.equal(net.node("a").status().role, "leader");
    flaky.busy = false;
    for (let i = 0; i < 5; i++) {
      net.tick("a", 3);
      net.stabilize();
    }
    assert.equal(net.get("c").appliedIndex, 2);
  });

  /** Leader a with its log compacted into a snapshot at 2 that b (isolated meanwhile) lacks; b reachable again. */
  function behindSnapshot(): RaftNet {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("b");
    net.node("a").propose(bytes("x"));
    net.stabilize();
    assert.equal(net.get("a").appliedIndex, 2);
    net.get("a").storage.createSnapshot(2, net.node("a").status().confState, bytes("s"));
    net.get("a").storage.compact(2);
    net.heal();
    return net;
  }

  it("reportSnapshot(false) sends the follower back to probing", () => {
    const net = behindSnapshot();
    for (let i = 0; i < 6 && net.node("a").status().progress!.b!.state !== "snapshot"; i++) {
      net.tick("a", 3);
      net.stabilize(200, (m) => m.type !== "installSnapshot"); // the snapshot transfer is lost
    }
    assert.equal(net.node("a").status().progress!.b!.state, "snapshot");
    net.node("a").reportSnapshot("b", false);
    assert.equal(net.node("a").status().progress!.b!.state, "probe");
  });

  it("a snapshot reported sent (true) that the follower never installed is sent again; unreported, the follower waits", () => {
    const net = behindSnapshot();
    // The transfer "succeeds" but the follower dies before installing it: the message never arrives.
    for (let i = 0; i < 6; i++) {
      net.tick("a", 3);
      net.stabilize(200, (m) => m.type !== "installSnapshot");
    }
    assert.deepEqual([net.node("a").status().progress!.b!.state, net.get("b").appliedIndex], ["snapshot", 1], "unreported, b waits");
    net.node("a").reportSnapshot("b", true); // what the node does once the transfer returned (docs/raft.md)
    for (let i = 0; i < 6; i++) {
      net.tick("a", 3);
      net.stabilize();
    }
    assert.equal(net.get("b").appliedIndex, 2, "the leader probed, found b behind its log start, and sent the snapshot again");
  });

  it("log positions: applying past the commit index is an invariant error", () => {
    const st = new MemoryStorage();
    st.append([ent(1, 1), ent(2, 1)]);
    const log = new RaftLog(st, 1, 0);
    assert.throws(() => log.appliedTo(2), RaftInvariantError);
    log.appliedTo(1);
    assert.equal(log.applied, 1);
  });
});
