/**
 * The HTTP/2 peer transport inside one process (on whichever runtime runs the test): bounded send queue,
 * splitting of over-large batches, refusal of a wrong cluster id and protocol version, and the pure
 * backoff / peer-state rules of the port.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { createHttp2PeerTransport } from "../../runtime-adapters/shared/peer-http2.ts";
import { handlePeerFetch } from "../../runtime-adapters/shared/peer-fetch-server.ts";
import type { PeerServerContext } from "../../runtime-adapters/shared/peer-http2-server.ts";
import { encodeFrame } from "../../src/codec/frame.ts";
import { peerTransportOptions } from "../../runtime-adapters/shared/peer-options.ts";
import { loadConfig } from "../../src/config/load.ts";
import { SNAPSHOT_END, readSnapshotBody, snapshotPieces } from "../../runtime-adapters/shared/snapshot-body.ts";
import { PEER_HEADERS, PEER_PATHS, type PeerTransport, backoffDelayMs, peerStateOf } from "../../src/server/transport.ts";
import type { Message } from "../../src/raft/types.ts";

const opened: PeerTransport[] = [];
after(async () => {
  await Promise.all(opened.map((t) => t.close()));
});
const logs: string[] = [];
function make(nodeId: string, extra: Partial<Parameters<typeof createHttp2PeerTransport>[0]> = {}): PeerTransport {
  const t = createHttp2PeerTransport({ nodeId, clusterId: "c1", clusterSecret: "s3cret-s3cret-s3cret", host: "127.0.0.1", port: 0, heartbeatIntervalMs: 100, reconnectMsMin: 50, reconnectMsMax: 200, log: (l, m) => logs.push(`${nodeId} ${l}: ${m}`), ...extra });
  opened.push(t);
  return t;
}
const append = (index: number, bytes: number): Message => ({ type: "appendEntries", from: "a", to: "b", term: 1, prevLogIndex: index - 1, prevLogTerm: 1, commit: 0, entries: [{ index, term: 1, type: "normal", data: new Uint8Array(bytes) }] });
async function until<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends one raw request to a transport's server and returns [status, body]. */
async function rawRequest(url: string, headers: Record<string, string>): Promise<[number, string]> {
  const s = http2.connect(url);
  try {
    return await new Promise((resolve, reject) => {
      s.on("error", reject);
      const r = s.request({ ":method": "POST", ":path": PEER_PATHS.stream, ...headers });
      let status = 0;
      let body = "";
      r.setEncoding("utf8");
      r.on("response", (h) => (status = Number(h[":status"])));
      r.on("data", (c: string) => (body += c));
      r.on("end", () => resolve([status, body]));
      r.on("error", reject);
      r.end();
    });
  } finally {
    s.destroy();
  }
}

