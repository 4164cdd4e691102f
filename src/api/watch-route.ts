/**
 * `GET /v1/watch` as server-sent events (WHATWG HTML "Server-sent events"). Query: `key=k`, `prefix=p`, or
 * `start=a[&end=b]`; `fromRevision=r`. Events: `events` (data `{revision, events:[...]}`),
 * `progress` (data `{revision}`: everything up to it was delivered), `error` (data `{"error": {...}}`,
 * then the stream ends; `compacted` names `compactRevision`, docs/scenarios.md C05). Every `events`/`progress`
 * carries `id: <revision>`, so an EventSource reconnecting with `Last-Event-ID: r` resumes at r + 1.
 * Invalid input (inverted range, C21) is a plain 400 before any stream starts.
 *
 * Backpressure: each stream keeps its own queue of encoded, not-yet-pulled bytes; the runtime pulls from it
 * only as the socket drains. When the queue holds `watchMaxQueuedBytes` and the client takes nothing for
 * `watchStallMs`, the watch ends with an `error` event `watch_overflow` (etcd's "slow watcher" idea; the
 * client re-watches from `resumeRevision`, history lets it catch up) and its queue is dropped, so an unread
 * watch costs at most about one bound of memory. Each event is encoded once per node, shared by every
 * watch that sends it (a bounded cache). Active watches per node are capped (`maxWatches`, 429 over it).
 */
import type { Context, Hono } from "hono";
import { ApiError, toApiError } from "./errors.ts";
import { checkQuery } from "./http.ts";
import { rangeFromQuery } from "./kv-routes.ts";
import type { KvService, WatchRequest } from "./service.ts";
import { encodeResult, parseCount, utf8 } from "./wire.ts";
import type { WatchEvent } from "../kv/types.ts";

/** Builds the watch request from the query and `Last-Event-ID`; `bad_request` on invalid input. */
export function watchRequestOf(c: Context, progressIntervalMs: number): WatchRequest {
  checkQuery(c, ["key", "prefix", "start", "end", "fromRevision"]);
  const single = c.req.query("key");
  let req: WatchRequest;
  if (single !== undefined) {
    if (c.req.query("prefix") !== undefined || c.req.query("start") !== undefined) throw new ApiError("bad_request", "give key, prefix or start/end, not several");
    if (single === "") throw new ApiError("bad_request", "key must not be empty");
    req = { key: utf8(single) };
  } else {
    if (c.req.query("prefix") === undefined && c.req.query("start") === undefined) {
      throw new ApiError("bad_request", "give key=..., prefix=... or start=...[&end=...]");
    }
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

/** Limits and counters of the watch route. */
export interface WatchRouteOptions {
  /** Progress notification interval asked from the service, ms. */
  progressIntervalMs: number;
  /** Bound on encoded bytes queued for one stream and not yet taken by the runtime, bytes. */
  maxQueuedBytes: number;
  /** How long a full queue may go without the client taking anything before `watch_overflow`, ms. */
  stallMs: number;
  /** Active watch streams per node; more get 429 `too_many_requests`. */
  maxWatches: number;
  /** Counters filled by the route (tests, metrics); a fresh one when absent. */
  stats?: WatchStats;
}

/** Counters of the watch route: `encodes` events JSON-encoded, `active` streams, `overflows` cut off, `maxQueuedBytes` high-water of any one stream's queue (bytes). */
export interface WatchStats {
  encodes: number;
  active: number;
  overflows: number;
  maxQueuedBytes: number;
}

/** A fresh `WatchStats`, all zero. */
export function newWatchStats(): WatchStats {
  return { encodes: 0, active: 0, overflows: 0, maxQueuedBytes: 0 };
}

/** Bytes of encoded events the shared cache keeps (oldest dropped first). */
const EVENT_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Encodes events (base64 JSON, as `encodeResult`) once per node: a watch reads its own copy of an event
 * from the history table, so the cache is keyed by what identifies an event (revision, type, version, key).
 */
class EventEncoder {
  private cache = new Map<string, Uint8Array>();
  private bytes = 0;
  private readonly te = new TextEncoder();
  constructor(private readonly stats: WatchStats) {}

  /** UTF-8 JSON of one event. */
  event(e: WatchEvent): Uint8Array {
    const id = `${e.kv.modRevision}/${e.type}/${e.kv.version}/${latin1(e.kv.key)}`;
    const hit = this.cache.get(id);
    if (hit) return hit;
    const enc = this.te.encode(JSON.stringify(encodeResult(e, false)));
    this.stats.encodes++;
    this.cache.set(id, enc);
    this.bytes += enc.length;
    for (const [k, v] of this.cache) {
      if (this.bytes <= EVENT_CACHE_BYTES) break;
      this.cache.delete(k);
      this.bytes -= v.length;
    }
    return enc;
  }

  /**
   * One SSE `events` block: `event`, `id`, and data `{"type":"events","revision":R,"events":[...]}`, as
   * parts that reference the shared event encodings (no per-watch copy of large values).
   */
  eventsBlock(revision: number, events: WatchEvent[]): Uint8Array[] {
    const out: Uint8Array[] = [this.te.encode(`event: events\nid: ${revision}\ndata: {"type":"events","revision":${revision},"events":[`)];
    events.forEach((e, i) => {
      if (i > 0) out.push(COMMA);
      out.push(this.event(e));
    });
    out.push(this.te.encode("]}\n\n"));
    return out;
  }

  /** Any other SSE block. */
  block(event: string, data: unknown, id?: number): Uint8Array {
    return this.te.encode(`event: ${event}\n${id !== undefined ? `id: ${id}\n` : ""}data: ${JSON.stringify(data)}\n\n`);
  }
}

const COMMA = new Uint8Array([0x2c]);

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return s;
}

/**
 * The output queue of one stream, pulled by the runtime (`highWaterMark` 0: the runtime asks for a chunk
 * only when it can send one, e.g. after the socket's `drain` on Node). `queuedBytes` is what the client has
 * not taken yet.
 */
class OutQueue {
  private chunks: Array<{ bytes: Uint8Array; revision?: number }> = [];
  queuedBytes = 0;
  /** Revision of the last events/progress block the runtime took (sent or in its socket buffer). */
  takenRevision: number | undefined;
  private closed = false;
  private pullWaiter: (() => void) | undefined;
  private spaceWaiter: (() => void) | undefined;
  readonly stream: ReadableStream<Uint8Array>;

  constructor(private readonly stats: WatchStats, onCancel: () => void) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          while (this.chunks.length === 0 && !this.closed) await new Promise<void>((r) => (this.pullWaiter = r));
          const c = this.chunks.shift();
          if (c === undefined) {
            controller.close();
            return;
          }
          this.queuedBytes -= c.bytes.length;
          if (c.revision !== undefined) this.takenRevision = c.revision;
          controller.enqueue(c.bytes);
          const w = this.spaceWaiter;
          this.spaceWaiter = undefined;
          w?.();
        },
        cancel: () => {
          this.drop();
          onCancel();
        },
      },
      { highWaterMark: 0 },
    );
  }

  push(c: Uint8Array, revision?: number): void {
    if (this.closed) return;
    this.chunks.push({ bytes: c, revision });
    this.queuedBytes += c.length;
    if (this.queuedBytes > this.stats.maxQueuedBytes) this.stats.maxQueuedBytes = this.queuedBytes;
    this.wakePull();
  }

  /** Resolves true when the client took a chunk, false after `timeoutMs` or on abort. */
  waitForSpace(timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (took: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.spaceWaiter = undefined;
        resolve(took);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.spaceWaiter = () => done(true);
    });
  }

  /** Forgets every queued chunk (memory released). */
  drop(): void {
    this.chunks = [];
    this.queuedBytes = 0;
  }

  close(): void {
    this.closed = true;
    this.wakePull();
  }

  private wakePull(): void {
    const w = this.pullWaiter;
    this.pullWaiter = undefined;
    w?.();
  }
}

