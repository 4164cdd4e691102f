/**
 * `GET /v1/watch` as server-sent events (WHATWG HTML "Server-sent events"). Query: `key=k`, `prefix=p`, or
 * `start=a[&end=b]`; `fromRevision=r`. Events: `events` (data `{revision, events:[...]}`),
 * `progress` (data `{revision}`: everything up to it was delivered), `error` (data `{"error": {...}}`,
 * then the stream ends; `compacted` names `compactRevision`, SCENARIOS.md C05). Every `events`/`progress`
 * carries `id: <revision>`, so an EventSource reconnecting with `Last-Event-ID: r` resumes at r + 1.
 * Invalid input (inverted range, C21) is a plain 400 before any stream starts.
 */
import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { ApiError, toApiError } from "./errors.ts";
import { rangeFromQuery } from "./kv-routes.ts";
import type { KvService, WatchRequest } from "./service.ts";
import { encodeResult, parseCount, utf8 } from "./wire.ts";

/** Builds the watch request from the query and `Last-Event-ID`; `bad_request` on invalid input. */
export function watchRequestOf(c: Context, progressIntervalMs: number): WatchRequest {
  const single = c.req.query("key");
  let req: WatchRequest;
  if (single !== undefined) {
    if (c.req.query("prefix") !== undefined || c.req.query("start") !== undefined) throw new ApiError("bad_request", "give key, prefix or start/end, not several");
    if (single === "") throw new ApiError("bad_request", "key must not be empty");
    req = { key: utf8(single) };
  } else {
    req = rangeFromQuery(c);
  }
  let fromRevision = parseCount("fromRevision", c.req.query("fromRevision"));
  const lastEventId = c.req.header("last-event-id");
  if (lastEventId !== undefined && /^[0-9]{1,15}$/.test(lastEventId)) {
    // A reconnecting EventSource: everything up to Last-Event-ID was delivered.
    fromRevision = Math.max(fromRevision ?? 0, Number(lastEventId) + 1);
  }
  if (fromRevision === 0) throw new ApiError("bad_request", "fromRevision must be at least 1");
  if (fromRevision !== undefined) req.fromRevision = fromRevision;
  req.progressIntervalMs = progressIntervalMs;
  return req;
}

/** Registers `GET /v1/watch`. Progress notifications are asked from the service every `progressIntervalMs`. */
export function registerWatchRoute(app: Hono, service: KvService, progressIntervalMs: number): void {
  app.get("/v1/watch", (c) => {
    const req = watchRequestOf(c, progressIntervalMs);
    const abort = new AbortController();
    const raw = c.req.raw.signal;
    if (raw) {
      if (raw.aborted) abort.abort();
      else raw.addEventListener("abort", () => abort.abort(), { once: true });
    }
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => abort.abort());
      try {
        const messages = await service.watch(req, { signal: abort.signal });
        for await (const m of messages) {
          if (abort.signal.aborted) break;
          if (m.type === "events") {
            await stream.writeSSE({ event: "events", id: String(m.revision), data: JSON.stringify(encodeResult(m, false)) });
          } else {
            await stream.writeSSE({ event: "progress", id: String(m.revision), data: JSON.stringify({ revision: m.revision }) });
          }
        }
      } catch (err) {
        if (!abort.signal.aborted) await stream.writeSSE({ event: "error", data: JSON.stringify(toApiError(err).toJSON()) });
      } finally {
        abort.abort();
      }
    });
  });
}
