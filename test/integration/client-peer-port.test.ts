/**
 * The SDK and the CLI pointed at a peer port (user trial: `EDGEKV_ENDPOINTS=http://127.0.0.1:8180` printed
 * `protocol_mismatch: peer protocol undefined` and stopped there). Against a real node's peer port (the
 * running runtime's peer server: Bun.serve / Deno.serve answer HTTP/1.1 with the peer transport's refusal,
 * node:http2 on Node answers only HTTP/2), a `node:http2` peer server on every runtime, and the node's
 * client API served on 127.0.0.1: a peer port fails with `not_client_port` and a clear message, the SDK
 * goes on to the next endpoint as after a refused connection, and when all fail the error lists each
 * endpoint's reason.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { serveHttp, type HttpServerHandle } from "../../runtime-adapters/serve.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { startNodeHttp2PeerServer, type PeerServerHandle } from "../../runtime-adapters/shared/peer-http2-server.ts";
import { EdgeKvClient, EdgeKvError, text } from "../../src/client/index.ts";
import { NOT_CLIENT_PORT, notHttp1Answer } from "../../src/client/transport.ts";
import { runCli } from "../../src/cli/main.ts";
import { freePort, InProcessCluster } from "../helpers/inprocess-cluster.ts";

const PEER_PORT_MESSAGE = /^http:\/\/127\.0\.0\.1:\d+: this is (most likely )?an edgekv peer port.*, not a client port$/;

describe(`client pointed at a peer port on ${currentRuntime()}`, () => {
  let cluster: InProcessCluster;
  let api: HttpServerHandle;
  let h2Only: PeerServerHandle;
  let clientUrl = "";
  let peerUrl = "";
  let deadUrl = "";
  before(async () => {
    cluster = await InProcessCluster.start({ nodes: 1 });
    await cluster.leader(15_000);
    const node = cluster.nodes.get("n1")!;
    api = await serveHttp({ host: "127.0.0.1", port: 0, closeGraceMs: 100, fetch: (r) => node.fetch(r) });
    clientUrl = api.url;
    peerUrl = cluster.configs.get("n1")!.advertisePeerUrl;
    // The peer server a Node node runs, on every runtime: HTTP/2 only.
    h2Only = await startNodeHttp2PeerServer("127.0.0.1", 0, { nodeId: "x1", clusterId: "other", clusterSecret: "s", maxFrameBytes: 1 << 20, heard: () => {}, messages: () => {}, log: () => {} });
    deadUrl = `http://127.0.0.1:${await freePort()}`;
  });
  after(async () => {
    await api?.close();
    await h2Only?.close();
    await cluster?.close();
  });

  /** A client that counts the requests it sends. */
  const counted = (endpoints: string[]) => {
    const sent: string[] = [];
    const f = ((input: string | URL | Request, init?: RequestInit) => (sent.push(new URL(String(input)).origin), fetch(input, init))) as typeof fetch;
    return { sent, client: new EdgeKvClient({ endpoints, fetch: f, random: () => 0, retry: { attempts: 5, baseMs: 1, maxMs: 10 }, timeoutMs: 20_000 }) };
  };

  it("a node's peer port alone: not_client_port with a clear message, at once (no retries)", async () => {
    for (const url of [peerUrl, h2Only.url]) {
      const { sent, client } = counted([url]);
      await assert.rejects(client.put("k", "v"), (e: unknown) => {
        assert.ok(e instanceof EdgeKvError, String(e));
        assert.equal(e.code, NOT_CLIENT_PORT);
        assert.match(e.message, PEER_PORT_MESSAGE);
        assert.ok(e.message.startsWith(url), e.message);
        return true;
      });
      assert.deepEqual(sent, [url], "a peer port is not tried again");
    }
  });

  it("goes on to the next endpoint after a peer port, for writes and reads, and applies the write once", async () => {
    for (const first of [peerUrl, h2Only.url]) {
      const { sent, client } = counted([first, clientUrl]);
      const put = await client.put("peer-port/k", `via ${first}`);
      assert.ok(put.revision > 0);
      assert.equal(text((await client.get("peer-port/k"))!.value), `via ${first}`);
      assert.deepEqual(sent.slice(0, 2), [first, clientUrl]);
    }
    const r = await counted([clientUrl]).client.range({ prefix: "peer-port/" });
    assert.equal(r.kvs.length, 1, "each write applied once, the last one wins");
  });

  it("when every endpoint fails, the error lists each one's reason", async () => {
    const { client } = counted([peerUrl, h2Only.url, deadUrl]);
    await assert.rejects(client.get("k"), (e: unknown) => {
      assert.ok(e instanceof EdgeKvError, String(e));
      assert.match(e.message, /^all attempts failed: /);
      for (const url of [peerUrl, h2Only.url, deadUrl]) assert.ok(e.message.includes(`${url}: `), `${url} missing in ${e.message}`);
      assert.equal(e.message.match(/an edgekv peer port/g)?.length, 2, e.message);
      return true;
    });
  });

  it("the CLI: EDGEKV_ENDPOINTS at a peer port exits 1 with not_client_port; with a client port after it, it works", async () => {
    const cli = async (endpoints: string, ...argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(argv, {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        env: { EDGEKV_ENDPOINTS: endpoints },
        readFile: async () => "",
        readFileBytes: async () => new Uint8Array(0),
        readStdin: async () => "",
        readStdinBytes: async () => new Uint8Array(0),
      });
      return { code, out, err };
    };
    const wrong = await cli(peerUrl, "get", "k");
    assert.equal(wrong.code, 1);
    assert.deepEqual(wrong.out, []);
    assert.match(wrong.err[0], /^error: not_client_port: http:\/\/127\.0\.0\.1:\d+: this is (most likely )?an edgekv peer port/);
    const both = await cli(`${peerUrl},${clientUrl}`, "put", "peer-port/cli", "ok");
    assert.deepEqual([both.code, both.err], [0, []]);
    assert.match(both.out[0], /^OK revision \d+$/);
  });

  it("classifies each runtime's 'answer is not HTTP/1.1' failure, and nothing else", () => {
    const node = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("Response does not match the HTTP/1.1 protocol (Expected HTTP/)"), { code: "HPE_INVALID_CONSTANT" }) });
    const bun = Object.assign(new Error('Malformed_HTTP_Response fetching "http://127.0.0.1:1/". For more information, pass `verbose: true` in the second argument to fetch()'), { code: "Malformed_HTTP_Response" });
    const deno = Object.assign(new TypeError("fetch failed"), { cause: new Error("error sending request for url (http://127.0.0.1:1/): client error (SendRequest): received unexpected message from connection") });
    const denoParse = Object.assign(new TypeError("fetch failed"), { cause: new Error("error sending request from 127.0.0.1:2 for http://127.0.0.1:1/v1/kv/k (127.0.0.1:1): client error (SendRequest): invalid HTTP version parsed") });
    for (const e of [node, bun, deno, denoParse]) assert.equal(notHttp1Answer(e), true, String(e));
    const refused = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }) });
    const reset = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }) });
    for (const e of [refused, reset, new TypeError("fetch failed"), null]) assert.equal(notHttp1Answer(e), false, String(e));
  });
});
