/**
 * Follower forwarding under oversized and broken uploads (H11 finding): a chunked body (no Content-Length)
 * above the limit must get 413 at the follower after at most about the limit was read, and a forward whose
 * upload the leader reset mid-way must not leave the follower's peer session refusing every later forward
 * (node:http2 kept the unsent bytes of a 40 MB single write counted in the session's memory, and every
 * later response was refused with ENHANCE_YOUR_CALM). Runs on Node, Bun and Deno (in process).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";
import { API_DEFAULTS } from "../../src/api/app.ts";
import { readBodyWithin } from "../../src/api/http.ts";
import { createHttp2PeerTransport } from "../../runtime-adapters/shared/peer-http2.ts";
import { deferDestroyOnDeno } from "../../runtime-adapters/shared/http2-teardown.ts";
import { PEER_PATHS } from "../../src/server/transport.ts";

const CHUNK_BYTES = 64 * 1024;
const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;

/** A body of `total` zero bytes in CHUNK_BYTES pieces, produced on demand; `pulled()` counts bytes handed out. */
function countingBody(total: number): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (pulled >= total) return controller.close();
        const n = Math.min(CHUNK_BYTES, total - pulled);
        pulled += n;
        controller.enqueue(new Uint8Array(n));
      },
    },
    { highWaterMark: 0 },
  );
  return { body, pulled: () => pulled };
}

describe("readBodyWithin", () => {
  it("returns a body of exactly the limit whole, and stops one chunk past the limit", async () => {
    const exact = countingBody(3 * CHUNK_BYTES);
    const ok = await readBodyWithin(exact.body, 3 * CHUNK_BYTES);
    assert.equal(ok.ok, true);
    assert.equal(ok.ok && ok.bytes.byteLength, 3 * CHUNK_BYTES);
    const over = countingBody(100 * CHUNK_BYTES);
    const no = await readBodyWithin(over.body, 3 * CHUNK_BYTES);
    assert.deepEqual(no, { ok: false, seenBytes: 4 * CHUNK_BYTES });
    assert.equal(over.pulled(), 4 * CHUNK_BYTES);
    assert.deepEqual(await readBodyWithin(null, 0), { ok: true, bytes: new Uint8Array(0) });
  });
});

describe("a follower's body limit on chunked uploads (in process, 3 nodes)", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 3 });
  });
  after(async () => {
    await c?.close();
  });

  it("answers 413 to chunked bodies of limit + 1 and 20 MB bytes after reading about the limit, then forwards a small write", async () => {
    const leader = await c.leader(10_000);
    const follower = [...c.nodes.keys()].find((id) => id !== leader)!;
    const limit = Math.max(c.configs.get(follower)!.maxValueBytes, API_DEFAULTS.maxRequestBytes);
    // limit + 1 (the edge) and 20 MB (the tester's upload, which used to be read whole and forwarded).
    for (const total of [limit + 1, 20_000_000]) {
      const upload = countingBody(total);
      const req = new Request("http://127.0.0.1/v1/kv/big", { method: "PUT", body: upload.body, duplex: "half" } as RequestInit);
      assert.equal(req.headers.get("content-length"), null);
      const res = await c.nodes.get(follower)!.fetch(req);
      const text = await res.text();
      assert.equal(res.status, 413, text);
      assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, "payload_too_large");
      assert.ok(upload.pulled() > limit, `read ${upload.pulled()} bytes`);
      assert.ok(upload.pulled() <= limit + 2 * CHUNK_BYTES, `read ${upload.pulled()} bytes of a ${total} byte body (limit ${limit})`);
    }
    const missing = await c.request(leader, "GET", "/v1/kv/big");
    assert.equal(missing.status, 404, await missing.text());

    const small = await c.request(follower, "PUT", "/v1/kv/after-big", "small");
    assert.equal(small.status, 200, await small.clone().text());
    const back = await c.request(leader, "GET", "/v1/kv/after-big");
    assert.equal(await back.text(), "small");
  });
});

