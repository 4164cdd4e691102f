/**
 * The leader's per-follower replication memory in `/metrics` (src/server/cluster-view.ts nodeMetricsText):
 * the Raft core's in-flight window (messages, entry data bytes) and the transport's queued bytes, so that a
 * stopped follower's cost on the leader can be watched (docs/nemesis.md "Leader memory under a stopped follower").
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nodeMetricsText } from "../../src/server/cluster-view.ts";
import type { ProgressStatus, RaftStatus } from "../../src/raft/types.ts";
import type { PeerStatus } from "../../src/server/transport.ts";

const progress = (inflight: number, inflightBytes: number): ProgressStatus => ({ matchIndex: 5, nextIndex: 6, state: "replicate", inflight, inflightBytes, recentActive: true, isLearner: false });
const peer = (queuedBytes: number | undefined): PeerStatus => ({ state: "connected", lastHeardMs: 1, url: "http://127.0.0.1:9", outbound: "open", queuedBatches: 2, queuedBytes, sentBatches: 10, droppedBatches: 3, receivedBatches: 9, connects: 1, lastError: "" });
const status = (role: RaftStatus["role"], withProgress: boolean): RaftStatus => ({
  id: "n1", role, leaderId: role === "leader" ? "n1" : "n2", term: 2, vote: "n1", commitIndex: 5, appliedIndex: 5, lastIndex: 6, firstIndex: 1,
  confState: { voters: ["n1", "n2", "n3"], votersOutgoing: [], learners: [] },
  progress: withProgress ? { n1: progress(0, 0), n2: progress(7, 8_388_700), n3: progress(1, 1024) } : undefined,
});
const text = (st: RaftStatus, peers: Record<string, PeerStatus>) =>
  nodeMetricsText({ status: st, appliedIndex: 5, revision: 3, proposalsPending: 0, readsPending: 0, watchers: 0, peers, fsync: { buckets: [0.001], counts: [0, 0], sumSeconds: 0 } });

describe("metrics: replication memory per follower", () => {
  it("shows the leader's in-flight window and each peer's queued bytes", () => {
    const lines = text(status("leader", true), { n2: peer(4096), n3: peer(undefined) }).split("\n");
    assert.ok(lines.includes('edgekv_raft_inflight_bytes{peer="n2"} 8388700'));
    assert.ok(lines.includes('edgekv_raft_inflight_bytes{peer="n3"} 1024'));
    assert.ok(lines.includes('edgekv_raft_inflight_messages{peer="n2"} 7'));
    assert.ok(!lines.some((l) => l.includes('inflight_bytes{peer="n1"}')), "the leader itself is not a follower");
    assert.ok(lines.includes('edgekv_peer_queued_bytes{peer="n2"} 4096'));
    assert.ok(lines.includes('edgekv_peer_queued_bytes{peer="n3"} 0'), "a transport without the figure shows 0");
  });

  it("one edgekv_peer_up series per peer, whatever its state; the state as a one-hot edgekv_peer_state", () => {
    const suspect: PeerStatus = { ...peer(0), state: "suspect" };
    const lines = text(status("leader", true), { n2: peer(0), n3: suspect }).split("\n");
    assert.deepEqual(lines.filter((l) => l.startsWith("edgekv_peer_up")), ['edgekv_peer_up{peer="n2"} 1', 'edgekv_peer_up{peer="n3"} 0.5']);
    assert.deepEqual(
      lines.filter((l) => l.startsWith('edgekv_peer_state{peer="n3"')),
      ['edgekv_peer_state{peer="n3",state="connecting"} 0', 'edgekv_peer_state{peer="n3",state="connected"} 0', 'edgekv_peer_state{peer="n3",state="suspect"} 1', 'edgekv_peer_state{peer="n3",state="failed"} 0'],
    );
  });

  it("has no in-flight samples on a follower", () => {
    const out = text(status("follower", false), { n2: peer(0) });
    assert.ok(out.includes("# TYPE edgekv_raft_inflight_bytes gauge"));
    assert.ok(!/edgekv_raft_inflight_bytes\{/.test(out));
  });
});
