/**
 * The client HTTP API of one node (DESIGN.md "Client API (v1)"), as a hono app over the `KvService` port.
 * Runs unchanged on Bun, Deno and Node (serve `app.fetch` with the runtime's server; tests call
 * `app.request(...)`). Every error is `{"error": {"code", "message"}}` with the status of its code
 * (errors.ts); 429/503 carry `Retry-After`. See docs/api.md for every route with examples.
 */
import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import { checkQuery, deadlineSignal, errorResponse, readStructuredBody, respond, sessionOf, consistencyOf, splitRequestUrl, type RouteLimits } from "./http.ts";
import { getKeyResponse, putKeyResponse, registerKvRoutes } from "./kv-routes.ts";
import { allowedMethodsOf, headResponse, noRouteResponse } from "./methods.ts";
import { RequestMetrics } from "./metrics.ts";
import type { HealthStatus, KvService, LeaseStatus } from "./service.ts";
import { registerWatchRoute, type WatchStats } from "./watch-route.ts";
import { addMemberBodySchema, updateMemberBodySchema, grantLeaseIdFromBody, leaseGrantBodySchema, parseFlag, parseLeaseId, parseMemberId, transferLeaderBodySchema, validate } from "./wire.ts";

/** Options of `createApp`; every field has a default. */
export interface ApiOptions {
  /** Largest value of a put, bytes (default 1 MiB). */
  maxValueBytes?: number;
  /** Largest body of a txn or other JSON/CBOR request, bytes (default 1.5 MiB, etcd's `--max-request-bytes`). */
  maxRequestBytes?: number;
  /** Deadline of a non-streaming request, ms (default 30 000, DESIGN.md "request timeout 30 s"). */
  requestTimeoutMs?: number;
  /** Watch progress notification interval, ms (default 5000). */
  watchProgressIntervalMs?: number;
  /** Encoded bytes one watch stream may queue for a client that does not read, bytes (default 2 MiB). */
  watchMaxQueuedBytes?: number;
  /** How long a full watch queue may go without the client reading before `watch_overflow`, ms (default 5000). */
  watchStallMs?: number;
  /** Active watch streams per node (default 4096); more get 429 `too_many_requests`. */
  maxWatches?: number;
  /** Watch route counters (encodes, active, overflows, queue high-water); pass one to read them. */
  watchStats?: WatchStats;
  /** Monotonic clock in ms for the latency metrics (default `performance.now`). */
  nowMs?: () => number;
  /** Metrics collector (default a new one); pass one to share it across apps. */
  metrics?: RequestMetrics;
  /**
   * Browser origins allowed to call the API (CORS, so the fetch-only SDK works from web pages); `["*"]`
   * allows any. Default none: no CORS headers are sent.
   */
  corsOrigins?: string[];
}

/** Request headers a browser may send and response headers it may read (the API's own; CORS). */
const CORS_ALLOW_HEADERS = ["Content-Type", "Accept", "If-Match", "If-None-Match", "X-Client-Id", "X-Request-Seq", "Last-Event-ID"];
const CORS_EXPOSE_HEADERS = ["ETag", "Retry-After", "Allow", "X-Revision", "X-Mod-Revision", "X-Create-Revision", "X-Version", "X-Lease", "X-Consistency", "X-Applied-Index", "X-Staleness-Ms", "X-Leader-Id", "X-Leader-Url"];

/** Defaults of `ApiOptions`. */
export const API_DEFAULTS = {
  maxValueBytes: 1024 * 1024,
  maxRequestBytes: 1536 * 1024,
  requestTimeoutMs: 30_000,
  watchProgressIntervalMs: 5_000,
  watchMaxQueuedBytes: 2 * 1024 * 1024,
  watchStallMs: 5_000,
  maxWatches: 4096,
} as const;

/** JSON of a lease: id as a decimal string (int64), TTLs in seconds, keys as UTF-8 strings. */
function leaseJson(l: LeaseStatus): Record<string, unknown> {
  const out: Record<string, unknown> = { id: String(l.id), ttl: l.ttlSeconds, grantedTtl: l.grantedTtlSeconds };
  if (l.keys) out.keys = l.keys;
  return out;
}

