/**
 * Key-value routes of the v1 API: `PUT|GET|DELETE /v1/kv/{key}`, `GET|DELETE /v1/kv?prefix=|start=&end=`,
 * `POST /v1/txn`, `POST /v1/compact` (DESIGN.md "Client API (v1)"; etcd KV semantics). Conditional
 * requests (`If-Match`, `If-None-Match: *`) become one txn, so the check and the write are atomic.
 */
import type { Context, Hono } from "hono";
import { ApiError } from "./errors.ts";
import { checkQuery, checkQueryNames, consistencyFromQuery, consistencyOf, deadlineSignal, headerOf, readBodyBytes, readStructuredBody, requestDeadline, respond, resultResponse, sessionOf, splitRequestUrl, type RouteLimits } from "./http.ts";
import { compareBytes, prefixEnd, type Compare, type RangeRequest, type RangeResult } from "../kv/types.ts";
import type { KvService, ServiceRangeResult } from "./service.ts";
import {
  compactBodySchema,
  compareFromBody,
  parseCount,
  parseFlag,
  parseLeaseId,
  OPEN_END,
  txnBodySchema,
  txnOpFromBody,
  utf8,
  validate,
} from "./wire.ts";

const KV_PREFIX = "/v1/kv/";

/**
 * The key of a `/v1/kv/{key}` request, taken from the raw URL path so that `%2F`, `%25` and slashes
 * survive: the rest of the path, percent-decoded as UTF-8. `bad_request` when empty or malformed.
 */
export function keyFromPath(c: Context | string): Uint8Array {
  const path = splitRequestUrl(typeof c === "string" ? c : c.req.url).path;
  const raw = path.slice(path.indexOf(KV_PREFIX) + KV_PREFIX.length);
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw new ApiError("bad_request", "key is not valid percent-encoded UTF-8");
  }
  if (key.length === 0) throw new ApiError("bad_request", "key must not be empty");
  return utf8(key);
}

/**
 * A precondition header as a compare: `If-Match: "<modRevision>"` (also bare or weak `W/"n"`) = the key's
 * modRevision equals n; `If-Match: *` = the key exists; `If-None-Match: *` = the key is absent (a deleted
 * key is absent, docs/scenarios.md C21). Returns [] without preconditions; `bad_request` when malformed. Reads
 * the headers of a hono Context or of a bare Request.
 */
export function preconditions(source: Context | Request, key: Uint8Array): Compare[] {
  const out: Compare[] = [];
  const ifMatch = headerOf(source, "if-match");
  const ifNoneMatch = headerOf(source, "if-none-match");
  if (ifMatch !== undefined) {
    const v = ifMatch.trim();
    if (v === "*") out.push({ key, target: "createRevision", result: ">", value: 0 });
    else {
      const m = /^(?:W\/)?"?([0-9]{1,15})"?$/.exec(v);
      if (!m) throw new ApiError("bad_request", `If-Match must be "<modRevision>" or *, got ${v}`);
      out.push({ key, target: "modRevision", result: "=", value: Number(m[1]) });
    }
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== "*") throw new ApiError("bad_request", "only If-None-Match: * is supported");
    out.push({ key, target: "createRevision", result: "=", value: 0 });
  }
  return out;
}

/**
 * The range of `GET|DELETE /v1/kv?...`: `prefix=p` (empty = every key), or `start=a` with optional `end=b`
 * ([a, b); no end = every key >= a). `bad_request` for neither/both, or an empty or inverted range (C21).
 */
export function rangeFromQuery(c: Context): { key: Uint8Array; rangeEnd: Uint8Array } {
  const prefix = c.req.query("prefix");
  const start = c.req.query("start");
  const end = c.req.query("end");
  if (prefix !== undefined) {
    if (start !== undefined || end !== undefined) throw new ApiError("bad_request", "give prefix or start/end, not both");
    const p = utf8(prefix);
    // The empty prefix is every key (etcd: empty key with the "\0" range end).
    return { key: p, rangeEnd: p.length === 0 ? OPEN_END : prefixEnd(p) };
  }
  if (start === undefined) throw new ApiError("bad_request", "give prefix=... or start=...[&end=...]");
  const key = utf8(start);
  if (end === undefined) return { key, rangeEnd: OPEN_END };
  const rangeEnd = utf8(end);
  if (compareBytes(key, rangeEnd) >= 0) throw new ApiError("bad_request", "empty or inverted range: start must be below end");
  return { key, rangeEnd };
}