describe("a forward whose upload the leader reset mid-way", () => {
  // A stand-in leader: accepts the message stream, resets the first forwarded upload after 1 MiB, answers
  // every later forward with 200 and the body length.
  let server: http2.Http2Server;
  let url = "";
  let forwards = 0;
  before(async () => {
    server = http2.createServer();
    // Each recycled client session sends GOAWAY here; on Deno the runtime may destroy this server session
    // from inside nghttp2's GOAWAY processing (denoland/deno#36788) unless destroy() is deferred.
    server.on("session", deferDestroyOnDeno);
    server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      if (headers[":path"] === PEER_PATHS.stream) {
        stream.respond({ ":status": 200 });
        stream.resume();
        return;
      }
      const n = ++forwards;
      let got = 0;
      stream.on("data", (c: Uint8Array) => {
        got += c.length;
        if (n === 1 && got >= 1024 * 1024 && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      });
      stream.on("end", () => {
        if (stream.closed || stream.destroyed) return;
        if (String(headers["x-edgekv-forward-path"]).includes("calm")) return void stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        stream.respond({ ":status": 200, "content-type": "application/json" });
        stream.end(JSON.stringify({ bytes: got }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** Forwards a small PUT to `path`, retrying (bounded) while the session is being replaced. */
  async function smallForward(t: ReturnType<typeof createHttp2PeerTransport>, path: string, logs: string[]): Promise<Response> {
    let error = "";
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        return await t.forward("lead", new Request(`http://x${path}`, { method: "PUT", body: "small" }));
      } catch (e) {
        error = (e as Error).message;
        if (!/not connected/.test(error)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`forward to ${path} failed: ${error}\n${logs.join("\n")}`);
  }

  async function waitConnects(t: ReturnType<typeof createHttp2PeerTransport>, want: number): Promise<void> {
    const until = Date.now() + 10_000;
    while (!(t.peerStatus().lead.outbound === "open" && t.peerStatus().lead.connects >= want) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  it("leaves later forwards working: a small forward after a reset 40 MB upload gets 200, and a poisoned session is replaced", async () => {
    const logs: string[] = [];
    const t = createHttp2PeerTransport({ nodeId: "f", clusterId: "c", clusterSecret: "secret-0123456789", host: "127.0.0.1", port: 0, heartbeatIntervalMs: 100, log: (l, m) => logs.push(`${l}: ${m}`) });
    try {
      t.setPeers({ lead: url });
      const until = Date.now() + 10_000;
      while (t.peerStatus().lead.outbound !== "open" && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(t.peerStatus().lead.outbound, "open", logs.join("\n"));
      assert.equal(t.peerStatus().lead.connects, 1);
      await assert.rejects(t.forward("lead", new Request("http://x/v1/kv/x", { method: "PUT", body: new Uint8Array(40 * 1024 * 1024) })));
      for (let i = 0; i < 3; i++) {
        const res = await smallForward(t, "/v1/kv/y", logs);
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { bytes: 5 });
      }
      // The reset upload may have left bytes counted in the old session: it was replaced.
      await waitConnects(t, 2);
      assert.equal(t.peerStatus().lead.connects, 2, logs.join("\n"));
      // A response refused with ENHANCE_YOUR_CALM (the poisoned-session symptom) also replaces the session.
      // Bun's node:http2 client reports such a reset as a plain close (no error, rstCode 0), so there the
      // symptom cannot be told apart and only the bounded writes above protect the session.
      if (isBun) return;
      await assert.rejects(t.forward("lead", new Request("http://x/v1/kv/calm", { method: "PUT", body: "small" })), /ENHANCE_YOUR_CALM|closed/);
      await waitConnects(t, 3);
      assert.equal(t.peerStatus().lead.connects, 3, logs.join("\n"));
      const res = await smallForward(t, "/v1/kv/z", logs);
      assert.equal(res.status, 200);
    } finally {
      await t.close();
    }
  });
});
