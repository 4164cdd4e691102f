/**
 * Server half of the HTTP/2 peer transport (docs/peer-protocol.md): checks each incoming stream's protocol
 * version, cluster id, secret and addressee, then serves the message stream, a snapshot upload or a
 * forwarded client request. Uses `node:http2` on every runtime (see docs/peer-protocol.md "Runtimes").
 */
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from "node:http2";
import http2 from "node:http2";
import { FrameDecoder } from "../../src/codec/frame.ts";
import type { Message, NodeId, SnapshotMeta } from "../../src/raft/types.ts";
import { PEER_HEADERS, PEER_PATHS } from "../../src/server/transport.ts";
import { admissionProblem } from "./peer-auth.ts";
import { readSnapshotBody } from "./snapshot-body.ts";
import { joinBytes, noDelay } from "./peer-http2-streams.ts";
import { deliverMessageChunk } from "./peer-message-frames.ts";
import { deferDestroyOnDeno } from "./http2-teardown.ts";
import { decodeForwardBatch, serveForwardBatch } from "./peer-forward-batch.ts";

/** What the server half needs from the transport. */
export interface PeerServerContext {
  nodeId: NodeId;
  clusterId: string;
  clusterSecret: string;
  maxFrameBytes: number;
  /** Called for every frame from `from` (also empty keepalive batches, which are not passed on). */
  heard(from: NodeId): void;
  messages(from: NodeId, messages: Message[]): void;
  snapshot?: (from: NodeId, meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>) => Promise<void>;
  forward?: (request: Request) => Promise<Response>;
  log(level: "debug" | "info" | "warn" | "error", message: string): void;
}

/** Answers with the peer protocol's JSON error shape and marks it as the transport's own answer. */
function refuse(stream: ServerHttp2Stream, status: number, code: string, message: string): void {
  if (stream.destroyed || stream.closed) return;
  try {
    if (!stream.headersSent) {
      stream.respond({ ":status": status, "content-type": "application/json", [PEER_HEADERS.peerError]: code });
    }
    stream.end(JSON.stringify({ error: { code, message } }));
  } catch {
    // The stream died while answering; nothing more to tell the peer.
  }
}

