/**
 * A removed member is told, on real node processes (test/helpers/cluster.ts) of the runtime running the
 * test: a follower removed while it runs, and one removed while it was down and then restarted, both answer
 * client requests `503 not_member`, report `/readyz` 503 `not_member`, stay live on `/healthz`, and log
 * their removal once at warn (docs/api.md "A removed member"). Before the fix both answered `no_leader`
 * (nothing told a removed follower that its removal committed).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { type NodeRuntime, TestCluster, sleep } from "../helpers/cluster.ts";

const runtime = (process.env.EDGEKV_TEST_RUNTIME ?? currentRuntime()) as NodeRuntime;
let c: TestCluster | undefined;
after(async () => {
  await c?.stop();
});

async function answer(res: Response): Promise<{ status: number; code: string; body: string }> {
  const body = await res.text();
  let code = "";
  try {
    const j = JSON.parse(body) as { error?: { code?: string }; reason?: string };
    code = j.error?.code ?? j.reason ?? "";
  } catch {
    // not JSON
  }
  return { status: res.status, code, body };
}

/** Polls `probe` every 100 ms until it returns a value, at most `timeoutMs`; throws with the nodes' logs. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // a node restarting: try again
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${c?.logs() ?? ""}`);
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
  }, 15_000);
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
    c = await TestCluster.start({ nodes: 3, runtime });
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
});
