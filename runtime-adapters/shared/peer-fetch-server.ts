/**
 * The peer server as a web `fetch` handler (`Request -> Response`), for the runtimes whose native servers
 * speak h2c with full-duplex streaming bodies: Bun.serve({ http2: true }) and Deno.serve (both sniff the
 * HTTP/2 preface on cleartext connections; ecosystem research §2.2, §2.3, and our cross-runtime tests).
 * Same admission, paths and semantics as the node:http2 flavour (peer-http2-server.ts).
 */
import { FrameDecoder } from "../../src/codec/frame.ts";
import type { SnapshotMeta } from "../../src/raft/types.ts";
import { PEER_HEADERS, PEER_PATHS } from "../../src/server/transport.ts";
import { admissionProblem } from "./peer-auth.ts";
import { readSnapshotBody } from "./snapshot-body.ts";
import type { PeerServerContext } from "./peer-http2-server.ts";
import { deliverMessageChunk } from "./peer-message-frames.ts";
import { decodeForwardBatch, serveForwardBatch } from "./peer-forward-batch.ts";
import { joinBytes } from "./peer-http2-streams.ts";

function refusal(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: { "content-type": "application/json", [PEER_HEADERS.peerError]: code } });
}

/** Serves one peer request. Never throws: failures become JSON refusals. */
export async function handlePeerFetch(ctx: PeerServerContext, req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  const bad = admissionProblem(ctx, (n) => req.headers.get(n) ?? undefined);
  if (bad) {
    ctx.log("warn", `refused peer request ${path} from ${String(req.headers.get(PEER_HEADERS.from))}: ${bad[1]}: ${bad[2]}`);
    discardBody(req);
    return refusal(...bad);
  }
  const from = req.headers.get(PEER_HEADERS.from)!;
  try {
    if (path === PEER_PATHS.stream) return messageStream(ctx, from, req);
    if (path === PEER_PATHS.snapshot) return await snapshot(ctx, from, req);
    if (path === PEER_PATHS.forward) return await forward(ctx, req);
    if (path === PEER_PATHS.forwardBatch) return await forwardBatch(ctx, req);
    return refusal(404, "not_found", `no peer endpoint ${path}`);
  } catch (e) {
    ctx.log("warn", `peer request ${path} from ${from} failed: ${(e as Error).message}`);
    return refusal(500, path === PEER_PATHS.snapshot ? "snapshot_failed" : "forward_failed", (e as Error).message);
  }
}

/**
 * Accepts the peer's long-lived frame stream: answers 200 at once with a body that stays open until the
 * request body ends (so the exchange stays a live full-duplex stream), and decodes frames as they come.
 */
function messageStream(ctx: PeerServerContext, from: string, req: Request): Response {
  ctx.heard(from);
  let finish: () => void = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      // Bun.serve (1.4.4) sends the response headers only with the first body byte; one filler byte makes
      // the 200 reach the peer now. The message stream's response body has no meaning (docs/peer-protocol.md).
      controller.enqueue(new Uint8Array([0]));
      finish = () => {
        try {
          controller.close();
        } catch {
          // already closed
        }
      };
    },
  });
  void (async () => {
    const decoder = new FrameDecoder(ctx.maxFrameBytes);
    try {
      for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) deliverMessageChunk(ctx, from, decoder, chunk);
    } catch (e) {
      ctx.log("debug", `message stream from ${from} ended: ${(e as Error).message}`);
      discardBody(req);
    } finally {
      finish();
    }
  })();
  return new Response(body, { status: 200 });
}

async function* chunksOf(body: ReadableStream<Uint8Array> | null): AsyncIterable<Uint8Array> {
  if (!body) return;
  // The runtime's reader throws when the sender resets the stream, so a broken upload never looks complete.
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) yield c;
}

async function snapshot(ctx: PeerServerContext, from: string, req: Request): Promise<Response> {
  if (!ctx.snapshot) return refusal(503, "unavailable", "this node takes no snapshots yet");
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(decodeURIComponent(req.headers.get(PEER_HEADERS.snapshotMeta) ?? "")) as SnapshotMeta;
    if (!Number.isSafeInteger(meta.index) || !Number.isSafeInteger(meta.term) || typeof meta.confState !== "object") throw new Error("bad fields");
  } catch (e) {
    return refusal(400, "bad_request", `bad snapshot meta: ${(e as Error).message}`);
  }
  await ctx.snapshot(from, meta, readSnapshotBody(chunksOf(req.body), ctx.maxFrameBytes));
  return Response.json({ ok: true });
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "host", "content-length"]);

async function forward(ctx: PeerServerContext, req: Request): Promise<Response> {
  if (!ctx.forward) return refusal(503, "unavailable", "this node serves no forwarded requests yet");
  const method = req.headers.get(PEER_HEADERS.forwardMethod) ?? "GET";
  const path = req.headers.get(PEER_HEADERS.forwardPath) ?? "/";
  const headers = new Headers();
  req.headers.forEach((v, k) => {
    if (!k.startsWith("x-edgekv-") && k !== "authorization" && !HOP_BY_HOP.has(k)) headers.set(k, v);
  });
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const c of chunksOf(req.body)) {
    size += c.length;
    if (size > ctx.maxFrameBytes) return refusal(413, "payload_too_large", `forwarded body over ${ctx.maxFrameBytes} bytes`);
    parts.push(c);
  }
  const body = method === "GET" || method === "HEAD" ? undefined : (joinBytes(parts, size) as Uint8Array<ArrayBuffer>);
  const response = await ctx.forward(new Request(`http://peer${path}`, { method, headers, body }));
  const out = new Headers();
  response.headers.forEach((v, k) => {
    if (!HOP_BY_HOP.has(k)) out.set(k, v);
  });
  return new Response(response.body, { status: response.status, headers: out });
}

/**
 * A forward batch (peer-forward-batch.ts): reads the whole batch, then answers 200 with a body that carries
 * each reply frame as soon as its call is answered and ends after the last.
 */
async function forwardBatch(ctx: PeerServerContext, req: Request): Promise<Response> {
  const handler = ctx.forward;
  if (!handler) return refusal(503, "unavailable", "this node serves no forwarded requests yet");
  // The sender always declares the length (peer-forward-batch.ts), so an oversized batch is refused unread.
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > ctx.maxFrameBytes) {
    discardBody(req);
    return refusal(413, "payload_too_large", `forward batch over ${ctx.maxFrameBytes} bytes`);
  }
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.length > ctx.maxFrameBytes) return refusal(413, "payload_too_large", `forward batch over ${ctx.maxFrameBytes} bytes`);
  let calls;
  try {
    calls = decodeForwardBatch(bytes);
  } catch (e) {
    return refusal(400, "bad_request", (e as Error).message);
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const emit = (frame: Uint8Array) => {
        try {
          controller.enqueue(frame);
        } catch {
          // the sender went away; the calls still run to the end
        }
      };
      void serveForwardBatch(calls, handler, emit, ctx.log, ctx.maxFrameBytes).finally(() => {
        try {
          controller.close();
        } catch {
          // already closed or cancelled
        }
      });
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "application/octet-stream" } });
}

/**
 * Cancels a request body we will not read. On Deno, touching `req.body` of a request whose stream already
 * closed throws `TypeError: Request closed` synchronously; escaping an async block, that would be an
 * unhandled rejection that kills the node (seen when the leader was killed). Never throws.
 */
function discardBody(req: Request): void {
  try {
    void req.body?.cancel().catch(() => {});
  } catch {
    // the body is already gone: nothing to discard
  }
}
