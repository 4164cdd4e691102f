/**
 * Forward batches (docs/peer-protocol.md "Forward batches"): the small client writes a follower forwards to
 * the leader in one event-loop turn travel on one HTTP/2 stream, and the leader answers each on its own, as
 * soon as its handler did. One stream per request cost the follower and the leader more CPU than the write
 * itself (Bun profiles of follower put@64, docs/bench.md "Follower writes": stream setup and end, the web
 * streams wrapped around both bodies). Shared by both server flavours and the client (peer-http2.ts).
 *
 * Wire: `POST /peer/v1/forward-batch`, request body = one CBOR array of calls `{m, p, h, b?}` (method, path
 * and query, header names and values as one flat string array, body bytes); response 200 with a body of
 * length-prefixed frames (4-byte big-endian length, as the message stream), each one CBOR reply
 * `{i, s, h, b}` (index of the call in the batch, status, flat headers, body bytes) or `{i, e, msg}` when
 * the handler failed. A body longer than one piece (FORWARD_REPLY_PIECE_BYTES, at most half the peer frame
 * limit) is sent as `{i, p}` frames carrying its leading pieces, then the `{i, s, h, b}` with the rest: one
 * frame for a large answer (a txn of ranges, a range delete with prevKv) exceeded the sender's frame limit
 * and failed every unanswered call of the batch 504 (B1 break session 2026-11-30). A call with no reply
 * when the stream ends has an unknown outcome.
 */
import http2 from "node:http2";
import { CodecError, decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { FRAME_HEADER_BYTES, FrameDecoder } from "../../src/codec/frame.ts";
import { PEER_HEADERS, PEER_PATHS, PeerRequestError, type ForwardCall, type ForwardReply } from "../../src/server/transport.ts";
import { drainOrClose, joinBytes, readRefusal } from "./peer-http2-streams.ts";

/** Calls per batch: a turn with more sends several batches (bounds the leader's work per stream). */
export const FORWARD_BATCH_MAX_CALLS = 128;
/** Body bytes per batch past which the batch is sent at once (bounds what one stream carries). */
export const FORWARD_BATCH_MAX_BYTES = 256 * 1024;
/** Bodies above this many bytes go on their own forward stream (`PeerTransport.forward`), never in a batch. */
export const FORWARD_CALL_MAX_BODY_BYTES = 64 * 1024;
/** Reply bodies above this many bytes (or above half the peer frame limit) travel in `{i, p}` pieces first. */
export const FORWARD_REPLY_PIECE_BYTES = 1024 * 1024;
/** Largest piece of a batch body handed to the stream in one write (see FORWARD_WRITE_BYTES in peer-http2-streams.ts). */
const WRITE_PIECE_BYTES = 64 * 1024;

/** Response headers the relay must not copy (connection-specific, or recomputed for the new body). */
export const HOP_BY_HOP_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "host", "content-length"]);

interface WireCall {
  m: string;
  p: string;
  h: string[];
  b?: Uint8Array;
}

interface WireReply {
  i: number;
  s?: number;
  h?: string[];
  b?: Uint8Array;
  /** A leading piece of the body of call `i`; its `{i, s, h, b}` frame follows with the rest. */
  p?: Uint8Array;
  /** Error code when the peer's handler failed (no response). */
  e?: string;
  msg?: string;
}

function flat(pairs: [string, string][]): string[] {
  const out: string[] = [];
  for (const [k, v] of pairs) out.push(k, v);
  return out;
}

function pairs(flatHeaders: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flatHeaders.length; i += 2) out.push([flatHeaders[i], flatHeaders[i + 1]]);
  return out;
}

const isStrings = (x: unknown): x is string[] => Array.isArray(x) && x.length % 2 === 0 && x.every((s) => typeof s === "string");

/** Encodes a batch of calls as the request body (a CBOR array). */
export function encodeForwardBatch(calls: ForwardCall[]): Uint8Array {
  return encodeCbor(calls.map((c): WireCall => (c.body ? { m: c.method, p: c.path, h: flat(c.headers), b: c.body } : { m: c.method, p: c.path, h: flat(c.headers) })));
}

