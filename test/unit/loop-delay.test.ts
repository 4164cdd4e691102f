/**
 * Event-loop delay (src/server/loop-delay.ts and its `/metrics` histogram in src/server/cluster-view.ts):
 * samples fall in the right buckets, a synchronous stretch of work shows as a delay at least that long
 * less one sampling interval, and the exposition is cumulative with +Inf, sum, count and the max.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LOOP_DELAY_BUCKETS_S, LoopDelayMonitor } from "../../src/server/loop-delay.ts";
import { nodeMetricsText } from "../../src/server/cluster-view.ts";
import type { RaftStatus } from "../../src/raft/types.ts";

describe("event-loop delay", () => {
  it("puts each delay in its bucket and keeps the sum and the max", () => {
    const m = new LoopDelayMonitor(() => 0);
    for (const ms of [0, 3, 5, 7, 60, 2000, -4]) m.record(ms);
    const h = m.snapshot();
    assert.deepEqual(h.buckets, LOOP_DELAY_BUCKETS_S);
    // <=5 ms: 0, 3, 5, -4 (clamped to 0); <=10: 7; <=100: 60; above 1 s: 2000.
    assert.deepEqual(h.counts, [4, 1, 0, 0, 1, 0, 0, 0, 1]);
    assert.equal(h.maxSeconds, 2);
    assert.ok(Math.abs(h.sumSeconds - 2.075) < 1e-9, String(h.sumSeconds));
  });

  it("sees a 150 ms synchronous stretch as a delay of at least 130 ms", async () => {
    const m = new LoopDelayMonitor();
    m.start();
    await new Promise((r) => setTimeout(r, 50));
    const until = performance.now() + 150;
    while (performance.now() < until) {
      // the loop is held here, as a long SQLite call would hold it
    }
    await new Promise((r) => setTimeout(r, 60));
    m.stop();
    const h = m.snapshot();
    assert.ok(h.maxSeconds >= 0.13, `max delay ${h.maxSeconds} s`);
    assert.ok(h.counts.slice(LOOP_DELAY_BUCKETS_S.indexOf(0.1) + 1).reduce((a, b) => a + b, 0) >= 1, JSON.stringify(h.counts));
  });

  it("is exposed as a cumulative Prometheus histogram with its max, rendered like the fsync one", () => {
    const m = new LoopDelayMonitor(() => 0);
    for (const ms of [1, 20, 300]) m.record(ms);
    const st: RaftStatus = {
      id: "n1", role: "follower", leaderId: "n2", term: 2, vote: "", commitIndex: 5, appliedIndex: 5, lastIndex: 5, firstIndex: 1,
      confState: { voters: ["n1", "n2", "n3"], votersOutgoing: [], learners: [] },
    } as RaftStatus;
    const lines = nodeMetricsText({ status: st, appliedIndex: 5, revision: 3, proposalsPending: 0, readsPending: 0, watchers: 0, peers: {}, fsync: { buckets: [0.001], counts: [2, 1], sumSeconds: 0.0125 }, loopDelay: m.snapshot() }).split("\n");
    for (const l of [
      'edgekv_event_loop_delay_seconds_bucket{le="0.005"} 1',
      'edgekv_event_loop_delay_seconds_bucket{le="0.025"} 2',
      'edgekv_event_loop_delay_seconds_bucket{le="0.25"} 2',
      'edgekv_event_loop_delay_seconds_bucket{le="0.5"} 3',
      'edgekv_event_loop_delay_seconds_bucket{le="+Inf"} 3',
      "edgekv_event_loop_delay_seconds_count 3",
      "edgekv_event_loop_delay_max_seconds 0.3",
      // The fsync histogram goes through the same rendering (src/server/histogram.ts).
      'edgekv_fsync_duration_seconds_bucket{le="0.001"} 2',
      'edgekv_fsync_duration_seconds_bucket{le="+Inf"} 3',
      "edgekv_fsync_duration_seconds_sum 0.0125",
      "edgekv_fsync_duration_seconds_count 3",
    ]) assert.ok(lines.includes(l), l);
  });
});
