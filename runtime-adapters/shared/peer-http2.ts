/**
 * The HTTP/2 cleartext (h2c, prior knowledge) peer transport (docs/peer-protocol.md), one implementation
 * for Node, Bun and Deno: the client side is `node:http2` on all three; the server side is pluggable
 * (`startServer`): `node:http2` by default, Bun.serve / Deno.serve from the runtime adapters (every
 * client/server pairing is tested, see test/integration/transport.test.ts). Per peer: one client session
 * and one long-lived request stream carrying our length-prefixed CBOR frames to it; the peer's frames
 * come in on the stream it opened to us.
 * Snapshots and forwarded client requests use their own streams on the same session.
 */
import http2 from "node:http2";
import { DEFAULT_MAX_FRAME_BYTES, PEER_PROTOCOL_VERSION, encodeFrame } from "../../src/codec/frame.ts";
import { CodecError } from "../../src/codec/cbor.ts";
import type { Message, NodeId, SnapshotMeta } from "../../src/raft/types.ts";
import { type ForwardCall, type ForwardReply, PEER_HEADERS, PEER_PATHS, PeerRequestError, type PeerStatus, type PeerTransport, type PeerTransportOptions, backoffDelayMs, peerStateOf } from "../../src/server/transport.ts";
import { SNAPSHOT_END, snapshotPieces } from "./snapshot-body.ts";
import { bindWithRetry } from "./bind-retry.ts";
import { noDelay, readRefusal, responseOf, streamBody, uploadBody } from "./peer-http2-streams.ts";
import { type PeerServerContext, type PeerServerHandle, type PeerServerStarter, startNodeHttp2PeerServer } from "./peer-http2-server.ts";
import { deferDestroyOnDeno } from "./http2-teardown.ts";
import { createForwardBatcher } from "./peer-forward-batch.ts";

/**
 * Options of `createHttp2PeerTransport`: the port's `PeerTransportOptions` (identity, listen address,
 * heartbeat, reconnect bounds, frame limit, log) plus this implementation's knobs. Times in ms, sizes in bytes.
 */
export interface Http2PeerTransportOptions extends PeerTransportOptions {
  /** A peer unheard for this many heartbeat intervals is suspect (DESIGN.md: 3). */
  suspectAfterHeartbeats?: number;
  /** ... and failed after this many (default 10). */
  failedAfterHeartbeats?: number;
  /** Per-peer send queue bounds; past either, the oldest batches are dropped (defaults 1000 batches, 64 MiB). */
  maxQueuedBatches?: number;
  maxQueuedBytes?: number;
  /** Jitter source, [0, 1) (default Math.random: jitter needs no reproducibility). */
  random?: () => number;
  /** Wall clock in ms (default Date.now). */
  now?: () => number;
  /** Server flavour (default `node:http2`; the Bun and Deno adapters pass their native servers). */
  startServer?: PeerServerStarter;
  /**
   * A snapshot upload whose receiver takes no bytes (and gives no answer after the last) for this many ms is
   * cancelled and `sendSnapshot` rejects (default 30 000). A receiver frozen mid-stream (SIGSTOP, a hung
   * disk) otherwise held the upload open for as long as it stayed frozen, and the leader made no compaction
   * point meanwhile (B5, docs/nemesis.md); rejected, the leader reports the snapshot failed and sends a
   * fresh one when the follower answers again.
   */
  snapshotStallMs?: number;
}

interface Peer {
  id: NodeId;
  url: string;
  addedMs: number;
  lastHeardMs: number;
  session?: http2.ClientHttp2Session;
  stream?: http2.ClientHttp2Stream;
  outbound: PeerStatus["outbound"];
  attempt: number;
  retryTimer?: ReturnType<typeof setTimeout>;
  queue: Uint8Array[];
  queuedBytes: number;
  blocked: boolean;
  lastWriteMs: number;
  sent: number;
  dropped: number;
  received: number;
  connects: number;
  lastError: string;
}

const EMPTY_FRAME = encodeFrame([]);

/**
 * Closes a client stream and destroys its session on a later macrotask, never inside the caller's stack.
 * Why: teardown mostly runs from the session's own event handlers ('goaway', 'error', 'close', a failed
 * write in 'response'), and Deno's `node:http2` (2.9.6) calls those handlers synchronously from inside
 * nghttp2's frame processing and frees the nghttp2 session at once in `destroy()`; nghttp2 then goes on
 * with the freed session (after a GOAWAY: `session_close_stream_on_goaway`) and the process dies with
 * SIGSEGV or the assertion `find_stream_on_goaway_func: stream->closed_next == NULL` (denoland/deno issue
 * 36788; seen in a 10-minute Deno nemesis run; reproduced by test/integration/peer-goaway.test.ts).
 * The caller has already detached both from its peer, so nothing else uses them meanwhile.
 */
