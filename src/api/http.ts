/**
 * Request/response helpers shared by the API routes: call options from headers (session, deadline),
 * consistency, content negotiation (JSON or CBOR), bounded body reading, and the error response.
 */
import type { Context } from "hono";
import { ApiError, toApiError } from "./errors.ts";
import { apiCbor, CBOR_TYPE, encodeResult } from "./wire.ts";
import type { ClientSession, Consistency } from "./service.ts";

/** Limits and timing the routes need (a subset of `ApiOptions`). */
export interface RouteLimits {
  /** Largest value of `PUT /v1/kv/{key}`, bytes. */
  maxValueBytes: number;
  /** Largest body of other requests (txn), bytes. */
  maxRequestBytes: number;
  /** Deadline of a request, ms (DESIGN.md default 30 s). */
  requestTimeoutMs: number;
}

/** A request header of a hono Context or a bare Request (lower-case name); undefined when absent. */
export function headerOf(source: Context | Request, name: string): string | undefined {
  return ("req" in source ? source.req.raw.headers : source.headers).get(name) ?? undefined;
}

/**
 * The session of a write from `X-Client-Id` and `X-Request-Seq` (both or neither): client id 1..128
 * visible ASCII chars, sequence a positive integer. `bad_request` otherwise. Takes the hono Context or the
 * bare Request (the routes answered before routing have no Context, app.ts `createApp`).
 */
export function sessionOf(source: Context | Request): ClientSession | undefined {
  const clientId = headerOf(source, "x-client-id");
  const seq = headerOf(source, "x-request-seq");
  if (clientId === undefined && seq === undefined) return undefined;
  if (clientId === undefined || seq === undefined) throw new ApiError("bad_request", "X-Client-Id and X-Request-Seq go together");
  if (!/^[\x21-\x7e]{1,128}$/.test(clientId)) throw new ApiError("bad_request", "X-Client-Id must be 1..128 visible ASCII characters");
  if (!/^[1-9][0-9]{0,15}$/.test(seq) || !Number.isSafeInteger(Number(seq))) throw new ApiError("bad_request", "X-Request-Seq must be a positive integer");
  return { clientId, sequence: Number(seq) };
}

/**
 * The raw (still percent-encoded) path and the query text (after "?", "" when none) of an absolute request
 * URL, by string search: the read path calls this once per request, where a `URL` object was a visible
 * cost in the profile (docs/bench.md, 2026-11-30). A fragment, which servers never receive, is cut off.
 */
export function splitRequestUrl(url: string): { path: string; query: string } {
  const slash = url.indexOf("/", url.indexOf("://") + 3);
  if (slash < 0) return { path: "/", query: "" };
  let end = url.length;
  const hash = url.indexOf("#", slash);
  if (hash >= 0) end = hash;
  const q = url.indexOf("?", slash);
  if (q >= 0 && q < end) return { path: url.slice(slash, q), query: url.slice(q + 1, end) };
  return { path: url.slice(slash, end), query: "" };
}

/**
 * Refuses a query parameter the route does not take: `bad_request` naming it and the ones the route takes.
 * Why: a typo such as `rev=` for `revision=` or `leese=` for `lease=` used to be ignored, so a read at a past
 * revision answered the current value and a put was written without its lease, both with 200 (new-user
 * trial U4, docs/nemesis.md). JSON bodies are strict the same way (zod). `params` undefined: no query.
 */
export function checkQueryNames(params: URLSearchParams | undefined, allowed: readonly string[]): void {
  if (params === undefined) return;
  for (const name of params.keys()) {
    if (!allowed.includes(name)) {
      throw new ApiError("bad_request", `unknown query parameter ${JSON.stringify(name)}; this route takes ${allowed.length > 0 ? allowed.join(", ") : "none"}`);
    }
  }
}

/** `checkQueryNames` for a hono route's request. */
export function checkQuery(c: Context, allowed: readonly string[]): void {
  const { query } = splitRequestUrl(c.req.url);
  if (query !== "") checkQueryNames(new URLSearchParams(query), allowed);
}

