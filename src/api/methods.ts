/**
 * HTTP method semantics the router leaves to us: `405 method_not_allowed` with an `Allow` header when a
 * path exists but not for the request's method (RFC 9110 §15.5.6, §10.2.1), and `HEAD` answers that carry
 * the GET answer's status and headers with a truthful `Content-Length` (RFC 9110 §9.3.2, §8.6).
 */
import { ApiError } from "./errors.ts";
import { errorResponse } from "./http.ts";

/** A registered route as hono lists it (`app.routes`): method ("GET", ..., "ALL" for middleware) and pattern. */
export interface RouteEntry {
  method: string;
  path: string;
}

/** Order in which `Allow` lists methods (the order RFC 9110 §9 defines them in). */
const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/**
 * A hono path pattern as a RegExp over the raw request path: `:name` is one segment, a trailing `/*` is
 * the prefix followed by `/` and anything (hono also lets `/v1/kv/*` match `/v1/kv`; here `/v1/kv` is its
 * own route, with its own methods).
 */
function patternRegExp(pattern: string): RegExp {
  let body = pattern;
  let tail = "";
  if (body.endsWith("/*")) {
    body = body.slice(0, -2);
    tail = "/.*";
  }
  const escaped = body
    .split("/")
    .map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${escaped}${tail}$`);
}

/**
 * Builds the lookup `path -> methods the API serves at that path` from the app's routes (middleware, method
 * "ALL", is left out). The answer lists `HEAD` wherever `GET` is served (hono answers HEAD with the GET
 * handler) in RFC 9110 order; [] when no route has that path (then the answer is 404, not 405).
 */
export function allowedMethodsOf(routes: readonly RouteEntry[]): (path: string) => string[] {
  const byPattern = new Map<string, Set<string>>();
  for (const r of routes) {
    if (r.method === "ALL") continue;
    const set = byPattern.get(r.path) ?? new Set<string>();
    set.add(r.method.toUpperCase());
    if (r.method.toUpperCase() === "GET") set.add("HEAD");
    byPattern.set(r.path, set);
  }
  const table = [...byPattern].map(([pattern, methods]) => ({ re: patternRegExp(pattern), methods }));
  return (path) => {
    const found = new Set<string>();
    for (const t of table) if (t.re.test(path)) for (const m of t.methods) found.add(m);
    return [...found].sort((a, b) => rank(a) - rank(b));
  };
}

function rank(method: string): number {
  const i = METHOD_ORDER.indexOf(method);
  return i < 0 ? METHOD_ORDER.length : i;
}

/**
 * The answer when no route matched `method path`: `405 method_not_allowed` with `Allow: <methods>` when
 * `allowed` (from `allowedMethodsOf`) is not empty, else `404 no_route` (unknown path; not `not_found`,
 * which says a key or member is absent). Both with the
 * JSON error body of errors.ts.
 */
export function noRouteResponse(method: string, path: string, allowed: string[]): Response {
  if (allowed.length === 0) return errorResponse(new ApiError("no_route", `no route for ${method} ${path}`));
  const res = errorResponse(new ApiError("method_not_allowed", `${method} is not allowed on ${path}; allowed: ${allowed.join(", ")}`));
  res.headers.set("allow", allowed.join(", "));
  return res;
}

/**
 * The HEAD answer for `get`, the answer the same request would get as a GET: same status and headers, no
 * body, and `Content-Length` = the GET body's length in bytes (RFC 9110 §9.3.2 and §8.6: a HEAD answer may
 * carry Content-Length only with the value the GET would have). Without it Bun and Deno add
 * `content-length: 0`. An event stream (the SSE watch) has no length: its body is cancelled (which ends
 * the watch) and no Content-Length is sent.
 */
export async function headResponse(get: Response): Promise<Response> {
  const headers = new Headers(get.headers);
  if ((headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    await get.body?.cancel().catch(() => {});
    headers.delete("content-length");
  } else {
    const bytes = get.body ? (await get.arrayBuffer()).byteLength : 0;
    headers.set("content-length", String(bytes));
  }
  return new Response(null, { status: get.status, statusText: get.statusText, headers });
}
