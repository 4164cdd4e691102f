/**
 * Write path of the API (issue #6): `PUT /v1/kv/{key}` answered before routing (app.ts `createApp`, no CORS
 * origins) must answer exactly as the routed handler does (an app with CORS origins goes through hono):
 * same status, headers (apart from CORS) and body bytes, and the same writes in the store.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { createApp } from "../../src/api/app.ts";
import { ApiError } from "../../src/api/errors.ts";
import { requestDeadline, sharedDeadline } from "../../src/api/http.ts";
import { SmKvService, closeAllSmServices } from "./api-kv-service.ts";
import { StubKvService } from "./api-stub-service.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const LEASE_ID = 4242;

/** A service with keys a (modRevision 3, version 2) and dir/b c, and lease 4242. */
async function seeded(): Promise<SmKvService> {
  const service = await SmKvService.open();
  const put = (k: string, v: Uint8Array) => service.put({ op: "put", key: enc(k), value: v, lease: 0 });
  await put("a", new Uint8Array([0, 1, 254, 255]));
  await put("dir/b c", enc("x"));
  await put("a", enc("second"));
  await service.leaseGrant({ ttlSeconds: 600, id: LEASE_ID });
  return service;
}

/** Two apps over two equal stores: `fast` answers PUT before routing, `routed` (CORS on) through hono. */
async function pair(maxValueBytes = 16): Promise<{ fast: Hono; routed: Hono; fastService: SmKvService; routedService: SmKvService }> {
  const fastService = await seeded();
  const routedService = await seeded();
  return {
    fast: createApp(fastService, { maxValueBytes }),
    routed: createApp(routedService, { maxValueBytes, corsOrigins: ["https://example.test"] }),
    fastService,
    routedService,
  };
}

/** Response headers apart from the CORS ones, as sorted "name: value" lines. */
function headersOf(r: Response): string[] {
  const out: string[] = [];
  r.headers.forEach((v, k) => {
    if (!k.startsWith("access-control-") && k !== "vary") out.push(`${k}: ${v}`);
  });
  return out.sort();
}

interface PutCase {
  name: string;
  path: string;
  headers?: Record<string, string>;
  /** A string or bytes body (sent with Content-Length), or `chunked` bytes sent as a stream without it. */
  body?: string | Uint8Array;
  chunked?: Uint8Array;
  /** Status the fast app must give (guards against both apps being wrong the same way). */
  status: number;
  /** Requests sent first to both apps (e.g. the first of a repeated session write). */
  before?: Array<Omit<PutCase, "name" | "before" | "status">>;
}

