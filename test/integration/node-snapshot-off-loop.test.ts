/**
 * A node that makes its snapshot files on a worker thread (`--snapshot-off-loop-bytes 0`: every database is
 * "large enough"): every 40 entries it records only a compaction point and drops the log behind it; when a
 * follower stopped meanwhile comes back behind the log start, the leader makes a file on the worker, and the
 * follower installs it and has every write.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";

describe("EdgeNode with off-loop snapshots", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 3, flags: ["--snapshot-entries", "40", "--snapshot-off-loop-bytes", "0"] });
  });
  after(async () => {
    await c?.close();
  });

  it("snapshots on a worker thread, and a stopped follower installs one and has every write", async () => {
    const leader = await c.leader();
    const victim = [...c.nodes.keys()].find((id) => id !== leader)!;
    await c.stopNode(victim);
    // Each write waits for the one before, so the leader's worker snapshots land between them; 40-entry
    // snapshots with a 40-entry log tail compact the victim's next index away.
    for (let i = 0; i < 150; i++) {
      const r = await c.request(leader, "PUT", `/v1/kv/bulk/${String(i).padStart(3, "0")}`, `value-${i}`);
      assert.equal(r.status, 200, await r.clone().text());
      if (i % 50 === 49) await new Promise((res) => setTimeout(res, 300)); // let a worker snapshot finish
    }
    const snapLines = () => c.logs.filter((l) => /snapshot|compaction point/i.test(l)).join("\n");
    // Every 40 entries only a compaction point (no copy): no node needed a file yet.
    assert.ok(c.logs.some((l) => l.includes(`[${leader}]`) && l.includes("compaction point at index")), snapLines());
    assert.ok(!c.logs.some((l) => l.includes("made on a worker thread")), "no file before a follower needs one:\n" + snapLines());
    await c.startNode(victim);
    const until0 = Date.now() + 15_000;
    while (Date.now() < until0 && !c.logs.some((l) => l.includes(`[${leader}]`) && l.includes("made on a worker thread"))) await new Promise((res) => setTimeout(res, 50));
    assert.ok(c.logs.some((l) => l.includes(`[${leader}]`) && l.includes("made on a worker thread")), "the leader should have snapshotted on a worker:\n" + snapLines());
    assert.ok(!c.logs.some((l) => l.includes("snapshot on a worker thread failed")), snapLines());
    const until = Date.now() + 15_000;
    let count = -1;
    while (Date.now() < until) {
      const r = await c.request(victim, "GET", "/v1/kv?prefix=bulk/&countOnly=true&consistency=stale");
      if (r.status === 200) count = ((await r.json()) as { count: number }).count;
      else await r.body?.cancel();
      if (count === 150) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(count, 150, snapLines());
    assert.ok(c.logs.some((l) => l.includes(`[${victim}]`) && l.includes("received snapshot")), "the follower should have installed a snapshot:\n" + snapLines());
    const last = await c.request(victim, "GET", "/v1/kv/bulk/149?consistency=stale");
    assert.equal(await last.text(), "value-149");
    // The leader core asked again on every answer while the file was being made: one file serves them all.
    await new Promise((res) => setTimeout(res, 500));
    const made = c.logs.filter((l) => l.includes(`[${leader}]`) && l.includes("made on a worker thread"));
    assert.equal(made.length, 1, snapLines());
  });
});
