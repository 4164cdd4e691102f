/**
 * Membership and readiness truths on an in-process cluster (real HTTP/2 peer links on loopback, run on
 * each runtime): a removed follower or learner answers `not_member`, is not ready, does not forward and
 * does not campaign; a member that cannot reach its peers says so once at warn and reports not ready.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { EdgeNode } from "../../src/server/node.ts";
import { InProcessCluster, freePort, testPorts } from "../helpers/inprocess-cluster.ts";
import { answer } from "../helpers/membership.ts";

const clusters: InProcessCluster[] = [];
const extra: EdgeNode[] = [];
after(async () => {
  for (const n of extra) await n.stop();
  for (const c of clusters) await c.close();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, logs: string[]): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; logs:\n${logs.slice(-40).join("\n")}`);
}

const FAST = ["--heartbeat-interval-ms", "50", "--election-timeout-ms-min", "200", "--election-timeout-ms-max", "400", "--tick-ms", "25"];

/** Opens and starts one more node (not bootstrapped) with `peers` as its --peers list. */
async function extraNode(dir: string, id: string, peers: string, peerPort: number, logs: string[], bootstrap = false): Promise<EdgeNode> {
  const cfg = loadConfig({
    argv: ["--node-id", id, "--peers", peers, "--bootstrap", String(bootstrap), "--cluster-secret", "in-process-test-secret", "--data-dir", join(dir, id), "--peer-port", String(peerPort), "--client-port", "18099", ...FAST],
    env: {},
  });
  const node = await EdgeNode.open(cfg, await testPorts(id, logs));
  extra.push(node);
  await node.start();
  return node;
}

/** A membership call on the leader, retried (bounded) while another change (a member's URL announce) is in flight. */
async function memberCall(c: InProcessCluster, leader: string, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return until("a membership change to be accepted", async () => {
    const res = await c.request(leader, method, path, body, body ? { "content-type": "application/json" } : {});
    const text = await res.text();
    return res.status === 503 && /in flight/.test(text) ? undefined : { status: res.status, body: text };
  }, 10_000, c.logs);
}

function request(node: EdgeNode, method: string, path: string, body?: string): Promise<Response> {
  return node.fetch(new Request(`http://127.0.0.1${path}`, { method, body }));
}

describe("a removed member is told", () => {
  it("a removed follower answers not_member, is not ready and logs its removal once", async () => {
    const c = await InProcessCluster.start({ nodes: 3, flags: FAST });
    clusters.push(c);
    const leader = await c.leader(10_000);
    const victim = [...c.nodes.keys()].find((id) => id !== leader)!;
    assert.equal((await c.request(leader, "PUT", "/v1/kv/a", "1")).status, 200);
    const termBefore = (await c.nodes.get(leader)!.cluster()).term;
    const rm = await memberCall(c, leader, "DELETE", `/v1/cluster/members/${victim}`);
    assert.equal(rm.status, 200, rm.body);
    const w = await until("the removed follower to answer a write with not_member", async () => {
      const a = await answer(await c.request(victim, "PUT", "/v1/kv/b", "from-removed"));
      return a.code === "not_member" ? a : undefined;
    }, 5000, c.logs);
    assert.equal(w.status, 503);
    const r = await answer(await c.request(victim, "GET", "/v1/kv/a"));
    assert.deepEqual([r.status, r.code], [503, "not_member"], r.body);
    const ready = await answer(await c.request(victim, "GET", "/readyz"));
    assert.deepEqual([ready.status, ready.code], [503, "not_member"], ready.body);
    assert.equal((await c.request(victim, "GET", "/healthz")).status, 200);
    const warned = c.logs.filter((l) => l.includes(`(${victim}) was removed`));
    assert.equal(warned.length, 1, warned.join("\n"));
    // The removed voter does not disturb the rest (PreVote, and it no longer campaigns): same leader, same term.
    await new Promise((r) => setTimeout(r, 1500));
    const v = await c.nodes.get(leader)!.cluster();
    assert.deepEqual([v.leaderId, v.term], [leader, termBefore], "the removed member disturbed the cluster");
    assert.equal(c.logs.filter((l) => l.includes(`(${victim}) was removed`)).length, 1, "the removal was logged more than once");
    // Until it learns its removal it may still forward (the leader serves any peer); once it knows, never.
    const late = await answer(await c.request(victim, "PUT", "/v1/kv/c", "after-not-member"));
    assert.deepEqual([late.status, late.code], [503, "not_member"], late.body);
    assert.equal((await c.request(leader, "GET", "/v1/kv/c")).status, 404, "the removed member forwarded a write");
    await c.stopNode(victim);
  });

  it("a removed learner answers not_member, is not ready and forwards nothing", async () => {
    const c = clusters[0]!;
    const leader = await c.leader(10_000);
    const peerPort = await freePort();
    const peers = Object.entries(c.configs.get(leader)!.peers).map(([id, url]) => `${id}=${url}`);
    const learner = await extraNode(c.dir, "n4", [...peers, `n4=http://127.0.0.1:${peerPort}`].join(","), peerPort, c.logs);
    const add = await memberCall(c, leader, "POST", "/v1/cluster/members", JSON.stringify({ id: "n4", peerUrl: `http://127.0.0.1:${peerPort}`, clientUrl: "http://127.0.0.1:18099" }));
    assert.equal(add.status, 200, add.body);
    await until("the learner to be ready", async () => ((await request(learner, "GET", "/readyz")).status === 200 ? true : undefined), 10_000, c.logs);
    const fwd = await request(learner, "PUT", "/v1/kv/l1", "via-learner");
    assert.equal(fwd.status, 200, `a member learner forwards writes: ${await fwd.text()}`);
    const rm = await memberCall(c, leader, "DELETE", "/v1/cluster/members/n4");
    assert.equal(rm.status, 200, rm.body);
    const ready = await until("the removed learner to report not_member", async () => {
      const a = await answer(await request(learner, "GET", "/readyz"));
      return a.code === "not_member" ? a : undefined;
    }, 8000, [...c.logs.filter((l) => l.includes("[n4]")), JSON.stringify(await answer(await request(learner, "GET", "/readyz"))), JSON.stringify(await learner.cluster())]);
    assert.equal(ready.status, 503);
    const w = await answer(await request(learner, "PUT", "/v1/kv/l2", "from-removed-learner"));
    assert.deepEqual([w.status, w.code], [503, "not_member"], w.body);
    assert.equal((await c.request(leader, "GET", "/v1/kv/l2")).status, 404, "the removed learner forwarded the write");
    assert.equal((await request(learner, "GET", "/healthz")).status, 200, "liveness must stay 200");
  });
});

