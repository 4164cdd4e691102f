/**
 * The HTTP serve port (DESIGN.md "Layers": runtime-adapters own HTTP serving) and the small pieces every
 * runtime's server shares: the options and handle types, the reachable URL of a listen address, and the
 * tracking of server-sent-event bodies so `close()` can end them (a watch stream never ends on its own, and
 * Deno's graceful shutdown and Bun's `stop()` would otherwise wait for it forever).
 */

/** Options of `serveHttp`. */
export interface ServeOptions {
  /** Listen address, e.g. "127.0.0.1", "::" (dual-stack on Linux) or "0.0.0.0". */
  host: string;
  /** Listen port; 0 picks a free port (read it back from `url`). */
  port: number;
  /** The web-standard handler (e.g. `EdgeNode.fetch`, a hono app's `fetch`). Must not throw. */
  fetch: (request: Request) => Response | Promise<Response>;
  /**
   * Most concurrent client connections (config `maxConnections`, default 10 000). Node enforces it per TCP
   * connection (`server.maxConnections`); Bun and Deno expose no connection count, so there it bounds
   * requests in flight and answers past it with 503 `too_many_requests`-style JSON and `Retry-After: 1`.
   */
  maxConnections?: number;
  /** How long `close()` lets in-flight requests finish before cutting streams and connections, ms (default 2000). */
  closeGraceMs?: number;
  /**
   * Most time a client may take to send a request's headers, ms (Node only: default 10 000, then 408 and the
   * connection is closed; Bun closes idle half-sent requests itself after ~10 s; Deno has no such setting).
   */
  headersTimeoutMs?: number;
  /** Warning sink, e.g. the bind retries of `serveHttp` (default: console.error). */
  log?: (message: string) => void;
}

/** A listening server. */
export interface HttpServerHandle {
  /** Base URL clients can reach, e.g. `http://127.0.0.1:8080` (a wildcard host is reported as loopback). */
  url: string;
  /** Stops accepting, lets in-flight requests finish for `closeGraceMs`, then ends open event streams and connections. Idempotent. */
  close(): Promise<void>;
}

/** The signature every runtime adapter exports. */
export type ServeHttp = (options: ServeOptions) => Promise<HttpServerHandle>;

/** `http://host:port` for a listen address; `::`/`0.0.0.0` become loopback, IPv6 literals get brackets. */
export function reachableUrl(host: string, port: number): string {
  let h = host;
  if (h === "0.0.0.0" || h === "") h = "127.0.0.1";
  else if (h === "::" || h === "[::]") h = "[::1]";
  else if (h.includes(":") && !h.startsWith("[")) h = `[${h}]`;
  return `http://${h}:${port}`;
}

/**
 * Wraps a handler so that (1) event-stream responses (`text/event-stream`, the SSE watch) are tracked and
 * can be ended by `endStreams()`, and (2) at most `maxInFlight` requests run at once (others get 503 with
 * `Retry-After: 1`, DESIGN.md "queue depth ... 429/503, never unbounded memory"). The stream wrapper is a
 * TransformStream: each chunk is forwarded as soon as it is written, so per-event flushing is kept.
 */
export function trackedHandler(fetch: ServeOptions["fetch"], maxInFlight: number | undefined): {
  fetch: (request: Request) => Promise<Response>;
  endStreams: () => void;
} {
  const streams = new Set<TransformStreamDefaultController<Uint8Array>>();
  let inFlight = 0;
  const limit = maxInFlight ?? Infinity;
  const handle = async (request: Request): Promise<Response> => {
    if (inFlight >= limit) {
      const body = JSON.stringify({ error: { code: "too_many_requests", message: `more than ${limit} requests in flight` } });
      return new Response(body, { status: 503, headers: { "content-type": "application/json", "retry-after": "1" } });
    }
    inFlight++;
    let res: Response;
    try {
      res = await fetch(request);
    } finally {
      inFlight--;
    }
    if (!res.body || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) return res;
    let ctl!: TransformStreamDefaultController<Uint8Array>;
    const pass = new TransformStream<Uint8Array, Uint8Array>({
      start(c) {
        ctl = c;
        streams.add(c);
      },
      flush() {
        streams.delete(ctl);
      },
    });
    res.body.pipeTo(pass.writable).catch(() => streams.delete(ctl));
    return new Response(pass.readable, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  const endStreams = () => {
    for (const c of streams) {
      try {
        c.terminate();
      } catch {
        // already closed by the client
      }
    }
    streams.clear();
  };
  return { fetch: handle, endStreams };
}

/** Resolves after `ms` (used for the close grace period). */
export function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