/** Decodes a batch request body; throws `CodecError("malformed")` for anything but an array of well-formed calls. */
export function decodeForwardBatch(bytes: Uint8Array): ForwardCall[] {
  const v = decodeCbor(bytes);
  if (!Array.isArray(v) || v.length === 0 || v.length > FORWARD_BATCH_MAX_CALLS) throw new CodecError("malformed", "a forward batch is an array of 1..128 calls");
  return v.map((c: Partial<WireCall>) => {
    if (typeof c !== "object" || c === null || typeof c.m !== "string" || typeof c.p !== "string" || !c.p.startsWith("/") || !isStrings(c.h) || (c.b !== undefined && !(c.b instanceof Uint8Array))) {
      throw new CodecError("malformed", "a forward call needs m (method), p (path), h (flat headers) and optional b (bytes)");
    }
    return c.b ? { method: c.m, path: c.p, headers: pairs(c.h), body: c.b } : { method: c.m, path: c.p, headers: pairs(c.h) };
  });
}

/** One length-prefixed reply frame. */
function replyFrame(reply: WireReply): Uint8Array {
  const payload = encodeCbor(reply);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Leader side: runs every call of a batch through `handler` (the node's client API) at once, in batch
 * order, and passes each reply frame to `emit` as soon as its response is complete; a body above one piece
 * (min(FORWARD_REPLY_PIECE_BYTES, maxFrameBytes / 2) bytes) goes first in `{i, p}` frames, emitted
 * back to back. A handler that throws gives that call an `{e: "forward_failed"}` reply; the others go on.
 * Resolves when every call is answered. `maxFrameBytes`: the peers' frame limit, bytes (config maxFrameBytes).
 */
export async function serveForwardBatch(
  calls: ForwardCall[],
  handler: (request: Request) => Promise<Response>,
  emit: (frame: Uint8Array) => void,
  log: (level: "debug" | "info" | "warn" | "error", message: string) => void,
  maxFrameBytes = 16 * 1024 * 1024,
): Promise<void> {
  const pieceBytes = Math.max(1024, Math.min(FORWARD_REPLY_PIECE_BYTES, Math.floor(maxFrameBytes / 2)));
  await Promise.all(
    calls.map(async (call, i) => {
      let reply: WireReply;
      try {
        const hasBody = call.method !== "GET" && call.method !== "HEAD";
        const response = await handler(new Request(`http://peer${call.path}`, { method: call.method, headers: call.headers, body: hasBody ? (call.body ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer> : undefined }));
        const h: string[] = [];
        response.headers.forEach((v, k) => {
          if (!HOP_BY_HOP_HEADERS.has(k)) h.push(k, v);
        });
        reply = { i, s: response.status, h, b: new Uint8Array(await response.arrayBuffer()) };
      } catch (e) {
        log("warn", `forwarded request ${call.method} ${call.path} failed: ${(e as Error).message}`);
        reply = { i, e: "forward_failed", msg: (e as Error).message };
      }
      if (reply.b && reply.b.length > pieceBytes) {
        const body = reply.b;
        let off = 0;
        for (; body.length - off > pieceBytes; off += pieceBytes) emit(replyFrame({ i, p: body.subarray(off, off + pieceBytes) }));
        reply.b = body.subarray(off);
      }
      emit(replyFrame(reply));
    }),
  );
}

/** A call waiting in a peer's batch queue or for its reply. `resolve`/`reject` act once (later calls are no-ops). */
export interface PendingForward {
  call: ForwardCall;
  signal?: AbortSignal;
  settled: boolean;
  resolve(reply: ForwardReply): void;
  reject(err: unknown): void;
}

/** Body bytes a call adds to a batch (its body and a rough allowance for method, path and headers). */
export function forwardCallBytes(call: ForwardCall): number {
  let n = 64 + call.path.length + (call.body?.length ?? 0);
  for (const [k, v] of call.headers) n += k.length + v.length + 2;
  return n;
}

/**
 * Follower side: sends `batch` on a new stream of `session` and settles each call from its reply frame.
 * Refused by the peer's transport (a reply with `x-edgekv-peer-error`) -> every call rejects with that code
 * (nothing reached a handler) and the promise resolves with the code, so the caller can fall back (404
 * `not_found` from a peer that predates forward batches). Stream closed or reset before a call's reply ->
 * that call rejects with code `reset` (it may have been applied; the code says so, and the node's 504 message
 * adds "it may have been applied" once). `onClose(rstCode, uploaded)` is called once
 * the stream closed (the caller recycles a session whose upload was reset, see `forward` in peer-http2.ts).
 */
export function sendForwardBatch(
  session: http2.ClientHttp2Session,
  headers: Record<string, string>,
  batch: PendingForward[],
  maxFrameBytes: number,
  onClose: (rstCode: number | undefined, uploaded: boolean) => void,
): Promise<string | undefined> {
  return new Promise((done) => {
    const failAll = (err: PeerRequestError) => {
      for (const p of batch) p.reject(err);
    };
    const body = encodeForwardBatch(batch.map((p) => p.call));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ...headers, ":method": "POST", ":path": PEER_PATHS.forwardBatch, "content-length": String(body.length) }, { endStream: false });
    } catch (e) {
      // The session is closing: nothing was sent.
      failAll(new PeerRequestError("unreachable", `cannot open a forward stream: ${(e as Error).message}`));
      return done(undefined);
    }
    let uploaded = false;
    let refusal: string | undefined;
    // Every call aborted by its client: the stream has nothing left to wait for.
    const onAbort = () => {
      if (batch.every((p) => p.settled) && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    for (const p of batch) p.signal?.addEventListener("abort", onAbort, { once: true });
    stream.on("error", () => {}); // seen through 'close' (rstCode) below
    stream.once("close", () => {
      for (const p of batch) p.signal?.removeEventListener("abort", onAbort);
      // A refusal's body may still be unread here; the calls fail with the refusal's code all the same.
      failAll(refusal !== undefined ? new PeerRequestError(refusal, "forward batch refused") : new PeerRequestError("reset", "the forward batch stream closed before this call's reply"));
      onClose(stream.rstCode, uploaded);
      done(refusal);
    });
    stream.once("response", (h) => {
      const status = Number(h[":status"]);
      const code = h[PEER_HEADERS.peerError];
      if (code !== undefined) {
        refusal = String(code);
        void readRefusal(stream, status).then((why) => failAll(new PeerRequestError(refusal!, `forward batch refused: ${why}`)));
        return;
      }
      if (status !== 200) {
        // Not the transport's own refusal: something broke past admission, so outcomes are unknown.
        failAll(new PeerRequestError("reset", `forward batch answered with status ${status}`));
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      const decoder = new FrameDecoder(maxFrameBytes);
      stream.on("data", (chunk: Uint8Array) => {
        try {
          for (const payload of decoder.push(chunk)) settle(decodeCbor(payload) as WireReply);
        } catch (e) {
          // Out of sync: the remaining replies cannot be trusted; 'close' rejects their calls with `reset`.
          failAll(new PeerRequestError("reset", `bad forward batch reply: ${(e as Error).message}`));
          stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
        }
      });
    });
    // Leading pieces of large reply bodies, by call index, until their `{i, s, h, b}` frame.
    const pieces = new Map<number, Uint8Array[]>();
    function settle(r: WireReply): void {
      const p = typeof r?.i === "number" ? batch[r.i] : undefined;
      if (!p) throw new CodecError("malformed", `reply for no call (${String(r?.i)})`);
      if (r.p !== undefined) {
        if (!(r.p instanceof Uint8Array)) throw new CodecError("malformed", "a reply piece needs p (bytes)");
        const got = pieces.get(r.i);
        if (got) got.push(r.p);
        else pieces.set(r.i, [r.p]);
        return;
      }
      const before = pieces.get(r.i);
      pieces.delete(r.i);
      if (r.e !== undefined) return p.reject(new PeerRequestError(String(r.e), `forwarded request failed on the peer: ${String(r.msg)}`));
      if (typeof r.s !== "number" || !isStrings(r.h) || !(r.b instanceof Uint8Array)) throw new CodecError("malformed", "a forward reply needs s, h and b");
      p.resolve({ status: r.s, headers: pairs(r.h), body: before ? joinBytes([...before, r.b]) : r.b });
    }
    void (async () => {
      // In bounded pieces, waiting for 'drain': node:http2 keeps unsent bytes of a reset stream counted in
      // the session's memory (see `forward` in peer-http2.ts).
      for (let off = 0; off < body.length; off += WRITE_PIECE_BYTES) {
        if (stream.destroyed || stream.closed) return;
        if (!stream.write(body.subarray(off, off + WRITE_PIECE_BYTES))) await drainOrClose(stream);
      }
      if (stream.destroyed || stream.closed) return;
      uploaded = true;
      stream.end();
    })();
  });
}

/** What `createForwardBatcher` needs from the transport. */
export interface ForwardBatcherDeps {
  /** The peer's connected session; throws `PeerRequestError` (`unknown_peer`, `unreachable`) otherwise. */
  sessionOf(to: string): http2.ClientHttp2Session;
  /** Admission headers of a request to `to` (protocol, cluster, sender, secret, addressee). */
  headersFor(to: string): Record<string, string>;
  /** Largest reply frame accepted, bytes. */
  maxFrameBytes: number;
  /** A batch stream on `session` closed (see `sendForwardBatch`). */
  onStreamClose(to: string, session: http2.ClientHttp2Session, rstCode: number | undefined, uploaded: boolean): void;
  /** The one-stream-per-request path, for large bodies and peers without forward batches. */
  forwardOnStream(to: string, call: ForwardCall, signal?: AbortSignal): Promise<ForwardReply>;
  log(level: "debug" | "info" | "warn" | "error", message: string): void;
}

/**
 * The client half of forward batches, behind `PeerTransport.forwardCall`: queues each call per peer and
 * sends the queue on the next `setImmediate` (after the event loop's poll phase, so every request read in
 * this turn joins), or at once when it reaches FORWARD_BATCH_MAX_CALLS calls or FORWARD_BATCH_MAX_BYTES.
 * A peer that answers a batch 404 `not_found` (older than forward batches; nothing ran) gets those calls
 * again on their own streams, and every later one. A batch stays within half the peer frame limit
 * (`maxFrameBytes`, which the receiver enforces on the whole batch with 413): at the smallest allowed
 * limit, 64 KiB, ten 10 KB writes of one turn made a batch the leader refused, and every call got 504
 * (B1 break session 2026-11-30). A call too large for that goes on its own stream.
 */
export function createForwardBatcher(deps: ForwardBatcherDeps): { call(to: string, call: ForwardCall, signal?: AbortSignal): Promise<ForwardReply> } {
  const queues = new Map<string, { calls: PendingForward[]; bytes: number }>();
  const noBatch = new Set<string>();
  const batchMaxBytes = Math.min(FORWARD_BATCH_MAX_BYTES, Math.floor(deps.maxFrameBytes / 2));

  function flush(to: string): void {
    const q = queues.get(to);
    queues.delete(to);
    if (!q) return;
    const open = q.calls.filter((c) => !c.settled);
    for (let i = 0; i < open.length; i += FORWARD_BATCH_MAX_CALLS) {
      const batch = open.slice(i, i + FORWARD_BATCH_MAX_CALLS).map((c) => retryingOnNotFound(to, c));
      let session: http2.ClientHttp2Session;
      try {
        session = deps.sessionOf(to);
      } catch (e) {
        for (const c of batch) c.reject(e);
        continue;
      }
      void sendForwardBatch(session, deps.headersFor(to), batch, deps.maxFrameBytes, (rstCode, uploaded) => deps.onStreamClose(to, session, rstCode, uploaded));
    }
  }

  /** A view of `c` whose `not_found` refusal sends the call again on its own stream instead of failing it. */
  function retryingOnNotFound(to: string, c: PendingForward): PendingForward {
    // The batch may report the refusal twice (its body read, then the stream's close): send the call again once.
    let resent = false;
    return {
      call: c.call,
      signal: c.signal,
      get settled() {
        return c.settled;
      },
      resolve: (r) => c.resolve(r),
      reject(e) {
        if (resent) return;
        if (!(e instanceof PeerRequestError) || e.code !== "not_found" || c.settled) return c.reject(e);
        resent = true;
        if (!noBatch.has(to)) deps.log("info", `peer ${to} serves no forward batches; forwarding one stream per request`);
        noBatch.add(to);
        deps.forwardOnStream(to, c.call, c.signal).then(c.resolve, c.reject);
      },
    };
  }

  return {
    async call(to, call, signal) {
      deps.sessionOf(to); // not connected: fail now, as `forward` does
      signal?.throwIfAborted();
      const bytes = forwardCallBytes(call);
      if (noBatch.has(to) || (call.body?.length ?? 0) > FORWARD_CALL_MAX_BODY_BYTES || bytes > batchMaxBytes / 2) return deps.forwardOnStream(to, call, signal);
      return new Promise<ForwardReply>((resolve, reject) => {
        const onAbort = () => pending.reject(signal!.reason);
        const pending: PendingForward = {
          call,
          signal,
          settled: false,
          resolve(r) {
            if (pending.settled) return;
            pending.settled = true;
            signal?.removeEventListener("abort", onAbort);
            resolve(r);
          },
          reject(e) {
            if (pending.settled) return;
            pending.settled = true;
            signal?.removeEventListener("abort", onAbort);
            reject(e);
          },
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        // Sent before this call would take the batch past its byte bound (calls keep their order).
        if ((queues.get(to)?.bytes ?? 0) + bytes > batchMaxBytes) flush(to);
        let q = queues.get(to);
        if (!q) {
          q = { calls: [], bytes: 0 };
          queues.set(to, q);
          setImmediate(() => queues.get(to) === q && flush(to));
        }
        q.calls.push(pending);
        q.bytes += bytes;
        if (q.calls.length >= FORWARD_BATCH_MAX_CALLS || q.bytes >= batchMaxBytes) flush(to);
      });
    },
  };
}