/** Headers every read sets: store revision, plus the staleness of a `stale` read. */
function readHeaders(c: Context, r: ServiceRangeResult): void {
  c.header("x-revision", String(r.revision));
  if (r.stale) {
    c.header("x-consistency", "stale");
    c.header("x-applied-index", String(r.stale.appliedIndex));
    if (r.stale.stalenessMs !== null) c.header("x-staleness-ms", String(Math.round(r.stale.stalenessMs)));
  }
}

/**
 * `GET /v1/kv/{key}` from the bare Request: the value bytes with `ETag: "<modRevision>"`, `X-Revision`,
 * `X-Mod-Revision`, `X-Create-Revision`, `X-Version`, `X-Lease` (and `X-Consistency`, `X-Applied-Index`,
 * `X-Staleness-Ms` on a stale read); `not_found` when absent. `?revision=` and `?consistency=` as in
 * docs/api.md. Needs no hono Context, so the app can also serve it before routing (app.ts `createApp`):
 * the router, context and middleware chain were a visible share of a one-key GET (docs/bench.md,
 * 2026-11-30). Throws ApiError (the caller turns it into the error response).
 */
export async function getKeyResponse(request: Request, service: KvService, limits: RouteLimits): Promise<Response> {
  const { query } = splitRequestUrl(request.url);
  const params = query === "" ? undefined : new URLSearchParams(query);
  checkQueryNames(params, GET_KEY_QUERY);
  const key = keyFromPath(request.url);
  const revision = parseCount("revision", params?.get("revision") ?? undefined);
  const consistency = consistencyFromQuery(params?.get("consistency") ?? undefined);
  // A stale read is answered at once from local state: no deadline (and no timer per request) needed.
  const signal = consistency === "stale" ? undefined : requestDeadline(request, limits.requestTimeoutMs);
  const r = await service.range({ key, revision }, { consistency, signal });
  const kv = r.kvs[0];
  if (!kv) throw new ApiError("not_found", `key ${JSON.stringify(new TextDecoder().decode(key))} not found`);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "x-revision": String(r.revision),
    etag: `"${kv.modRevision}"`,
    "x-mod-revision": String(kv.modRevision),
    "x-create-revision": String(kv.createRevision),
    "x-version": String(kv.version),
    "x-lease": String(kv.lease),
  };
  if (r.stale) {
    headers["x-consistency"] = "stale";
    headers["x-applied-index"] = String(r.stale.appliedIndex);
    if (r.stale.stalenessMs !== null) headers["x-staleness-ms"] = String(Math.round(r.stale.stalenessMs));
  }
  return new Response(kv.value as Uint8Array<ArrayBuffer>, { status: 200, headers });
}

/**
 * `PUT /v1/kv/{key}` from the bare Request: the body bytes are the value (at most `limits.maxValueBytes`,
 * else `payload_too_large`); `?lease=<id>` attaches a lease, `?prevKv=true` returns the previous pair;
 * `If-Match` / `If-None-Match: *` turn the put into one txn (check and write atomic; `compare_failed` 412
 * naming the current modRevision); `X-Client-Id` / `X-Request-Seq` make it exactly-once. Answers
 * `{op, revision[, prevKv]}` as JSON or CBOR per `Accept` (docs/api.md). Needs no hono Context, so the app
 * also serves it before routing (app.ts `createApp`): hono's router, context and middleware were about
 * 15 % of a Bun leader's CPU under put@64 (issue #6). The hono route calls it too: one implementation.
 * Throws ApiError (the caller turns it into the error response).
 */
export async function putKeyResponse(request: Request, service: KvService, limits: RouteLimits): Promise<Response> {
  const { query } = splitRequestUrl(request.url);
  const params = query === "" ? undefined : new URLSearchParams(query);
  checkQueryNames(params, PUT_KEY_QUERY);
  const key = keyFromPath(request.url);
  const leaseParam = params?.get("lease") ?? undefined;
  const lease = leaseParam === undefined ? 0 : parseLeaseId(leaseParam);
  const compare = preconditions(request, key);
  const value = await readBodyBytes(request, limits.maxValueBytes);
  const opts = { session: sessionOf(request), signal: requestDeadline(request, limits.requestTimeoutMs) };
  const prevKv = parseFlag("prevKv", params?.get("prevKv") ?? undefined);
  if (compare.length === 0) return resultResponse(request, await service.put({ op: "put", key, value, lease, prevKv }, opts));
  const t = await service.txn({ op: "txn", compare, success: [{ op: "put", key, value, lease, prevKv }], failure: [{ op: "range", key }] }, opts);
  if (!t.succeeded) throw conditionFailed(t.responses[0]);
  const put = t.responses[0];
  return resultResponse(request, { op: "put", revision: t.revision, ...(put && put.op === "put" && put.prevKv ? { prevKv: put.prevKv } : {}) });
}

