/**
 * Helpers over `node:http2` client streams for the peer transport: await a response, read a refusal,
 * expose a response body as a web ReadableStream.
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
