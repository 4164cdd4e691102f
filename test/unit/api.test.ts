/**
 * The v1 client API over the STUB service (api-stub-service.ts): routes, headers, validation, error bodies
 * and statuses, content negotiation. Calls `app.request(...)`: no network.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../../src/api/app.ts";
import { ApiError } from "../../src/api/errors.ts";
import { apiCbor } from "../../src/api/wire.ts";
import { SERVICE_KINDS, closeAllSmServices, type ServiceKind } from "./api-services.ts";

const BASE = "http://edgekv.test";

async function setupWith(kind: ServiceKind, opts: Parameters<typeof createApp>[1] = {}) {
  const service = await kind.make();
  const app = createApp(service, opts);
  const req = (path: string, init?: RequestInit) => app.request(BASE + path, init);
  return { service, app, req };
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(typeof body.error.message, "string");
  return { status: res.status, code: body.error.code, message: body.error.message };
}

after(() => closeAllSmServices());

for (const kind of SERVICE_KINDS) {
  const setup = (opts: Parameters<typeof createApp>[1] = {}) => setupWith(kind, opts);
  describe(`api (${kind.name}): single keys`, () => {
    it("puts bytes and gets them back with revision headers", async () => {
      const { req } = await setup();
      const value = new Uint8Array([0, 1, 2, 255, 254]);
      const put = await req("/v1/kv/a%2Fb/c", { method: "PUT", body: value });
      assert.equal(put.status, 200);
      assert.deepEqual(await put.json(), { op: "put", revision: 1 });
      await req("/v1/kv/a%2Fb/c", { method: "PUT", body: "second" });
      const get = await req("/v1/kv/a%2Fb/c");
      assert.equal(get.status, 200);
      assert.equal(get.headers.get("etag"), '"2"');
      assert.equal(get.headers.get("x-revision"), "2");
      assert.equal(get.headers.get("x-create-revision"), "1");
      assert.equal(get.headers.get("x-version"), "2");
      assert.equal(get.headers.get("x-lease"), "0");
      assert.equal(await get.text(), "second");
      const r = await req("/v1/kv?prefix=a/b/");
      const body = (await r.json()) as { kvs: Array<{ key: string; value: string }> };
      assert.equal(body.kvs[0].key, "a/b/c", "%2F in the path is a slash in the key");
    });

    it("keeps binary values intact and decodes UTF-8 keys", async () => {
      const { req } = await setup();
      const value = new Uint8Array(300).map((_, i) => i % 256);
      await req("/v1/kv/" + encodeURIComponent("ключ"), { method: "PUT", body: value });
      const get = await req("/v1/kv/" + encodeURIComponent("ключ"));
      assert.deepEqual(new Uint8Array(await get.arrayBuffer()), value);
    });

    it("answers 404 not_found for an absent key and 400 for an empty or malformed key", async () => {
      const { req } = await setup();
      assert.deepEqual(await errorOf(await req("/v1/kv/nope")), { status: 404, code: "not_found", message: 'key "nope" not found' });
      assert.equal((await errorOf(await req("/v1/kv/", { method: "PUT", body: "x" }))).code, "bad_request");
      assert.equal((await errorOf(await req("/v1/kv/%E0%A4%A", { method: "PUT", body: "x" }))).code, "bad_request");
    });

    it("If-None-Match: * creates only, and succeeds again after a delete (C21)", async () => {
      const { req } = await setup();
      assert.equal((await req("/v1/kv/k", { method: "PUT", body: "1", headers: { "if-none-match": "*" } })).status, 200);
      const again = await errorOf(await req("/v1/kv/k", { method: "PUT", body: "2", headers: { "if-none-match": "*" } }));
      assert.equal(again.status, 412);
      assert.equal(again.code, "compare_failed");
      assert.equal(await (await req("/v1/kv/k")).text(), "1");
      assert.equal((await req("/v1/kv/k", { method: "DELETE" })).status, 200);
      assert.equal((await req("/v1/kv/k", { method: "PUT", body: "3", headers: { "if-none-match": "*" } })).status, 200);
    });

    it("If-Match compares modRevision; a revision from before a delete fails (C21)", async () => {
      const { req } = await setup();
      await req("/v1/kv/k", { method: "PUT", body: "1" });
      const etag = (await req("/v1/kv/k")).headers.get("etag")!;
      assert.equal((await req("/v1/kv/k", { method: "PUT", body: "2", headers: { "if-match": etag } })).status, 200);
      assert.equal((await errorOf(await req("/v1/kv/k", { method: "PUT", body: "3", headers: { "if-match": etag } }))).status, 412);
      const etag2 = (await req("/v1/kv/k")).headers.get("etag")!;
      await req("/v1/kv/k", { method: "DELETE" });
      assert.equal((await errorOf(await req("/v1/kv/k", { method: "PUT", body: "4", headers: { "if-match": etag2 } }))).code, "compare_failed");
      assert.equal((await req("/v1/kv/k")).status, 404);
      assert.equal((await errorOf(await req("/v1/kv/k", { method: "PUT", body: "4", headers: { "if-match": "soon" } }))).code, "bad_request");
    });

    it("DELETE with If-Match deletes only the expected version", async () => {
      const { req } = await setup();
      await req("/v1/kv/k", { method: "PUT", body: "1" });
      assert.equal((await errorOf(await req("/v1/kv/k", { method: "DELETE", headers: { "if-match": '"9"' } }))).status, 412);
      const ok = await req("/v1/kv/k", { method: "DELETE", headers: { "if-match": '"1"' } });
      assert.deepEqual(await ok.json(), { op: "deleteRange", revision: 2, deleted: 1 });
    });
  });

  describe(`api (${kind.name}): lease ids (C08)`, () => {
    it("rejects malformed ids with bad_request and unknown ids with lease_not_found; the key is not written", async () => {
      const { req } = await setup();
      const bad = ["0", "-1", "1.5", "18446744073709551616", "9223372036854775808", "abc", "", "0x10", "+5", "01"];
      for (const id of bad) {
        const e = await errorOf(await req(`/v1/kv/k?lease=${encodeURIComponent(id)}`, { method: "PUT", body: "v" }));
        assert.deepEqual([id, e.status, e.code], [id, 400, "bad_request"]);
      }
      for (const id of ["9223372036854775807", "424242"]) {
        const e = await errorOf(await req(`/v1/kv/k?lease=${id}`, { method: "PUT", body: "v" }));
        assert.deepEqual([id, e.status, e.code], [id, 404, "lease_not_found"]);
      }
      const grant = (await (await req("/v1/leases", { method: "POST", body: JSON.stringify({ ttl: 30 }) })).json()) as { id: string };
      assert.equal((await req(`/v1/leases/${grant.id}`, { method: "DELETE" })).status, 200);
      assert.equal((await errorOf(await req(`/v1/kv/k?lease=${grant.id}`, { method: "PUT", body: "v" }))).code, "lease_not_found");
      assert.equal((await req("/v1/kv/k")).status, 404);
    });

    it("attaches a key to a live lease", async () => {
      const { req } = await setup();
      const grant = (await (await req("/v1/leases", { method: "POST", body: JSON.stringify({ ttl: 30 }) })).json()) as { id: string; ttl: number };
      assert.equal(grant.ttl, 30);
      assert.equal((await req(`/v1/kv/k?lease=${grant.id}`, { method: "PUT", body: "v" })).status, 200);
      assert.equal((await req("/v1/kv/k")).headers.get("x-lease"), grant.id);
    });
  });

  describe(`api (${kind.name}): ranges`, () => {
    async function seeded() {
      const s = await setup();
      for (const k of ["a", "b", "c", "d/1", "d/2"]) await s.req(`/v1/kv/${k}`, { method: "PUT", body: k.toUpperCase() });
      return s;
    }
    const keysOf = async (res: Response) => ((await res.json()) as { kvs: Array<{ key: string }> }).kvs.map((kv) => kv.key);

    it("serves prefix, [start, end) and open-ended ranges with base64 values", async () => {
      const { req } = await seeded();
      assert.deepEqual(await keysOf(await req("/v1/kv?prefix=d/")), ["d/1", "d/2"]);
      assert.deepEqual(await keysOf(await req("/v1/kv?start=a&end=c")), ["a", "b"], "end is exclusive");
      assert.deepEqual(await keysOf(await req("/v1/kv?start=c")), ["c", "d/1", "d/2"], "no end = every key >= start");
      assert.deepEqual(await keysOf(await req("/v1/kv?prefix=")), ["a", "b", "c", "d/1", "d/2"]);
      const one = (await (await req("/v1/kv?prefix=a")).json()) as { kvs: Array<{ value: string; lease: string }>; count: number; revision: number };
      assert.equal(one.kvs[0].value, btoa("A"));
      assert.equal(one.kvs[0].lease, "0");
      assert.equal(one.count, 1);
      assert.equal(one.revision, 5);
    });

    it("rejects inverted and empty ranges and ambiguous queries with 400 (C21)", async () => {
      const { req } = await seeded();
      for (const q of ["start=c&end=a", "start=&end=", "start=b&end=b", "", "prefix=a&start=b", "start=a&limit=-1", "start=a&keysOnly=maybe"]) {
        const e = await errorOf(await req(`/v1/kv?${q}`));
        assert.deepEqual([q, e.status, e.code], [q, 400, "bad_request"]);
      }
    });

    it("applies limit, keysOnly and countOnly", async () => {
      const { req } = await seeded();
      const lim = (await (await req("/v1/kv?start=a&limit=2")).json()) as { kvs: unknown[]; more: boolean; count: number };
      assert.deepEqual([lim.kvs.length, lim.more, lim.count], [2, true, 5]);
      const ko = (await (await req("/v1/kv?prefix=a&keysOnly")).json()) as { kvs: Array<{ value: string }> };
      assert.equal(ko.kvs[0].value, "");
      const co = (await (await req("/v1/kv?prefix=d/&countOnly=true")).json()) as { kvs: unknown[]; count: number };
      assert.deepEqual([co.kvs.length, co.count], [0, 2]);
    });

    it("answers CBOR with byte strings when asked", async () => {
      const { req } = await seeded();
      const res = await req("/v1/kv?prefix=d/", { headers: { accept: "application/cbor" } });
      assert.equal(res.headers.get("content-type"), "application/cbor");
      const body = apiCbor.decode(new Uint8Array(await res.arrayBuffer())) as { kvs: Array<{ key: Uint8Array; value: Uint8Array }> };
      assert.deepEqual(new TextDecoder().decode(body.kvs[1].key), "d/2");
      assert.deepEqual(new TextDecoder().decode(body.kvs[1].value), "D/2");
    });

    it("passes consistency through and marks stale reads", async () => {
      const { req, service } = await seeded();
      const res = await req("/v1/kv/a?consistency=stale");
      assert.equal(res.headers.get("x-consistency"), "stale");
      assert.equal(res.headers.get("x-applied-index"), "5");
      assert.equal(res.headers.get("x-staleness-ms"), "42");
      assert.equal((service.calls.at(-1)!.opts as { consistency: string }).consistency, "stale");
      await req("/v1/kv/a");
      assert.equal((service.calls.at(-1)!.opts as { consistency: string }).consistency, "linearizable");
      assert.equal((await errorOf(await req("/v1/kv/a?consistency=eventual"))).code, "bad_request");
    });

    it("deletes a range", async () => {
      const { req } = await seeded();
      assert.deepEqual(await (await req("/v1/kv?prefix=d/", { method: "DELETE" })).json(), { op: "deleteRange", revision: 6, deleted: 2 });
      assert.deepEqual(await keysOf(await req("/v1/kv?prefix=")), ["a", "b", "c"]);
    });
  });

  describe(`api (${kind.name}): txn`, () => {
    it("runs success or failure by the compares (JSON: keys as text, values base64)", async () => {
      const { req } = await setup();
      await req("/v1/kv/x", { method: "PUT", body: "1" });
      const body = {
        compare: [{ key: "x", target: "value", result: "equal", value: btoa("1") }],
        success: [{ op: "put", key: "y", value: btoa("yes") }, { op: "range", key: "x" }],
        failure: [{ op: "put", key: "y", value: btoa("no") }],
      };
      const r1 = (await (await req("/v1/txn", { method: "POST", body: JSON.stringify(body) })).json()) as { succeeded: boolean; responses: Array<{ op: string; kvs?: Array<{ value: string }> }> };
      assert.equal(r1.succeeded, true);
      assert.deepEqual(r1.responses.map((r) => r.op), ["put", "range"]);
      assert.equal(r1.responses[1].kvs![0].value, btoa("1"));
      body.compare[0].value = btoa("2");
      const r2 = (await (await req("/v1/txn", { method: "POST", body: JSON.stringify(body) })).json()) as { succeeded: boolean };
      assert.equal(r2.succeeded, false);
      assert.equal(await (await req("/v1/kv/y")).text(), "no");
    });

    it("accepts a CBOR body and answers CBOR", async () => {
      const { req } = await setup();
      const body = apiCbor.encode({ compare: [{ key: new Uint8Array([107]), target: "version", result: "=", value: 0 }], success: [{ op: "put", key: new Uint8Array([107]), value: new Uint8Array([1, 2]) }] });
      const res = await req("/v1/txn", { method: "POST", body: new Uint8Array(body), headers: { "content-type": "application/cbor", accept: "application/cbor" } });
      const out = apiCbor.decode(new Uint8Array(await res.arrayBuffer())) as { succeeded: boolean };
      assert.equal(out.succeeded, true);
      assert.deepEqual(new Uint8Array(await (await req("/v1/kv/k")).arrayBuffer()), new Uint8Array([1, 2]));
    });

    it("rejects malformed JSON, unknown fields, bad base64 and inverted ranges with 400", async () => {
      const { req } = await setup();
      const bodies = [
        "{not json",
        JSON.stringify({ compare: [], success: [{ op: "put", key: "a", value: "!!" }] }),
        JSON.stringify({ success: [{ op: "put", key: "a", value: "", extra: 1 }] }),
        JSON.stringify({ success: [{ op: "delete", key: "c", end: "a" }] }),
        JSON.stringify({ success: [{ op: "upsert", key: "a" }] }),
        JSON.stringify({ compare: [{ key: "a", target: "version", result: "~", value: 1 }] }),
      ];
      for (const b of bodies) {
        const e = await errorOf(await req("/v1/txn", { method: "POST", body: b }));
        assert.deepEqual([b, e.status, e.code], [b, 400, "bad_request"]);
      }
    });
  });

  describe(`api (${kind.name}): limits, sessions and errors`, () => {
    it("answers 413 for a value above the limit, declared or streamed", async () => {
      const { req, service } = await setup({ maxValueBytes: 16 });
      assert.equal((await req("/v1/kv/k", { method: "PUT", body: "x".repeat(16) })).status, 200);
      const e = await errorOf(await req("/v1/kv/k", { method: "PUT", body: "x".repeat(17) }));
      assert.deepEqual([e.status, e.code], [413, "payload_too_large"]);
      let pulled = 0;
      const endless = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          pulled++;
          if (pulled > 1000) ctrl.close();
          else ctrl.enqueue(new Uint8Array(8));
        },
      });
      const s = await errorOf(await req("/v1/kv/k", { method: "PUT", body: endless, duplex: "half" } as RequestInit));
      assert.equal(s.code, "payload_too_large");
      assert.ok(pulled < 10, `stopped reading early (pulled ${pulled} chunks)`);
      assert.equal(service.calls.filter((c) => c.method === "put").length, 1);
    });

    it("maps session headers to the service and de-duplicates a retried write", async () => {
      const { req, service } = await setup();
      const h = { "x-client-id": "c1", "x-request-seq": "1" };
      const a = await (await req("/v1/kv/k", { method: "PUT", body: "v", headers: h })).json();
      const b = await (await req("/v1/kv/k", { method: "PUT", body: "v", headers: h })).json();
      assert.deepEqual(a, b);
      assert.equal(service.rev, 1);
      assert.deepEqual((service.calls[0].opts as { session: unknown }).session, { clientId: "c1", sequence: 1 });
      const fresh = await errorOf(await req("/v1/kv/k", { method: "PUT", body: "v", headers: { "x-client-id": "c2", "x-request-seq": "7" } }));
      assert.deepEqual([fresh.status, fresh.code], [409, "session_expired"]);
      assert.equal(service.rev, 1);
      for (const bad of [{ "x-client-id": "c1" } as Record<string, string>, { "x-client-id": "c1", "x-request-seq": "0" }, { "x-client-id": "c 1", "x-request-seq": "1" }]) {
        assert.equal((await errorOf(await req("/v1/kv/k", { method: "PUT", body: "v", headers: bad }))).code, "bad_request");
      }
    });

    it("maps service errors to status, code, Retry-After and leader hint", async () => {
      const { req, service } = await setup();
      service.failNext = new ApiError("no_leader", "no leader elected");
      let res = await req("/v1/kv/k", { method: "PUT", body: "v" });
      assert.deepEqual([res.status, res.headers.get("retry-after"), (await errorOf(res)).code], [503, "1", "no_leader"]);
      service.failNext = new ApiError("not_leader", "ask the leader", { leader: { id: "n2", clientUrl: "http://127.0.0.1:8082" } });
      res = await req("/v1/kv/k");
      assert.equal(res.status, 421);
      assert.equal(res.headers.get("x-leader-url"), "http://127.0.0.1:8082");
      assert.deepEqual(((await res.json()) as { error: { leader: unknown } }).error.leader, { id: "n2", clientUrl: "http://127.0.0.1:8082" });
      service.failNext = Object.assign(new Error("dup"), { code: "duplicate_key_in_txn" });
      assert.deepEqual(await errorOf(await req("/v1/kv/k", { method: "PUT", body: "v" })), { status: 400, code: "bad_request", message: "dup" });
      service.failNext = Object.assign(new Error("gone"), { code: "compacted", compactRevision: 5 });
      res = await req("/v1/kv?prefix=a&revision=2");
      assert.equal(res.status, 410);
      assert.equal(((await res.json()) as { error: { compactRevision: number } }).error.compactRevision, 5);
      service.failNext = new TypeError("boom");
      assert.deepEqual(await errorOf(await req("/v1/kv/k")), { status: 500, code: "internal", message: "boom" });
      assert.deepEqual((await errorOf(await req("/v2/nothing"))).code, "no_route");
    });
  });
}