/** Registers `GET /v1/watch` (see the module comment for the bounds). */
export function registerWatchRoute(app: Hono, service: KvService, opts: WatchRouteOptions): void {
  const stats = opts.stats ?? newWatchStats();
  const encoder = new EventEncoder(stats);
  app.get("/v1/watch", async (c) => {
    const req = watchRequestOf(c, opts.progressIntervalMs);
    if (stats.active >= opts.maxWatches) throw new ApiError("too_many_requests", `this node serves at most ${opts.maxWatches} watches`);
    const abort = new AbortController();
    const raw = c.req.raw.signal;
    if (raw) {
      if (raw.aborted) abort.abort();
      else raw.addEventListener("abort", () => abort.abort(), { once: true });
    }
    const out = new OutQueue(stats, () => abort.abort());
    if (req.fromRevision !== undefined) out.takenRevision = req.fromRevision - 1;
    stats.active++;
    void (async () => {
      try {
        // A compacted revision is an `error` event in the stream (C05), as every later failure.
        const messages = await service.watch(req, { signal: abort.signal });
        for await (const m of messages) {
          if (abort.signal.aborted) break;
          const parts = m.type === "events" ? encoder.eventsBlock(m.revision, m.events) : [encoder.block("progress", { revision: m.revision }, m.revision)];
          parts.forEach((p, i) => out.push(p, i === parts.length - 1 ? m.revision : undefined));
          // Full: wait here (not at the next message) so an unread stream is cut even if nothing more comes.
          while (out.queuedBytes >= opts.maxQueuedBytes) {
            if (!(await out.waitForSpace(opts.stallMs, abort.signal))) {
              if (abort.signal.aborted) return;
              stats.overflows++;
              out.drop();
              const error: Record<string, unknown> = { code: "watch_overflow", message: `the client took no data for ${opts.stallMs} ms with ${opts.maxQueuedBytes} bytes queued` };
              if (out.takenRevision !== undefined) error.resumeRevision = out.takenRevision + 1;
              out.push(encoder.block("error", { error }));
              return;
            }
          }
        }
      } catch (err) {
        if (!abort.signal.aborted) out.push(encoder.block("error", toApiError(err).toJSON()));
      } finally {
        stats.active--;
        out.close();
        abort.abort();
      }
    })();
    return new Response(out.stream, { status: 200, headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  });
}