/** `?consistency=` of a read; default linearizable; `bad_request` for other values. */
export function consistencyOf(c: Context): Consistency {
  return consistencyFromQuery(c.req.query("consistency"));
}

/** A `consistency` query value (undefined when absent): default linearizable; `bad_request` for other values. */
export function consistencyFromQuery(v: string | undefined): Consistency {
  if (v === undefined || v === "") return "linearizable";
  if (v === "linearizable" || v === "lease" || v === "stale") return v;
  throw new ApiError("bad_request", `consistency must be linearizable, lease or stale, got ${JSON.stringify(v)}`);
}

/** The request's abort signal bounded by the request deadline (aborts on client disconnect or timeout). */
export function deadlineSignal(c: Context, timeoutMs: number): AbortSignal {
  return requestDeadline(c.req.raw, timeoutMs);
}

/**
 * `deadlineSignal` of a bare Request: aborts on client disconnect (the request's signal) or when the
 * deadline passes, `timeoutMs` to `timeoutMs` + 5 % (at most + 100 ms) after the call; never before
 * `timeoutMs`. The deadline side is a shared signal (`sharedDeadline`): a timer per request was a visible
 * cost of a put on a busy leader (issue #6).
 */
export function requestDeadline(request: Request, timeoutMs: number): AbortSignal {
  const deadline = sharedDeadline(timeoutMs);
  const raw = request.signal;
  return raw ? AbortSignal.any([raw, deadline]) : deadline;
}

/** Longest span of calls that share one deadline signal, ms. */
const DEADLINE_SHARE_MAX_MS = 100;

/** The shared deadline signal per timeout (ms) and until when (performance.now() ms) new calls share it. */
const deadlines = new Map<number, { signal: AbortSignal; shareUntilMs: number }>();

/**
 * A signal that aborts (TimeoutError, as `AbortSignal.timeout`) between `timeoutMs` and `timeoutMs` + width
 * after this call, width = min(100 ms, timeoutMs / 20) rounded up: every call within one width of the
 * first gets the same signal, made with the timeout plus the width, so none fires early and the lateness is
 * at most the width. One timer per width per timeout instead of one per request. `nowMs`: a monotonic clock
 * in ms (tests pass their own). Throws RangeError (from AbortSignal.timeout) for a negative timeout.
 */
export function sharedDeadline(timeoutMs: number, nowMs: number = performance.now()): AbortSignal {
  const shared = deadlines.get(timeoutMs);
  if (shared && nowMs < shared.shareUntilMs) return shared.signal;
  const widthMs = Math.ceil(Math.min(DEADLINE_SHARE_MAX_MS, timeoutMs / 20));
  const signal = AbortSignal.timeout(Math.ceil(timeoutMs) + widthMs);
  // Timeouts are a handful of configured values (one per app), so the map stays small.
  deadlines.set(timeoutMs, { signal, shareUntilMs: nowMs + widthMs });
  return signal;
}

/** True when the client asked for CBOR (`Accept: application/cbor`); a Context or a bare Request. */
export function wantsCbor(source: Context | Request): boolean {
  return (headerOf(source, "accept") ?? "").toLowerCase().includes(CBOR_TYPE);
}

/** Sends `data` as JSON (KeyValues converted, see wire.ts) or CBOR per `Accept`, with `status`. */
export function respond(c: Context, data: unknown, status = 200): Response {
  const cbor = wantsCbor(c);
  const body = encodeResult(data, cbor);
  if (cbor) {
    const bytes = apiCbor.encode(body);
    return c.body(new Uint8Array(bytes) as Uint8Array<ArrayBuffer>, status as 200, { "content-type": CBOR_TYPE });
  }
  return c.json(body as object, status as 200);
}

/**
 * `respond` without a hono Context: a new Response with `data` as JSON or CBOR per the request's `Accept`.
 * Content types as hono's `c.json` / `c.body` set them above ("application/json", no charset), so a
 * route answered before routing and the routed one give the same bytes (test/unit/api-put-path.test.ts).
 */
