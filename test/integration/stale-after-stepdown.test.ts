/**
 * `X-Staleness-Ms` on a node that led until it lost its quorum (new-user trial U7, 2026-12-01): it counted from
 * the last time the node heard ANOTHER leader, 45 s where the data was 12 s old, and a node that had been the
 * first leader (never heard another) sent no figure at all. It now counts from the last time a quorum of voters
 * was heard while it led. Also `quorumHeardAtMs`, the majority rule over contact times.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { quorumHeardAtMs } from "../../src/server/node.ts";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";

describe("staleness after stepping down", () => {
  it("quorumHeardAtMs: the latest time by which a majority had been heard", () => {
    assert.equal(quorumHeardAtMs([1000, 400, 700]), 700);
    assert.equal(quorumHeardAtMs([1000, 0, 0]), 0, "one of three is no quorum");
    assert.equal(quorumHeardAtMs([1000, 0, 900]), 900);
    assert.equal(quorumHeardAtMs([50]), 50);
    assert.equal(quorumHeardAtMs([10, 20, 30, 40]), 20, "four voters need three");
    assert.equal(quorumHeardAtMs([10, 20, 30, 40, 50]), 30);
    assert.equal(quorumHeardAtMs([]), 0);
  });

  it("a leader that lost its quorum reports staleness from when it last heard a quorum", async () => {
    const c = await InProcessCluster.start({ nodes: 3 });
    try {
      const leader = await c.leader(10_000);
      const put = await c.request(leader, "PUT", "/v1/kv/s", "v1");
      assert.equal(put.status, 200, await put.text());
      // The first leader of a fresh cluster: it never heard another leader.
      for (const id of [...c.nodes.keys()]) if (id !== leader) await c.stopNode(id);
      const stoppedAt = Date.now();
      // CheckQuorum steps it down within about two election timeouts (600 ms here).
      const until = Date.now() + 10_000;
      while (Date.now() < until && (await c.nodes.get(leader)!.cluster()).leaderId === leader) await new Promise((r) => setTimeout(r, 50));
      assert.notEqual((await c.nodes.get(leader)!.cluster()).leaderId, leader, "still leader 10 s after losing both followers");
      await new Promise((r) => setTimeout(r, 1000));
      const before = Date.now() - stoppedAt;
      const res = await c.request(leader, "GET", "/v1/kv/s?consistency=stale");
      const after = Date.now() - stoppedAt;
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(await res.text(), "v1");
      const header = res.headers.get("x-staleness-ms");
      assert.ok(header !== null, "a former leader's stale read must say how stale it is");
      const staleness = Number(header);
      // The followers were last heard at most a heartbeat interval (150 ms) plus their stop before stoppedAt.
      assert.ok(staleness >= before - 50, `staleness ${staleness} ms, but the followers stopped ${before} ms before the read`);
      assert.ok(staleness <= after + 1500, `staleness ${staleness} ms, the followers stopped only ${after} ms before the read`);
    } finally {
      await c.close();
    }
  });
});
