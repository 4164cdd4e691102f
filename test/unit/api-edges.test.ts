/**
 * HTTP edges of the v1 API a user of etcd's or rqlite's HTTP API expects: 405 with `Allow` for a wrong
 * method on an existing route (RFC 9110 §15.5.6), HEAD answers with the GET's headers and a truthful
 * Content-Length (RFC 9110 §9.3.2), lease grant ids (etcd: ID 0 = the server picks), and what
 * `currentRevision` of a 412 is. Both the app that answers GET/PUT /v1/kv/{key} before routing (no CORS)
 * and the routed one (CORS on) are checked. Calls `app.request(...)`: no network.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp, type ApiOptions } from "../../src/api/app.ts";
import type { WatchStats } from "../../src/api/watch-route.ts";
import { apiCbor } from "../../src/api/wire.ts";
import { SERVICE_KINDS, closeAllSmServices } from "./api-services.ts";

const BASE = "http://edgekv.test";

after(() => closeAllSmServices());

/** The two app shapes: `fast` answers GET/PUT /v1/kv/{key} before routing, `routed` goes through hono. */
const APP_SHAPES: Array<{ name: string; options: ApiOptions }> = [
  { name: "fast", options: {} },
  { name: "routed", options: { corsOrigins: ["https://example.test"] } },
];

async function errorOf(res: Response): Promise<{ status: number; code: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(typeof body.error.message, "string");
  return { status: res.status, code: body.error.code };
}

for (const kind of SERVICE_KINDS) {
  for (const shape of APP_SHAPES) {
    const setup = async () => {
      const service = await kind.make();
      const app = createApp(service, shape.options);
      return { service, req: (path: string, init?: RequestInit) => app.request(BASE + path, init) };
    };

    describe(`api edges (${kind.name}, ${shape.name}): wrong method on a route`, () => {
      // One service for the whole describe: the cases only read (a 405 must not call the service at all).
      let shared: Awaited<ReturnType<typeof setup>> | undefined;
      const sharedSetup = async () => (shared ??= await setup());
      const cases: Array<[method: string, path: string, allow: string]> = [
        ["PATCH", "/v1/kv/a", "GET, HEAD, PUT, DELETE"],
        ["POST", "/v1/kv/dir%2Fx/y", "GET, HEAD, PUT, DELETE"],
        ["PATCH", "/v1/kv", "GET, HEAD, DELETE"],
        ["POST", "/v1/kv?prefix=a", "GET, HEAD, DELETE"],
        ["DELETE", "/v1/cluster", "GET, HEAD"],
        ["GET", "/v1/txn", "POST"],
        ["PUT", "/v1/compact", "POST"],
        ["POST", "/v1/watch?key=a", "GET, HEAD"],
        ["GET", "/v1/leases", "POST"],
        ["PUT", "/v1/leases/7001", "GET, HEAD, DELETE"],
        ["GET", "/v1/leases/7001/keepalive", "POST"],
        ["GET", "/v1/cluster/members", "POST"],
        ["POST", "/v1/cluster/members/n2", "PUT, DELETE"],
        ["DELETE", "/v1/cluster/members/n2/promote", "POST"],
        ["GET", "/v1/cluster/leader", "POST"],
        ["POST", "/healthz", "GET, HEAD"],
        ["DELETE", "/metrics", "GET, HEAD"],
      ];
      for (const [method, path, allow] of cases) {
        it(`${method} ${path} is 405 method_not_allowed with Allow: ${allow}`, async () => {
          const { req, service } = await sharedSetup();
          const calls = service.calls.length;
          const res = await req(path, { method });
          assert.equal(res.headers.get("allow"), allow);
          assert.equal(res.headers.get("content-type"), "application/json");
          assert.deepEqual(await errorOf(res), { status: 405, code: "method_not_allowed" });
          assert.equal(service.calls.length, calls, "the service was called");
        });
      }

      it("an unknown path is 404 no_route (not the missing key's not_found), without Allow", async () => {
        const { req } = await sharedSetup();
        for (const [method, path] of [["GET", "/nope"], ["PATCH", "/v1"], ["GET", "/v1/kvx"], ["POST", "/v1/leases/1/2/3"], ["GET", "/v1/cluster/members/n2/x"]]) {
          const res = await req(path, { method });
          assert.deepEqual([method, path, await errorOf(res), res.headers.get("allow")], [method, path, { status: 404, code: "no_route" }, null]);
        }
      });

      it("the right methods still reach their routes", async () => {
        const { req } = await setup();
        assert.equal((await req("/v1/kv/a", { method: "PUT", body: "v" })).status, 200);
        assert.equal((await req("/v1/kv/a")).status, 200);
        assert.equal((await req("/v1/kv?prefix=")).status, 200);
        assert.equal((await req("/v1/cluster")).status, 200);
        assert.equal((await req("/v1/kv/a", { method: "DELETE" })).status, 200);
        assert.equal((await req("/v1/kv/a")).status, 404, "a missing key is still 404, not 405");
      });
    });
  }
}

