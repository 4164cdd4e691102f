/**
 * Forward batches (runtime-adapters/shared/peer-forward-batch.ts, docs/peer-protocol.md "Forward
 * batches"): the writes a follower forwards in one event-loop turn share one peer stream and are answered
 * each on its own; a batch broken after sending leaves its unanswered calls `reset` (504 outcome_unknown at
 * the node), a refusal before any handler fails them with the refusal's code (503), a peer without forward
 * batches (404) gets them again on one stream each. In process, on Node, Bun and Deno.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { createHttp2PeerTransport } from "../../runtime-adapters/shared/peer-http2.ts";
import { attachPeerServer, type PeerServerContext } from "../../runtime-adapters/shared/peer-http2-server.ts";
import { handlePeerFetch } from "../../runtime-adapters/shared/peer-fetch-server.ts";
import { encodeForwardBatch } from "../../runtime-adapters/shared/peer-forward-batch.ts";
import { deferDestroyOnDeno } from "../../runtime-adapters/shared/http2-teardown.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { FrameDecoder, PEER_PROTOCOL_VERSION } from "../../src/codec/frame.ts";
import { PEER_HEADERS, PEER_PATHS, PeerRequestError, type ForwardCall, type PeerTransport } from "../../src/server/transport.ts";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";

const SECRET = "batch-test-secret-0123";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One length-prefixed reply frame, as the leader writes it. */
function replyFrame(reply: object): Uint8Array {
  const payload = encodeCbor(reply);
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, 4);
  return out;
}

const put = (path: string, body: string, headers: [string, string][] = []): ForwardCall => ({ method: "PUT", path, headers: [["content-type", "text/plain"], ...headers], body: enc.encode(body) });