/** A running peer server. */
export interface PeerServerHandle {
  /** Base URL it listens on, with the actual port. */
  url: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** Starts a peer server flavour on host:port (0 = any free port) serving `ctx`. */
export type PeerServerStarter = (host: string, port: number, ctx: PeerServerContext) => Promise<PeerServerHandle>;

/** Formats a listen address and port as a base URL (IPv6 in brackets). */
export function baseUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const SESSION_WINDOW_BYTES = 16 * 1024 * 1024;

/** The `node:http2` server flavour (h2c prior knowledge); runs on Node, Bun and Deno. */
export const startNodeHttp2PeerServer: PeerServerStarter = (host, port, ctx) => {
  // Wider flow-control windows than HTTP/2's 64 KiB default: one stream carries all replication traffic to
  // this node, and over a 100 ms cross-region link 64 KiB per round trip would cap it near 640 KB/s.
  const server = http2.createServer({ maxSessionMemory: 64, settings: { initialWindowSize: STREAM_WINDOW_BYTES } });
  const sessions = new Set<ServerHttp2Session>();
  server.on("session", (s) => {
    // A client closing its session sends GOAWAY; on Deno the runtime then destroys this session from inside
    // nghttp2's GOAWAY processing unless destroy() is deferred (http2-teardown.ts).
    deferDestroyOnDeno(s);
    noDelay(s.socket);
    try {
      s.setLocalWindowSize(SESSION_WINDOW_BYTES);
    } catch {
      // Not offered by every runtime's node:http2; the default window still works, only slower.
    }
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", (e) => ctx.log("debug", `inbound session error: ${e.message}`));
  });
  server.on("sessionError", (e) => ctx.log("debug", `inbound session error: ${e.message}`));
  attachPeerServer(server, ctx);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const a = server.address();
      resolve({
        url: baseUrl(host, typeof a === "object" && a ? a.port : port),
        close: async () => {
          for (const s of sessions) s.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
};

/** Installs the peer request handlers on a `node:http2` server. */
export function attachPeerServer(server: Http2Server, ctx: PeerServerContext): void {
  server.on("stream", (stream, headers) => {
    stream.on("error", (e) => ctx.log("debug", `peer stream error: ${e.message}`));
    const path = String(headers[":path"] ?? "");
    const bad = admissionProblem(ctx, (n) => (headers[n] === undefined ? undefined : String(headers[n])));
    if (bad) {
      ctx.log("warn", `refused peer request ${path} from ${String(headers[PEER_HEADERS.from])}: ${bad[1]}: ${bad[2]}`);
      // Drain what the peer already sent so the refusal can be written back.
      stream.resume();
      refuse(stream, ...bad);
      return;
    }
    const from = headers[PEER_HEADERS.from] as string;
    if (path === PEER_PATHS.stream) serveMessageStream(ctx, from, stream);
    else if (path === PEER_PATHS.snapshot) void serveSnapshot(ctx, from, stream, headers);
    else if (path === PEER_PATHS.forward) void serveForward(ctx, stream, headers);
    else if (path === PEER_PATHS.forwardBatch) void serveForwardBatchStream(ctx, stream);
    else {
      stream.resume();
      refuse(stream, 404, "not_found", `no peer endpoint ${path}`);
    }
  });
}

function serveMessageStream(ctx: PeerServerContext, from: NodeId, stream: ServerHttp2Stream): void {
  stream.respond({ ":status": 200 });
  ctx.heard(from);
  const decoder = new FrameDecoder(ctx.maxFrameBytes);
  stream.on("data", (chunk: Uint8Array) => {
    try {
      deliverMessageChunk(ctx, from, decoder, chunk);
    } catch (e) {
      ctx.log("warn", `closing message stream from ${from}: ${(e as Error).message}`);
      stream.close(0x1 /* PROTOCOL_ERROR */);
    }
  });
  stream.on("end", () => {
    if (!stream.closed) stream.end();
  });
}

async function serveSnapshot(ctx: PeerServerContext, from: NodeId, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
  if (!ctx.snapshot) {
    stream.resume();
    return refuse(stream, 503, "unavailable", "this node takes no snapshots yet");
  }
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(decodeURIComponent(String(headers[PEER_HEADERS.snapshotMeta]))) as SnapshotMeta;
    if (!Number.isSafeInteger(meta.index) || !Number.isSafeInteger(meta.term) || typeof meta.confState !== "object") throw new Error("bad fields");
  } catch (e) {
    stream.resume();
    return refuse(stream, 400, "bad_request", `bad snapshot meta: ${(e as Error).message}`);
  }
  try {
    await ctx.snapshot(from, meta, readSnapshotBody(stream as AsyncIterable<Uint8Array>, ctx.maxFrameBytes));
    if (!stream.closed && !stream.destroyed) {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end(JSON.stringify({ ok: true }));
    }
  } catch (e) {
    ctx.log("warn", `snapshot from ${from} failed: ${(e as Error).message}`);
    stream.resume();
    refuse(stream, 500, "snapshot_failed", (e as Error).message);
  }
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "host", "content-length"]);

async function serveForward(ctx: PeerServerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
  if (!ctx.forward) {
    stream.resume();
    return refuse(stream, 503, "unavailable", "this node serves no forwarded requests yet");
  }
  try {
    const method = String(headers[PEER_HEADERS.forwardMethod] ?? "GET");
    const path = String(headers[PEER_HEADERS.forwardPath] ?? "/");
    const h = new Headers();
    for (const [k, v] of Object.entries(headers)) {
      if (k.startsWith(":") || k.startsWith("x-edgekv-") || k === "authorization" || v === undefined) continue;
      h.set(k, Array.isArray(v) ? v.join(", ") : String(v));
    }
    const parts: Uint8Array[] = [];
    let size = 0;
    let refused = false;
    for await (const c of stream) {
      size += (c as Uint8Array).length;
      if (refused) continue;
      if (size > ctx.maxFrameBytes) {
        // Answer 413 now and discard the rest as it comes: leaving the loop would reset the stream, and
        // the forwarding peer would see "stream closed before a response" instead of the 413.
        refused = true;
        parts.length = 0;
        refuse(stream, 413, "payload_too_large", `forwarded body over ${ctx.maxFrameBytes} bytes`);
        continue;
      }
      parts.push(c as Uint8Array);
    }
    if (refused) return;
    const body = method === "GET" || method === "HEAD" ? undefined : (joinBytes(parts, size) as Uint8Array<ArrayBuffer>);
    const response = await ctx.forward(new Request(`http://peer${path}`, { method, headers: h, body }));
    const out: Record<string, string | number> = { ":status": response.status };
    response.headers.forEach((v, k) => {
      if (!HOP_BY_HOP.has(k)) out[k] = v;
    });
    if (stream.closed || stream.destroyed) return;
    stream.respond(out);
    if (!response.body) return void stream.end();
    const reader = response.body.getReader();
    // Stream the body (a watch is a long SSE response); stop reading when the forwarding peer goes away.
    stream.on("close", () => void reader.cancel().catch(() => {}));
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (stream.closed || stream.destroyed) return;
      if (!stream.write(value)) await new Promise<void>((r) => stream.once("drain", r).once("close", r));
    }
    if (!stream.closed) stream.end();
  } catch (e) {
    ctx.log("warn", `forwarded request failed: ${(e as Error).message}`);
    refuse(stream, 500, "forward_failed", (e as Error).message);
  }
}

/** A forward batch (peer-forward-batch.ts): reads the whole batch, then writes each reply frame as it is ready. */
async function serveForwardBatchStream(ctx: PeerServerContext, stream: ServerHttp2Stream): Promise<void> {
  const handler = ctx.forward;
  if (!handler) {
    stream.resume();
    return refuse(stream, 503, "unavailable", "this node serves no forwarded requests yet");
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const c of stream) {
      size += (c as Uint8Array).length;
      if (size > ctx.maxFrameBytes) {
        // Refuse before any call ran; drain the rest so the refusal reaches the sender (see serveForward).
        stream.resume();
        return refuse(stream, 413, "payload_too_large", `forward batch over ${ctx.maxFrameBytes} bytes`);
      }
      parts.push(c as Uint8Array);
    }
  } catch (e) {
    return ctx.log("debug", `forward batch upload broke: ${(e as Error).message}`); // nothing ran
  }
  let calls;
  try {
    calls = decodeForwardBatch(joinBytes(parts, size));
  } catch (e) {
    return refuse(stream, 400, "bad_request", (e as Error).message);
  }
  if (stream.closed || stream.destroyed) return;
  stream.respond({ ":status": 200, "content-type": "application/octet-stream" });
  await serveForwardBatch(calls, handler, (frame) => {
    if (!stream.closed && !stream.destroyed) stream.write(frame);
  }, ctx.log, ctx.maxFrameBytes);
  if (!stream.closed && !stream.destroyed) stream.end();
}