const cases: PutCase[] = [
  { name: "plain put", path: "/v1/kv/new", body: "value", status: 200 },
  { name: "overwrite, percent-encoded key", path: "/v1/kv/dir%2Fb%20c", body: "y", status: 200 },
  { name: "empty value", path: "/v1/kv/e", body: "", status: 200 },
  { name: "binary value", path: "/v1/kv/bin", body: new Uint8Array([0, 255, 10, 13]), status: 200 },
  { name: "put with lease", path: `/v1/kv/l?lease=${LEASE_ID}`, body: "v", status: 200 },
  { name: "lease 0 (refused: ids are positive)", path: "/v1/kv/l?lease=0", body: "v", status: 400 },
  { name: "unknown lease", path: "/v1/kv/l?lease=999", body: "v", status: 404 },
  { name: "malformed lease", path: "/v1/kv/l?lease=abc", body: "v", status: 400 },
  { name: "empty lease", path: "/v1/kv/l?lease=", body: "v", status: 400 },
  { name: "prevKv of an existing key", path: "/v1/kv/a?prevKv=true", body: "third", status: 200 },
  { name: "prevKv of an absent key", path: "/v1/kv/none?prevKv=true", body: "v", status: 200 },
  { name: "prevKv malformed", path: "/v1/kv/a?prevKv=maybe", body: "v", status: 400 },
  { name: "prevKv as CBOR", path: "/v1/kv/a?prevKv=true", headers: { accept: "application/cbor" }, body: "c", status: 200 },
  { name: "plain put as CBOR", path: "/v1/kv/c", headers: { accept: "application/cbor" }, body: "c", status: 200 },
  { name: "If-Match ok", path: "/v1/kv/a?prevKv=true", headers: { "if-match": '"3"' }, body: "m", status: 200 },
  { name: "If-Match weak ok", path: "/v1/kv/a", headers: { "if-match": 'W/"3"' }, body: "m", status: 200 },
  { name: "If-Match failed", path: "/v1/kv/a", headers: { "if-match": '"1"' }, body: "m", status: 412 },
  { name: "If-Match on an absent key", path: "/v1/kv/none", headers: { "if-match": '"1"' }, body: "m", status: 412 },
  { name: "If-Match: * ok", path: "/v1/kv/a", headers: { "if-match": "*" }, body: "m", status: 200 },
  { name: "If-Match malformed", path: "/v1/kv/a", headers: { "if-match": "abc" }, body: "m", status: 400 },
  { name: "If-None-Match: * on an absent key", path: "/v1/kv/fresh", headers: { "if-none-match": "*" }, body: "n", status: 200 },
  { name: "If-None-Match: * on an existing key", path: "/v1/kv/a", headers: { "if-none-match": "*" }, body: "n", status: 412 },
  { name: "If-None-Match other than *", path: "/v1/kv/a", headers: { "if-none-match": '"3"' }, body: "n", status: 400 },
  { name: "body above the limit (Content-Length)", path: "/v1/kv/big", body: "x".repeat(17), status: 413 },
  { name: "body at the limit", path: "/v1/kv/big", body: "x".repeat(16), status: 200 },
  { name: "chunked body above the limit", path: "/v1/kv/big", chunked: new Uint8Array(40).fill(120), status: 413 },
  { name: "chunked body within the limit", path: "/v1/kv/big", chunked: new Uint8Array(10).fill(121), status: 200 },
  { name: "empty key", path: "/v1/kv/", body: "v", status: 400 },
  { name: "malformed key encoding", path: "/v1/kv/%E0%A4%A", body: "v", status: 400 },
  { name: "session write", path: "/v1/kv/s", headers: { "x-client-id": "client-1", "x-request-seq": "1" }, body: "v", status: 200 },
  {
    name: "session write repeated (exactly once)",
    path: "/v1/kv/s",
    headers: { "x-client-id": "client-1", "x-request-seq": "1" },
    body: "other",
    status: 200,
    before: [{ path: "/v1/kv/s", headers: { "x-client-id": "client-1", "x-request-seq": "1" }, body: "v" }],
  },
  { name: "session with only a client id", path: "/v1/kv/s", headers: { "x-client-id": "client-1" }, body: "v", status: 400 },
  { name: "session with a bad sequence", path: "/v1/kv/s", headers: { "x-client-id": "client-1", "x-request-seq": "0" }, body: "v", status: 400 },
  { name: "session expired", path: "/v1/kv/s", headers: { "x-client-id": "client-9", "x-request-seq": "5" }, body: "v", status: 409 },
];

function send(app: Hono, c: Omit<PutCase, "name" | "before" | "status">): Promise<Response> {
  const init: RequestInit & { duplex?: "half" } = { method: "PUT", headers: { ...c.headers } };
  if (c.chunked) {
    const bytes = c.chunked;
    init.body = new ReadableStream<Uint8Array>({
      start(ctl) {
        // Two chunks, so the limit is crossed while streaming, not on the first read.
        ctl.enqueue(bytes.slice(0, Math.ceil(bytes.length / 2)));
        ctl.enqueue(bytes.slice(Math.ceil(bytes.length / 2)));
        ctl.close();
      },
    });
    init.duplex = "half";
  } else if (c.body !== undefined) init.body = c.body as BodyInit;
  return Promise.resolve(app.request(`http://edgekv.test${c.path}`, init));
}