export function resultResponse(request: Request, data: unknown, status = 200): Response {
  const cbor = wantsCbor(request);
  const body = encodeResult(data, cbor);
  if (cbor) return new Response(new Uint8Array(apiCbor.encode(body)) as Uint8Array<ArrayBuffer>, { status, headers: { "content-type": CBOR_TYPE } });
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** The error response: JSON body `{"error": {...}}`, status by code, `Retry-After` on 429/503. */
export function errorResponse(err: unknown): Response {
  const e = toApiError(err);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (e.retryAfterSec !== undefined) headers["retry-after"] = String(Math.max(0, Math.ceil(e.retryAfterSec)));
  if (e.details.leader) {
    headers["x-leader-id"] = e.details.leader.id;
    if (e.details.leader.clientUrl) headers["x-leader-url"] = e.details.leader.clientUrl;
  }
  return new Response(JSON.stringify(e.toJSON()), { status: e.status, headers });
}

/**
 * Reads the raw body, at most `maxBytes`: checks `Content-Length` first, then counts while streaming and
 * stops at the limit, so an oversized or lying body is never buffered whole. `payload_too_large` past it.
 * Takes the hono Context or the bare Request.
 */
export async function readBodyBytes(source: Context | Request, maxBytes: number): Promise<Uint8Array> {
  const request = "req" in source ? source.req.raw : source;
  const declared = request.headers.get("content-length") ?? undefined;
  if (declared !== undefined && Number(declared) > maxBytes) throw new ApiError("payload_too_large", `body of ${declared} bytes is above the limit of ${maxBytes}`);
  if (declared !== undefined) {
    // A body of known length is read by the runtime in one native call: a JS reader loop costs a promise and
    // stream-controller callbacks per chunk (about a tenth of a Bun leader's time under put@64, docs/bench.md
    // 2026-11-30). HTTP framing delivers at most the declared length; it is checked again all the same.
    const whole = new Uint8Array(await request.arrayBuffer());
    if (whole.byteLength > maxBytes) throw new ApiError("payload_too_large", `body is above the limit of ${maxBytes} bytes`);
    return whole;
  }
  const read = await readBodyWithin(request.body, maxBytes);
  if (!read.ok) throw new ApiError("payload_too_large", `body is above the limit of ${maxBytes} bytes`);
  return read.bytes;
}

/** Reads a JSON or CBOR body (by `Content-Type`), bounded by `maxBytes`; malformed input is `bad_request`. */
export async function readStructuredBody(c: Context, maxBytes: number): Promise<unknown> {
  const bytes = await readBodyBytes(c, maxBytes);
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (type.includes(CBOR_TYPE)) {
    try {
      return apiCbor.decode(bytes);
    } catch {
      throw new ApiError("bad_request", "malformed CBOR body");
    }
  }
  if (bytes.length === 0) throw new ApiError("bad_request", "missing JSON body");
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ApiError("bad_request", "malformed JSON body");
  }
}

/**
 * Result of `readBodyWithin`: the whole body, or the fact that it went past the limit. Used by
 * readBodyBytes above and by a follower forwarding a chunked write (src/server/node.ts): the count is kept
 * as bytes arrive, so at most the limit is ever buffered (docs/api.md "never buffered whole").
 */
export type LimitedBody = { ok: true; bytes: Uint8Array<ArrayBuffer> } | { ok: false; seenBytes: number };

/**
 * Reads `body` to the end if it holds at most `limitBytes` bytes and returns them in one array; otherwise
 * stops at the first chunk that takes the count past the limit, cancels the stream (the sender's upload is
 * not read further) and returns `{ ok: false, seenBytes }` (bytes counted so far, at most limit + one
 * chunk). Memory held: at most `limitBytes` plus the chunk in hand. A null body reads as 0 bytes.
 * Throws whatever the body stream throws (a client that disconnected mid-upload).
 */
export async function readBodyWithin(body: ReadableStream<Uint8Array> | null, limitBytes: number): Promise<LimitedBody> {
  if (!body) return { ok: true, bytes: new Uint8Array(0) };
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limitBytes) {
      // Cancel, not read on: a 200 MB upload must not be pulled through just to be refused.
      await reader.cancel().catch(() => {});
      return { ok: false, seenBytes: size };
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return { ok: true, bytes: out };
}