/** A health answer: 200 when ok, 503 (with `Retry-After: 1`) otherwise. */
function healthResponse(c: Context, h: HealthStatus): Response {
  const body = { ok: h.ok, ...(h.reason ? { reason: h.reason } : {}), ...(h.details ? { details: h.details } : {}) };
  if (!h.ok) c.header("retry-after", "1");
  return c.json(body, h.ok ? 200 : 503);
}

/**
 * Builds the API app over `service`. Routes: `/v1/kv/*`, `/v1/kv`, `/v1/txn`, `/v1/compact`, `/v1/watch`,
 * `/v1/leases...`, `/v1/cluster...`, `/healthz`, `/readyz`, `/metrics`. Never throws at request time:
 * every failure becomes an error response.
 */
export function createApp(service: KvService, options: ApiOptions = {}): Hono {
  const limits: RouteLimits = {
    maxValueBytes: options.maxValueBytes ?? API_DEFAULTS.maxValueBytes,
    maxRequestBytes: options.maxRequestBytes ?? API_DEFAULTS.maxRequestBytes,
    requestTimeoutMs: options.requestTimeoutMs ?? API_DEFAULTS.requestTimeoutMs,
  };
  const nowMs = options.nowMs ?? (() => performance.now());
  const metrics = options.metrics ?? new RequestMetrics();
  const app = new Hono();

  app.use("*", async (c, next) => {
    const t0 = nowMs();
    await next();
    // After next() routePath is the matched handler's pattern ("*" when nothing matched).
    // hono answers HEAD with the GET handler and drops the body; give it the GET body's length first.
    if (c.req.method === "HEAD") c.res = await headResponse(c.res);
    const route = c.req.routePath;
    metrics.observe(c.req.method, route, c.res.status, nowMs() - t0);
  });
  const origins = options.corsOrigins ?? [];
  if (origins.length > 0) {
    app.use("*", cors({ origin: origins.includes("*") ? "*" : origins, allowHeaders: CORS_ALLOW_HEADERS, exposeHeaders: CORS_EXPOSE_HEADERS, maxAge: 600 }));
  }
  app.onError((err) => errorResponse(err));
  // A path the API serves under other methods is 405 with Allow (RFC 9110 §15.5.6), else 404. The
  // table is built at the first miss, when every route is registered.
  let allowedAt: ((path: string) => string[]) | undefined;
  app.notFound((c) => {
    allowedAt ??= allowedMethodsOf(app.routes);
    const path = splitRequestUrl(c.req.url).path;
    return noRouteResponse(c.req.method, path, allowedAt(path));
  });

  registerKvRoutes(app, service, limits);
  registerWatchRoute(app, service, {
    progressIntervalMs: options.watchProgressIntervalMs ?? API_DEFAULTS.watchProgressIntervalMs,
    maxQueuedBytes: options.watchMaxQueuedBytes ?? API_DEFAULTS.watchMaxQueuedBytes,
    stallMs: options.watchStallMs ?? API_DEFAULTS.watchStallMs,
    maxWatches: options.maxWatches ?? API_DEFAULTS.maxWatches,
    stats: options.watchStats,
  });

  const signal = (c: Context) => deadlineSignal(c, limits.requestTimeoutMs);

  app.post("/v1/leases", async (c) => {
    const body = validate(leaseGrantBodySchema, await readStructuredBody(c, limits.maxRequestBytes));
    const id = grantLeaseIdFromBody(body.id);
    const g = await service.leaseGrant({ ttlSeconds: body.ttl, ...(id ? { id } : {}) }, { session: sessionOf(c), signal: signal(c) });
    return respond(c, { id: String(g.id), ttl: g.ttlSeconds, revision: g.revision });
  });
  app.post("/v1/leases/:id/keepalive", async (c) => {
    return respond(c, leaseJson(await service.leaseKeepAlive(parseLeaseId(c.req.param("id")), { signal: signal(c) })));
  });
  app.delete("/v1/leases/:id", async (c) => {
    const r = await service.leaseRevoke(parseLeaseId(c.req.param("id")), { session: sessionOf(c), signal: signal(c) });
    return respond(c, { id: String(r.id), deleted: r.deleted, revision: r.revision });
  });
  app.get("/v1/leases/:id", async (c) => {
    checkQuery(c, ["keys", "consistency"]);
    const id = parseLeaseId(c.req.param("id"));
    const keys = parseFlag("keys", c.req.query("keys"));
    return respond(c, leaseJson(await service.leaseTimeToLive(id, { keys, consistency: consistencyOf(c), signal: signal(c) })));
  });

  app.get("/v1/cluster", async (c) => respond(c, await service.cluster({ signal: signal(c) })));
  app.post("/v1/cluster/members", async (c) => {
    const b = validate(addMemberBodySchema, await readStructuredBody(c, limits.maxRequestBytes));
    return respond(c, await service.addLearner(b.id, b.peerUrl, b.clientUrl, { signal: signal(c) }));
  });
  app.put("/v1/cluster/members/:id", async (c) => {
    const b = validate(updateMemberBodySchema, await readStructuredBody(c, limits.maxRequestBytes));
    return respond(c, await service.updateMember(parseMemberId(c.req.param("id")), b.peerUrl, b.clientUrl, { signal: signal(c) }));
  });
  app.post("/v1/cluster/members/:id/promote", async (c) => respond(c, await service.promote(parseMemberId(c.req.param("id")), { signal: signal(c) })));
  app.delete("/v1/cluster/members/:id", async (c) => respond(c, await service.remove(parseMemberId(c.req.param("id")), { signal: signal(c) })));
  app.post("/v1/cluster/leader", async (c) => {
    const b = validate(transferLeaderBodySchema, await readStructuredBody(c, limits.maxRequestBytes));
    return respond(c, await service.transferLeader(b.id, { signal: signal(c) }));
  });

  app.get("/healthz", async (c) => healthResponse(c, await service.health()));
  app.get("/readyz", async (c) => healthResponse(c, await service.readiness()));
  app.get("/metrics", async (c) => {
    const own = await service.metricsText();
    return c.text(metrics.render() + (own.endsWith("\n") || own === "" ? own : own + "\n"), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  // GET and PUT /v1/kv/{key}, the hottest requests, are answered before routing when no CORS headers are
  // configured (HEAD too, as the GET without its body): the same handlers (getKeyResponse, putKeyResponse) and error response, and the same metrics
  // line as the middleware records, without the router, the Context and the middleware chain (hono's share
  // was about 15 % of a Bun leader's CPU under put@64, issue #6; docs/bench.md, 2026-11-30).
  if (origins.length === 0) {
    const routed = app.fetch;
    const serveKey = async (method: "GET" | "HEAD" | "PUT", request: Request): Promise<Response> => {
      const t0 = nowMs();
      let res: Response;
      try {
        res = await (method === "PUT" ? putKeyResponse : getKeyResponse)(request, service, limits);
      } catch (err) {
        res = errorResponse(err);
      }
      if (method === "HEAD") res = await headResponse(res);
      metrics.observe(method, KEY_ROUTE, res.status, nowMs() - t0);
      return res;
    };
    app.fetch = ((request: Request, ...rest: unknown[]) => {
      const method = request.method;
      if ((method === "GET" || method === "PUT" || method === "HEAD") && splitRequestUrl(request.url).path.startsWith("/v1/kv/")) return serveKey(method, request);
      return (routed as (r: Request, ...x: unknown[]) => Response | Promise<Response>)(request, ...rest);
    }) as typeof app.fetch;
  }
  return app;
}

/** The hono pattern of `GET|PUT /v1/kv/{key}`, as the metrics label it. */
const KEY_ROUTE = "/v1/kv/*";
