/**
 * A removed member is told, on real node processes (test/helpers/cluster.ts) of the runtime running the
 * test: a follower removed while it runs, and one removed while it was down and then restarted, both answer
 * client requests `503 not_member`, report `/readyz` 503 `not_member`, stay live on `/healthz`, and log
 * their removal once at warn (docs/api.md "A removed member"). Before the fix both answered `no_leader`
 * (nothing told a removed follower that its removal committed). A removed member added back (the removed
 * leader, then a follower re-added in the same term as its removal) serves and reports ready again, and
 * logs it once at info; before that fix both answered `not_member` until restarted.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { type NodeRuntime, TestCluster } from "../helpers/cluster.ts";
import { loopbackUrl } from "../../scripts/node-command.ts";
import { answer, pollUntil } from "../helpers/membership.ts";

const runtime = (process.env.EDGEKV_TEST_RUNTIME ?? currentRuntime()) as NodeRuntime;
/**
 * Election timeouts of 1-2 s (default 300-600 ms): both tests assert that the term did not change, and the
 * default lets a busy CI machine (another lane's processes beside these three) stall a leader past an
 * election timeout now and then, an election no removed member caused (this file failed once in CI).
 */
const flags = ["--election-timeout-ms-min", "1000", "--election-timeout-ms-max", "2000"];
let c: TestCluster | undefined;
after(async () => {
  await c?.stop();
});

/** Polls `probe` (test/helpers/membership.ts pollUntil); a timeout shows the nodes' logs. */
function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  return pollUntil(what, probe, timeoutMs, () => c?.logs() ?? "");
}

/** DELETE a member on the leader, retried while another membership change (a URL announce) is in flight. */
async function removeMember(leader: string, id: string): Promise<void> {
  const r = await until(`the removal of ${id} to be accepted`, async () => {
    const a = await answer(await c!.fetch(leader, `/v1/cluster/members/${id}`, { method: "DELETE" }));
    return a.status === 503 && /in flight/.test(a.body) ? undefined : a;
  }, 20_000);
  assert.equal(r.status, 200, r.body);
}

/** Asserts `id` refuses with not_member, is not ready but live, and logged its removal exactly once. */
async function assertToldRemoved(id: string): Promise<void> {
  const w = await until(`${id} to answer a write with not_member`, async () => {
    const a = await answer(await c!.fetch(id, "/v1/kv/removed-probe", { method: "PUT", body: "x" }));
    return a.code === "not_member" ? a : undefined;
  }, 30_000);
  assert.equal(w.status, 503, w.body);
  // Before it knew, a probe may have been forwarded and applied; from now on nothing is.
  const late = await answer(await c!.fetch(id, `/v1/kv/after-${id}`, { method: "PUT", body: "x" }));
  assert.deepEqual([late.status, late.code], [503, "not_member"], late.body);
  const r = await answer(await c!.fetch(id, "/readyz"));
  assert.deepEqual([r.status, r.code], [503, "not_member"], r.body);
  assert.equal((await c!.fetch(id, "/healthz")).status, 200, "liveness must stay 200");
  const log = readFileSync(c!.members.get(id)!.logPath, "utf8");
  const lines = log.split("\n").filter((l) => l.includes(`this node (${id}) was removed`));
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0]!, /warn/);
}

