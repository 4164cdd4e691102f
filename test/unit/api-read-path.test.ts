/**
 * Read path of the API (issue #6): `splitRequestUrl` replaces a `URL` object per request, so it must give
 * the same path and query as `new URL(url)` for every URL a server hands to a handler; `GET /v1/kv/{key}`
 * answered before routing must answer exactly as the routed handler does.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../../src/api/app.ts";
import { splitRequestUrl } from "../../src/api/http.ts";
import { SmKvService, closeAllSmServices } from "./api-kv-service.ts";

describe("splitRequestUrl", () => {
  const urls = [
    "http://127.0.0.1:7411/v1/kv/bench/00000001",
    "http://127.0.0.1:7411/v1/kv/bench/00000001?consistency=stale",
    "http://[::1]:7411/v1/kv/app%2Fconfig?consistency=lease&revision=3",
    "http://localhost/v1/kv/a%3Fb?x=1?y=2",
    "http://localhost/",
    "http://localhost/?",
    "https://user@example.com:8443/v1/leases/42?keys",
    "http://localhost/v1/kv/%25%2F%E2%82%AC",
  ];
  for (const url of urls) {
    it(`gives URL's pathname and search for ${url}`, () => {
      const u = new URL(url);
      assert.deepEqual(splitRequestUrl(url), { path: u.pathname, query: u.search.slice(1) });
    });
  }

  it("keeps percent-encoding in the path (%2F is not a separator) and cuts a fragment", () => {
    assert.deepEqual(splitRequestUrl("http://h:1/v1/kv/a%2Fb?q=1#frag"), { path: "/v1/kv/a%2Fb", query: "q=1" });
    assert.deepEqual(splitRequestUrl("http://h:1/v1/kv/a#x?y"), { path: "/v1/kv/a", query: "" });
  });
});

describe("GET /v1/kv/{key} before routing", () => {
  // The app without CORS answers GET /v1/kv/{key} before hono routes it; with CORS configured it goes
  // through the router. Both must give the same status, headers (apart from CORS) and body.
  after(() => closeAllSmServices());

  async function pair() {
    const service = await SmKvService.open();
    const put = (k: string, v: Uint8Array) => service.put({ op: "put", key: new TextEncoder().encode(k), value: v, lease: 0 });
    await put("a", new Uint8Array([0, 1, 254, 255]));
    await put("dir/b c", new TextEncoder().encode("x"));
    await put("a", new TextEncoder().encode("second"));
    const fast = createApp(service);
    const routed = createApp(service, { corsOrigins: ["https://example.test"] });
    return { fast, routed };
  }

  const paths = [
    "/v1/kv/a",
    "/v1/kv/a?consistency=stale",
    "/v1/kv/a?consistency=linearizable&revision=1",
    "/v1/kv/a?revision=2",
    "/v1/kv/dir%2Fb%20c",
    "/v1/kv/dir/b%20c?consistency=lease",
    "/v1/kv/missing",
    "/v1/kv/",
    "/v1/kv/a?consistency=eventual",
    "/v1/kv/a?revision=-1",
    "/v1/kv/a?revision=99",
    "/v1/kv/%E0%A4%A",
  ];
  for (const path of paths) {
    it(`answers like the routed app: ${path}`, async () => {
      const { fast, routed } = await pair();
      const a = await fast.request(`http://edgekv.test${path}`);
      const b = await routed.request(`http://edgekv.test${path}`);
      assert.equal(a.status, b.status);
      const headersOf = (r: Response) => {
        const out: string[] = [];
        r.headers.forEach((v, k) => {
          if (!k.startsWith("access-control-") && k !== "vary") out.push(`${k}: ${v}`);
        });
        return out.sort();
      };
      assert.deepEqual(headersOf(a), headersOf(b));
      assert.deepEqual(new Uint8Array(await a.arrayBuffer()), new Uint8Array(await b.arrayBuffer()));
    });
  }

  it("serves the value and its headers, and counts the request under the route's metrics label", async () => {
    const { fast } = await pair();
    const r = await fast.request("http://edgekv.test/v1/kv/a?consistency=stale");
    assert.equal(r.status, 200);
    assert.equal(new TextDecoder().decode(await r.arrayBuffer()), "second");
    assert.equal(r.headers.get("etag"), '"3"');
    assert.equal(r.headers.get("x-version"), "2");
    assert.equal(r.headers.get("x-create-revision"), "1");
    assert.equal(r.headers.get("x-consistency"), "stale");
    const missing = await fast.request("http://edgekv.test/v1/kv/nope");
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, "not_found");
    const m = await (await fast.request("http://edgekv.test/metrics")).text();
    assert.match(m, /edgekv_http_requests_total\{method="GET",route="\/v1\/kv\/\*",status="200"\} 1\n/);
    assert.match(m, /edgekv_http_requests_total\{method="GET",route="\/v1\/kv\/\*",status="404"\} 1\n/);
  });

  it("leaves other methods and paths to the router (HEAD, the range route); PUT still answers", async () => {
    const { fast } = await pair();
    const put = await fast.request("http://edgekv.test/v1/kv/n", { method: "PUT", body: "v" });
    assert.equal(put.status, 200);
    const head = await fast.request("http://edgekv.test/v1/kv/n", { method: "HEAD" });
    assert.equal(head.status, 200);
    const range = await fast.request("http://edgekv.test/v1/kv?prefix=");
    assert.equal(((await range.json()) as { count: number }).count, 3);
  });
});