/** Query parameters of `GET /v1/kv/{key}` and `PUT /v1/kv/{key}` (others: `bad_request`, `checkQueryNames`). */
const GET_KEY_QUERY = ["revision", "consistency"] as const;
const PUT_KEY_QUERY = ["lease", "prevKv"] as const;

/** Registers the KV, txn and compact routes on `app`. */
export function registerKvRoutes(app: Hono, service: KvService, limits: RouteLimits): void {
  // The range routes first: hono's `/v1/kv/*` would also match `/v1/kv`.
  app.get("/v1/kv", async (c) => {
    checkQuery(c, ["prefix", "start", "end", "limit", "revision", "keysOnly", "countOnly", "consistency"]);
    const { key, rangeEnd } = rangeFromQuery(c);
    const req: RangeRequest = {
      key,
      rangeEnd,
      limit: parseCount("limit", c.req.query("limit")),
      revision: parseCount("revision", c.req.query("revision")),
      keysOnly: parseFlag("keysOnly", c.req.query("keysOnly")),
      countOnly: parseFlag("countOnly", c.req.query("countOnly")),
    };
    const r = await service.range(req, { consistency: consistencyOf(c), signal: deadlineSignal(c, limits.requestTimeoutMs) });
    readHeaders(c, r);
    const { stale: _stale, ...body } = r;
    return respond(c, body);
  });

  app.delete("/v1/kv", async (c) => {
    checkQuery(c, ["prefix", "start", "end", "prevKv"]);
    const { key, rangeEnd } = rangeFromQuery(c);
    const opts = { session: sessionOf(c), signal: deadlineSignal(c, limits.requestTimeoutMs) };
    return respond(c, await service.deleteRange({ op: "deleteRange", key, rangeEnd, prevKv: parseFlag("prevKv", c.req.query("prevKv")) }, opts));
  });

  app.get("/v1/kv/*", (c) => getKeyResponse(c.req.raw, service, limits));

  app.put("/v1/kv/*", (c) => putKeyResponse(c.req.raw, service, limits));

  app.delete("/v1/kv/*", async (c) => {
    checkQuery(c, ["prevKv"]);
    const key = keyFromPath(c);
    const compare = preconditions(c, key);
    const opts = { session: sessionOf(c), signal: deadlineSignal(c, limits.requestTimeoutMs) };
    const prevKv = parseFlag("prevKv", c.req.query("prevKv"));
    if (compare.length === 0) return respond(c, await service.deleteRange({ op: "deleteRange", key, prevKv }, opts));
    const t = await service.txn({ op: "txn", compare, success: [{ op: "deleteRange", key, prevKv }], failure: [{ op: "range", key }] }, opts);
    if (!t.succeeded) throw conditionFailed(t.responses[0]);
    const del = t.responses[0];
    return respond(c, { op: "deleteRange", revision: t.revision, deleted: del && del.op === "deleteRange" ? del.deleted : 0, ...(del && del.op === "deleteRange" && del.prevKvs ? { prevKvs: del.prevKvs } : {}) });
  });

  app.post("/v1/txn", async (c) => {
    const body = validate(txnBodySchema, await readStructuredBody(c, limits.maxRequestBytes));
    const req = { op: "txn" as const, compare: body.compare.map(compareFromBody), success: body.success.map(txnOpFromBody), failure: body.failure.map(txnOpFromBody) };
    const r = await service.txn(req, { session: sessionOf(c), signal: deadlineSignal(c, limits.requestTimeoutMs) });
    c.header("x-revision", String(r.revision));
    return respond(c, r);
  });

  app.post("/v1/compact", async (c) => {
    const body = validate(compactBodySchema, await readStructuredBody(c, limits.maxRequestBytes));
    return respond(c, await service.compact(body.revision, { session: sessionOf(c), signal: deadlineSignal(c, limits.requestTimeoutMs) }));
  });
}

/**
 * The 412 of a failed precondition: the message names the key's modRevision (or says it is absent);
 * `currentRevision` is the store revision the txn saw (the failure branch's range result, etcd's header
 * revision), not the key's modRevision (docs/api.md "Errors").
 */
function conditionFailed(current: unknown): ApiError {
  const r = current as RangeResult | undefined;
  const kv = r?.kvs?.[0];
  return new ApiError("compare_failed", kv ? `precondition failed: key has modRevision ${kv.modRevision}` : "precondition failed: key is absent", {
    currentRevision: r?.revision,
  });
}