describe(`a removed member is told (${runtime} processes)`, () => {
  it("a follower removed while down learns it after its restart; one removed while up learns it at once", async () => {
    c = await TestCluster.start({ nodes: 3, runtime, extraArgs: flags });
    const leader = await c.leader();
    const [down, up] = [...c.members.keys()].filter((id) => id !== leader) as [string, string];
    const put = await c.fetch(leader, "/v1/kv/k", { method: "PUT", body: "v" });
    assert.equal(put.status, 200, await put.text());
    const termBefore = (await c.info(leader))?.term;
    assert.ok(termBefore, "no cluster view from the leader");
    // Removed while down: 2 of 3 voters still commit the change.
    await c.kill(down);
    await removeMember(leader, down);
    await c.restart(down);
    await assertToldRemoved(down);
    // Removed while up.
    await removeMember(leader, up);
    await assertToldRemoved(up);
    for (const id of [down, up]) {
      const g = await c.fetch(leader, `/v1/kv/after-${id}`);
      assert.equal(g.status, 404, `a write sent to ${id} after it knew it was removed was applied`);
    }
    assert.equal((await answer(await c.fetch(leader, "/readyz"))).status, 200, "the remaining leader is ready");
    // The removed nodes (one restarted with a log that still makes it a voter) never disturbed the leader.
    const after = await c.info(leader);
    assert.deepEqual([after?.leaderId, after?.term], [leader, termBefore], "a removed member disturbed the cluster");
  });

  it("a removed leader, and a removed follower, added back and promoted serve and report ready again", async () => {
    await c?.stop();
    c = await TestCluster.start({ nodes: 3, runtime, extraArgs: flags });
    const all = [...c.members.keys()];
    const first = await c.leader();
    assert.equal((await c.fetch(first, "/v1/kv/k", { method: "PUT", body: "v" })).status, 200);
    // The leader removes itself: it applies its removal, steps down, and the other two elect a leader.
    await removeMember(first, first);
    await assertToldRemoved(first);
    let leader = await c.waitForLeader({ among: all.filter((id) => id !== first), timeoutMs: 30_000 });
    await addBack(leader, first);
    // A follower removed while up learns it from a member's view in the current term; the leader re-adds
    // it in that same term, so only the configuration it applies proves it is a member again.
    leader = await c.waitForLeader({ among: all, timeoutMs: 30_000 });
    const follower = all.find((id) => id !== leader && id !== first)!;
    const termBefore = (await c.info(leader))?.term;
    await removeMember(leader, follower);
    await assertToldRemoved(follower);
    await addBack(leader, follower);
    assert.equal((await c.info(leader))?.term, termBefore, "the follower was re-added in a later term: the same-term path went untested");
  });
});

/**
 * Adds the removed `id` back through `leader` (as a learner, with its own URLs) and promotes it, then checks
 * that it reports ready, takes a write and a linearizable read, and logged once at info that it is a
 * member again.
 */
async function addBack(leader: string, id: string): Promise<void> {
  const plan = c!.members.get(id)!.plan;
  const body = JSON.stringify({ id, peerUrl: loopbackUrl(plan.peerPort), clientUrl: loopbackUrl(plan.clientPort) });
  const add = await until(`the re-add of ${id} to be accepted`, async () => {
    const a = await answer(await c!.fetch(leader, "/v1/cluster/members", { method: "POST", body, headers: { "content-type": "application/json" } }));
    return a.status === 503 ? undefined : a;
  }, 20_000);
  assert.equal(add.status, 200, add.body);
  // A learner is promoted once it caught up; until then the leader refuses (retried).
  const promote = await until(`the promotion of ${id}`, async () => {
    const a = await answer(await c!.fetch(leader, `/v1/cluster/members/${id}/promote`, { method: "POST" }));
    return a.status === 200 ? a : undefined;
  }, 20_000);
  assert.equal(promote.status, 200, promote.body);
  const ready = await until(`${id} to report ready`, async () => {
    const a = await answer(await c!.fetch(id, "/readyz"));
    return a.status === 200 ? a : undefined;
  }, 20_000);
  assert.equal(ready.status, 200);
  const put = await answer(await c!.fetch(id, `/v1/kv/back-${id}`, { method: "PUT", body: `hello ${id}` }));
  assert.equal(put.status, 200, put.body);
  const get = await c!.fetch(id, `/v1/kv/back-${id}?consistency=linearizable`);
  assert.deepEqual([get.status, await get.text()], [200, `hello ${id}`]);
  const log = readFileSync(c!.members.get(id)!.logPath, "utf8");
  const lines = log.split("\n").filter((l) => l.includes(`this node (${id}) is a member of the cluster again`));
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0]!, /info/);
}
