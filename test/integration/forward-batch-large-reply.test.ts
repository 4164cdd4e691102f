/**
 * A forwarded call whose answer is larger than a peer frame (docs/peer-protocol.md "Forward batches"):
 * a txn of ranges (or a range delete with prevKv) sent to a follower used to come back 504 outcome_unknown,
 * together with every other unanswered call of its batch, because the leader wrote the whole answer as one
 * reply frame and the follower's frame decoder refused it (B1 break session 2026-11-30: a 48 MB read-only
 * txn through a follower at the default 16 MiB limit). Here the limit is the smallest allowed, 64 KiB,
 * so a ~190 KiB answer shows it; the answer now travels in pieces. In process, real peer transport.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { sendForwardBatch, type PendingForward } from "../../runtime-adapters/shared/peer-forward-batch.ts";
import { PeerRequestError } from "../../src/server/transport.ts";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";

describe("forward batches at the smallest peer frame limit (64 KiB)", () => {
  let c: InProcessCluster;
  let leader = "";
  let follower = "";
  before(async () => {
    c = await InProcessCluster.start({ nodes: 2, flags: ["--max-frame-bytes", String(64 * 1024)] });
    leader = await c.leader(10_000);
    follower = leader === "n1" ? "n2" : "n1";
    for (let i = 0; i < 7; i++) {
      const put = await c.request(leader, "PUT", `/v1/kv/big/${i}`, new Uint8Array(20_000).fill(65 + i));
      assert.equal(put.status, 200, await put.text());
    }
  });
  after(async () => {
    await c?.close();
  });

  it("a txn of ranges through the follower answers as the leader does; a write in the same batch is answered too", async () => {
    const txn = JSON.stringify({ compare: [], success: [{ op: "range", key: "big/", prefix: true }], failure: [] });
    const headers = { "content-type": "application/json" };
    const direct = await c.request(leader, "POST", "/v1/txn", txn, headers);
    const directText = await direct.text();
    assert.equal(direct.status, 200, directText);
    assert.ok(directText.length > 2 * 64 * 1024, `answer of ${directText.length} bytes spans several frames`);
    // Same event-loop turn: both calls share one forward batch.
    const [viaFollower, put] = await Promise.all([c.request(follower, "POST", "/v1/txn", txn, headers), c.request(follower, "PUT", "/v1/kv/small", "s")]);
    const text = await viaFollower.text();
    assert.equal(viaFollower.status, 200, text.slice(0, 300));
    assert.equal(put.status, 200, await put.text());
    type TxnAnswer = { succeeded: boolean; revision: number; responses: { kvs: { key: string; value: string }[] }[] };
    const got = JSON.parse(text) as TxnAnswer;
    const want = JSON.parse(directText) as TxnAnswer;
    // The put in the same batch may run first and bump the store revision; the ranges are the same (their revision aside).
    assert.ok(JSON.stringify(got.responses.map((r) => r.kvs)) === JSON.stringify(want.responses.map((r) => r.kvs)), `ranges differ (${text.length} vs ${directText.length} bytes)`);
    assert.equal(got.succeeded, true);
    const kvs = got.responses[0].kvs;
    assert.deepEqual(kvs.map((kv) => kv.key), ["big/0", "big/1", "big/2", "big/3", "big/4", "big/5", "big/6"]);
    assert.equal(atob(kvs[6].value), "G".repeat(20_000));
  });

  it("ten 10 KB writes of one turn through the follower are all applied (a batch stays within the frame limit)", async () => {
    // Before: one batch of ~100 KB, refused by the leader's transport (413 over maxFrameBytes); every call 504.
    const puts = await Promise.all(Array.from({ length: 10 }, (_, i) => c.request(follower, "PUT", `/v1/kv/mid/${i}`, new Uint8Array(10_000).fill(48 + i))));
    const answers = await Promise.all(puts.map(async (r) => `${r.status} ${(await r.text()).slice(0, 160)}`));
    assert.deepEqual(answers.map((a) => a.slice(0, 3)), Array(10).fill("200"), answers.join("\n"));
    for (let i = 0; i < 10; i++) {
      const get = await c.request(leader, "GET", `/v1/kv/mid/${i}`);
      assert.equal((await get.arrayBuffer()).byteLength, 10_000);
    }
  });
});

describe("a forward batch answered with a non-200 status past admission", () => {
  it("fails its calls with reset, and the message leaves 'it may have been applied' to the node's 504 (said once)", async () => {
    const server = http2.createServer();
    server.on("stream", (stream) => {
      stream.resume();
      stream.respond({ ":status": 500 });
      stream.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    try {
      const errors: unknown[] = [];
      const batch: PendingForward[] = [0, 1].map((i) => ({
        call: { method: "PUT", path: `/v1/kv/${i}`, headers: [], body: new Uint8Array(10) },
        settled: false as boolean,
        resolve() {
          this.settled = true;
        },
        reject(e: unknown) {
          if (!this.settled) errors.push(e);
          this.settled = true;
        },
      }));
      await sendForwardBatch(session, {}, batch, 1 << 20, () => {});
      assert.equal(errors.length, 2);
      for (const e of errors) {
        assert.ok(e instanceof PeerRequestError && e.code === "reset", String(e));
        assert.doesNotMatch(e.message, /may have been applied/);
      }
    } finally {
      session.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
