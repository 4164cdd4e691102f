/**
 * Read-path helpers of the API (issue #6): `splitRequestUrl` replaces a `URL` object per request, so it
 * must give the same path and query as `new URL(url)` for every URL a server hands to a handler.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { splitRequestUrl } from "../../src/api/http.ts";

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
