/**
 * The cluster secret on the wire (docs/peer-protocol.md "Admission"), through the running runtime's real
 * peer transport: with the empty secret local clusters may use, and with a secret that ends in a space,
 * two in-process nodes must elect a leader and forward a write. The sender used to send `Bearer <secret>`
 * untrimmed; HTTP/2 field values must not end in whitespace and node:http2 (Node, Bun, Deno) dropped the
 * header, so every peer answered 401 and no leader was ever elected (B1 break session 2026-11-30).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";

const clusters: InProcessCluster[] = [];
after(async () => {
  for (const c of clusters) await c.close();
});

describe("cluster secret on the wire", () => {
  for (const [name, secret] of [
    ["the empty secret", ""],
    ["a secret ending in a space", "s3cret-s3cret-s3cret "],
  ] as const) {
    it(`two nodes with ${name} elect a leader and forward a write`, async () => {
      const c = await InProcessCluster.start({ nodes: 2, flags: ["--cluster-secret", secret] });
      clusters.push(c);
      assert.equal(c.configs.get("n1")!.clusterSecret, secret);
      const leader = await c.leader(10_000);
      const follower = leader === "n1" ? "n2" : "n1";
      const put = await c.request(follower, "PUT", "/v1/kv/k", "v");
      assert.equal(put.status, 200, await put.text());
      const get = await c.request(leader, "GET", "/v1/kv/k");
      assert.equal(await get.text(), "v");
      assert.equal(c.logs.filter((l) => l.includes("cluster secret does not match")).length, 0);
    });
  }
});