describe("peer transport in one process", () => {
  it("bounds the send queue to an unreachable peer, dropping the oldest and counting drops", () => {
    const a = make("a", { maxQueuedBatches: 10 });
    a.setPeers({ b: "http://127.0.0.1:9" }); // discard port: nothing listens
    for (let i = 1; i <= 25; i++) a.send("b", [append(i, 8)]);
    a.send("nobody", [append(1, 8)]); // unknown peer: silently ignored, never throws
    const st = a.peerStatus().b;
    assert.equal(st.queuedBatches, 10);
    assert.equal(st.droppedBatches, 15);
    assert.equal(st.sentBatches, 0);
    assert.deepEqual(Object.keys(a.peerStatus()), ["b"]);
  });

  it("splits a batch that exceeds the frame limit and delivers it in order", async () => {
    const a = make("a", { maxFrameBytes: 64 * 1024 });
    const b = make("b", { maxFrameBytes: 64 * 1024 });
    const got: number[] = [];
    b.onMessages((_from, ms) => {
      for (const m of ms) if (m.type === "appendEntries") got.push(m.entries[0].index);
    });
    const [ua, ub] = [await a.listen(), await b.listen()];
    a.setPeers({ a: ua.url, b: ub.url });
    b.setPeers({ a: ua.url, b: ub.url });
    const batch = Array.from({ length: 8 }, (_, i) => append(i + 1, 20_000)); // ~160 KB > 64 KiB
    a.send("b", batch);
    a.send("b", [append(9, 100_000)]); // one message alone over the limit: dropped, counted
    a.send("b", [append(10, 10)]);
    await until("10 entries... or 9", () => got.includes(10));
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 10]);
    assert.equal(a.peerStatus().b.droppedBatches, 1);
    assert.ok(a.peerStatus().b.sentBatches >= 3, "split into several frames");
    assert.ok(logs.some((l) => /dropping a appendEntries to b/.test(l)));
  });

  it("refuses a wrong protocol version, cluster id, secret or addressee with status and JSON code", async () => {
    const b = make("b");
    const { url } = await b.listen();
    let delivered = 0;
    b.onMessages(() => delivered++);
    const good = { [PEER_HEADERS.protocol]: "1", [PEER_HEADERS.cluster]: "c1", [PEER_HEADERS.from]: "x", [PEER_HEADERS.to]: "b", authorization: "Bearer s3cret-s3cret-s3cret" };
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ ...good, [PEER_HEADERS.protocol]: "2" }, 400, "protocol_mismatch"],
      [{ ...good, [PEER_HEADERS.cluster]: "other" }, 403, "cluster_mismatch"],
      [{ ...good, authorization: "Bearer s3cret-s3cret-s3creT" }, 401, "unauthorized"],
      [{ ...good, [PEER_HEADERS.to]: "c" }, 421, "wrong_node"],
    ];
    for (const [headers, status, code] of cases) {
      const [s, body] = await rawRequest(url, headers);
      assert.equal(s, status, code);
      assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, code);
    }
    assert.equal(delivered, 0);
  });

  it("rejects sendSnapshot and forward to a peer it is not connected to with PeerRequestError", async () => {
    const a = make("a");
    await assert.rejects(a.forward("zz", new Request("http://x/v1/kv/a")), (e: unknown) => (e as { code?: string }).code === "unknown_peer");
    async function* none(): AsyncIterable<Uint8Array> {}
    await assert.rejects(a.sendSnapshot("zz", { index: 1, term: 1, confState: { voters: [], votersOutgoing: [], learners: [] } }, none()), /not in the member list/);
    await a.close();
    await a.close(); // idempotent
  });
});