function destroyLater(session: http2.ClientHttp2Session | undefined, stream: http2.ClientHttp2Stream | undefined): void {
  setTimeout(() => {
    try {
      stream?.close();
      session?.destroy();
    } catch {
      // already gone
    }
  }, 0);
}

/** Creates the HTTP/2 peer transport. Nothing listens or connects until `listen()` / `setPeers()`. */
export function createHttp2PeerTransport(opts: Http2PeerTransportOptions): PeerTransport {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const log = opts.log ?? ((level, m) => (level === "warn" || level === "error") && console.error(`[edgekv peer ${opts.nodeId}] ${level}: ${m}`));
  const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const snapshotStallMs = opts.snapshotStallMs ?? 30_000;
  const maxQueuedBatches = opts.maxQueuedBatches ?? 1000;
  const maxQueuedBytes = opts.maxQueuedBytes ?? 64 * 1024 * 1024;
  const reconnectMin = opts.reconnectMsMin ?? 1000;
  const reconnectMax = opts.reconnectMsMax ?? 60_000;
  const suspectAfterMs = (opts.suspectAfterHeartbeats ?? 3) * opts.heartbeatIntervalMs;
  const failedAfterMs = (opts.failedAfterHeartbeats ?? 10) * opts.heartbeatIntervalMs;
  const authHeaders = {
    [PEER_HEADERS.protocol]: String(PEER_PROTOCOL_VERSION),
    [PEER_HEADERS.cluster]: opts.clusterId,
    [PEER_HEADERS.from]: opts.nodeId,
    // Trimmed: HTTP/2 field values must not end in whitespace (RFC 9113 §8.2.1), and node:http2 on Node,
    // Bun and Deno silently drops such a header (Bun fails the stream): with the empty local secret the
    // "Bearer " never arrived and every peer refused every other 401 (B1 break session 2026-11-30).
    authorization: `Bearer ${opts.clusterSecret}`.trim(),
  };

  const peers = new Map<NodeId, Peer>();
  const heardFrom = new Map<NodeId, number>(); // inbound liveness, also for ids not (yet) in the member list
  let onMessages: (from: NodeId, messages: Message[]) => void = () => {};
  let onSnapshot: ((from: NodeId, meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>) => Promise<void>) | undefined;
  let onForward: ((request: Request) => Promise<Response>) | undefined;
  let closed = false;

  let serverHandle: PeerServerHandle | undefined;
  const serverContext: PeerServerContext = {
    nodeId: opts.nodeId,
    clusterId: opts.clusterId,
    clusterSecret: opts.clusterSecret,
    maxFrameBytes,
    heard(from) {
      heardFrom.set(from, now());
      const p = peers.get(from);
      if (!p) return;
      p.lastHeardMs = now();
      // The peer reached us, so it is up again: do not sit out the rest of a long backoff (up to
      // peerReconnectMsMax) before our own stream to it reopens — a restarted follower would otherwise get
      // no AppendEntries from the leader for up to a minute.
      if (p.outbound === "backoff") {
        clearTimeout(p.retryTimer);
        p.attempt = 0;
        connect(p);
      }
    },
    messages(from, batch) {
      const p = peers.get(from);
      if (p) p.received++;
      onMessages(from, batch);
    },
    get snapshot() {
      return onSnapshot;
    },
    get forward() {
      return onForward;
    },
    log,
  };

  // Keepalive: an empty frame to every open peer that got nothing for a heartbeat interval, so that the
  // peer can tell us alive even when Raft has nothing to say to it (followers never talk to each other).
  const keepalive = setInterval(() => {
    for (const p of peers.values()) {
      if (p.outbound === "open" && p.queue.length === 0 && !p.blocked && now() - p.lastWriteMs >= opts.heartbeatIntervalMs) write(p, EMPTY_FRAME);
    }
  }, opts.heartbeatIntervalMs);
  (keepalive as { unref?: () => void }).unref?.();

  function write(p: Peer, frame: Uint8Array): void {
    p.lastWriteMs = now();
    let ok: boolean;
    try {
      ok = p.stream!.write(frame);
    } catch (e) {
      // `send` must never throw; a dead stream is noticed and reconnected through its events.
      return scheduleReconnect(p, `write failed: ${(e as Error).message}`);
    }
    if (!ok) {
      p.blocked = true;
      p.stream!.once("drain", () => {
        p.blocked = false;
        pump(p);
      });
    }
  }

  function pump(p: Peer): void {
    while (p.outbound === "open" && !p.blocked && p.queue.length > 0) {
      const frame = p.queue.shift()!;
      p.queuedBytes -= frame.length;
      p.sent++;
      write(p, frame);
    }
  }

  function enqueue(p: Peer, frame: Uint8Array): void {
    p.queue.push(frame);
    p.queuedBytes += frame.length;
    while (p.queue.length > 1 && (p.queue.length > maxQueuedBatches || p.queuedBytes > maxQueuedBytes)) {
      p.queuedBytes -= p.queue.shift()!.length;
      p.dropped++;
    }
  }

  /** Encodes a batch, halving it until each part fits in a frame; a single oversized message is dropped. */
  function frames(p: Peer, batch: Message[]): Uint8Array[] {
    try {
      return [encodeFrame(batch, maxFrameBytes)];
    } catch (e) {
      if (!(e instanceof CodecError) || e.code !== "frame_too_large") throw e;
      if (batch.length === 1) {
        p.dropped++;
        log("error", `dropping a ${batch[0].type} to ${p.id}: ${e.message}`);
        return [];
      }
      const mid = batch.length >> 1;
      return [...frames(p, batch.slice(0, mid)), ...frames(p, batch.slice(mid))];
    }
  }

  function teardown(p: Peer): void {
    const { session, stream } = p;
    p.session = undefined;
    p.stream = undefined;
    p.blocked = false;
    if (session || stream) destroyLater(session, stream);
  }

  function scheduleReconnect(p: Peer, reason: string): void {
    teardown(p);
    if (closed || peers.get(p.id) !== p || p.outbound === "backoff") return;
    p.lastError = reason;
    p.outbound = "backoff";
    const delay = backoffDelayMs(p.attempt++, reconnectMin, reconnectMax, random);
    log("debug", `peer ${p.id}: ${reason}; reconnecting in ${delay} ms`);
    p.retryTimer = setTimeout(() => connect(p), delay);
  }

  /**
   * Replaces a peer's session at once (no backoff: the peer is up, only our session is unusable); the old
   * one is torn down on a later macrotask (destroyLater, needed on Deno).
   */
  function recycle(p: Peer, reason: string): void {
    if (closed || peers.get(p.id) !== p) return;
    log("warn", `peer ${p.id}: ${reason}; opening a new session`);
    clearTimeout(p.retryTimer);
    teardown(p);
    p.lastError = reason;
    connect(p);
  }

  function connect(p: Peer): void {
    if (closed || peers.get(p.id) !== p) return;
    p.outbound = "connecting";
    let session: http2.ClientHttp2Session;
    try {
      // Same session memory bound as our server side (peer-http2-server.ts), in MB; node:http2's default 10.
      session = http2.connect(p.url, { maxSessionMemory: 64 });
    } catch (e) {
      return scheduleReconnect(p, `connect failed: ${(e as Error).message}`);
    }
    // A GOAWAY with an error code (or NO_ERROR with no stream open) makes Deno's runtime destroy the session
    // from inside nghttp2's GOAWAY processing, before and regardless of our handlers: defer it (http2-teardown.ts).
    deferDestroyOnDeno(session);
    p.session = session;
    // TCP_NODELAY: see noDelay (a Nagle + delayed-ACK stall on every commit otherwise).
    session.once("connect", (_s, socket) => noDelay(socket));
    session.on("error", (e) => p.session === session && scheduleReconnect(p, `session error: ${e.message}`));
    session.on("close", () => p.session === session && scheduleReconnect(p, "session closed"));
    session.on("goaway", () => p.session === session && scheduleReconnect(p, "peer sent GOAWAY"));
    const stream = session.request({ ":method": "POST", ":path": PEER_PATHS.stream, [PEER_HEADERS.to]: p.id, ...authHeaders }, { endStream: false });
    p.stream = stream;
    stream.on("error", (e) => p.stream === stream && scheduleReconnect(p, `stream error: ${e.message}`));
    stream.on("close", () => p.stream === stream && scheduleReconnect(p, "stream closed"));
    stream.on("response", (h) => {
      if (h[":status"] === 200) {
        p.outbound = "open";
        p.attempt = 0;
        p.connects++;
        p.lastError = "";
        p.lastHeardMs = now();
        pump(p);
        return;
      }
      readRefusal(stream, Number(h[":status"])).then((why) => {
        log("warn", `peer ${p.id} (${p.url}) refused our message stream: ${why}`);
        if (p.stream === stream) scheduleReconnect(p, why);
      });
    });
    stream.on("data", () => {}); // the response body of an accepted stream is empty; keep it flowing
  }

  /** `forwardCall` over the one-stream-per-request `forward` (large bodies, peers without forward batches). */
  async function forwardOnStream(to: NodeId, call: ForwardCall, signal?: AbortSignal): Promise<ForwardReply> {
    const hasBody = call.method !== "GET" && call.method !== "HEAD";
    const request = new Request(`http://peer${call.path}`, { method: call.method, headers: call.headers, body: hasBody ? ((call.body ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>) : undefined });
    const response = await transport.forward(to, request, signal);
    const headers: [string, string][] = [];
    response.headers.forEach((v, k) => headers.push([k, v]));
    return { status: response.status, headers, body: new Uint8Array(await response.arrayBuffer()) };
  }

  const batcher = createForwardBatcher({
    sessionOf: (to) => peerOrThrow(to).session!,
    headersFor: (to) => ({ [PEER_HEADERS.to]: to, ...authHeaders }),
    maxFrameBytes,
    onStreamClose(to, session, rstCode, uploaded) {
      // Same session hygiene as `forward` below.
      const p = peers.get(to);
      const calm = rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;
      if (p && p.session === session && (calm || (!uploaded && rstCode !== undefined && rstCode !== http2.constants.NGHTTP2_NO_ERROR))) recycle(p, calm ? "a forward batch was refused with ENHANCE_YOUR_CALM" : "a forward batch upload was reset mid-way");
    },
    forwardOnStream,
    log,
  });

  function peerOrThrow(to: NodeId): Peer {
    const p = peers.get(to);
    if (!p) throw new PeerRequestError("unknown_peer", `peer ${to} is not in the member list`);
    if (!p.session || p.session.destroyed) throw new PeerRequestError("unreachable", `peer ${to} is not connected (${p.lastError || p.outbound})`);
    return p;
  }

  const transport: PeerTransport = {
    send(to, messages) {
      const p = peers.get(to);
      if (!p || closed || messages.length === 0) return;
      try {
        for (const f of frames(p, messages)) enqueue(p, f);
      } catch (e) {
        p.dropped++;
        log("error", `cannot encode a batch to ${to}: ${(e as Error).message}`);
      }
      pump(p);
    },
    setPeers(list) {
      for (const [id, p] of peers) {
        if (list[id] !== p.url) {
          clearTimeout(p.retryTimer);
          peers.delete(id);
          p.outbound = "closed";
          teardown(p);
        }
      }
      for (const [id, url] of Object.entries(list)) {
        if (id === opts.nodeId || peers.has(id)) continue;
        const p: Peer = { id, url, addedMs: now(), lastHeardMs: heardFrom.get(id) ?? 0, outbound: "connecting", attempt: 0, queue: [], queuedBytes: 0, blocked: false, lastWriteMs: 0, sent: 0, dropped: 0, received: 0, connects: 0, lastError: "" };
        peers.set(id, p);
        if (!closed) connect(p);
      }
    },
    onMessages(handler) {
      onMessages = handler;
    },
    onSnapshot(handler) {
      onSnapshot = handler;
    },
    onForward(handler) {
      onForward = handler;
    },
    async sendSnapshot(to, meta, chunks) {
      const p = peerOrThrow(to);
      const stream = p.session!.request({ ":method": "POST", ":path": PEER_PATHS.snapshot, [PEER_HEADERS.to]: to, [PEER_HEADERS.snapshotMeta]: encodeURIComponent(JSON.stringify(meta)), ...authHeaders }, { endStream: false });
      const response = responseOf(stream);
      response.catch(() => {}); // observed below; avoid an unhandled rejection if the chunks fail first
      /** `what` settles, or the stall deadline passes first: then the upload is cancelled and this throws. */
      const withinStall = async <T>(what: Promise<T>, doing: string): Promise<T> => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`snapshot to ${to}: no progress for ${snapshotStallMs} ms while ${doing}; upload cancelled`)), snapshotStallMs);
        });
        try {
          return await Promise.race([what, stalled]);
        } finally {
          clearTimeout(timer);
        }
      };
      let answer: Awaited<typeof response>;
      try {
        for await (const chunk of chunks) {
          for (const part of snapshotPieces(chunk, maxFrameBytes)) {
            if (stream.destroyed || stream.closed) break;
            if (!stream.write(part)) await withinStall(new Promise<void>((r) => stream.once("drain", r).once("close", r)), "the receiver took no bytes");
          }
        }
        stream.end(SNAPSHOT_END);
        answer = await withinStall(response, "waiting for the receiver's answer");
      } catch (e) {
        // Reset, not end: the receiver must see a broken upload, never a short but "complete" snapshot.
        stream.close(http2.constants.NGHTTP2_CANCEL);
        throw e;
      }
      const [status, h] = answer;
      if (status !== 200) throw new PeerRequestError(String(h[PEER_HEADERS.peerError] ?? "snapshot_failed"), `snapshot to ${to} refused: ${await readRefusal(stream, status)}`);
      stream.resume();
    },
    async forward(to, request, signal) {
      const p = peerOrThrow(to);
      const u = new URL(request.url);
      const headers: Record<string, string> = {};
      request.headers.forEach((v, k) => {
        if (k !== "host" && k !== "connection" && k !== "keep-alive" && k !== "transfer-encoding" && k !== "authorization" && !k.startsWith("x-edgekv-")) headers[k] = v;
      });
      signal?.throwIfAborted();
      const stream = p.session!.request({ ...headers, ":method": "POST", ":path": PEER_PATHS.forward, [PEER_HEADERS.to]: to, [PEER_HEADERS.forwardMethod]: request.method, [PEER_HEADERS.forwardPath]: u.pathname + u.search, ...authHeaders }, { endStream: false });
      // Abort by hand (the request option `signal` is not honoured the same way on every runtime).
      const onAbort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
      signal?.addEventListener("abort", onAbort, { once: true });
      stream.once("close", () => signal?.removeEventListener("abort", onAbort));
      let uploaded = false;
      stream.once("close", () => {
        // A reset before our upload was fully handed over leaves the unsent bytes counted in the session's
        // memory by node:http2 (they are dropped, the count is not lowered); once that count passes
        // maxSessionMemory every later response is refused with ENHANCE_YOUR_CALM, forever, while the
        // message stream goes on working. A 40 MB forward cut by the leader did that (H11 finding): start
        // a fresh session instead of keeping a poisoned one.
        const calm = stream.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;
        if ((calm || (!uploaded && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)) && p.session === session) recycle(p, calm ? "a forwarded request was refused with ENHANCE_YOUR_CALM" : "a forwarded upload was reset mid-way");
      });
      const session = p.session!;
      const response = responseOf(stream);
      response.catch(() => {});
      await uploadBody(stream, request.body);
      uploaded = true;
      const [status, h] = await response;
      if (h[PEER_HEADERS.peerError]) throw new PeerRequestError(String(h[PEER_HEADERS.peerError]), `forward to ${to} refused: ${await readRefusal(stream, status)}`);
      const out = new Headers();
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && v !== undefined) out.set(k, Array.isArray(v) ? v.join(", ") : String(v));
      const noBody = status === 204 || status === 304 || request.method === "HEAD";
      if (noBody) stream.resume();
      return new Response(noBody ? null : streamBody(stream), { status, headers: out });
    },
    forwardCall(to, call, signal) {
      return batcher.call(to, call, signal);
    },
    peerStatus() {
      const t = now();
      const out: Record<NodeId, PeerStatus> = {};
      for (const p of peers.values()) {
        out[p.id] = { state: peerStateOf(t, p.lastHeardMs, p.addedMs, suspectAfterMs, failedAfterMs), lastHeardMs: p.lastHeardMs, url: p.url, outbound: p.outbound, queuedBatches: p.queue.length, queuedBytes: p.queuedBytes + (p.stream?.writableLength ?? 0), sentBatches: p.sent, droppedBatches: p.dropped, receivedBatches: p.received, connects: p.connects, lastError: p.lastError };
      }
      return out;
    },
    async listen() {
      if (closed) throw new Error("transport is closed");
      const start = opts.startServer ?? startNodeHttp2PeerServer;
      // A restarted node may find its peer port held by a TIME_WAIT socket for up to 60 s (bind-retry.ts).
      serverHandle ??= await bindWithRetry(() => start(opts.host, opts.port, serverContext), { what: "peer port", host: opts.host, port: opts.port, log: (m) => log("warn", m) });
      return { url: serverHandle.url };
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(keepalive);
      for (const p of peers.values()) {
        clearTimeout(p.retryTimer);
        p.outbound = "closed";
        teardown(p);
      }
      await new Promise((r) => setTimeout(r, 0)); // let the deferred session teardowns run (destroyLater)
      await serverHandle?.close();
    },
  };
  return transport;
}

