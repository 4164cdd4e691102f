/**
 * A member added after the bootstrap (learner, then promoted), made leader by a transfer and then removed
 * while it leads (user trial U5, item 7): it must lead until the configuration without it commits, then step
 * down with the reason "removed from the configuration" and learn its removal by applying it (Raft thesis
 * §4.2.2; docs/api.md, DELETE /v1/cluster/members). Its followers were started without it in --peers, so
 * only the member table gave them its URL; dropping that URL when the joint entry applied cut the leader
 * off from their replies, and it stepped down by CheckQuorum instead.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { InProcessCluster, freePort } from "../helpers/inprocess-cluster.ts";
import { loadConfig } from "../../src/config/load.ts";

let c: InProcessCluster | undefined;
after(async () => {
  await c?.close();
});

const JSON_TYPE = { "content-type": "application/json" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Repeats `call` until it answers 200 (a membership change in flight answers 503), at most ~10 s. */
async function until200(what: string, call: () => Promise<Response>): Promise<Response> {
  let last = "";
  for (let i = 0; i < 50; i++) {
    const r = await call();
    if (r.status === 200) return r;
    last = `${r.status} ${await r.text()}`;
    await sleep(200);
  }
  throw new Error(`${what}: no 200 within ~10 s; last answer ${last}`);
}

describe("removing a leader that joined after the bootstrap", () => {
  it("it leads until its removal commits, then steps down as removed (not by CheckQuorum)", async () => {
    c = await InProcessCluster.start({ nodes: 3 });
    const cluster = c;
    let leader = await cluster.leader(10_000);
    const p4 = await freePort();
    const url4 = `http://127.0.0.1:${p4}`;
    await until200("add n4", () => cluster.request(leader, "POST", "/v1/cluster/members", JSON.stringify({ id: "n4", peerUrl: url4, clientUrl: "http://127.0.0.1:18003" }), JSON_TYPE));
    const peers = [...cluster.configs.entries()].map(([id, cfg]) => `${id}=${cfg.advertisePeerUrl}`);
    cluster.configs.set("n4", loadConfig({ argv: ["--node-id", "n4", "--peers", [...peers, `n4=${url4}`].join(","), "--cluster-secret", "in-process-test-secret", "--data-dir", join(cluster.dir, "n4"), "--peer-port", String(p4), "--client-port", "18003"], env: {} }));
    await cluster.startNode("n4");
    for (let i = 0; i < 5; i++) assert.equal((await cluster.request(leader, "PUT", `/v1/kv/k${i}`, "v")).status, 200);
    await until200("promote n4", () => cluster.request(leader, "POST", "/v1/cluster/members/n4/promote"));
    await until200("transfer to n4", () => cluster.request(leader, "POST", "/v1/cluster/leader", JSON.stringify({ id: "n4" }), JSON_TYPE));
    leader = await cluster.leader(10_000);
    assert.equal(leader, "n4");
    await until200("remove n4", () => cluster.request("n4", "DELETE", "/v1/cluster/members/n4"));
    const n4Lines = () => cluster.logs.filter((l) => l.includes("[n4]"));
    for (let i = 0; i < 100 && !n4Lines().some((l) => /this node \(n4\) was removed/.test(l)); i++) await sleep(100);
    const lines = n4Lines().join("\n");
    assert.match(lines, /stepped down in term \d+ \(removed from the configuration\)/);
    assert.doesNotMatch(lines, /CheckQuorum/);
    assert.match(lines, /this node \(n4\) was removed from the cluster \(it applied a configuration without itself\)/);
    // The others go on without it (stopped first: a removed node never learns their new leader).
    await cluster.stopNode("n4");
    leader = await cluster.leader(10_000);
    assert.notEqual(leader, "n4");
    assert.equal((await cluster.request(leader, "PUT", "/v1/kv/after", "v")).status, 200);
    // Kept reachable only while it led: once another leads, no member keeps a link or a series for n4 (B6).
    let withN4: string[] = [];
    for (let i = 0; i < 50; i++) {
      withN4 = [];
      for (const [id, n] of cluster.nodes) if (/peer="n4"/.test(await n.metricsText())) withN4.push(id);
      if (withN4.length === 0) break;
      await sleep(100);
    }
    assert.deepEqual(withN4, [], "members still exporting peer=\"n4\" series");
  });
});
