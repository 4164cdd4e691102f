/**
 * The leader's AppendEntries round trip per follower (src/server/append-rtt.ts), the proposal times kept by
 * ProposalWaiters for the commit histogram, and their `/metrics` text (labelled series through
 * src/server/histogram.ts).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AppendRoundTrips } from "../../src/server/append-rtt.ts";
import { ProposalWaiters } from "../../src/server/waiters.ts";
import { nodeMetricsText } from "../../src/server/cluster-view.ts";
import { WRITE_PATH_BUCKETS_S, histogramSeriesText } from "../../src/server/histogram.ts";
import type { RaftStatus } from "../../src/raft/types.ts";

const bucketOf = (seconds: number) => WRITE_PATH_BUCKETS_S.findIndex((b) => seconds <= b);

describe("AppendEntries round trips", () => {
  it("one reply covering two pipelined sends counts both, each from its own send", () => {
    const r = new AppendRoundTrips();
    r.sent("n2", 10, 1000);
    r.sent("n2", 14, 1003);
    r.sent("n2", 20, 1004);
    r.acked("n2", 14, 1010); // covers 10 (10 ms) and 14 (7 ms), not 20
    assert.equal(r.pendingCount("n2"), 1);
    const [s] = r.snapshot();
    assert.equal(s.peer, "n2");
    const counts = new Array(WRITE_PATH_BUCKETS_S.length + 1).fill(0);
    counts[bucketOf(0.01)]++;
    counts[bucketOf(0.007)]++;
    assert.deepEqual(s.histogram.counts, counts);
    assert.ok(Math.abs(s.histogram.sumSeconds - 0.017) < 1e-9, String(s.histogram.sumSeconds));
  });

  it("a reply that covers no send counts nothing; forget drops one follower's sends or all", () => {
    const r = new AppendRoundTrips();
    r.sent("n2", 10, 0);
    r.sent("n3", 10, 0);
    r.acked("n2", 9, 5);
    assert.deepEqual(r.snapshot(), []);
    r.forget("n2");
    assert.equal(r.pendingCount("n2"), 0);
    assert.equal(r.pendingCount("n3"), 1);
    // The reply to the forgotten send comes late: not a round trip of anything remembered.
    r.acked("n2", 10, 500);
    assert.deepEqual(r.snapshot(), []);
    r.forget();
    assert.equal(r.pendingCount("n3"), 0);
  });

  it("retain drops the series and sends of followers outside the configuration", () => {
    const r = new AppendRoundTrips();
    for (const p of ["n2", "n3", "n4"]) {
      r.sent(p, 1, 0);
      r.acked(p, 1, 1);
      r.sent(p, 2, 2);
    }
    r.retain(new Set(["n1", "n2", "n3"]));
    assert.deepEqual(r.snapshot().map((x) => x.peer), ["n2", "n3"]);
    assert.equal(r.pendingCount("n4"), 0);
    assert.equal(r.pendingCount("n2"), 1);
  });

  it("remembers at most the bound per follower, dropping the oldest", () => {
    const r = new AppendRoundTrips(3);
    for (let i = 1; i <= 5; i++) r.sent("n2", i, i);
    assert.equal(r.pendingCount("n2"), 3);
    r.acked("n2", 5, 10);
    // Sends 3, 4 and 5 remained: 7, 6 and 5 ms.
    assert.equal(r.snapshot()[0].histogram.counts.reduce((a, b) => a + b, 0), 3);
    assert.ok(Math.abs(r.snapshot()[0].histogram.sumSeconds - 0.018) < 1e-9);
  });
});

describe("proposal times for the commit histogram", () => {
  it("gives the time only for the waiting proposal's own term", () => {
    const w = new ProposalWaiters();
    void w.wait(7, 3, undefined, 123.5);
    void w.wait(8, 3);
    assert.equal(w.proposedAtMs(7, 3), 123.5);
    assert.equal(w.proposedAtMs(7, 4), undefined, "another term's entry at the index");
    assert.equal(w.proposedAtMs(8, 3), undefined, "no time given");
    assert.equal(w.proposedAtMs(9, 3), undefined, "nobody waits there");
  });
});

describe("metrics text", () => {
  it("renders one labelled series per follower and the commit histogram", () => {
    const r = new AppendRoundTrips();
    r.sent("n3", 4, 0);
    r.sent("n2", 4, 0);
    r.acked("n3", 4, 30);
    r.acked("n2", 4, 1);
    const st = {
      id: "n1", role: "leader", leaderId: "n1", term: 2, vote: "n1", commitIndex: 4, appliedIndex: 4, lastIndex: 4, firstIndex: 1,
      confState: { voters: ["n1", "n2", "n3"], votersOutgoing: [], learners: [] },
    } as unknown as RaftStatus;
    const commit = { buckets: [0.001, 0.01], counts: [1, 2, 0], sumSeconds: 0.0125 };
    const lines = nodeMetricsText({
      status: st, appliedIndex: 4, revision: 4, proposalsPending: 0, readsPending: 0, watchers: 0, peers: {},
      fsync: { buckets: [0.001], counts: [0, 0], sumSeconds: 0 }, roundTrips: r.snapshot(), proposalCommit: commit,
    }).split("\n");
    for (const l of [
      "# TYPE edgekv_peer_round_trip_seconds histogram",
      'edgekv_peer_round_trip_seconds_bucket{peer="n2",le="0.001"} 1',
      'edgekv_peer_round_trip_seconds_bucket{peer="n3",le="0.025"} 0',
      'edgekv_peer_round_trip_seconds_bucket{peer="n3",le="0.05"} 1',
      'edgekv_peer_round_trip_seconds_bucket{peer="n3",le="+Inf"} 1',
      'edgekv_peer_round_trip_seconds_sum{peer="n3"} 0.03',
      'edgekv_peer_round_trip_seconds_count{peer="n2"} 1',
      'edgekv_proposal_commit_seconds_bucket{le="0.01"} 3',
      "edgekv_proposal_commit_seconds_count 3",
    ]) assert.ok(lines.includes(l), `${l}\n${lines.join("\n")}`);
    // HELP and TYPE once for both followers; n2 before n3.
    assert.equal(lines.filter((l) => l.startsWith("# TYPE edgekv_peer_round_trip_seconds")).length, 1);
    assert.ok(lines.indexOf('edgekv_peer_round_trip_seconds_count{peer="n2"} 1') < lines.indexOf('edgekv_peer_round_trip_seconds_count{peer="n3"} 1'));
  });

  it("escapes label values", () => {
    const lines = histogramSeriesText("x_seconds", "h", [{ labels: { peer: 'a"b\\c\nd' }, histogram: { buckets: [1], counts: [0, 0], sumSeconds: 0 } }]);
    assert.ok(lines.includes('x_seconds_count{peer="a\\"b\\\\c\\nd"} 0'), lines.join("\n"));
  });
});
