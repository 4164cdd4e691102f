/**
 * The SDK against a real 3-node in-process cluster (EdgeNode, Raft, SQLite, HTTP/2 peers on loopback;
 * test/helpers/inprocess-cluster.ts). The SDK's fetch is routed to `node.fetch` by host, so the client
 * API server is bypassed but everything behind it is real. Checks: writes through followers, concurrent
 * exactly-once writes, a watch on a follower, and failover when the leader stops. Bounded in time.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";
import { EdgeKvClient, text } from "../../src/client/index.ts";

let cluster: InProcessCluster;

/** Routes `http://<id>.test/...` and the nodes' advertised client URLs (127.0.0.1:18000+i) to node.fetch; a stopped node is a connection error. */
const routedFetch = (async (input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(String(input));
  const id = url.hostname.endsWith(".test") ? url.hostname.slice(0, -5) : `n${Number(url.port) - 18000 + 1}`;
  const node = cluster.nodes.get(id);
  if (!node) throw new TypeError(`fetch failed: ${id} is down`);
  return node.fetch(new Request(url, init));
}) as typeof fetch;

const client = (endpoints: string[], extra: Partial<ConstructorParameters<typeof EdgeKvClient>[0]> = {}) =>
  new EdgeKvClient({ endpoints, fetch: routedFetch, timeoutMs: 20_000, retry: { attempts: 30, baseMs: 20, maxMs: 500 }, ...extra });

describe("client against an in-process 3-node cluster", () => {
  before(async () => {
    cluster = await InProcessCluster.start({ nodes: 3 });
    await cluster.leader(15_000);
  });
  after(async () => {
    await cluster?.close();
  });

  it("writes through a follower and reads linearizably from every node", async () => {
    const leader = await cluster.leader();
    const follower = [...cluster.nodes.keys()].find((id) => id !== leader)!;
    const c = client([`http://${follower}.test`]);
    const p = await c.put("e2e/a", "1");
    for (const id of cluster.nodes.keys()) {
      const g = await client([`http://${id}.test`]).get("e2e/a");
      assert.deepEqual([id, text(g!.value), g!.modRevision], [id, "1", p.revision]);
    }
  });

  it("applies 20 concurrent writes once each", async () => {
    const c = client(["http://n1.test", "http://n2.test", "http://n3.test"]);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.put(`e2e/c/${String(i).padStart(2, "0")}`, `v${i}`)));
    const r = await c.range({ prefix: "e2e/c/" });
    assert.equal(r.count, 20);
    assert.deepEqual(r.kvs.map((kv) => text(kv.value)), Array.from({ length: 20 }, (_, i) => `v${i}`));
    assert.equal(new Set(results.map((x) => x.revision)).size, 20, "every write got its own revision");
  });

  it("watches on a follower and sees a write made through the leader", async () => {
    const leader = await cluster.leader();
    const follower = [...cluster.nodes.keys()].find((id) => id !== leader)!;
    // Watch from the next revision, so the order of watch start and write does not matter.
    const from = (await client([`http://${leader}.test`]).range({ prefix: "e2e/" })).revision + 1;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 15_000);
    const seen: string[] = [];
    const w = (async () => {
      for await (const m of client([`http://${follower}.test`]).watch({ prefix: "e2e/w/" }, { fromRevision: from, signal: ac.signal })) {
        if (m.type === "events") for (const e of m.events) seen.push(`${e.type} ${e.kv.key} ${text(e.kv.value)}`);
        if (seen.length > 0) ac.abort();
      }
    })();
    await client([`http://${leader}.test`]).put("e2e/w/x", "hello");
    await w;
    clearTimeout(timer);
    assert.deepEqual(seen, ["put e2e/w/x hello"]);
  });

  it("keeps writing through a leader stop: every acknowledged write is readable afterwards", async () => {
    const c = client(["http://n1.test", "http://n2.test", "http://n3.test"]);
    const leader = await cluster.leader();
    const acked: number[] = [];
    for (let i = 0; i < 10; i++) {
      if (i === 3) await cluster.stopNode(leader);
      await c.put(`e2e/f/${i}`, String(i));
      acked.push(i);
    }
    assert.equal(acked.length, 10);
    const r = await c.range({ prefix: "e2e/f/" });
    assert.deepEqual(r.kvs.map((kv) => kv.key).sort(), acked.map((i) => `e2e/f/${i}`).sort());
  });
});
