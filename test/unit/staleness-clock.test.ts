/**
 * StalenessClock (src/server/staleness.ts), the origin of X-Staleness-Ms: a heartbeat counts only once the
 * node has applied the commit index it announced (B9: a node behind the leader answered old data with
 * X-Staleness-Ms counted from the heartbeat it had just heard).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { StalenessClock, heartbeatTimeMs } from "../../src/server/staleness.ts";

describe("StalenessClock", () => {
  it("is unknown until a heartbeat is covered by the applied index, or leadership ended", () => {
    const c = new StalenessClock();
    assert.equal(c.stalenessMs(1_000, 0), null);
    c.heard(10, 1_000, 5);
    assert.equal(c.stalenessMs(1_500, 5), null, "applied 5 does not cover commit 10");
    assert.equal(c.stalenessMs(1_500, 10), 500, "once applied reaches 10, current as of the heartbeat at 1000");
  });

  it("a node that fell behind: the heartbeat it hears first does not make old data fresh", () => {
    const c = new StalenessClock();
    c.heard(100, 10_000, 100); // caught up at 10 000
    assert.equal(c.stalenessMs(10_050, 100), 50);
    // Cut off 3 s; meanwhile the leader committed up to 130. The first heartbeat after it is heard again:
    c.heard(130, 13_000, 100);
    assert.equal(c.stalenessMs(13_002, 100), 3_002, "still current only as of 10 000");
    // Entries arrive and apply; a later heartbeat with the same commit only moves the time forward.
    c.heard(130, 13_100, 120);
    assert.equal(c.stalenessMs(13_150, 120), 3_150);
    assert.equal(c.stalenessMs(13_200, 130), 100, "applied 130 covers the heartbeat at 13 100");
  });

  it("takes the latest covered announcement, keeps uncovered ones, and never moves the origin back", () => {
    const c = new StalenessClock();
    c.heard(10, 1_000, 0);
    c.heard(20, 2_000, 0);
    c.heard(30, 3_000, 0);
    assert.equal(c.stalenessMs(4_000, 25), 2_000, "commit 20 (at 2000) is the latest one applied 25 covers");
    assert.equal(c.stalenessMs(4_000, 30), 1_000);
    c.currentAt(2_500); // older than the origin: ignored
    assert.equal(c.stalenessMs(4_000, 30), 1_000);
  });

  it("a former leader counts from its last quorum contact until it catches up with the new leader", () => {
    const c = new StalenessClock();
    c.currentAt(5_000); // led with a quorum until 5 000
    c.heard(80, 9_000, 60); // the new leader's heartbeat: it committed more meanwhile
    assert.equal(c.stalenessMs(9_001, 60), 4_001);
    assert.equal(c.stalenessMs(9_300, 80), 300);
  });

  it("counts a heartbeat from its send time, never later than its arrival (B9's pause repro)", () => {
    // Sent at 10 100 just after the pause began, read at 13 000 after SIGCONT: current as of 10 100.
    assert.equal(heartbeatTimeMs(13_000, 10_100), 10_100);
    // A leader clock 50 ms ahead of this node's: the arrival bounds it.
    assert.equal(heartbeatTimeMs(13_000, 13_050), 13_000);
    assert.equal(heartbeatTimeMs(13_000, undefined), 13_000);
    // The queued heartbeats of a pause: the old commit it announced is applied, but as of its send time.
    const c = new StalenessClock();
    c.heard(100, heartbeatTimeMs(10_000, 10_000), 100);
    c.heard(100, heartbeatTimeMs(13_000, 10_100), 100); // waited in the socket
    c.heard(130, heartbeatTimeMs(13_000, 12_900), 100); // the leader moved on meanwhile
    assert.equal(c.stalenessMs(13_001, 100), 2_901);
  });

  it("remembers a bounded number of uncovered heartbeats (the oldest go first; staleness then reads higher)", () => {
    const c = new StalenessClock();
    for (let i = 1; i <= 100; i++) c.heard(i, i * 10, 0);
    // 64 kept: commits 37..100. Applied 40 covers 37..40; the latest of those is at 400.
    assert.equal(c.stalenessMs(1_000, 40), 600);
    assert.equal(c.stalenessMs(1_000, 36), 600, "the origin never moves back");
  });
});