/** A follower-side transport connected to `url` as peer "lead" (waits, bounded, for the message stream). */
async function follower(url: string, logs: string[]): Promise<PeerTransport> {
  const t = createHttp2PeerTransport({ nodeId: "f", clusterId: "c", clusterSecret: SECRET, host: "127.0.0.1", port: 0, heartbeatIntervalMs: 100, log: (l, m) => logs.push(`${l}: ${m}`) });
  t.setPeers({ lead: url });
  const until = Date.now() + 10_000;
  while (t.peerStatus().lead.outbound !== "open" && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(t.peerStatus().lead.outbound, "open", logs.join("\n"));
  return t;
}

async function listen(server: http2.Http2Server): Promise<string> {
  server.on("session", deferDestroyOnDeno);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe("forward batches against the node:http2 peer server", () => {
  let server: http2.Http2Server;
  let url = "";
  const paths: string[] = [];
  let gate: () => void = () => {};
  let gateOpen = new Promise<void>((r) => (gate = r));
  const served: string[] = [];
  const ctx: PeerServerContext = {
    nodeId: "lead",
    clusterId: "c",
    clusterSecret: SECRET,
    maxFrameBytes: 16 * 1024 * 1024,
    heard() {},
    messages() {},
    async forward(req) {
      const u = new URL(req.url);
      served.push(u.pathname);
      if (u.pathname.includes("slow")) await gateOpen;
      if (u.pathname.includes("throw")) throw new Error("handler blew up");
      const body = req.method === "GET" ? "" : await req.text();
      return new Response(JSON.stringify({ method: req.method, path: u.pathname + u.search, body, type: req.headers.get("content-type"), client: req.headers.get("x-client-id") }), { status: 201, headers: { "content-type": "application/json", "x-served-by": "lead" } });
    },
    log() {},
  };
  before(async () => {
    server = http2.createServer();
    server.on("stream", (_s, h) => paths.push(String(h[":path"])));
    attachPeerServer(server, ctx);
    url = await listen(server);
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("sends 20 calls of one turn on one stream and answers each on its own: a slow call holds back no other", async () => {
    const logs: string[] = [];
    const t = await follower(url, logs);
    try {
      paths.length = 0;
      let slowDone = false;
      const slow = t.forwardCall("lead", put("/v1/kv/slow", "s")).then((r) => ((slowDone = true), r));
      const fast = Array.from({ length: 19 }, (_, i) => t.forwardCall("lead", put(`/v1/kv/k${i}?lease=5`, `v${i}`, [["x-client-id", `c${i}`]])));
      const replies = await Promise.all(fast);
      assert.equal(slowDone, false, "the slow call is still waiting on the leader");
      for (const [i, r] of replies.entries()) {
        assert.equal(r.status, 201);
        assert.deepEqual(Object.fromEntries(r.headers), { "content-type": "application/json", "x-served-by": "lead" });
        assert.deepEqual(JSON.parse(dec.decode(r.body)), { method: "PUT", path: `/v1/kv/k${i}?lease=5`, body: `v${i}`, type: "text/plain", client: `c${i}` });
      }
      gate();
      const s = await slow;
      assert.equal(s.status, 201);
      assert.equal(JSON.parse(dec.decode(s.body)).body, "s");
      assert.deepEqual(paths, [PEER_PATHS.forwardBatch], "one stream for the whole turn");
    } finally {
      await t.close();
    }
  });

  it("a call whose handler throws fails alone with forward_failed; an aborted call rejects with its reason, the others are answered", async () => {
    gateOpen = new Promise<void>((r) => (gate = r));
    const logs: string[] = [];
    const t = await follower(url, logs);
    try {
      const ac = new AbortController();
      const thrown = t.forwardCall("lead", put("/v1/kv/throw", "x"));
      const aborted = t.forwardCall("lead", put("/v1/kv/slow-abort", "x"), ac.signal);
      const ok = t.forwardCall("lead", put("/v1/kv/fine", "y"));
      await assert.rejects(thrown, (e) => e instanceof PeerRequestError && e.code === "forward_failed" && /handler blew up/.test(e.message));
      assert.equal((await ok).status, 201);
      ac.abort(new Error("client went away"));
      await assert.rejects(aborted, /client went away/);
      gate();
    } finally {
      await t.close();
    }
  });

  it("sends a body above 64 KiB on its own forward stream, whole", async () => {
    const logs: string[] = [];
    const t = await follower(url, logs);
    try {
      paths.length = 0;
      const big = "b".repeat(100 * 1024);
      const r = await t.forwardCall("lead", put("/v1/kv/big", big));
      assert.equal(r.status, 201);
      assert.equal(JSON.parse(dec.decode(r.body)).body.length, big.length);
      assert.deepEqual(paths, [PEER_PATHS.forward]);
    } finally {
      await t.close();
    }
  });
});

describe("forward batches against a stand-in leader that breaks them", () => {
  // mode "reset": answers the first call of a batch, then resets the stream; "refuse": 503 from the
  // transport (no handler ran); "old": 404 not_found for batches, per-request forwards served.
  let mode: "reset" | "refuse" | "old" = "reset";
  const paths: string[] = [];
  let server: http2.Http2Server;
  let url = "";
  before(async () => {
    server = http2.createServer();
    server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      const path = String(headers[":path"]);
      paths.push(path);
      if (path === PEER_PATHS.stream) {
        stream.respond({ ":status": 200 });
        stream.resume();
        return;
      }
      const parts: Uint8Array[] = [];
      stream.on("data", (c: Uint8Array) => parts.push(c));
      stream.on("end", () => {
        if (stream.closed || stream.destroyed) return;
        if (path === PEER_PATHS.forward) {
          stream.respond({ ":status": 200, "content-type": "text/plain", "x-path": String(headers[PEER_HEADERS.forwardPath]) });
          return void stream.end(`one stream: ${Buffer.concat(parts).toString()}`);
        }
        if (mode === "refuse" || mode === "old") {
          const [status, code] = mode === "refuse" ? [503, "unavailable"] : [404, "not_found"];
          stream.respond({ ":status": status, "content-type": "application/json", [PEER_HEADERS.peerError]: code });
          return void stream.end(JSON.stringify({ error: { code, message: "stand-in" } }));
        }
        stream.respond({ ":status": 200 });
        stream.write(replyFrame({ i: 0, s: 200, h: ["content-type", "text/plain"], b: enc.encode("first") }));
        setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 50);
      });
    });
    url = await listen(server);
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  // A batch the stand-in breaks: `answered` leading calls get the "first" reply, the rest reject with `code`.
  const broken = [
    { name: "a stream reset after the first reply: that call keeps its reply, the others fail with reset (may have been applied)", mode: "reset", key: "r", calls: 3, answered: 1, code: "reset" },
    { name: "a refusal by the leader's transport fails every call with its code (nothing ran)", mode: "refuse", key: "u", calls: 2, answered: 0, code: "unavailable" },
  ] as const;
  for (const b of broken) {
    it(b.name, async () => {
      mode = b.mode;
      const t = await follower(url, []);
      try {
        const calls = Array.from({ length: b.calls }, (_, i) => t.forwardCall("lead", put(`/v1/kv/${b.key}${i}`, "x")));
        for (const c of calls.slice(0, b.answered)) {
          const r = await c;
          assert.deepEqual([r.status, dec.decode(r.body)], [200, "first"]);
        }
        for (const c of calls.slice(b.answered)) await assert.rejects(c, (e) => e instanceof PeerRequestError && e.code === b.code);
      } finally {
        await t.close();
      }
    });
  }

  it("a leader without forward batches (404) gets the calls again, one stream each, and every later call too", async () => {
    mode = "old";
    const t = await follower(url, []);
    try {
      paths.length = 0;
      const replies = await Promise.all([0, 1].map((i) => t.forwardCall("lead", put(`/v1/kv/o${i}?x=1`, `v${i}`))));
      assert.deepEqual(replies.map((r) => [r.status, dec.decode(r.body)]), [[200, "one stream: v0"], [200, "one stream: v1"]]);
      assert.ok(replies[1].headers.some(([k, v]) => k === "x-path" && v === "/v1/kv/o1?x=1"));
      const later = await t.forwardCall("lead", put("/v1/kv/o2", "v2"));
      assert.equal(dec.decode(later.body), "one stream: v2");
      assert.deepEqual(paths, [PEER_PATHS.forwardBatch, PEER_PATHS.forward, PEER_PATHS.forward, PEER_PATHS.forward]);
    } finally {
      await t.close();
    }
  });
});

describe("forward batches on the fetch peer server (Bun.serve / Deno.serve flavour)", () => {
  it("answers every call of a batch with its own frame, tagged with its index", async () => {
    const ctx: PeerServerContext = {
      nodeId: "lead",
      clusterId: "c",
      clusterSecret: SECRET,
      maxFrameBytes: 1024 * 1024,
      heard() {},
      messages() {},
      async forward(req) {
        const text = await req.text();
        if (text === "late") await new Promise((r) => setTimeout(r, 30));
        return new Response(`${req.method} ${new URL(req.url).pathname} ${text}`, { status: text === "late" ? 202 : 200, headers: { "x-k": text } });
      },
      log() {},
    };
    const body = encodeForwardBatch([put("/v1/kv/a", "late"), put("/v1/kv/b", "now"), { method: "DELETE", path: "/v1/kv/c", headers: [] }]);
    const headers = { [PEER_HEADERS.protocol]: String(PEER_PROTOCOL_VERSION), [PEER_HEADERS.cluster]: "c", [PEER_HEADERS.from]: "f", [PEER_HEADERS.to]: "lead", authorization: `Bearer ${SECRET}`, "content-length": String(body.length) };
    const res = await handlePeerFetch(ctx, new Request(`http://peer${PEER_PATHS.forwardBatch}`, { method: "POST", headers, body: body as Uint8Array<ArrayBuffer> }));
    assert.equal(res.status, 200);
    const decoder = new FrameDecoder();
    const replies = decoder.push(new Uint8Array(await res.arrayBuffer())).map((p) => decodeCbor(p) as { i: number; s: number; h: string[]; b: Uint8Array });
    // Answered as each finished: the late one last.
    assert.equal(replies.length, 3);
    assert.equal(replies[2].i, 0);
    const byIndex = [...replies].sort((a, b) => a.i - b.i);
    assert.deepEqual(byIndex.map((r) => [r.i, r.s, dec.decode(r.b)]), [[0, 202, "PUT /v1/kv/a late"], [1, 200, "PUT /v1/kv/b now"], [2, 200, "DELETE /v1/kv/c "]]);
    assert.deepEqual(byIndex[1].h.slice(-2), ["x-k", "now"]);

    const bad = await handlePeerFetch(ctx, new Request(`http://peer${PEER_PATHS.forwardBatch}`, { method: "POST", headers: { ...headers, "content-length": "3" }, body: new Uint8Array([1, 2, 3]) }));
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get(PEER_HEADERS.peerError), "bad_request");
  });
});

describe("a follower's forwarded writes (in process, 3 nodes)", () => {
  let c: InProcessCluster;
  // Set by a test to make every forwardCall of every node fail with this error (as a broken batch would).
  let inject: PeerRequestError | undefined;
  before(async () => {
    c = await InProcessCluster.start({
      nodes: 3,
      wrapPorts: (_id, ports) => ({
        ...ports,
        createPeerTransport(o) {
          const t = ports.createPeerTransport(o);
          const real = t.forwardCall.bind(t);
          t.forwardCall = (to, call, signal) => (inject ? Promise.reject(inject) : real(to, call, signal));
          return t;
        },
      }),
    });
  });
  after(async () => {
    await c?.close();
  });

  /** Status, headers (no date) and body, with every digit run as N: revisions differ between two runs. */
  async function shape(r: Response): Promise<string> {
    const headers: string[] = [];
    r.headers.forEach((v, k) => k !== "date" && headers.push(`${k}: ${v}`));
    headers.sort();
    return JSON.stringify({ status: r.status, headers, body: await r.text() }).replace(/\d+/g, "N");
  }

  it("answers as the leader does: same status, headers and body, errors included", async () => {
    const leader = await c.leader(10_000);
    const fol = [...c.nodes.keys()].find((id) => id !== leader)!;
    const txn = JSON.stringify({ compare: [{ key: "k", target: "value", result: "=", value: btoa("orig") }], success: [{ op: "put", key: "k", value: btoa("t"), prevKv: true }], failure: [{ op: "range", key: "k" }] });
    const cases: Array<[string, string, string | undefined, Record<string, string>]> = [
      ["PUT", "/v1/kv/k", "v2", { "content-type": "text/plain" }],
      ["PUT", "/v1/kv/k?prevKv=true", "v3", {}],
      ["PUT", "/v1/kv/k", "v4", { "if-match": '"999999"' }],
      ["PUT", "/v1/kv/k", "v5", { "if-none-match": "*" }],
      ["PUT", "/v1/kv/k?lease=777", "v6", {}],
      ["PUT", "/v1/kv/", "v7", {}],
      ["DELETE", "/v1/kv/k", undefined, {}],
      ["DELETE", "/v1/kv/never-written", undefined, {}],
      ["POST", "/v1/txn", txn, { "content-type": "application/json" }],
      ["POST", "/v1/txn", "{not json", { "content-type": "application/json" }],
      ["PATCH", "/v1/kv/k", "x", {}],
    ];
    for (const [method, path, body, headers] of cases) {
      const seen: string[] = [];
      for (const target of [leader, fol]) {
        const setup = await c.request(leader, "PUT", "/v1/kv/k", "orig");
        assert.equal(setup.status, 200);
        seen.push(await shape(await c.request(target, method, path, body, headers)));
      }
      assert.equal(seen[1], seen[0], `${method} ${path} on the follower`);
    }
  });

  it("keeps client sessions exactly-once through the follower: a retried sequence number gets the first answer", async () => {
    const leader = await c.leader(10_000);
    const fol = [...c.nodes.keys()].find((id) => id !== leader)!;
    const session = { "x-client-id": "batch-client-1", "x-request-seq": "1" };
    const first = await c.request(fol, "PUT", "/v1/kv/once", "a", session);
    assert.equal(first.status, 200, await first.clone().text());
    const again = await c.request(fol, "PUT", "/v1/kv/once", "a", session);
    const viaLeader = await c.request(leader, "PUT", "/v1/kv/once", "a", session);
    const firstBody = await first.text();
    assert.equal(await again.text(), firstBody);
    assert.equal(await viaLeader.text(), firstBody);
    const get = await c.request(leader, "GET", "/v1/kv/once");
    assert.equal(get.headers.get("x-version"), "1", "applied once");
  });

  it("a batch broken after sending answers 504 outcome_unknown; a refused one 503 unavailable with Retry-After", async () => {
    const leader = await c.leader(10_000);
    const fol = [...c.nodes.keys()].find((id) => id !== leader)!;
    try {
      inject = new PeerRequestError("reset", "stream reset");
      const broken = await c.request(fol, "PUT", "/v1/kv/unknown", "x");
      assert.equal(broken.status, 504);
      assert.equal(((await broken.json()) as { error: { code: string } }).error.code, "outcome_unknown");
      inject = new PeerRequestError("unavailable", "refused");
      const refused = await c.request(fol, "PUT", "/v1/kv/unknown", "x");
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "unavailable");
    } finally {
      inject = undefined;
    }
    const ok = await c.request(fol, "PUT", "/v1/kv/unknown", "x");
    assert.equal(ok.status, 200);
  });
});

describe("a follower's forwarded writes past the leader's queue depth (in process, 3 nodes, --queue-depth 2)", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 3, flags: ["--queue-depth", "2"] });
  });
  after(async () => {
    await c?.close();
  });

  it("40 writes in one batch: the leader's 429 too_many_requests reaches each refused client, and only the 200s are applied", async () => {
    const leader = await c.leader(10_000);
    const fol = [...c.nodes.keys()].find((id) => id !== leader)!;
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => c.request(fol, "PUT", `/v1/kv/q${i}`, `v${i}`)));
    const ok = answers.filter((r) => r.status === 200).length;
    const refused = answers.filter((r) => r.status === 429);
    assert.equal(ok + refused.length, 40, `statuses ${answers.map((r) => r.status).join(",")}`);
    assert.ok(ok >= 1 && refused.length >= 1, `ok ${ok}, 429 ${refused.length}`);
    for (const r of refused) {
      assert.equal(r.headers.get("retry-after"), "1");
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, "too_many_requests");
    }
    const range = await c.request(leader, "GET", "/v1/kv?prefix=q&countOnly=true");
    assert.equal(range.status, 200, await range.clone().text());
    assert.equal(((await range.json()) as { count: number }).count, ok);
  });
});
