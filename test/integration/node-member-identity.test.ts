/**
 * Member identity on an in-process cluster: a voter whose whole data dir is gone (marker file included)
 * refuses to start under its old id while the cluster lists it as a voter, and starts once it was removed
 * (docs/scenarios.md C13; src/server/identity.ts); a removed leader answers client writes with `not_member`
 * (docs/scenarios.md C10). The real-process versions are in test/nemesis/scenarios.test.ts.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { EdgeNode } from "../../src/server/node.ts";
import { InProcessCluster, testPorts } from "../helpers/inprocess-cluster.ts";
import { removeDir } from "../helpers/sql.ts";

let c: InProcessCluster | undefined;
after(async () => {
  await c?.close();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * DELETE /v1/cluster/members/{id} on `leader`, sent again while it answers 503 "a membership change is in
 * flight" (a retryable answer: the nodes' own URL announcements after start are membership changes, and on a
 * loaded machine one may still be committing; a full `npm test` saw that answer on Bun), within 20 s.
 */
async function removeMember(leader: string, id: string): Promise<Response> {
  return until(`the removal of ${id} to be accepted`, async () => {
    const x = await c!.request(leader, "DELETE", `/v1/cluster/members/${id}`);
    return x.status === 503 && /membership change is in flight/.test(await x.clone().text()) ? undefined : x;
  }, 20_000);
}

describe("member identity (C13 whole data dir, C10 not_member)", () => {
  it("a voter restarted on a deleted data dir is refused while it is a voter, and starts once removed", async () => {
    c = await InProcessCluster.start({ nodes: 3 });
    let leader = await c.leader(10_000);
    const put = await c.request(leader, "PUT", "/v1/kv/x", "1");
    assert.equal(put.status, 200, await put.text());
    const victim = [...c.nodes.keys()].find((id) => id !== leader)!;
    await c.stopNode(victim);
    const dir = join(c.dir, victim);
    removeDir(dir);
    assert.equal(existsSync(join(dir, "edgekv-node.json")), false, "the marker file must be gone too");
    // A restart, not a bootstrap: the operator starts it as before, on an empty dir.
    const cfg = { ...c.configs.get(victim)!, bootstrap: false };
    const lines: string[] = [];
    let refusal: Error | undefined;
    try {
      const wrongly = await EdgeNode.open(cfg, await testPorts(victim, lines));
      await wrongly.stop(); // close what a wrong start opened, so the failure below is reported, not a hang
    } catch (err) {
      refusal = err as Error;
    }
    assert.ok(refusal, `${victim} started on an empty data dir although the cluster lists it as a voter`);
    assert.match(refusal.message, new RegExp(`lists ${victim} as a voter`));
    assert.match(refusal.message, /lost its data/);
    assert.match(refusal.message, new RegExp(`DELETE /v1/cluster/members/${victim}`));
    leader = await c.leader(10_000);
    const rm = await removeMember(leader, victim);
    assert.equal(rm.status, 200, await rm.text());
    // Removed: the same empty start now passes (it waits to be added back as a learner).
    const node = await EdgeNode.open(cfg, await testPorts(victim, lines));
    await node.start();
    const view = await node.cluster();
    assert.deepEqual(view.members, [], "an empty node that is not a member knows no configuration");
    // Waiting to be added, it cannot confirm a linearizable read (the leader answers no ReadIndex from a
    // non-member): a fast 503 not_member, which clients fail over on, not a 504 at the 30 s deadline.
    const t0 = performance.now();
    const read = await node.fetch(new Request("http://x/v1/kv/x"));
    const body = (await read.json()) as { error: { code: string; message: string } };
    assert.equal(read.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, "not_member");
    assert.match(body.error.message, /not in the cluster's configuration yet/);
    assert.ok(performance.now() - t0 < 5_000, `answered after ${Math.round(performance.now() - t0)} ms`);
    // It holds no data: a stale read answered 404 for a key the cluster has, and a watch opened at revision
    // 0; both are not_member now, and /readyz says why it is not ready (it said no_leader).
    for (const path of ["/v1/kv/x?consistency=stale", "/readyz"]) {
      const r = await node.fetch(new Request(`http://x${path}`, { signal: AbortSignal.timeout(5_000) }));
      const b = (await r.json()) as { error?: { code: string }; reason?: string };
      assert.equal(r.status, 503, `${path}: ${JSON.stringify(b)}`);
      assert.equal(b.error?.code ?? b.reason, "not_member", `${path}: ${JSON.stringify(b)}`);
    }
    // A watch's failures are `error` events of its stream (docs/api.md): one, and the stream ends.
    const w = await node.fetch(new Request("http://x/v1/watch?key=x", { signal: AbortSignal.timeout(5_000) }));
    const events = await w.text();
    assert.match(events, /^event: error\n/m, events);
    assert.match(events, /"code":"not_member"/, events);
    assert.doesNotMatch(events, /event: (events|progress)/, events);
    await node.stop();
    const g = await c.request(leader, "GET", "/v1/kv/x");
    assert.equal(await g.text(), "1");
  });

  it("the removed leader answers client writes with not_member, not no_leader", async () => {
    assert.ok(c, "the first test did not start the cluster");
    const leader = await c.leader(10_000);
    const rm = await removeMember(leader, leader);
    assert.equal(rm.status, 200, await rm.text());
    const rest = [...c.nodes.keys()].filter((id) => id !== leader);
    await until("a new leader among the rest", async () => {
      const v = await c!.nodes.get(rest[0])!.cluster();
      return v.leaderId && rest.includes(v.leaderId) ? v.leaderId : undefined;
    }, 10_000);
    // The old leader applied its removal; it never hears a leader again.
    const r = await until("the removed leader to refuse", async () => {
      const x = await c!.request(leader, "PUT", "/v1/kv/c10", "from-removed");
      const body = await x.text();
      return x.status === 503 && /not_member/.test(body) ? { status: x.status, body } : undefined;
    }, 10_000);
    assert.match(r.body, /no longer a member/);
  });
});
