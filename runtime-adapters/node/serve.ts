/**
 * HTTP serving on Node with @hono/node-server (it converts node:http requests to web Requests and writes
 * streamed bodies chunk by chunk, so SSE events are flushed as they are produced).
 */
import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { ApiError, type ApiErrorCode } from "../../src/api/errors.ts";
import { type HttpServerHandle, type ServeOptions, reachableUrl, sleepMs, trackedHandler } from "../shared-serve.ts";

/** Most time a client may take to send a request's headers, ms (Node answers 408 and closes past it). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Most time a client may take to send a whole request (headers and body), ms. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Reason phrases of the statuses `clientErrorAnswer` writes. */
const REASONS: Record<number, string> = { 400: "Bad Request", 408: "Request Timeout", 413: "Payload Too Large", 431: "Request Header Fields Too Large" };

/**
 * The raw HTTP/1.1 answer to a request Node's parser refused before the app saw it (the server's
 * `clientError` event), by the error's `code`: header block above Node's `--max-http-header-size`
 * (16 KiB) -> 431 `headers_too_large`, chunk extensions too large -> 413 `payload_too_large`, headers or
 * request not received in time -> 408 `request_timeout`, anything else malformed -> 400 `bad_request`;
 * each with the API's JSON error body and `Connection: close` (the statuses Node itself would send, which
 * come with empty bodies). undefined for a connection that failed (ECONNRESET): nothing to answer.
 */
export function clientErrorAnswer(code: string | undefined): string | undefined {
  if (code === "ECONNRESET" || code === "EPIPE") return undefined;
  const [api, message]: [ApiErrorCode, string] =
    code === "HPE_HEADER_OVERFLOW"
      ? ["headers_too_large", "request headers are larger than the server accepts (16 KiB)"]
      : code === "HPE_CHUNK_EXTENSIONS_OVERFLOW"
        ? ["payload_too_large", "chunk extensions are larger than the server accepts"]
        : code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? ["request_timeout", "the request was not received in time"]
          : ["bad_request", `malformed HTTP request${code ? ` (${code})` : ""}`];
  const e = new ApiError(api, message);
  const body = JSON.stringify(e.toJSON());
  return `HTTP/1.1 ${e.status} ${REASONS[e.status]}\r\nContent-Type: application/json\r\nContent-Length: ${new TextEncoder().encode(body).byteLength}\r\nConnection: close\r\n\r\n${body}`;
}

/** Node implementation of `serveHttp` (see runtime-adapters/shared-serve.ts for the contract). */
export function serveHttp(options: ServeOptions): Promise<HttpServerHandle> {
  // Node bounds TCP connections itself; no per-request cap on top of it.
  const tracked = trackedHandler(options.fetch, undefined);
  return new Promise((resolve, reject) => {
    // Slow-header / slow-body clients (slowloris) must not hold connections for Node's defaults (60 s of
    // headers, 300 s of request): a tester's 10 000 idle half-sent requests locked every client out. Bun
    // closed such sockets after 10-15 s. The request timeout bounds receiving the request only, so
    // long-lived responses (watch streams) are unaffected; checks run every 2 s.
    const server = serve({
      fetch: (req: Request) => tracked.fetch(req),
      hostname: options.host,
      port: options.port,
      serverOptions: {
        headersTimeout: options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS,
        requestTimeout: Math.max(options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS),
        connectionsCheckingInterval: Math.min(2000, options.headersTimeoutMs ?? 2000),
      },
    }) as Server;
    if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
    // Node's own answers to requests its parser refuses (431, 408, 400) have empty bodies; with a listener
    // it writes nothing and leaves the socket to us. As Node does, answer only if nothing was written yet
    // (not in the middle of a response), then close.
    server.on("clientError", (err: Error & { code?: string }, socket: Duplex & { bytesWritten?: number }) => {
      const answer = clientErrorAnswer(err.code);
      if (answer === undefined || !socket.writable || (socket.bytesWritten ?? 0) > 0) {
        socket.destroy();
        return;
      }
      socket.end(answer, () => socket.destroy());
    });
    server.once("error", reject);
    server.once("listening", () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      let closing: Promise<void> | undefined;
      resolve({
        url: reachableUrl(options.host, port),
        close() {
          closing ??= (async () => {
            const closed = new Promise<void>((r) => server.close(() => r()));
            server.closeIdleConnections();
            await Promise.race([closed, sleepMs(options.closeGraceMs ?? 2000)]);
            tracked.endStreams();
            server.closeAllConnections();
            await closed;
          })();
          return closing;
        },
      });
    });
  });
}
