/**
 * `EdgeKvClient`: the typed HTTP SDK of edgekv (docs/client.md). fetch only, so it runs in browsers, Bun,
 * Deno and Node >= 20. Every method takes `{ signal?, timeoutMs? }` and rejects with `EdgeKvError`
 * subclasses (errors.ts); retry, leader following and sessions are in transport.ts.
 */
import { Encoder } from "cbor-x";
import { BadRequestError, CompactedError, CompareFailedError, EdgeKvError, UnavailableError } from "./errors.ts";
import { readSse } from "./sse.ts";
import { checkPutValue, validateTxnRequest } from "./txn-validate.ts";
import { MEMBER_ID_RE, memberUrlProblem } from "../api/member-input.ts";
import { compareBytes } from "../kv/types.ts";
import { CLIENT_DEFAULTS, Transport, type CallKind, type CallOptions, type RetryPolicy } from "./transport.ts";
import {
  bytes,
  compareToWire,
  kvFromWire,
  opResultFromWire,
  rangeFromWire,
  txnOpToWire,
  type ClusterView,
  type Consistency,
  type DeleteResult,
  type GetResult,
  type KeySelector,
  type LeaseStatus,
  type PutResult,
  type RangeResult,
  type TxnCompare,
  type TxnOp,
  type TxnRequest,
  type TxnResult,
  type WatchMessage,
} from "./types.ts";

/** Options of `new EdgeKvClient(...)`. */
export interface EdgeKvClientOptions {
  /** Client API base URLs, e.g. `["http://127.0.0.1:8080"]` (no trailing slash needed). */
  endpoints: string[];
  /** Default per-call deadline including retries, ms (default 30 000). */
  timeoutMs?: number;
  /** Retry policy (default 5 attempts, 50 ms base, 2 s cap, full jitter). */
  retry?: Partial<RetryPolicy>;
  /** Session client id for exactly-once writes (default a random UUID). */
  clientId?: string;
  /** Body format of range and txn calls (default "json"). */
  format?: "json" | "cbor";
  /** fetch implementation (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Jitter source in [0, 1) (default `Math.random`). */
  random?: () => number;
}

/** Options of reads. */
export interface ReadOptions extends CallOptions {
  consistency?: Consistency;
  /** Read at this past revision (0/absent = latest). */
  revision?: number;
}

const CBOR = "application/cbor";
const cborCodec = new Encoder({ tagUint8Array: false, useRecords: false, mapsAsObjects: true });