describe("a member with a wrong peer URL says so", () => {
  it("logs each unreachable peer once at warn and reports leader_unreachable on /readyz; the others stay ready", async () => {
    const logs: string[] = [];
    const dir = clusters[0]!.dir;
    const [p1, p2, p3, dead1, dead2] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const right = `n1=http://127.0.0.1:${p1},n2=http://127.0.0.1:${p2},n3=http://127.0.0.1:${p3}`;
    // n3 was given ports nobody listens on for both others: it hears them, they never hear it.
    const wrong = `n1=http://127.0.0.1:${dead1},n2=http://127.0.0.1:${dead2},n3=http://127.0.0.1:${p3}`;
    const n1 = await extraNode(join(dir, "w"), "n1", right, p1, logs, true);
    const n2 = await extraNode(join(dir, "w"), "n2", right, p2, logs, true);
    const n3 = await extraNode(join(dir, "w"), "n3", wrong, p3, logs, true);
    await until("a leader among n1, n2", async () => {
      const l = (await n1.cluster()).leaderId;
      return l && l !== "n3" && (await n3.cluster()).leaderId === l ? l : undefined;
    }, 15_000, logs);
    for (let i = 0; i < 5; i++) assert.equal((await request(n1, "PUT", `/v1/kv/w${i}`, "x")).status, 200);
    const r = await until("n3 to report not ready", async () => {
      const a = await answer(await request(n3, "GET", "/readyz"));
      return a.status === 503 ? a : undefined;
    }, 10_000, logs);
    assert.equal(r.code, "leader_unreachable", r.body);
    assert.equal((await request(n3, "GET", "/healthz")).status, 200, "liveness must stay 200");
    for (const n of [n1, n2]) assert.equal((await request(n, "GET", "/readyz")).status, 200);
    // Several reconnect attempts later (backoff starts at 1 s), still one warn line per unreachable peer.
    await new Promise((res) => setTimeout(res, 2500));
    for (const [id, port] of [["n1", dead1], ["n2", dead2]] as const) {
      const lines = logs.filter((l) => l.includes("warn") && l.includes(`[n3] peer ${id} (http://127.0.0.1:${port}) is unreachable`));
      assert.equal(lines.length, 1, `${id}: ${lines.join("\n") || "no warn line"}`);
    }
  });
});