describe("PUT /v1/kv/{key} before routing", () => {
  after(() => closeAllSmServices());

  for (const c of cases) {
    it(`answers like the routed app: ${c.name}`, async () => {
      const { fast, routed, fastService, routedService } = await pair();
      for (const b of c.before ?? []) {
        assert.equal((await send(fast, b)).status, (await send(routed, b)).status);
      }
      const a = await send(fast, c);
      const b = await send(routed, c);
      const aBody = new Uint8Array(await a.arrayBuffer());
      const bBody = new Uint8Array(await b.arrayBuffer());
      assert.equal(a.status, c.status, new TextDecoder().decode(aBody));
      assert.equal(a.status, b.status);
      assert.deepEqual(headersOf(a), headersOf(b));
      assert.deepEqual(aBody, bBody);
      // The same writes reached both stores.
      const every = { key: new Uint8Array(0), rangeEnd: new Uint8Array([0]) };
      assert.deepEqual(await fastService.range(every), await routedService.range(every));
    });
  }

  it("writes the value and lease, answers the revision, and passes the session and a deadline to the service", async () => {
    const { fast, fastService } = await pair();
    const r = await fast.request(`http://edgekv.test/v1/kv/k?lease=${LEASE_ID}&prevKv=true`, { method: "PUT", body: "hello", headers: { "x-client-id": "c7", "x-request-seq": "1" } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/json");
    assert.deepEqual(await r.json(), { op: "put", revision: 4 });
    const got = await fastService.range({ key: enc("k") });
    assert.equal(new TextDecoder().decode(got.kvs[0]!.value), "hello");
    assert.equal(got.kvs[0]!.lease, LEASE_ID);
    const call = fastService.calls.filter((x) => x.method === "put").at(-1);
    const opts = call?.opts as { session?: unknown; signal?: AbortSignal } | undefined;
    assert.deepEqual(opts?.session, { clientId: "c7", sequence: 1 });
    assert.ok(opts?.signal instanceof AbortSignal);
    assert.equal(opts.signal.aborted, false);
  });

  it("answers prevKv, a failed If-Match and a too-large body with the documented bodies (docs/api.md)", async () => {
    const { fast } = await pair();
    const prev = await fast.request("http://edgekv.test/v1/kv/a?prevKv=true", { method: "PUT", body: "z", headers: { "if-match": '"3"' } });
    assert.equal(prev.status, 200);
    assert.deepEqual(await prev.json(), {
      op: "put",
      revision: 4,
      prevKv: { key: "a", value: "c2Vjb25k", createRevision: 1, modRevision: 3, version: 2, lease: "0" },
    });
    const failed = await fast.request("http://edgekv.test/v1/kv/a", { method: "PUT", body: "z", headers: { "if-match": '"3"' } });
    assert.equal(failed.status, 412);
    assert.equal(failed.headers.get("content-type"), "application/json");
    const err = ((await failed.json()) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, "compare_failed");
    assert.equal(err.message, "precondition failed: key has modRevision 4");
    const big = await fast.request("http://edgekv.test/v1/kv/a", { method: "PUT", body: "x".repeat(17) });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, "payload_too_large");
  });

  it("skips hono's router for PUT /v1/kv/{key} and counts it under the route's metrics label", async () => {
    const { fast, routed } = await pair();
    // Spy on the router: the fast app must not match a PUT of a key; the routed one must. hono's
    // SmartRouter replaces its own `match` on the first request, so one request goes before the spy.
    const matched = async (app: Hono) => {
      assert.equal((await app.request("http://edgekv.test/healthz")).status, 200);
      const seen: string[] = [];
      const match = app.router.match.bind(app.router);
      app.router.match = (method, path) => {
        seen.push(`${method} ${path}`);
        return match(method, path);
      };
      return seen;
    };
    const fastSeen = await matched(fast);
    const routedSeen = await matched(routed);
    assert.equal((await fast.request("http://edgekv.test/v1/kv/x", { method: "PUT", body: "1" })).status, 200);
    assert.equal((await fast.request("http://edgekv.test/v1/kv/x", { method: "PUT", body: "1", headers: { "if-match": '"1"' } })).status, 412);
    assert.equal((await routed.request("http://edgekv.test/v1/kv/x", { method: "PUT", body: "1" })).status, 200);
    assert.deepEqual(fastSeen, []);
    assert.deepEqual(routedSeen, ["PUT /v1/kv/x"]);
    const m = await (await fast.request("http://edgekv.test/metrics")).text();
    assert.match(m, /edgekv_http_requests_total\{method="PUT",route="\/v1\/kv\/\*",status="200"\} 1\n/);
    assert.match(m, /edgekv_http_requests_total\{method="PUT",route="\/v1\/kv\/\*",status="412"\} 1\n/);
    // Other routes still go through the router: the range route, a txn, DELETE of a key.
    assert.equal((await fast.request("http://edgekv.test/v1/kv?prefix=")).status, 200);
    assert.equal((await fast.request("http://edgekv.test/v1/kv/x", { method: "DELETE" })).status, 200);
    assert.deepEqual(fastSeen, ["GET /metrics", "GET /v1/kv", "DELETE /v1/kv/x"]);
  });
});

describe("request deadline (shared timer)", () => {
  it("shares one signal among calls within the width (timeout / 20, at most 100 ms), then makes a new one", () => {
    // Timeouts no other test uses: the shared signals are per timeout, module-wide.
    const a = sharedDeadline(1_061, 0);
    assert.equal(sharedDeadline(1_061, 53), a, "within ceil(1061 / 20) = 54 ms");
    const b = sharedDeadline(1_061, 54);
    assert.notEqual(b, a);
    assert.equal(sharedDeadline(1_061, 107), b);
    assert.notEqual(sharedDeadline(1_063, 107), b, "another timeout has its own signal");
    const c = sharedDeadline(9_000_001, 0);
    assert.equal(sharedDeadline(9_000_001, 99), c, "width capped at 100 ms");
    assert.notEqual(sharedDeadline(9_000_001, 100), c);
  });

  it("aborts with a TimeoutError no earlier than the timeout, and at once on client disconnect", async () => {
    // Two calls 50 ms apart share one signal (width 1600 / 20 = 80 ms) when the machine is not too busy:
    // the later one must not be cut short by the earlier one's timer.
    const timeoutMs = 1_600;
    const firedAt = (signal: AbortSignal, since: number) =>
      new Promise<number>((resolve, reject) => {
        const guard = setTimeout(() => reject(new Error("the deadline did not fire within 5 s")), 5_000);
        signal.addEventListener("abort", () => {
          clearTimeout(guard);
          resolve(performance.now() - since);
        });
      });
    const request = () => new Request("http://edgekv.test/v1/kv/a", { method: "PUT", body: "v" });
    const t0 = performance.now();
    const first = requestDeadline(request(), timeoutMs);
    const firstMs = firedAt(first, t0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const t1 = performance.now();
    const second = requestDeadline(request(), timeoutMs);
    assert.equal(second.aborted, false);
    const secondMs = firedAt(second, t1);
    // Timers may round by a millisecond.
    for (const [name, ms] of [["first", await firstMs], ["second", await secondMs]] as const) {
      assert.ok(ms >= timeoutMs - 1, `${name} fired after ${ms} ms, before the ${timeoutMs} ms deadline`);
    }
    assert.equal((first.reason as Error).name, "TimeoutError");
    assert.equal((second.reason as Error).name, "TimeoutError");

    const client = new AbortController();
    const live = requestDeadline(new Request("http://edgekv.test/v1/kv/a", { method: "PUT", body: "v", signal: client.signal }), 60_000);
    assert.equal(live.aborted, false);
    client.abort();
    assert.equal(live.aborted, true);
    assert.notEqual((live.reason as Error).name, "TimeoutError");
  });

  it("answers 504 outcome_unknown when a put outlives requestTimeoutMs (fast and routed path)", async () => {
    // A service whose put waits for its signal, as the node's proposal wait does.
    const seen: string[] = [];
    const service = new StubKvService();
    service.put = (_req, opts) =>
      new Promise((_resolve, reject) => {
        opts?.signal?.addEventListener("abort", () => {
          seen.push((opts.signal!.reason as Error).name);
          reject(new ApiError("outcome_unknown", "the request was cancelled or timed out after it was proposed"));
        });
      });
    // Node's AbortSignal.timeout timer does not keep the process alive (a server's socket does): hold it.
    const keepAlive = setTimeout(() => {}, 10_000);
    try {
      for (const app of [createApp(service, { requestTimeoutMs: 30 }), createApp(service, { requestTimeoutMs: 30, corsOrigins: ["*"] })]) {
        const r = await app.request("http://edgekv.test/v1/kv/slow", { method: "PUT", body: "v" });
        assert.equal(r.status, 504);
        assert.equal(((await r.json()) as { error: { code: string } }).error.code, "outcome_unknown");
      }
    } finally {
      clearTimeout(keepAlive);
    }
    assert.deepEqual(seen, ["TimeoutError", "TimeoutError"]);
  });
});
