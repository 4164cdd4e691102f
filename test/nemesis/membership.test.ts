/**
 * C25 (membership change + snapshot + full restart) on real processes: a 4th node joins as a learner, is
 * promoted, every node snapshots and compacts past the change, all four are killed and restarted, and every
 * node must still report the same 4-voter configuration, elect a leader, accept writes and a later
 * membership change. Snapshots every 50 entries; 120 keys are written before the join so the learner is
 * caught up by InstallSnapshot (a learner replaying the log from index 1 hits finding 1 of docs/nemesis.md).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NemesisCluster, clusterView } from "./cluster.ts";
import { send } from "./faults.ts";
import { testRuntime, until } from "./scenario.ts";

let c: NemesisCluster | undefined;
after(async () => {
  await c?.destroy();
});

async function writeKeys(cluster: NemesisCluster, prefix: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    const r = await until(`put ${prefix}${i}`, async () => {
      const l = await cluster.leader();
      if (!l) return undefined;
      const x = await fetch(`${cluster.url(l)}/v1/kv/${prefix}${i}`, { method: "PUT", body: `v${i}`, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      await x?.body?.cancel();
      return x?.status === 200 ? x : undefined;
    }, 20_000, 200);
    assert.equal(r.status, 200);
  }
}

describe("C25: membership change + snapshot + full restart", () => {
  it("every node keeps the 4-voter configuration after a full restart; writes and a later removal work", async () => {
    const cluster = (c = await NemesisCluster.create({ nodes: 3, spares: 1, runtime: testRuntime(), dir: mkdtempSync(join(tmpdir(), "edgekv-c25-")), extraArgs: ["--snapshot-entries", "50"] }));
    await cluster.waitHealthy(90_000);
    const leader = await cluster.waitLeader(60_000);
    await writeKeys(cluster, "pre%2F", 120);
    const d = cluster.member("n4");
    cluster.restart(d);
    const add = await send(`${cluster.url(leader)}/v1/cluster/members`, "POST", { id: "n4", peerUrl: `http://127.0.0.1:${d.peerPort}`, clientUrl: cluster.url(d) }, 10_000);
    assert.equal(add.status, 200, `add learner n4: ${add.text}`);
    const target = (await clusterView(cluster.url(leader)))!.commitIndex;
    await until("n4 to catch up", async () => ((await clusterView(cluster.url(d)))?.appliedIndex ?? 0) >= target, 60_000, 200);
    const promote = await until("promote n4", async () => {
      const x = await send(`${cluster.url((await cluster.waitLeader(10_000)))}/v1/cluster/members/n4/promote`, "POST", undefined, 10_000);
      return x.status === 200 ? x : undefined;
    }, 30_000, 500);
    assert.equal(promote.status, 200);
    await writeKeys(cluster, "post%2F", 120);
    await Promise.all(cluster.members.map((m) => cluster.kill(m)));
    for (const m of cluster.members) cluster.restart(m);
    await cluster.waitHealthy(90_000);
    await cluster.waitLeader(60_000);
    for (const m of cluster.members) {
      const v = await until(`cluster view of ${m.id}`, () => clusterView(cluster.url(m)), 20_000);
      const voters = v.members.filter((x) => x.role === "voter").map((x) => x.id).sort();
      assert.deepEqual(voters, ["n1", "n2", "n3", "n4"], `${m.id} after restart: ${JSON.stringify(v.members)}`);
    }
    await writeKeys(cluster, "after%2F", 5);
    const rm = await until("remove n1", async () => {
      const x = await send(`${cluster.url((await cluster.waitLeader(10_000)))}/v1/cluster/members/n1`, "DELETE", undefined, 10_000);
      return x.status === 200 ? x : undefined;
    }, 30_000, 500);
    assert.equal(rm.status, 200);
    await writeKeys(cluster, "final%2F", 5);
    const read = await until("a linearizable read on n4", async () => {
      const x = await fetch(`${cluster.url(d)}/v1/kv/final%2F5`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
      return x?.status === 200 ? x.text() : undefined;
    }, 20_000, 200);
    assert.equal(read, "v5");
    assert.deepEqual(cluster.crashes, []);
  });
});