describe("peer transport snapshot and forward failures", () => {
  /**
   * Transports a -> b, connected, with b recording how each snapshot upload ended ("complete N" or "broken
   * after N") once `gate` resolves (a receiver that stopped reading until then).
   */
  async function snapshotPair(aOptions: Partial<Parameters<typeof createHttp2PeerTransport>[0]> = {}, gate: Promise<void> = Promise.resolve()) {
    const a = make("a", aOptions);
    const b = make("b");
    const seen = { receiverSaw: "" };
    b.onSnapshot(async (_from, _meta, chunks) => {
      await gate;
      let n = 0;
      try {
        for await (const c of chunks) n += c.length;
        seen.receiverSaw = `complete ${n}`;
      } catch {
        seen.receiverSaw = `broken after ${n}`;
        throw new Error("incomplete snapshot");
      }
    });
    const [ua, ub] = [await a.listen(), await b.listen()];
    a.setPeers({ b: ub.url });
    b.setPeers({ a: ua.url });
    await until("a connected to b", () => a.peerStatus().b.outbound === "open");
    return { a, seen };
  }
  const snapMeta = { index: 5, term: 1, confState: { voters: ["a", "b"], votersOutgoing: [], learners: [] } };

  it("resets a snapshot upload whose source fails, so the receiver never sees it complete", async () => {
    const { a, seen } = await snapshotPair();
    async function* failing(): AsyncIterable<Uint8Array> {
      yield new Uint8Array(1000);
      yield new Uint8Array(1000);
      throw new Error("disk read failed");
    }
    await assert.rejects(a.sendSnapshot("b", snapMeta, failing()), /disk read failed/);
    await until("receiver noticed", () => seen.receiverSaw !== "");
    assert.match(seen.receiverSaw, /^broken after/);
  });

  it("cancels a snapshot upload whose receiver takes no bytes for snapshotStallMs, and rejects", { timeout: 30_000 }, async () => {
    let release: () => void = () => {};
    const frozen = new Promise<void>((r) => (release = r)); // a receiver that stopped reading (SIGSTOP, a hung disk)
    const { a, seen } = await snapshotPair({ snapshotStallMs: 300 }, frozen);
    const total = 256 * 1024 * 1024; // far past any flow-control window: the sender must wait for the receiver
    async function* big(): AsyncIterable<Uint8Array> {
      const chunk = new Uint8Array(1024 * 1024);
      for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
    }
    const t0 = Date.now();
    await assert.rejects(a.sendSnapshot("b", snapMeta, big()), /no progress for 300 ms while the receiver took no bytes; upload cancelled/);
    assert.ok(Date.now() - t0 < 20_000, "rejected by the stall deadline, not after the whole upload");
    release();
    await until("receiver noticed", () => seen.receiverSaw !== "");
    assert.match(seen.receiverSaw, /^broken after/, "the receiver never sees a cancelled upload as complete");
  });

  it("aborts a forwarded request whose signal fires while the leader is still working on it", async () => {
    const a = make("a");
    const b = make("b");
    let handlerStarted = false;
    b.onForward(async () => {
      handlerStarted = true;
      await new Promise((r) => setTimeout(r, 3000));
      return new Response("late");
    });
    const [ua, ub] = [await a.listen(), await b.listen()];
    a.setPeers({ b: ub.url });
    b.setPeers({ a: ua.url });
    await until("a connected to b", () => a.peerStatus().b.outbound === "open");
    const ac = new AbortController();
    const pending = a.forward("b", new Request("http://client/v1/kv/k", { method: "PUT", body: "v" }), ac.signal);
    await until("handler started", () => handlerStarted);
    const t0 = Date.now();
    ac.abort();
    await assert.rejects(pending, (e: unknown) => (e as { code?: string }).code === "reset");
    assert.ok(Date.now() - t0 < 2500, "rejected on abort, not when the handler finished");
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(a.forward("b", new Request("http://client/x"), pre.signal), { name: "AbortError" });
  });
});

describe("peer server as a fetch handler (Bun.serve / Deno.serve flavour)", () => {
  const got: Array<[string, Message[]]> = [];
  const heard: string[] = [];
  const ctx: PeerServerContext = {
    nodeId: "b",
    clusterId: "c1",
    clusterSecret: "s3cret-s3cret-s3cret",
    maxFrameBytes: 1024 * 1024,
    heard: (from) => heard.push(from),
    messages: (from, ms) => got.push([from, ms]),
    log: (l, m) => logs.push(`fetch ${l}: ${m}`),
  };
  const good = { [PEER_HEADERS.protocol]: "1", [PEER_HEADERS.cluster]: "c1", [PEER_HEADERS.from]: "a", [PEER_HEADERS.to]: "b", authorization: "Bearer s3cret-s3cret-s3cret" };

  it("refuses bad admission headers with status, JSON code and the peer-error header", async () => {
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ ...good, [PEER_HEADERS.protocol]: "0" }, 400, "protocol_mismatch"],
      [{ ...good, [PEER_HEADERS.cluster]: "c2" }, 403, "cluster_mismatch"],
      [{ ...good, authorization: "Bearer nope" }, 401, "unauthorized"],
      [{ ...good, [PEER_HEADERS.to]: "z" }, 421, "wrong_node"],
    ];
    for (const [headers, status, code] of cases) {
      const res = await handlePeerFetch(ctx, new Request(`http://b${PEER_PATHS.stream}`, { method: "POST", headers, body: "x" }));
      assert.equal(res.status, status);
      assert.equal(res.headers.get(PEER_HEADERS.peerError), code);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
    }
    assert.equal(got.length, 0);
  });

  it("decodes the frames of a message stream, skipping keepalives, and ends with the request", async () => {
    const frames = [encodeFrame([append(1, 4)]), encodeFrame([]), encodeFrame([append(2, 4), append(3, 4)])];
    const res = await handlePeerFetch(ctx, new Request(`http://b${PEER_PATHS.stream}`, { method: "POST", headers: good, body: new Blob(frames as BlobPart[]) }));
    assert.equal(res.status, 200);
    await res.arrayBuffer(); // the response body closes once the request body has been read
    assert.deepEqual(got.map(([from, ms]) => [from, ms.length]), [["a", 1], ["a", 2]]);
    assert.ok(heard.length >= 3, "every frame, keepalive included, counts as heard");
  });
});

