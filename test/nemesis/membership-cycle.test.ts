/**
 * The harness's membership fault must work from whatever state an earlier, half-finished cycle left
 * behind. Found by the 10-minute Node run of 2026-11-30 (seed 7): a removal answered `504 outcome_unknown`
 * had been applied, the cycle stopped there, and every later cycle failed at `DELETE` with `404 not a
 * member`, so the run went on with two voters and ended "replicas did not converge" (the removed node
 * kept its old state). Here a follower is removed behind the harness's back; `restoreVoters` (run by every
 * nemesis run before its final checks) must bring it back as a voter with the cluster's data.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NemesisCluster, clusterView } from "./cluster.ts";
import { restoreVoters, send } from "./faults.ts";
import { testRuntime, until } from "./scenario.ts";

let c: NemesisCluster | undefined;
after(async () => {
  await c?.destroy();
});

describe("nemesis membership fault: repairs a half-finished cycle", () => {
  it("a follower removed earlier is wiped, re-added, caught up and promoted again", async () => {
    const cluster = (c = await NemesisCluster.create({ nodes: 3, runtime: testRuntime(), dir: mkdtempSync(join(tmpdir(), "edgekv-memcycle-")) }));
    await cluster.waitHealthy(90_000);
    const leader = await cluster.waitLeader(60_000);
    const put = await fetch(`${cluster.url(leader)}/v1/kv/before`, { method: "PUT", body: "x", signal: AbortSignal.timeout(5000) });
    assert.equal(put.status, 200, await put.text());
    const victim = cluster.members.map((m) => m.id).find((id) => id !== leader)!;
    // Right after start-up each node announces its URLs through a membership update, so the first removal
    // may meet "a membership change is in flight" (503, nothing done): retried, bounded.
    let removed = await send(`${cluster.url(leader)}/v1/cluster/members/${victim}`, "DELETE", undefined, 10_000);
    for (let i = 0; i < 40 && removed.status === 503; i++) {
      await new Promise((r) => setTimeout(r, 250));
      removed = await send(`${cluster.url(leader)}/v1/cluster/members/${victim}`, "DELETE", undefined, 10_000);
    }
    assert.equal(removed.status, 200, removed.text);
    const lines: string[] = [];
    const did = await restoreVoters(cluster, cluster.members.map((m) => m.id), (s) => lines.push(s));
    assert.equal(did, `restored as voters: ${victim}`);
    const view = await until("a leader's member list", async () => {
      const l = await cluster.leader();
      return l ? clusterView(cluster.url(l)) : undefined;
    }, 20_000);
    assert.deepEqual(view.members.map((m) => `${m.id}:${m.role}`).sort(), cluster.members.map((m) => `${m.id}:voter`).sort());
    const read = await until(`the key on ${victim}`, async () => {
      const r = await fetch(`${cluster.url(victim)}/v1/kv/before?consistency=stale`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      return r?.status === 200 ? r.text() : undefined;
    }, 20_000, 200);
    assert.equal(read, "x");
    // Nothing to do the second time.
    assert.equal(await restoreVoters(cluster, cluster.members.map((m) => m.id), (s) => lines.push(s)), "");
  });
});
