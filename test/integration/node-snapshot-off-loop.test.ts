/**
 * A node that makes its snapshot files on a worker thread (`--snapshot-off-loop-bytes 0`: every database is
 * "large enough"): every 40 entries it records only a compaction point and drops the log behind it; when a
 * follower stopped meanwhile comes back behind the log start, the leader makes a file on the worker, and the
 * follower installs it and has every write.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
    // What a crash during a copy or a receive leaves; nothing but the start removes it on a node making no copies (B5).
    const victimSnaps = join(c.dir, victim, "snapshots");
    writeFileSync(join(victimSnaps, "snap-7-bg.tmp"), "a worker copy cut short");
    writeFileSync(join(victimSnaps, "snap-1-99.db.part"), "a receive cut short");
    await c.startNode(victim);
    assert.deepEqual(readdirSync(victimSnaps).filter((n) => n.includes("-bg.tmp") || n.endsWith(".part")), []);
    assert.ok(c.logs.some((l) => l.includes(`[${victim}]`) && l.includes("removed snapshot files a crash left: snap-1-99.db.part, snap-7-bg.tmp")), snapLines());
    // Writes go on while the file is made, sent and installed, so compaction points fall due meanwhile: one
    // recorded right after the send dropped the entries just after the file, and a second copy followed (B5).
    let written = 150;
    const more = (async () => {
      for (const stop = Date.now() + 3000; Date.now() < stop && written < 450; written++) {
        const r = await c.request(leader, "PUT", `/v1/kv/bulk/${String(written).padStart(3, "0")}`, `value-${written}`);
        assert.equal(r.status, 200, await r.clone().text());
      }
    })();
    const until0 = Date.now() + 15_000;
    while (Date.now() < until0 && !c.logs.some((l) => l.includes(`[${leader}]`) && l.includes("made on a worker thread"))) await new Promise((res) => setTimeout(res, 50));
    assert.ok(c.logs.some((l) => l.includes(`[${leader}]`) && l.includes("made on a worker thread")), "the leader should have snapshotted on a worker:\n" + snapLines());
    assert.ok(!c.logs.some((l) => l.includes("snapshot on a worker thread failed")), snapLines());
    await more;
    assert.ok(written > 200, `only ${written} writes`);
    const until = Date.now() + 15_000;
    let count = -1;
    while (Date.now() < until) {
      const r = await c.request(victim, "GET", "/v1/kv?prefix=bulk/&countOnly=true&consistency=stale");
      if (r.status === 200) count = ((await r.json()) as { count: number }).count;
      else await r.body?.cancel();
      if (count === written) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(count, written, snapLines());
    assert.ok(c.logs.some((l) => l.includes(`[${victim}]`) && l.includes("received snapshot")), "the follower should have installed a snapshot:\n" + snapLines());
    const last = await c.request(victim, "GET", `/v1/kv/bulk/${String(written - 1).padStart(3, "0")}?consistency=stale`);
    assert.equal(await last.text(), `value-${written - 1}`);
    // The leader core asked again on every answer while the file was being made, and compaction points waited
    // until the follower was back within the log tail: one file serves it all.
    await new Promise((res) => setTimeout(res, 1000));
    const made = c.logs.filter((l) => l.includes(`[${leader}]`) && l.includes("made on a worker thread"));
    assert.equal(made.length, 1, snapLines());
    const points = c.logs.filter((l) => l.includes(`[${leader}]`) && l.includes("compaction point at index"));
    const lastPoint = Number(/compaction point at index (\d+)/.exec(points[points.length - 1]!)?.[1]);
    const fileIndex = Number(/snapshot at index (\d+)/.exec(made[0]!)?.[1]);
    assert.ok(lastPoint > fileIndex, `compaction points went on after the file (${lastPoint} > ${fileIndex}):\n${snapLines()}`);
  });
});