/** Response headers as sorted "name: value" lines, without Content-Length (a GET's is set by the server). */
function headersBut(r: Response, drop: string[]): string[] {
  const out: string[] = [];
  r.headers.forEach((v, k) => {
    if (!drop.includes(k)) out.push(`${k}: ${v}`);
  });
  return out.sort();
}

for (const kind of SERVICE_KINDS) {
  for (const shape of APP_SHAPES) {
    describe(`api edges (${kind.name}, ${shape.name}): HEAD answers as GET without the body (RFC 9110 §9.3.2)`, () => {
      let app: ReturnType<typeof createApp> | undefined;
      const watchStats: WatchStats = { encodes: 0, active: 0, overflows: 0, maxQueuedBytes: 0 };
      const req = async (path: string, init?: RequestInit) => {
        if (!app) {
          const service = await kind.make();
          app = createApp(service, { ...shape.options, watchStats });
          // A key with a binary value whose length differs from any error body's.
          await app.request(BASE + "/v1/kv/h%2Fk", { method: "PUT", body: new Uint8Array([0, 1, 2, 255, 10, 13, 7]) });
          await app.request(BASE + "/v1/kv/h%2Fk", { method: "PUT", body: "a longer second value" });
        }
        return app.request(BASE + path, init);
      };
      const paths = ["/v1/kv/h%2Fk", "/v1/kv/h%2Fk?revision=1", "/v1/kv/h%2Fk?consistency=stale", "/v1/kv/absent", "/v1/kv/h%2Fk?revision=x", "/v1/kv?prefix=h", "/v1/cluster", "/healthz", "/v1/leases/1"];
      for (const path of paths) {
        it(`HEAD ${path}: the GET's status and headers, Content-Length = the GET body's length, no body`, async () => {
          const get = await req(path);
          const getBody = new Uint8Array(await get.arrayBuffer());
          const head = await req(path, { method: "HEAD" });
          const headBody = new Uint8Array(await head.arrayBuffer());
          assert.equal(head.status, get.status);
          assert.equal(head.headers.get("content-length"), String(getBody.byteLength));
          assert.ok(getBody.byteLength > 0, "the GET had a body");
          assert.equal(headBody.byteLength, 0);
          assert.deepEqual(headersBut(head, ["content-length"]), headersBut(get, ["content-length"]));
        });
      }

      it("HEAD of a key carries its ETag and revision headers", async () => {
        const head = await req("/v1/kv/h%2Fk", { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("etag"), '"2"');
        assert.equal(head.headers.get("x-mod-revision"), "2");
        assert.equal(head.headers.get("x-version"), "2");
        assert.equal(head.headers.get("content-length"), String("a longer second value".length));
        assert.equal(head.headers.get("content-type"), "application/octet-stream");
      });

      it("HEAD /metrics: a length but no body (the text changes with every request, so it is not compared)", async () => {
        const head = await req("/metrics", { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.match(head.headers.get("content-length") ?? "", /^[1-9][0-9]*$/);
        assert.equal((await head.arrayBuffer()).byteLength, 0);
      });

      it("HEAD of a watch answers the stream's headers without Content-Length and ends the watch", async () => {
        const head = await req("/v1/watch?key=h%2Fk", { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.match(head.headers.get("content-type") ?? "", /^text\/event-stream/);
        assert.equal(head.headers.get("content-length"), null);
        assert.equal((await head.arrayBuffer()).byteLength, 0);
        // The stream nobody will read is cancelled: the watch is gone, not left registered until the deadline.
        for (let i = 0; i < 50 && watchStats.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(watchStats.active, 0);
      });
    });
  }
}

for (const kind of SERVICE_KINDS) {
  describe(`api edges (${kind.name}): lease grant ids (etcd LeaseGrant: ID 0 = the server picks)`, () => {
    const grant = async (body: unknown, cbor = false) => {
      const service = await kind.make();
      const app = createApp(service);
      const calls = service.calls.length;
      const res = await app.request(BASE + "/v1/leases", {
        method: "POST",
        headers: cbor ? { "content-type": "application/cbor", accept: "application/json" } : { "content-type": "application/json" },
        body: cbor ? new Uint8Array(apiCbor.encode(body)) : JSON.stringify(body),
      });
      return { res, called: service.calls.length > calls };
    };

    for (const [label, body, cbor] of [
      ['"0"', { ttl: 30, id: "0" }, false],
      ["0", { ttl: 30, id: 0 }, false],
      ["no id", { ttl: 30 }, false],
      ["CBOR 0", { ttl: 30, id: 0 }, true],
    ] as const) {
      it(`id ${label}: 200 with an id the server chose (positive, at most 2^53-1)`, async () => {
        const { res } = await grant(body, cbor);
        assert.equal(res.status, 200);
        const out = (await res.json()) as { id: string; ttl: number };
        assert.match(out.id, /^[1-9][0-9]*$/);
        assert.ok(Number.isSafeInteger(Number(out.id)), out.id);
        assert.equal(out.ttl, 30);
      });
    }

    it("a chosen id 2^53-1 (as a string or an exact JSON number) is granted as asked", async () => {
      for (const id of ["9007199254740991", 9007199254740991]) {
        const { res } = await grant({ ttl: 30, id });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { id: string }).id, "9007199254740991");
      }
    });

    const refused: Array<[string, unknown]> = [
      ["negative string", "-5"],
      ["negative number", -5],
      ["negative zero string", "-0"],
      ["fraction string", "1.5"],
      ["fraction number", 1.5],
      ["exponent string", "1e3"],
      ["leading zero", "007"],
      ["2^53 string", "9007199254740992"],
      ["2^53 number", 9007199254740992],
      ["int64 max string", "9223372036854775807"],
      ["above int64 string", "9223372036854775808"],
      ["empty string", ""],
      ["hex string", "0x10"],
      ["boolean", true],
    ];
    it("a bad ttl gets a message in the API's words, not the validator's", async () => {
      for (const [ttl, message] of [
        ["10", "ttl: must be a JSON number of seconds, 1 to 2147483647"],
        [0, "ttl: must be at least 1 second"],
        [1.5, "ttl: must be a whole number of seconds"],
        [2 ** 31, "ttl: must be at most 2147483647 seconds"],
      ] as const) {
        const { res, called } = await grant({ ttl });
        assert.deepEqual([ttl, res.status, ((await res.json()) as { error: { message: string } }).error.message, called], [ttl, 400, message, false]);
      }
    });

    for (const [label, id] of refused) {
      it(`id ${label} (${JSON.stringify(id)}): 400 bad_request, nothing granted`, async () => {
        const { res, called } = await grant({ ttl: 30, id });
        assert.deepEqual(await errorOf(res), { status: 400, code: "bad_request" });
        assert.equal(called, false, "the service was asked to grant");
      });
    }
  });
}

for (const kind of SERVICE_KINDS) {
  for (const shape of APP_SHAPES) {
    describe(`api edges (${kind.name}, ${shape.name}): a query parameter the route does not take is 400, not ignored`, () => {
      it("refuses etcd's `rev`, a misspelt lease, lower-case flags and unknown watch options, naming the parameter; writes nothing", async () => {
        const app = createApp(await kind.make(), shape.options);
        const req = (path: string, init?: RequestInit) => app.request(BASE + path, init);
        await req("/v1/kv/a", { method: "PUT", body: "1" });
        await req("/v1/kv/a", { method: "PUT", body: "2" });
        const attempts: Array<[string, RequestInit | undefined, string]> = [
          ["/v1/kv/a?rev=1", undefined, "rev"],
          ["/v1/kv/a?revision=1&consistency=stale&x=1", undefined, "x"],
          ["/v1/kv/a?leese=123", { method: "PUT", body: "3" }, "leese"],
          ["/v1/kv/a?prevkv", { method: "DELETE" }, "prevkv"],
          ["/v1/kv?prefix=a&countonly", undefined, "countonly"],
          ["/v1/kv?prefix=a&limt=1", { method: "DELETE" }, "limt"],
          ["/v1/watch?prefix=a&from_revision=1", undefined, "from_revision"],
          ["/v1/leases/1?key", undefined, "key"],
        ];
        for (const [path, init, name] of attempts) {
          const res = await req(path, init);
          const body = (await res.json()) as { error: { code: string; message: string } };
          assert.deepEqual([path, res.status, body.error.code], [path, 400, "bad_request"]);
          assert.match(body.error.message, new RegExp(`unknown query parameter "${name}"; this route takes `), path);
        }
        const r = await req("/v1/kv/a?revision=2&consistency=linearizable");
        assert.deepEqual([r.status, await r.text()], [200, "2"], "the parameters a route takes still work");
        assert.equal(await (await req("/v1/kv/a")).text(), "2", "the refused put and delete changed nothing");
      });
    });

    describe(`api edges (${kind.name}, ${shape.name}): currentRevision of a 412 is the store revision`, () => {
      it("PUT/DELETE with a failed If-Match or If-None-Match: currentRevision = store revision, the message names the key's modRevision", async () => {
        const service = await kind.make();
        const app = createApp(service, shape.options);
        const req = (path: string, init?: RequestInit) => app.request(BASE + path, init);
        await req("/v1/kv/a", { method: "PUT", body: "1" }); // a: modRevision 1
        await req("/v1/kv/b", { method: "PUT", body: "2" });
        await req("/v1/kv/b", { method: "PUT", body: "3" }); // store revision 3
        const attempts: Array<[string, RequestInit, RegExp]> = [
          ["/v1/kv/a", { method: "PUT", body: "x", headers: { "if-match": '"2"' } }, /key has modRevision 1$/],
          ["/v1/kv/a", { method: "PUT", body: "x", headers: { "if-none-match": "*" } }, /key has modRevision 1$/],
          ["/v1/kv/a", { method: "DELETE", headers: { "if-match": '"3"' } }, /key has modRevision 1$/],
          ["/v1/kv/absent", { method: "PUT", body: "x", headers: { "if-match": '"1"' } }, /key is absent$/],
          ["/v1/kv/absent", { method: "PUT", body: "x", headers: { "if-match": "*" } }, /key is absent$/],
        ];
        for (const [path, init, message] of attempts) {
          const res = await req(path, init);
          const body = (await res.json()) as { error: { code: string; message: string; currentRevision: number } };
          assert.deepEqual([path, init.method, res.status, body.error.code, body.error.currentRevision], [path, init.method, 412, "compare_failed", 3]);
          assert.match(body.error.message, message);
        }
        assert.equal((await req("/v1/kv/a")).headers.get("etag"), '"1"', "nothing was written");
      });
    });
  }
}
