/**
 * Helpers over `node:http2` client streams for the peer transport: await a response, read a refusal,
 * expose a response body as a web ReadableStream, upload a request body in bounded pieces.
 */
import http2 from "node:http2";
import { PeerRequestError } from "../../src/server/transport.ts";

/** Resolves with the response status and headers of a client stream, or rejects when it fails first. */
export function responseOf(stream: http2.ClientHttp2Stream): Promise<[number, http2.IncomingHttpHeaders]> {
  return new Promise((resolve, reject) => {
    stream.once("response", (h) => resolve([Number(h[":status"]), h]));
    stream.once("error", (e) => reject(new PeerRequestError("reset", e.message)));
    stream.once("close", () => reject(new PeerRequestError("reset", "stream closed before a response")));
  });
}

/** Reads a refusal body (`{"error": {code, message}}`) into "code: message"; bounded to 64 KiB. */
export function readRefusal(stream: http2.ClientHttp2Stream, status: number): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const done = () => {
      try {
        const e = (JSON.parse(text) as { error: { code: string; message: string } }).error;
        resolve(`${status} ${e.code}: ${e.message}`);
      } catch {
        resolve(`status ${status}`);
      }
    };
    stream.setEncoding("utf8");
    stream.on("data", (c: string) => {
      if (text.length < 65536) text += c;
    });
    stream.once("end", done);
    stream.once("close", done);
    stream.once("error", done);
  });
}

/** Wraps a client stream's response body as a web ReadableStream (pull-based, so HTTP/2 flow control applies). */
export function streamBody(stream: http2.ClientHttp2Stream): ReadableStream<Uint8Array> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await it.next();
        if (done) controller.close();
        else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      } catch (e) {
        controller.error(e);
      }
    },
    cancel() {
      stream.close(http2.constants.NGHTTP2_CANCEL);
    },
  });
}

/**
 * Turns off Nagle's algorithm on a peer socket where the runtime allows it (best effort, never throws).
 * Raft frames are small and latency-bound: with Nagle on, a frame waits for the ACK of the previous one,
 * and the peer's delayed ACK (up to 40 ms on Linux) lands on every commit's path.
 */
export function noDelay(socket: unknown): void {
  try {
    (socket as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
  } catch {
    // Some runtimes' http2 socket proxies refuse socket manipulation; latency is then just higher.
  }
}

/** Largest piece handed to a forward stream in one write: bounds what a reset can leave queued. */
export const FORWARD_WRITE_BYTES = 64 * 1024;

/**
 * The bytes of `parts` as one array: `parts[0]` itself when it is the only one (no copy), else a new array
 * of them in order (empty for none). `sizeBytes`: their total length, when the caller already counted it.
 * Joins a body or a reply that arrived in chunks (forward streams, forward batches and their replies).
 */
export function joinBytes(parts: Uint8Array[], sizeBytes?: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = sizeBytes;
  if (size === undefined) {
    size = 0;
    for (const p of parts) size += p.length;
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Resolves on the stream's next 'drain' or 'close', removing both listeners (a loop must not pile them up). */
export function drainOrClose(stream: http2.ClientHttp2Stream): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/**
 * Writes a forwarded request body to `stream` in pieces of at most FORWARD_WRITE_BYTES, waiting for
 * 'drain' between them (HTTP/2 flow control), then ends the stream. Never writes a whole large body at
 * once: node:http2 counts queued bytes in its session memory and does not release them when the peer
 * resets the stream (see `forward` in peer-http2.ts). Stops quietly when the stream is closed under it (the peer answered
 * early, e.g. 413, or reset it); the response promise then tells what happened.
 */
export async function uploadBody(stream: http2.ClientHttp2Stream, body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return void stream.end();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let off = 0; off < value.byteLength; off += FORWARD_WRITE_BYTES) {
        if (stream.destroyed || stream.closed) return;
        if (!stream.write(value.subarray(off, off + FORWARD_WRITE_BYTES))) await drainOrClose(stream);
      }
    }
  } catch {
    // The client's body failed (it went away): reset, so the leader never sees a short body as complete.
    if (!stream.destroyed && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    return;
  } finally {
    reader.releaseLock();
  }
  if (!stream.destroyed && !stream.closed) stream.end();
}