describe("peer transport rules", () => {
  it("frames snapshot bodies so that a truncated upload is an error, not a short snapshot", async () => {
    async function* from(parts: Uint8Array[]): AsyncIterable<Uint8Array> {
      yield* parts;
    }
    async function read(parts: Uint8Array[]): Promise<number[]> {
      const out: number[] = [];
      for await (const c of readSnapshotBody(from(parts), 4)) out.push(...c);
      return out;
    }
    const pieces = snapshotPieces(new Uint8Array([1, 2, 3, 4, 5, 6]), 4); // split at the piece limit
    assert.equal(pieces.length, 4);
    assert.deepEqual(await read([...pieces, SNAPSHOT_END]), [1, 2, 3, 4, 5, 6]);
    await assert.rejects(read(pieces), /broken before its end marker/);
    await assert.rejects(read([...pieces, SNAPSHOT_END, ...snapshotPieces(new Uint8Array([7]), 4)]), /after its end marker/);
  });

  it("takes its options from the node configuration", () => {
    const c = loadConfig({ argv: ["--node-id", "n7", "--peer-port", "7007", "--cluster-secret", "0123456789abcdef"], env: {} });
    assert.deepEqual(peerTransportOptions(c), {
      nodeId: "n7",
      clusterId: "edgekv",
      clusterSecret: "0123456789abcdef",
      host: "127.0.0.1",
      port: 7007,
      heartbeatIntervalMs: 150,
      reconnectMsMin: 1000,
      reconnectMsMax: 60_000,
      maxFrameBytes: 16 * 1024 * 1024,
    });
  });

  it("backs off exponentially from min to max with jitter in [0.5, 1)", () => {
    const lo = () => 0;
    const hi = () => 0.999999;
    assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelayMs(n, 1000, 60_000, hi)), [1000, 2000, 4000, 8000]);
    assert.deepEqual([0, 1, 2].map((n) => backoffDelayMs(n, 1000, 60_000, lo)), [500, 1000, 2000]);
    assert.equal(backoffDelayMs(10, 1000, 60_000, hi), 60_000);
    assert.equal(backoffDelayMs(1000, 1000, 60_000, lo), 30_000, "huge attempt counts stay capped");
  });

  it("derives connected -> suspect after 3 heartbeats -> failed, and connecting before first contact", () => {
    const hb = 150;
    const at = (now: number, heard: number) => peerStateOf(now, heard, 0, 3 * hb, 10 * hb);
    assert.equal(at(1000, 1000), "connected");
    assert.equal(at(1000 + 3 * hb, 1000), "connected");
    assert.equal(at(1001 + 3 * hb, 1000), "suspect");
    assert.equal(at(1001 + 10 * hb, 1000), "failed");
    assert.equal(at(100, 0), "connecting");
    assert.equal(at(10 * hb, 0), "failed");
  });
});