/** `?a=b&c` from defined entries (`true` = bare flag). */
function query(params: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === false) continue;
    parts.push(v === true ? k : `${k}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

/**
 * The query of a key selector for `/v1/kv` and `/v1/watch`. Throws `BadRequestError` for `{start, end}`
 * with end not after start in UTF-8 byte order, as the server would (scenario C21, an empty or inverted
 * range is an error): checked here so that a `deleteRange` is never sent to fail with an uncertain outcome.
 */
function selectorQuery(sel: KeySelector): Record<string, string | undefined> {
  if ("key" in sel) return { key: nonEmptyKey(sel.key) };
  if ("prefix" in sel) return { prefix: sel.prefix };
  // The server's order: UTF-8 bytes (compareBytes), which differs from JavaScript's UTF-16 `<` above U+FFFF.
  if (sel.end !== undefined && compareBytes(utf8.encode(sel.start), utf8.encode(sel.end)) >= 0) {
    throw new BadRequestError("bad_request", `empty or inverted range: start ${JSON.stringify(sel.start)} must be below end ${JSON.stringify(sel.end)}`);
  }
  return { start: sel.start, end: sel.end };
}

const utf8 = new TextEncoder();

/**
 * Throws `BadRequestError` unless `id` has the shape of a member id (src/api/member-input.ts; the node's own
 * `--node-id` has the same rule, src/config/schema.ts), so no member can have any other id.
 */
function checkMemberId(id: string): void {
  if (!MEMBER_ID_RE.test(id)) throw new BadRequestError("bad_request", `member id ${JSON.stringify(id)}: 1-64 letters, digits, '.', '_' or '-', not . or ..`);
}

/** Throws `BadRequestError` unless `id` and the URLs have the shape the membership API accepts (src/api/member-input.ts). */
function checkMember(id: string, peerUrl: string, clientUrl: string): void {
  checkMemberId(id);
  for (const [name, url] of [["peer URL", peerUrl], ["client URL", clientUrl]] as const) {
    const problem = memberUrlProblem(url);
    if (problem) throw new BadRequestError("bad_request", `${name} ${JSON.stringify(url)}: ${problem}`);
  }
}

/**
 * Keys a URL path cannot carry: URL parsing (WHATWG URL, used by every fetch) removes "." and ".." path
 * segments, also when written %2E, so `/v1/kv/..` would reach `/v1/`. `get`, `put` and `delete` send
 * exactly these keys through the range and txn routes, which take the key in a query or body.
 */
const DOT_KEYS = new Set([".", ".."]);

/** `key`, or `BadRequestError` (nothing sent) when it is empty: no key is empty (etcd: "key is not provided"). */
function nonEmptyKey(key: string): string {
  if (key === "") throw new BadRequestError("bad_request", "key must not be empty");
  return key;
}

/** The path of one key: every character percent-encoded except unreserved ones (slashes too). */
function keyPath(key: string): string {
  return `/v1/kv/${encodeURIComponent(nonEmptyKey(key))}`;
}

/** A delete result from the wire, without the `op` tag. */
function deleteResult(w: unknown): DeleteResult {
  const { op: _op, ...rest } = opResultFromWire(w as Record<string, unknown>) as DeleteResult & { op: string };
  return rest;
}

/**
 * A random 128-bit client id as 32 hex chars. `crypto.getRandomValues` rather than `randomUUID`, which
 * browsers only offer on secure (https) pages.
 */
export function randomClientId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The edgekv client. Safe for concurrent use; keep one per application. */
export class EdgeKvClient {
  readonly transport: Transport;
  private readonly format: "json" | "cbor";

  constructor(options: EdgeKvClientOptions) {
    this.format = options.format ?? "json";
    const f = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.transport = new Transport({
      endpoints: options.endpoints.map((e) => e.replace(/\/+$/, "")),
      timeoutMs: options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
      retry: { ...CLIENT_DEFAULTS.retry, ...options.retry },
      clientId: options.clientId ?? randomClientId(),
      fetch: f,
      random: options.random ?? Math.random,
    });
  }

  private async json<T>(method: string, path: string, kind: CallKind, body?: unknown, opts?: CallOptions): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await this.transport.call({ method, path, kind, headers, body: body === undefined ? undefined : JSON.stringify(body), opts });
    return (await res.json()) as T;
  }

  /** JSON or CBOR per `format`, for range and txn. */
  private async structured(method: string, path: string, kind: CallKind, body: unknown, opts?: CallOptions): Promise<Record<string, unknown>> {
    if (this.format === "json") return this.json(method, path, kind, body, opts);
    const headers: Record<string, string> = { accept: CBOR };
    if (body !== undefined) headers["content-type"] = CBOR;
    const res = await this.transport.call({ method, path, kind, headers, body: body === undefined ? undefined : new Uint8Array(cborCodec.encode(body)), opts });
    return cborCodec.decode(new Uint8Array(await res.arrayBuffer())) as Record<string, unknown>;
  }

  /** Reads one key; `null` when absent. Errors: `CompactedError` (old `revision`), `UnavailableError`, `TimeoutError`. */
  async get(key: string, opts: ReadOptions = {}): Promise<GetResult | null> {
    if (DOT_KEYS.has(key)) {
      const r = await this.range({ key }, opts);
      return r.kvs.length === 0 ? null : { ...r.kvs[0], revision: r.revision };
    }
    const path = keyPath(key) + query({ consistency: opts.consistency, revision: opts.revision });
    let res: Response;
    try {
      res = await this.transport.call({ method: "GET", path, kind: "read", opts });
    } catch (err) {
      if (err instanceof EdgeKvError && err.code === "not_found") return null;
      throw err;
    }
    const h = res.headers;
    const out: GetResult = {
      key,
      value: new Uint8Array(await res.arrayBuffer()),
      createRevision: Number(h.get("x-create-revision")),
      modRevision: Number(h.get("x-mod-revision") ?? (h.get("etag") ?? "").replace(/"/g, "")),
      version: Number(h.get("x-version")),
      lease: h.get("x-lease") ?? "0",
      revision: Number(h.get("x-revision")),
    };
    if (h.get("x-consistency") === "stale") {
      out.stale = { appliedIndex: Number(h.get("x-applied-index")) };
      if (h.get("x-staleness-ms")) out.stale.stalenessMs = Number(h.get("x-staleness-ms"));
    }
    return out;
  }

  /**
   * Writes `value` at `key`. `ifMatch`: only if the key's modRevision equals it (CAS); `ifAbsent`: only if
   * the key does not exist. Errors: `CompareFailedError`, `LeaseNotFoundError`, `OutcomeUnknownError`;
   * `BadRequestError` (nothing sent) when `value` is neither a string nor a Uint8Array (JavaScript callers).
   */
  async put(key: string, value: Uint8Array | string, opts: CallOptions & { lease?: string; ifMatch?: number; ifAbsent?: boolean; prevKv?: boolean } = {}): Promise<PutResult> {
    checkPutValue(value);
    if (DOT_KEYS.has(key)) {
      const r = await this.conditionalTxn(key, opts.ifMatch, opts.ifAbsent, { op: "put", key, value, lease: opts.lease, prevKv: opts.prevKv }, opts);
      const p = r.responses[0] as PutResult;
      return { revision: r.revision, ...(p.prevKv ? { prevKv: p.prevKv } : {}) };
    }
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (opts.ifMatch !== undefined) headers["if-match"] = `"${opts.ifMatch}"`;
    if (opts.ifAbsent) headers["if-none-match"] = "*";
    const res = await this.transport.call({ method: "PUT", path: keyPath(key) + query({ lease: opts.lease, prevKv: opts.prevKv }), kind: "write", headers, body: bytes(value), opts });
    const w = (await res.json()) as Record<string, unknown>;
    return { revision: Number(w.revision), ...(w.prevKv ? { prevKv: kvFromWire(w.prevKv as Record<string, unknown>) } : {}) };
  }

  /** Deletes one key (`ifMatch` = only at that modRevision). Errors: `CompareFailedError`, `OutcomeUnknownError`. */
  async delete(key: string, opts: CallOptions & { ifMatch?: number; prevKv?: boolean } = {}): Promise<DeleteResult> {
    if (DOT_KEYS.has(key)) {
      const r = await this.conditionalTxn(key, opts.ifMatch, false, { op: "delete", key, prevKv: opts.prevKv }, opts);
      const d = r.responses[0] as DeleteResult;
      return { revision: r.revision, deleted: d.deleted, ...(d.prevKvs ? { prevKvs: d.prevKvs } : {}) };
    }
    const headers: Record<string, string> = opts.ifMatch !== undefined ? { "if-match": `"${opts.ifMatch}"` } : {};
    const res = await this.transport.call({ method: "DELETE", path: keyPath(key) + query({ prevKv: opts.prevKv }), kind: "write", headers, opts });
    return deleteResult(await res.json());
  }

  /** Reads a range: `{prefix}`, `{start, end?}`. Errors: `BadRequestError` (inverted range), `CompactedError`. */
  async range(sel: KeySelector, opts: ReadOptions & { limit?: number; keysOnly?: boolean; countOnly?: boolean } = {}): Promise<RangeResult> {
    // Key "" would be the range ["", "\0"), which the server reads as every key (an end of "\0" is open).
    if ("key" in sel) sel = { start: nonEmptyKey(sel.key), end: sel.key + "\u0000" };
    const q = query({ ...selectorQuery(sel), limit: opts.limit, revision: opts.revision, keysOnly: opts.keysOnly, countOnly: opts.countOnly, consistency: opts.consistency });
    return rangeFromWire(await this.structured("GET", `/v1/kv${q}`, "read", undefined, opts));
  }

  /** Deletes every key of a range. Errors: `BadRequestError`, `OutcomeUnknownError`. */
  async deleteRange(sel: KeySelector, opts: CallOptions = {}): Promise<DeleteResult> {
    if ("key" in sel) return this.delete(sel.key, opts);
    const res = await this.transport.call({ method: "DELETE", path: `/v1/kv${query(selectorQuery(sel))}`, kind: "write", opts });
    return deleteResult(await res.json());
  }

  /** One op under If-Match / If-None-Match as a txn (for DOT_KEYS); a false condition is `CompareFailedError` like the key route's 412. */
  private async conditionalTxn(key: string, ifMatch: number | undefined, ifAbsent: boolean | undefined, op: TxnOp, opts: CallOptions): Promise<TxnResult> {
    const compare: TxnCompare[] = [];
    if (ifMatch !== undefined) compare.push({ key, target: "modRevision", result: "=", value: ifMatch });
    if (ifAbsent) compare.push({ key, target: "version", result: "=", value: 0 });
    const r = await this.txn({ compare, success: [op] }, opts);
    if (!r.succeeded) throw new CompareFailedError("compare_failed", `the condition on key ${JSON.stringify(key)} does not hold`, 412);
    return r;
  }

  /**
   * Runs a txn (etcd semantics; a false compare is `succeeded: false`, not an error). Errors: `BadRequestError`
   * (code `bad_request`, status 0, nothing sent) when `req` is not a `TxnRequest` (txn-validate.ts).
   */
  async txn(req: TxnRequest, opts: CallOptions = {}): Promise<TxnResult> {
    // Validate before rebuilding the body: the rebuild would silently drop unknown fields (u1 trial).
    req = validateTxnRequest(req);
    const cbor = this.format === "cbor";
    const body = { compare: (req.compare ?? []).map((c) => compareToWire(c, cbor)), success: (req.success ?? []).map((o) => txnOpToWire(o, cbor)), failure: (req.failure ?? []).map((o) => txnOpToWire(o, cbor)) };
    const w = await this.structured("POST", "/v1/txn", "write", body, opts);
    return { succeeded: Boolean(w.succeeded), revision: Number(w.revision), responses: ((w.responses as Record<string, unknown>[]) ?? []).map(opResultFromWire) };
  }

  /** Grants a lease of `ttlSec` seconds. Returns its id (decimal string). */
  async leaseGrant(ttlSec: number, opts: CallOptions & { id?: string } = {}): Promise<LeaseStatus> {
    return this.json("POST", "/v1/leases", "write", { ttl: ttlSec, ...(opts.id ? { id: opts.id } : {}) }, opts);
  }

  /** Renews a lease to its full TTL. Errors: `LeaseNotFoundError`. */
  async leaseKeepAlive(id: string, opts: CallOptions = {}): Promise<LeaseStatus> {
    return this.json("POST", `/v1/leases/${encodeURIComponent(id)}/keepalive`, "read", undefined, opts);
  }

  /** Revokes a lease; its keys are deleted. Errors: `LeaseNotFoundError`. */
  async leaseRevoke(id: string, opts: CallOptions = {}): Promise<{ id: string; revision: number; deleted: number }> {
    return this.json("DELETE", `/v1/leases/${encodeURIComponent(id)}`, "write", undefined, opts);
  }

  /** Remaining TTL of a lease (with `keys: true`, its keys). Errors: `LeaseNotFoundError`. */
  async leaseTimeToLive(id: string, opts: CallOptions & { keys?: boolean } = {}): Promise<LeaseStatus> {
    return this.json("GET", `/v1/leases/${encodeURIComponent(id)}${query({ keys: opts.keys })}`, "read", undefined, opts);
  }

  /** Compacts history up to `revision`. */
  async compact(revision: number, opts: CallOptions = {}): Promise<{ revision: number; compactRevision: number }> {
    return this.json("POST", "/v1/compact", "write", { revision }, opts);
  }

  /** The cluster view of the answering node. */
  async cluster(opts: CallOptions = {}): Promise<ClusterView> {
    return this.json("GET", "/v1/cluster", "read", undefined, opts);
  }

  /**
   * Adds a learner with its peer and client URLs. Throws `BadRequestError` before sending for a malformed
   * id or URL (the membership API's rule, src/api/member-input.ts).
   */
  async addLearner(id: string, peerUrl: string, clientUrl: string, opts: CallOptions = {}): Promise<ClusterView> {
    checkMember(id, peerUrl, clientUrl);
    return this.json("POST", "/v1/cluster/members", "admin", { id, peerUrl, clientUrl }, opts);
  }

  /** Promotes a learner to voter. `BadRequestError` (nothing sent) for an id no member can have. */
  async promote(id: string, opts: CallOptions = {}): Promise<ClusterView> {
    checkMemberId(id);
    return this.json("POST", `/v1/cluster/members/${encodeURIComponent(id)}/promote`, "admin", undefined, opts);
  }

  /** Removes a member. `BadRequestError` (nothing sent) for an id no member can have. */
  async removeMember(id: string, opts: CallOptions = {}): Promise<ClusterView> {
    checkMemberId(id);
    return this.json("DELETE", `/v1/cluster/members/${encodeURIComponent(id)}`, "admin", undefined, opts);
  }

  /** Transfers leadership to `id`. `BadRequestError` (nothing sent) for an id no member can have. */
  async transferLeader(id: string, opts: CallOptions = {}): Promise<ClusterView> {
    checkMemberId(id);
    return this.json("POST", "/v1/cluster/leader", "admin", { id }, opts);
  }

  /**
   * Watches a key or range from `fromRevision` (default: new changes only). The iterator resumes after a
   * dropped connection from the last revision seen + 1 (never a gap, never a repeat), up to the retry
   * policy's attempts in a row (also after the node's `watch_overflow` cut of a stream read too slowly,
   * docs/api.md); it ends when `signal` aborts. Throws `CompactedError` when the history
   * is compacted past the resume point, `UnavailableError` when reconnecting fails.
   */
  async *watch(sel: KeySelector, opts: { fromRevision?: number; signal?: AbortSignal } = {}): AsyncGenerator<WatchMessage> {
    let from = opts.fromRevision;
    let failures = 0;
    const { attempts } = this.transport.options.retry;
    // Bounded: each pass either yields progress (resetting failures) or counts a failure, up to `attempts`.
    while (!opts.signal?.aborted) {
      let res: Response;
      try {
        // No deadline: a watch lives until aborted; connection setup is bounded by the client timeout.
        res = await this.transport.call({ method: "GET", path: `/v1/watch${query({ ...selectorQuery(sel), fromRevision: from })}`, kind: "read", headers: { accept: "text/event-stream" }, opts: { signal: opts.signal, timeoutMs: 2 ** 31 - 1 } });
      } catch (err) {
        if (opts.signal?.aborted) return;
        throw err;
      }
      try {
        for await (const ev of readSse(res.body!)) {
          const data = JSON.parse(ev.data) as Record<string, unknown>;
          if (ev.event === "error") {
            const e = (data.error ?? {}) as { code?: string; message?: string; compactRevision?: number };
            if (e.code === "compacted") throw new CompactedError("compacted", e.message ?? "compacted", 410, { compactRevision: e.compactRevision });
            throw new EdgeKvError(e.code ?? "internal", e.message ?? "watch failed");
          }
          failures = 0;
          const revision = Number(data.revision);
          from = revision + 1;
          if (ev.event === "progress") yield { type: "progress", revision };
          else if (ev.event === "events") {
            const events = ((data.events as Array<{ type: "put" | "delete"; kv: Record<string, unknown> }>) ?? []).map((e) => ({ type: e.type, kv: kvFromWire(e.kv) }));
            yield { type: "events", revision, events };
          }
        }
      } catch (err) {
        if (opts.signal?.aborted) return;
        // watch_overflow: the node cut a stream this process read too slowly; history lets it resume.
        if (err instanceof EdgeKvError && err.code !== "unavailable" && err.code !== "watch_overflow") throw err;
      }
      if (++failures >= attempts) throw new UnavailableError("unavailable", "watch stream keeps failing");
      await new Promise((r) => setTimeout(r, Math.min(this.transport.options.retry.maxMs, this.transport.options.retry.baseMs * 2 ** failures)));
    }
  }

  /** `GET /healthz` (or `/readyz` with `ready: true`) of one endpoint: true when 200. Never throws. */
  async health(endpoint?: string, opts: { ready?: boolean; timeoutMs?: number } = {}): Promise<boolean> {
    const url = (endpoint ?? this.transport.endpoint()).replace(/\/+$/, "") + (opts.ready ? "/readyz" : "/healthz");
    try {
      const res = await this.transport.options.fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }
}
